//! Rule names, found in the source text: regorus evaluates a rule by path but
//! does not list a package's rules, so candidates come from the identifiers a
//! module declares (a candidate that is not a rule is skipped when evaluated).

/// Identifiers outside strings and comments, first occurrence first.
pub fn identifiers(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut out: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'#' {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
        } else if c == b'"' {
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c == b'`' {
            i += 1;
            while i < bytes.len() && bytes[i] != b'`' {
                i += 1;
            }
            i += 1;
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            // `input.deny` and `data.main.deny` refer to something else.
            let after_dot = start > 0 && bytes[start - 1] == b'.';
            let word = &text[start..i];
            if !after_dot && !out.contains(&word) {
                out.push(word);
            }
        } else {
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::identifiers;

    #[test]
    fn strings_comments_and_references_are_not_declarations() {
        let text = "package main\n# deny_in_comment\ndeny contains msg if {\n  msg := \"warn_in_string \\\" deny_x\"\n  x := `deny_raw`\n  data.main.deny_ref\n}\nwarn_two[m] { m := 1 }\n";
        let ids = identifiers(text);
        assert!(ids.contains(&"deny"));
        assert!(ids.contains(&"warn_two"));
        for absent in [
            "deny_in_comment",
            "warn_in_string",
            "deny_x",
            "deny_raw",
            "deny_ref",
        ] {
            assert!(!ids.contains(&absent), "{absent} in {ids:?}");
        }
    }
}
