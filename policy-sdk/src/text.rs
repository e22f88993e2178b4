//! Text helpers policies share, so two policies never match a pattern or
//! shorten a digest differently.

/// Whether `text` matches `pattern`, where `*` matches any run of characters
/// (none included) and everything else matches itself. Linear in the text
/// for each `*`: no backtracking blow-up on patterns with many stars.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    // The leftmost match of each middle part leaves the most room for the rest.
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// The first 12 characters of a digest, without a `sha256:` prefix (the
/// whole digest when it is shorter), as every report shows digests.
pub fn short_digest(digest: &str) -> &str {
    let d = digest.strip_prefix("sha256:").unwrap_or(digest);
    match d.char_indices().nth(12) {
        Some((i, _)) => &d[..i],
        None => d,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_like_a_shell_star() {
        assert!(glob_match("module.db.*", "module.db.aws_db_instance.main"));
        assert!(glob_match("*bucket*", "aws_s3_bucket.logs"));
        assert!(!glob_match("aws_s3_bucket.*", "aws_instance.x"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
        assert!(!glob_match("a*b", "ab_"));
        assert!(glob_match("a*b*c", "a__b__b__c"));
        assert!(glob_match("test/*", "test/ünïcode.env"));
        assert!(glob_match("*", ""));
    }

    #[test]
    fn many_stars_on_a_long_text_do_not_backtrack() {
        let text = "a".repeat(10_000);
        assert!(!glob_match("*a*a*a*a*a*a*a*a*a*a*a*a*b", &text));
    }

    #[test]
    fn short_digests_drop_the_algorithm_and_never_panic_on_short_input() {
        assert_eq!(short_digest("sha256:0123456789abcdef"), "0123456789ab");
        assert_eq!(short_digest("0123456789abcdef"), "0123456789ab");
        assert_eq!(short_digest("abc"), "abc");
        assert_eq!(short_digest("ééééééééééééé"), "éééééééééééé");
    }
}
