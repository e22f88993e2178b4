//! Stand-ins: values that take a secret's place without being one. Judged on
//! the WHOLE value, after a format or a key said "this is where a secret
//! goes": a value is a stand-in only when nothing in it is random material.
//! `changeme` is a stand-in; `ChangeMe-3f9a1c2b!` is a real password (eight
//! random hex digits); `ghp_` followed by `x`s is a stand-in for a token.
//!
//! What counts, in order: templating and variable syntax; one character
//! repeated or a short unit repeated; ascending runs and keyboard rows
//! (`ABCDEF`, `123456`, `qwerty`, also interleaved: `a1B2c3D4`); values made
//! only of stand-in words with at most a sequence of digits or symbols
//! (`super$ecret`, `thisismypassword`, `Secret123`); and values vendors and
//! RFCs publish as examples.

/// Why `value` is a stand-in, or `None` when it may be a real secret.
pub fn stand_in(value: &str) -> Option<&'static str> {
    let v = value.trim().trim_matches(|c| c == '"' || c == '\'');
    if v.is_empty() {
        return Some("empty");
    }
    if is_template(v) {
        return Some("a template or variable reference");
    }
    if is_documented(v) {
        return Some("a documented example value");
    }
    let alnum: Vec<char> = v
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if alnum.is_empty() {
        return Some("no letters or digits: a mask");
    }
    if dominated(&alnum) || repeated(&alnum) {
        return Some("a repeated character or pattern");
    }
    if alnum.len() >= 6 && sequential(v) >= 0.7 {
        return Some("a run of sequential characters");
    }
    if only_words(v) {
        return Some("only stand-in words");
    }
    // A short type prefix (`s.`, `tok_`) before the stand-in itself.
    match v.split_once(['.', '_', '-']) {
        Some((head, rest)) if head.len() <= 6 && rest.len() >= 8 => stand_in(rest),
        _ => None,
    }
}

/// Values published as examples in vendors' documentation and RFCs, never
/// issued as credentials.
const DOCUMENTED: &[&str] = &[
    // AWS's IAM documentation.
    "AKIAIOSFODNN7EXAMPLE",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    // RFC 7617 (HTTP Basic): Aladdin / open sesame, and its base64.
    "open sesame",
    "open_sesame",
    "open-sesame",
    "QWxhZGRpbjpvcGVuIHNlc2FtZQ==",
    // RFC 6750 (Bearer tokens).
    "mF_9.B5f-4.1JqM",
    // jwt.io's example token.
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
    // Stripe's API reference test keys.
    "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
    "pk_test_TYooMQauvdEDq54NiTphI7jx",
    // MongoDB's connection string documentation.
    "D1fficultP%40ssw0rd",
    "D1fficultP@ssw0rd",
    "D1fficult",
    // Okta's API token documentation.
    "00QCjAl4MlV-WPXM-ABCDEFGHIJKL-0HmjFx-vbGua",
    // VMware's documented lab default.
    "VMware1!",
];

/// A documented example, or a value marked as one (`…EXAMPLEKEY`,
/// `ExampleKeyTestOnly`), or one quoting a documented example at length.
fn is_documented(v: &str) -> bool {
    DOCUMENTED.contains(&v)
        || v.to_ascii_lowercase().contains("example")
        // A JWT's header is shared by every token of its algorithm.
        || DOCUMENTED.iter().filter(|d| !d.starts_with("eyJ")).any(|d| {
            d.len() >= 24
                && (0..=d.len() - 24).any(|i| d.get(i..i + 24).is_some_and(|part| v.contains(part)))
        })
}

/// `${X}`, `{{ .Values.x }}`, `$(X)`, `#{x}`, `<your-key>`, `[key here]`,
/// `%VAR%`, `__TOKEN__`, `@TOKEN@`, `$VAR`, `$HOME/x`, `{0}`.
pub fn is_template(v: &str) -> bool {
    // An expression opened and closed again: `%(^+=` alone is not one.
    let expression = [
        ("${", "}"),
        ("{{", "}}"),
        ("$(", ")"),
        ("#{", "}"),
        ("%(", ")"),
        ("<%", "%>"),
        ("%{", "}"),
    ]
    .iter()
    .any(|(open, close)| {
        // Opened at the start (a value cut at a blank loses its close), or
        // opened and closed inside.
        v.starts_with(open)
            || v.find(open)
                .is_some_and(|i| v[i + open.len()..].contains(close))
    });
    if expression {
        return true;
    }
    let wrapped =
        |open: char, close: char| v.len() > 2 && v.starts_with(open) && v.ends_with(close);
    if wrapped('<', '>') || wrapped('[', ']') || wrapped('{', '}') || wrapped('%', '%') {
        return true;
    }
    if (v.starts_with("__") && v.ends_with("__") && v.len() > 4) || wrapped('@', '@') {
        return true;
    }
    // `$VAR`, or `$VAR/path`, `$VAR.suffix`: an expansion with text after it.
    v.strip_prefix('$').is_some_and(|rest| {
        let name = rest
            .split(['/', '.', ':', '@', '-', '#', '['])
            .next()
            .unwrap_or(rest);
        is_variable_name(name) && (name.len() == rest.len() || name.len() >= 3)
    })
}

