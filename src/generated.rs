//! opsdeploy's own sections of files people also edit (PROJECT_STATE.md's
//! deployments table, CONTINUITY.md's incidents): written between
//! `<!-- opsdeploy:NAME:start -->` and `<!-- opsdeploy:NAME:end -->` lines.
//!
//! A plan records such a file's hash without these sections, so a write by
//! opsdeploy (after another environment's deploy, say) never invalidates an
//! approved plan, while every line people wrote stays covered. An unmatched
//! start line hides nothing: it is hashed like any other line.

/// The marker lines around section `name`.
pub fn markers(name: &str) -> (String, String) {
    (
        format!("<!-- opsdeploy:{name}:start -->"),
        format!("<!-- opsdeploy:{name}:end -->"),
    )
}

/// The name in a start marker line.
fn start_name(line: &[u8]) -> Option<&[u8]> {
    line.trim_ascii()
        .strip_prefix(b"<!-- opsdeploy:")?
        .strip_suffix(b":start -->")
}

/// `bytes` without opsdeploy's sections (marker lines included) and
/// without trailing whitespace.
pub fn without_generated(bytes: &[u8]) -> Vec<u8> {
    let lines: Vec<&[u8]> = bytes.split_inclusive(|b| *b == b'\n').collect();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < lines.len() {
        if let Some(name) = start_name(lines[i]) {
            let end = [b"<!-- opsdeploy:", name, b":end -->"].concat();
            if let Some(offset) = lines[i + 1..]
                .iter()
                .position(|l| l.trim_ascii() == end.as_slice())
            {
                i += offset + 2;
                continue;
            }
        }
        out.extend_from_slice(lines[i]);
        i += 1;
    }
    let end = out.trim_ascii_end().len();
    out.truncate(end);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_lies_between_matching_markers_is_left_out() {
        let (start, end) = markers("deployments");
        let people = "# State\n\n**Current phase:** S09\n";
        let generated = format!("{start}\n| staging | `abc` |\n{end}\n");
        let a = format!("{people}{generated}");
        // The first time, opsdeploy appends its section after a blank line.
        let b = format!("{people}\n{}", generated.replace("abc", "def"));
        assert_eq!(
            without_generated(a.as_bytes()),
            people.trim_end().as_bytes()
        );
        assert_eq!(
            without_generated(a.as_bytes()),
            without_generated(b.as_bytes())
        );
        let edited = a.replace("S09", "S10");
        assert_ne!(
            without_generated(a.as_bytes()),
            without_generated(edited.as_bytes())
        );
        // An unmatched start line hides nothing.
        let open = format!("{start}\n**Current phase:** S10");
        assert_eq!(without_generated(open.as_bytes()), open.as_bytes());
    }
}
