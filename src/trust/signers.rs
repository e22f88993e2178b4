//! OpenSSH `allowed_signers` (ssh-keygen(1), "ALLOWED SIGNERS"): which key
//! speaks for which person.
//!
//! ```text
//! # principals       options                                       key
//! alice@example.com  namespaces="opsdeploy",valid-before="20271231Z" ssh-ed25519 AAAA... alice
//! bob@example.com    ssh-ed25519 AAAA...
//! ```
//!
//! An approval names one person, so principals are plain names: patterns
//! (`*@example.com`) and `cert-authority` lines are refused with the line.

use ssh_key::public::KeyData;
use ssh_key::{HashAlg, PublicKey};

use super::{NAMESPACE, TrustError, time};

/// One line of the file.
#[derive(Debug, Clone)]
pub struct Signer {
    /// 1-based line in the file.
    pub line: usize,
    pub principals: Vec<String>,
    /// `namespaces="..."`; every namespace when absent.
    pub namespaces: Option<Vec<String>>,
    pub valid_after: Option<i64>,
    pub valid_before: Option<i64>,
    pub key: PublicKey,
}

impl Signer {
    fn allows_namespace(&self) -> bool {
        self.namespaces
            .as_ref()
            .is_none_or(|ns| ns.iter().any(|n| glob(n, NAMESPACE)))
    }
}

/// A parsed allowed_signers file.
#[derive(Debug, Clone, Default)]
pub struct AllowedSigners {
    pub signers: Vec<Signer>,
}

/// Why a key does not speak for a principal at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotAllowed {
    /// No line lists the key.
    UnknownKey,
    /// The line limits the key to other namespaces.
    Namespace { line: usize },
    /// Outside `valid-after` / `valid-before`.
    Expired { line: usize, why: String },
}