/// A shell or environment variable's name, the way people name them:
/// `DB_PASSWORD`, `db_password`, `password`. Random material (`$aB3x9Lq`) is
/// a password that happens to start with `$`.
pub fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    let starts = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let body = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let one_case = !name.chars().any(|c| c.is_ascii_uppercase())
        || !name.chars().any(|c| c.is_ascii_lowercase());
    // Digits only at the end (`$VAR2`), never scattered through it.
    let digits_inside = name
        .trim_end_matches(|c: char| c.is_ascii_digit())
        .chars()
        .any(|c| c.is_ascii_digit());
    // `$ESXipass`: mixed case reads as a name when no digit is mixed in.
    let digits = name.chars().any(|c| c.is_ascii_digit());
    starts && body && !digits_inside && (one_case || !digits)
}

/// One character makes up three quarters of the value (`xxxx…NRAL`).
fn dominated(alnum: &[char]) -> bool {
    if alnum.len() < 6 {
        return alnum.iter().all(|c| *c == alnum[0]);
    }
    let mut counts = std::collections::HashMap::new();
    for c in alnum {
        *counts.entry(c).or_insert(0usize) += 1;
    }
    let top = counts.values().copied().max().unwrap_or(0);
    top * 4 >= alnum.len() * 3 || (counts.len() <= 2 && alnum.len() >= 8)
}

/// A unit of up to a third of the value, repeated (`GFPYYSJZGFPYYSJZ…`).
fn repeated(alnum: &[char]) -> bool {
    let n = alnum.len();
    if n < 12 {
        return false;
    }
    (1..=n / 3).any(|p| {
        let same = (p..n).filter(|&i| alnum[i] == alnum[i - p]).count();
        same * 10 >= (n - p) * 8
    })
}

const ROWS: &[&str] = &["qwertyuiop", "asdfghjkl", "zxcvbnm", "1234567890"];

fn follows(a: char, b: char) -> bool {
    let next = |c: char| match c {
        'z' => None,
        '9' => Some('0'),
        c => char::from_u32(c as u32 + 1),
    };
    // Up or down: `abcd`, `4321`, `d4c3b2a1`.
    if next(a) == Some(b) || next(b) == Some(a) {
        return true;
    }
    ROWS.iter()
        .any(|row| row.find(a).is_some_and(|i| row[i + 1..].starts_with(b)))
}

/// The share of neighbouring characters (or every other character, for
/// interleaved runs like `a1B2c3`) that continue a run, within each group of
/// letters and digits (`d4c3-b2a1`: two groups).
fn sequential(v: &str) -> f64 {
    let groups: Vec<Vec<char>> = v
        .split(|c: char| !c.is_ascii_alphanumeric())
        .map(|g| g.chars().map(|c| c.to_ascii_lowercase()).collect())
        .collect();
    let share = |step: usize| {
        let (mut pairs, mut hits) = (0, 0);
        for g in &groups {
            for i in 0..g.len().saturating_sub(step) {
                pairs += 1;
                hits += follows(g[i], g[i + step]) as usize;
            }
        }
        if pairs == 0 {
            0.0
        } else {
            hits as f64 / pairs as f64
        }
    };
    share(1).max(share(2))
}

/// Words documentation puts where a secret goes.
const WORDS: &[&str] = &[
    "password",
    "passwd",
    "passwrd",
    "pasword",
    "pass",
    "pwd",
    "pw",
    "secret",
    "secrets",
    "token",
    "key",
    "keys",
    "apikey",
    "api",
    "access",
    "private",
    "client",
    "auth",
    "credential",
    "credentials",
    "my",
    "your",
    "our",
    "the",
    "this",
    "that",
    "is",
    "it",
    "here",
    "goes",
    "go",
    "put",
    "enter",
    "insert",
    "replace",
    "with",
    "value",
    "change",
    "changeme",
    "changeit",
    "me",
    "set",
    "example",
    "sample",
    "test",
    "testing",
    "dummy",
    "fake",
    "mock",
    "placeholder",
    "default",
    "demo",
    "foo",
    "bar",
    "baz",
    "qux",
    "hello",
    "world",
    "abc",
    "xyz",
    "admin",
    "administrator",
    "root",
    "user",
    "username",
    "login",
    "guest",
    "super",
    "secure",
    "strong",
    "real",
    "actual",
    "some",
    "very",
    "dev",
    "development",
    "local",
    "prod",
    "production",
    "staging",
    "db",
    "database",
    "app",
    "application",
    "service",
    "mysql",
    "postgres",
    "postgresql",
    "redis",
    "mongo",
    "letmein",
    "welcome",
    "qwerty",
    "none",
    "null",
    "empty",
    "unset",
    "todo",
    "tbd",
    "fixme",
    "not",
    "string",
    "all",
    "uppercase",
    "lowercase",
    "random",
    "long",
    "new",
    "old",
    "temp",
    "tmp",
    "xxx",
    "to",
    "be",
    "of",
    "for",
    "in",
    "on",
    "and",
    "or",
    "no",
    "yes",
    "true",
    "false",
    "sesame",
    "open",
    "you",
    "are",
    "looking",
    "sampling",
    "only",
    "just",
    "a",
    "signing",
    "encryption",
    "session",
    "jwt",
    "webhook",
    "refresh",
    "oauth",
    "hmac",
    "master",
    "smtp",
    "ldap",
    "keystore",
];

