//! Checkpoints: a log's size and head hash at one moment, optionally signed,
//! in the spirit of transparency logs' signed tree heads. A log that still
//! has the checkpoint's head at the checkpoint's size has only grown since.
//!
//! ```text
//! opsdeploy audit checkpoint v1
//! project shop
//! size 42
//! head 3f9a…(64 hex)
//! -----BEGIN SSH SIGNATURE-----      (optional: over the four lines above)
//! …
//! -----END SSH SIGNATURE-----
//! ```
//!
//! The lines may be indented (PROJECT_STATE.md keeps one as a code block).

use super::TrustError;

pub const HEADER: &str = "opsdeploy audit checkpoint v1";
const BEGIN: &str = "-----BEGIN SSH SIGNATURE-----";
const END: &str = "-----END SSH SIGNATURE-----";

/// Also `audit checkpoint --format json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Checkpoint {
    pub project: String,
    pub size: u64,
    pub head: String,
    /// PEM SSHSIG over [`Checkpoint::body`].
    pub signature: Option<String>,
}

impl Checkpoint {
    /// The signed part: four lines.
    pub fn body(&self) -> String {
        format!(
            "{HEADER}\nproject {}\nsize {}\nhead {}\n",
            self.project, self.size, self.head
        )
    }

    pub fn to_text(&self) -> String {
        let mut t = self.body();
        if let Some(sig) = &self.signature {
            t.push_str(sig.trim_end());
            t.push('\n');
        }
        t
    }

    /// The checkpoint in `text` (a checkpoint file, or a file holding one,
    /// such as PROJECT_STATE.md); `None` when there is none.
    pub fn find(file: &str, text: &str) -> Result<Option<Checkpoint>, TrustError> {
        let lines: Vec<(usize, &str)> = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim()))
            .collect();
        let Some(start) = lines.iter().position(|(_, l)| *l == HEADER) else {
            return Ok(None);
        };
        fn field_at<'t>(
            file: &str,
            lines: &[(usize, &'t str)],
            at: usize,
            k: usize,
            name: &str,
        ) -> Result<&'t str, TrustError> {
            let (n, l) = lines.get(at + k).copied().unwrap_or((lines.len() + 1, ""));
            l.strip_prefix(name)
                .and_then(|v| v.strip_prefix(' '))
                .ok_or_else(|| {
                    TrustError::invalid(
                        file,
                        Some(n),
                        format!("the checkpoint's line {} must be `{name} ...`", k + 1),
                    )
                })
        }
        let field = |k: usize, name: &str| field_at(file, &lines, start, k, name);
        let project = field(1, "project")?.to_string();
        let size_line = lines.get(start + 2).map(|(n, _)| *n);
        let size = field(2, "size")?.parse().map_err(|_| {
            TrustError::invalid(file, size_line, "the checkpoint's size is not a number")
        })?;
        let head = field(3, "head")?.to_string();
        if head.len() != 64 || !head.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(TrustError::invalid(
                file,
                lines.get(start + 3).map(|(n, _)| *n),
                "the checkpoint's head is not a 64-hex hash",
            ));
        }
        let rest = &lines[(start + 4).min(lines.len())..];
        let signature = match rest.first() {
            Some((_, l)) if *l == BEGIN => {
                let end = rest.iter().position(|(_, l)| *l == END).ok_or_else(|| {
                    TrustError::invalid(
                        file,
                        Some(rest[0].0),
                        "the checkpoint's signature has no END line",
                    )
                })?;
                Some(
                    rest[..=end]
                        .iter()
                        .map(|(_, l)| format!("{l}\n"))
                        .collect::<String>(),
                )
            }
            _ => None,
        };
        Ok(Some(Checkpoint {
            project,
            size,
            head,
            signature,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_is_found_as_written_and_indented_in_another_file() {
        let c = Checkpoint {
            project: "shop".into(),
            size: 42,
            head: "ab".repeat(32),
            signature: Some(format!("{BEGIN}\nAAAA\n{END}\n")),
        };
        assert_eq!(
            Checkpoint::find("c", &c.to_text()).unwrap(),
            Some(c.clone())
        );
        let embedded = format!(
            "# State\n\nsome text\n\n{}\nmore\n",
            c.body()
                .lines()
                .map(|l| format!("    {l}\n"))
                .collect::<String>()
        );
        let found = Checkpoint::find("PROJECT_STATE.md", &embedded)
            .unwrap()
            .unwrap();
        assert_eq!((found.size, found.signature), (42, None));
        assert_eq!(Checkpoint::find("x", "nothing here").unwrap(), None);
    }

    #[test]
    fn a_damaged_checkpoint_names_its_line() {
        let err = Checkpoint::find("c", &format!("{HEADER}\nproject shop\nsize many\nhead x\n"))
            .unwrap_err()
            .to_string();
        assert_eq!(err, "c:3: the checkpoint's size is not a number");
        let err = Checkpoint::find("c", &format!("{HEADER}\nproject shop\nsize 1\nhead abc\n"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("c:4: "), "{err}");
    }
}