impl AllowedSigners {
    /// Parses `text`; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<AllowedSigners, TrustError> {
        let mut signers = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let rest = raw.trim();
            if rest.is_empty() || rest.starts_with('#') {
                continue;
            }
            let bad = |message: String| TrustError::invalid(file, Some(line), message);
            let (principals, rest) = token(rest);
            let principals: Vec<String> = principals
                .trim_matches('"')
                .split(',')
                .map(str::to_string)
                .collect();
            if let Some(p) = principals
                .iter()
                .find(|p| p.is_empty() || p.contains(['*', '?', '!']))
            {
                return Err(bad(format!(
                    "principal {p:?} is a pattern or empty; an approval names one person, so list each principal by name"
                )));
            }
            let (second, after) = token(rest);
            let (options, key_text) = if is_key_type(second) {
                ("", rest)
            } else {
                (second, after)
            };
            let mut signer = Signer {
                line,
                principals,
                namespaces: None,
                valid_after: None,
                valid_before: None,
                key: PublicKey::from_openssh(key_text.trim())
                    .map_err(|e| bad(format!("the key is not an OpenSSH public key ({e})")))?,
            };
            for option in split_options(options) {
                let (name, value) = match option.split_once('=') {
                    Some((n, v)) => (n, Some(v.trim_matches('"'))),
                    None => (option, None),
                };
                match (name.to_ascii_lowercase().as_str(), value) {
                    ("cert-authority", None) => {
                        return Err(bad(
                            "cert-authority lines are not supported: list each approver's own key, so an approval names the person who signed"
                                .into(),
                        ));
                    }
                    ("namespaces", Some(v)) => {
                        signer.namespaces = Some(v.split(',').map(str::to_string).collect());
                    }
                    ("valid-after", Some(v)) => {
                        signer.valid_after = Some(time::parse_openssh(v).ok_or_else(|| {
                            bad(format!("valid-after {v:?} is not YYYYMMDD[HHMM[SS]][Z]"))
                        })?);
                    }
                    ("valid-before", Some(v)) => {
                        signer.valid_before = Some(time::parse_openssh(v).ok_or_else(|| {
                            bad(format!("valid-before {v:?} is not YYYYMMDD[HHMM[SS]][Z]"))
                        })?);
                    }
                    _ => {
                        return Err(bad(format!(
                            "unknown option {option:?} (known: namespaces=\"...\", valid-after=\"...\", valid-before=\"...\")"
                        )));
                    }
                }
            }
            signers.push(signer);
        }
        Ok(AllowedSigners { signers })
    }

    /// The principals `key` may sign as, in namespace `opsdeploy`, at `at`
    /// (seconds since the epoch).
    pub fn principals(&self, key: &KeyData, at: i64) -> Result<Vec<&str>, NotAllowed> {
        let lines: Vec<&Signer> = self
            .signers
            .iter()
            .filter(|s| s.key.key_data() == key)
            .collect();
        if lines.is_empty() {
            return Err(NotAllowed::UnknownKey);
        }
        let mut last = NotAllowed::UnknownKey;
        let mut out = Vec::new();
        for s in lines {
            if !s.allows_namespace() {
                last = NotAllowed::Namespace { line: s.line };
                continue;
            }
            let shown = |t: i64| crate::store::rfc3339(t);
            if let Some(after) = s.valid_after.filter(|a| at < *a) {
                last = NotAllowed::Expired {
                    line: s.line,
                    why: format!("it is valid only after {}", shown(after)),
                };
                continue;
            }
            if let Some(before) = s.valid_before.filter(|b| at >= *b) {
                last = NotAllowed::Expired {
                    line: s.line,
                    why: format!("it was valid only before {}", shown(before)),
                };
                continue;
            }
            out.extend(s.principals.iter().map(String::as_str));
        }
        if out.is_empty() { Err(last) } else { Ok(out) }
    }

    /// Checks that `key` speaks for `principal` at `at`; the refusal says why.
    pub fn check(
        &self,
        file: &str,
        key: &KeyData,
        principal: &str,
        at: i64,
    ) -> Result<(), TrustError> {
        let fp = fingerprint(key);
        match self.principals(key, at) {
            Ok(p) if p.contains(&principal) => Ok(()),
            Ok(p) => Err(TrustError::Refused(format!(
                "the key that signed ({fp}) is {}'s in {file}, not {principal}'s",
                p.join(", ")
            ))),
            Err(NotAllowed::UnknownKey) => Err(TrustError::Refused(format!(
                "the key that signed ({fp}) is not in {file}"
            ))),
            Err(NotAllowed::Namespace { line }) => Err(TrustError::Refused(format!(
                "the key that signed ({fp}) is not allowed to sign for opsdeploy ({file}:{line} limits its namespaces)"
            ))),
            Err(NotAllowed::Expired { line, why }) => Err(TrustError::Refused(format!(
                "the key that signed ({fp}) does not count at {}: {why} ({file}:{line})",
                crate::store::rfc3339(at)
            ))),
        }
    }

    /// Every principal the file names.
    pub fn all_principals(&self) -> Vec<&str> {
        let mut all: Vec<&str> = self
            .signers
            .iter()
            .flat_map(|s| s.principals.iter().map(String::as_str))
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// Keys (by fingerprint, with their principals) in `self` and not in `old`.
    pub fn added_since(&self, old: &AllowedSigners) -> Vec<String> {
        self.signers
            .iter()
            .filter(|s| {
                !old.signers.iter().any(|o| {
                    o.key.key_data() == s.key.key_data()
                        && s.principals.iter().all(|p| o.principals.contains(p))
                })
            })
            .map(|s| {
                format!(
                    "{} ({})",
                    s.principals.join(","),
                    fingerprint(s.key.key_data())
                )
            })
            .collect()
    }
}

/// `SHA256:...`, as `ssh-keygen -l` prints it.
pub fn fingerprint(key: &KeyData) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// The first whitespace-separated token (quotes keep spaces) and the rest.
fn token(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    let mut quoted = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => return (&s[..i], s[i..].trim_start()),
            _ => {}
        }
    }
    (s, "")
}

/// Splits `a,b="x,y",c` at commas outside quotes.
fn split_options(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out.into_iter().filter(|o| !o.is_empty()).collect()
}

fn is_key_type(s: &str) -> bool {
    s.starts_with("ssh-") || s.starts_with("ecdsa-sha2-") || s.starts_with("sk-")
}