/// Whether `letters` (lower case) is a run of stand-in words.
fn segments(letters: &str) -> bool {
    let n = letters.len();
    let mut ok = vec![false; n + 1];
    ok[0] = true;
    for end in 1..=n {
        ok[end] = (0..end)
            .any(|start| ok[start] && letters.get(start..end).is_some_and(|w| WORDS.contains(&w)));
    }
    ok[n]
}

/// Digits people append to a stand-in: a run (`123`, `2345`), one repeated
/// digit (`000`), or a single digit.
fn filler_digits(d: &str) -> bool {
    let c: Vec<char> = d.chars().collect();
    c.len() <= 1 || c.windows(2).all(|w| follows(w[0], w[1])) || c.iter().all(|x| *x == c[0])
}

/// Only stand-in words, with digits that are filler and any punctuation
/// (`super$ecret`, `my-password`, `Secret123`, `Pass123!@#`), also written
/// with `$`/`0`/`3`/`4`/`@` for letters.
fn only_words(v: &str) -> bool {
    let attempt = |text: &str| {
        let mut letters = 0;
        let mut word = String::new();
        let mut digits = String::new();
        let mut good = true;
        let mut flush = |word: &mut String, digits: &mut String| {
            if !word.is_empty() {
                letters += word.len();
                good &= segments(word);
                word.clear();
            }
            if !digits.is_empty() {
                good &= filler_digits(digits);
                digits.clear();
            }
        };
        for c in text.chars() {
            if c.is_ascii_alphabetic() {
                if !digits.is_empty() {
                    flush(&mut String::new(), &mut digits);
                }
                word.push(c.to_ascii_lowercase());
            } else if c.is_ascii_digit() {
                if !word.is_empty() {
                    flush(&mut word, &mut String::new());
                }
                digits.push(c);
            } else {
                flush(&mut word, &mut digits);
            }
        }
        flush(&mut word, &mut digits);
        good && letters >= 3
    };
    let leet = |one: char| -> String {
        v.trim_start_matches('$')
            .chars()
            .map(|c| match c {
                '$' | '5' => 's',
                '0' => 'o',
                '3' => 'e',
                '4' | '@' => 'a',
                '1' => one,
                '7' => 't',
                c => c,
            })
            .collect()
    };
    attempt(v)
        || attempt(&leet('i'))
        || attempt(&leet('l'))
        // Addressed to the reader: `YOURPASSWROD`, `your_api_key_here`.
        || v.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("your"))
            && !v.chars().any(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stand_ins_are_judged_on_the_whole_value() {
        for v in [
            "",
            "changeme",
            "${DB_PASSWORD}",
            "{{ .Values.db.password }}",
            "<your-api-key>",
            "[Shared Access key goes here]",
            "%DB_PASS%",
            "$DB_PASSWORD",
            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            "0000000000-0000000000000-xxxxxxxxxxxxxxxxxxxxxxxx",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaNRAL",
            "ABCDEFGHIJKLMNOPQRST",
            "1234567890abcdef1234567890",
            "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6",
            "AbCeFG123",
            "THISSTRINGISALLUPPERCASE",
            "super$ecret",
            "thisismypassword",
            "Secret123",
            "Pass123!@#",
            "P4ssw0rd!",
            "YOURPASSWROD",
            "AKIAIOSFODNN7EXAMPLE",
            "open sesame",
            "GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZ",
            "********",
        ] {
            assert!(stand_in(v).is_some(), "{v:?} is a stand-in");
        }
        for v in [
            "ChangeMe-3f9a1c2b!",
            "Hunter2-prod!",
            "abuser123456",
            "whiteduke",
            "Pseg2020",
            "$aB3x9Lq2Zt",
            "0qk+o7XctJMmG6ydO8537c9+TofLJU1K0PiVBXSg",
            "ded7db27a4558eea9bbf0bf36e0e8521618f366c",
            "vzihlaquknriqlht",
            "FakeValues99cl9bqJFVA3iFUm+yqVe08HxhXFE/",
            "Rrhh1234",
        ] {
            assert_eq!(stand_in(v), None, "{v:?} may be real");
        }
    }

    #[test]
    fn variable_names_look_like_names() {
        assert!(is_variable_name("DB_PASSWORD"));
        assert!(is_variable_name("db_password"));
        assert!(is_variable_name("VAR2"));
        assert!(!is_variable_name("aB3x9Lq2Zt"));
        assert!(!is_variable_name("abc9xyz"));
        assert!(!is_variable_name("2abc"));
    }
}