/// OpenSSH's pattern match (`*` and `?`), for namespaces.
fn glob(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Public halves of throwaway keys made for these tests.
    const ALICE: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGGpN2wTzfxXXabFXov1kQVY97opAw9olzLw4C9J/1FZ alice";
    const BOB: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJutyXLMdmJPKE1ljI+6s9MR88LVDAgmZZ4og5P163zJ bob";

    fn key(line: &str) -> KeyData {
        PublicKey::from_openssh(line).unwrap().key_data().clone()
    }

    #[test]
    fn principals_options_and_validity_are_read() {
        let text = format!(
            "# team\n\nalice@example.com,alice@corp.example {ALICE}\nbob@example.com namespaces=\"git,opsdeploy\",valid-after=\"20260101\",valid-before=\"20270101Z\" {BOB}\n"
        );
        let s = AllowedSigners::parse("deploy/allowed_signers", &text).unwrap();
        assert_eq!(s.signers.len(), 2);
        assert_eq!(
            s.principals(&key(ALICE), 0).unwrap(),
            vec!["alice@example.com", "alice@corp.example"]
        );
        let mid_2026 = time::parse_rfc3339("2026-06-01T00:00:00Z").unwrap();
        assert_eq!(
            s.principals(&key(BOB), mid_2026).unwrap(),
            vec!["bob@example.com"]
        );
        let late = time::parse_rfc3339("2027-01-01T00:00:00Z").unwrap();
        let err = s
            .check("deploy/allowed_signers", &key(BOB), "bob@example.com", late)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("valid only before 2027-01-01T00:00:00Z"),
            "{err}"
        );
        assert!(
            err.to_string().contains("deploy/allowed_signers:4"),
            "{err}"
        );
        let err = s.check("f", &key(ALICE), "bob@example.com", 0).unwrap_err();
        assert!(
            err.to_string()
                .contains("is alice@example.com, alice@corp.example's in f, not bob@example.com's"),
            "{err}"
        );
    }

    #[test]
    fn a_key_limited_to_other_namespaces_does_not_sign_for_opsdeploy() {
        let s = AllowedSigners::parse("f", &format!("bob@example.com namespaces=\"git\" {BOB}"))
            .unwrap();
        assert_eq!(
            s.principals(&key(BOB), 0),
            Err(NotAllowed::Namespace { line: 1 })
        );
        let s = AllowedSigners::parse("f", &format!("bob@example.com namespaces=\"ops*\" {BOB}"))
            .unwrap();
        assert!(s.principals(&key(BOB), 0).is_ok());
    }

    #[test]
    fn patterns_cert_authorities_and_bad_lines_are_refused_with_their_line() {
        for (text, says) in [
            (format!("*@example.com {ALICE}"), "is a pattern"),
            (
                format!("ca@example.com cert-authority {ALICE}"),
                "cert-authority lines are not supported",
            ),
            (
                format!("bob@example.com valid-before=\"soon\" {BOB}"),
                "valid-before \"soon\"",
            ),
            (
                format!("bob@example.com restrict {BOB}"),
                "unknown option \"restrict\"",
            ),
            (
                "bob@example.com ssh-ed25519 AAAAnotbase64!".to_string(),
                "not an OpenSSH public key",
            ),
        ] {
            let err = AllowedSigners::parse("deploy/allowed_signers", &format!("# x\n{text}\n"))
                .unwrap_err();
            let msg = err.to_string();
            assert!(msg.starts_with("deploy/allowed_signers:2: "), "{msg}");
            assert!(msg.contains(says), "{msg}");
        }
    }

    #[test]
    fn added_keys_are_named() {
        let old = AllowedSigners::parse("f", &format!("alice@example.com {ALICE}")).unwrap();
        let new = AllowedSigners::parse(
            "f",
            &format!("alice@example.com {ALICE}\nbob@example.com {BOB}"),
        )
        .unwrap();
        let added = new.added_since(&old);
        assert_eq!(added.len(), 1);
        assert!(
            added[0].starts_with("bob@example.com (SHA256:"),
            "{added:?}"
        );
        assert!(old.added_since(&new).is_empty());
    }
}
