//! One streaming pass over JSON text that refuses everything a policy's
//! serde_json parse would refuse, without building anything.
//!
//! Plans are handed to policies byte for byte, and a policy parses the parts it
//! reads with serde_json. serde_json's raw-value skipping does not decode
//! escapes, so a lone surrogate (`"\ud800"`) would pass the host yet make a
//! policy's parse of the value holding it fail, and the value read as null (a
//! secret in `after` unseen). Nesting is limited the same way: serde_json
//! refuses a value at its 128th level. This pass checks the whole grammar,
//! every escape, every number's range and the depth, and records where the
//! top-level object's members are, so the host can splice them.

use std::ops::Range;

/// serde_json refuses the 128th level of nesting; so does this check.
pub const MAX_DEPTH: usize = 127;

/// A member of the top-level object: its key (decoded) and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub key: String,
    /// Byte range of `"key": value` in the checked text.
    pub entry: Range<usize>,
    /// Byte range of the value alone.
    pub value: Range<usize>,
}

/// Why the text is not JSON a policy can read, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckError {
    pub what: String,
    pub at: usize,
    pub line: usize,
    pub column: usize,
}

impl std::fmt::Display for CheckError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} at line {} column {}",
            self.what, self.line, self.column
        )
    }
}

/// Checks `text` and returns the members of its top-level object (empty when
/// the document is not an object).
pub fn check(text: &str) -> Result<Vec<Member>, CheckError> {
    let mut c = Checker {
        b: text.as_bytes(),
        i: 0,
        members: Vec::new(),
    };
    c.document().map_err(|(what, at)| {
        let before = &c.b[..at.min(c.b.len())];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let column = at
            - before
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |p| p + 1);
        CheckError {
            what,
            at,
            line,
            column: column + 1,
        }
    })?;
    Ok(c.members)
}

type Fail = (String, usize);

struct Checker<'a> {
    b: &'a [u8],
    i: usize,
    members: Vec<Member>,
}

/// Bytes a string scan must stop at: `"`, `\` and control characters.
const STOP: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// Whether any byte of `w` is `"`, `\` or below 0x20 (eight at a time).
#[inline]
fn word_has_stop(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_in = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    (zero_in(w ^ (ONES * b'"' as u64)) | zero_in(w ^ (ONES * b'\\' as u64)) | below_space) != 0
}

impl Checker<'_> {
    fn fail<T>(&self, what: impl Into<String>, at: usize) -> Result<T, Fail> {
        Err((what.into(), at))
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    fn document(&mut self) -> Result<(), Fail> {
        self.ws();
        self.value()?;
        self.ws();
        if self.i < self.b.len() {
            return self.fail("trailing characters", self.i);
        }
        Ok(())
    }

    /// One value, iteratively: containers push onto `stack` (true: object).
    fn value(&mut self) -> Result<(), Fail> {
        let mut stack: Vec<bool> = Vec::new();
        // The top-level member being read: key, where it and its value start.
        let mut member: Option<(String, usize, usize)> = None;
        loop {
            // A value.
            self.ws();
            let start = self.i;
            match self.b.get(self.i) {
                Some(b'{') | Some(b'[') => {
                    let object = self.b[self.i] == b'{';
                    if stack.len() == MAX_DEPTH {
                        return self.fail(
                            format!(
                                "values are nested deeper than {MAX_DEPTH} levels (at byte {start})"
                            ),
                            start,
                        );
                    }
                    self.i += 1;
                    stack.push(object);
                    self.ws();
                    let close = if object { b'}' } else { b']' };
                    if self.b.get(self.i) == Some(&close) {
                        self.i += 1;
                        stack.pop();
                    } else if object {
                        self.key(stack.len() == 1, &mut member)?;
                        continue;
                    } else {
                        continue;
                    }
                }
                Some(b'"') => {
                    self.string()?;
                }
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(b'n') => self.literal(b"null")?,
                Some(b'-' | b'0'..=b'9') => self.number()?,
                Some(_) => return self.fail("expected value", self.i),
                None => return self.fail("EOF while parsing a value", self.i),
            }
            // After a value: close containers or move to the next element.
            loop {
                if stack.len() == 1
                    && let Some((key, entry, value)) = member.take()
                {
                    self.members.push(Member {
                        key,
                        entry: entry..self.i,
                        value: value..self.i,
                    });
                }
                let Some(&object) = stack.last() else {
                    return Ok(());
                };
                self.ws();
                let close = if object { b'}' } else { b']' };
                match self.b.get(self.i) {
                    Some(b',') => {
                        self.i += 1;
                        if object {
                            self.ws();
                            self.key(stack.len() == 1, &mut member)?;
                        }
                        break;
                    }
                    Some(&b) if b == close => {
                        self.i += 1;
                        stack.pop();
                    }
                    Some(_) if object => return self.fail("expected `,` or `}`", self.i),
                    Some(_) => return self.fail("expected `,` or `]`", self.i),
                    None => {
                        return self.fail(
                            if object {
                                "EOF while parsing an object"
                            } else {
                                "EOF while parsing a list"
                            },
                            self.i,
                        );
                    }
                }
            }
        }
    }

    /// An object key and its colon; at the top level, remembers the key.
    fn key(
        &mut self,
        record: bool,
        member: &mut Option<(String, usize, usize)>,
    ) -> Result<(), Fail> {
        match self.b.get(self.i) {
            Some(b'"') => {}
            Some(b'}') => return self.fail("trailing comma", self.i),
            Some(_) => return self.fail("key must be a string", self.i),
            None => return self.fail("EOF while parsing an object", self.i),
        }
        let start = self.i;
        let escaped = self.string()?;
        if record {
            let raw = &self.b[start..self.i];
            let key = if escaped {
                // Checked above: decodes.
                serde_json::from_slice::<String>(raw).unwrap_or_default()
            } else {
                String::from_utf8_lossy(&raw[1..raw.len() - 1]).into_owned()
            };
            self.ws();
            *member = Some((key, start, 0));
        } else {
            self.ws();
        }
        match self.b.get(self.i) {
            Some(b':') => self.i += 1,
            Some(_) => return self.fail("expected `:`", self.i),
            None => return self.fail("EOF while parsing an object", self.i),
        }
        self.ws();
        if let (true, Some((_, _, value))) = (record, member) {
            *value = self.i;
        }
        Ok(())
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), Fail> {
        let end = self.i + word.len();
        if self.b.get(self.i..end) == Some(word) {
            self.i = end;
            return Ok(());
        }
        // Where it first differs, as serde_json reports it.
        let mut at = self.i;
        while at < end && self.b.get(at) == Some(&word[at - self.i]) {
            at += 1;
        }
        if at >= self.b.len() {
            self.fail("EOF while parsing a value", at)
        } else {
            self.fail("expected ident", at)
        }
    }

    /// A string from its opening quote; returns whether it had escapes.
    fn string(&mut self) -> Result<bool, Fail> {
        self.i += 1;
        let mut escaped = false;
        loop {
            while let Some(chunk) = self.b.get(self.i..self.i + 8) {
                let w = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
                if word_has_stop(w) {
                    break;
                }
                self.i += 8;
            }
            while let Some(&b) = self.b.get(self.i) {
                if STOP[b as usize] {
                    break;
                }
                self.i += 1;
            }
            match self.b.get(self.i) {
                Some(b'"') => {
                    self.i += 1;
                    return Ok(escaped);
                }
                Some(b'\\') => {
                    escaped = true;
                    self.escape()?;
                }
                Some(_) => {
                    return self.fail(
                        "control character (\\u0000-\\u001F) found while parsing a string",
                        self.i,
                    );
                }
                None => return self.fail("EOF while parsing a string", self.i),
            }
        }
    }

    /// An escape from its backslash; surrogates must come in pairs.
    fn escape(&mut self) -> Result<(), Fail> {
        self.i += 1;
        match self.b.get(self.i) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                self.i += 1;
                Ok(())
            }
            Some(b'u') => {
                self.i += 1;
                let unit = self.hex4()?;
                match unit {
                    0xD800..=0xDBFF => {
                        if self.b.get(self.i..self.i + 2) != Some(b"\\u") {
                            return self.fail("lone leading surrogate in hex escape", self.i);
                        }
                        self.i += 2;
                        let low = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&low) {
                            return self.fail("lone leading surrogate in hex escape", self.i);
                        }
                        Ok(())
                    }
                    0xDC00..=0xDFFF => self.fail("lone trailing surrogate in hex escape", self.i),
                    _ => Ok(()),
                }
            }
            Some(_) => self.fail("invalid escape", self.i),
            None => self.fail("EOF while parsing a string", self.i),
        }
    }

    fn hex4(&mut self) -> Result<u16, Fail> {
        let mut n: u16 = 0;
        for _ in 0..4 {
            let d = match self.b.get(self.i) {
                Some(&b @ b'0'..=b'9') => b - b'0',
                Some(&b @ b'a'..=b'f') => b - b'a' + 10,
                Some(&b @ b'A'..=b'F') => b - b'A' + 10,
                Some(_) => return self.fail("invalid escape", self.i),
                None => return self.fail("EOF while parsing a string", self.i),
            };
            n = n << 4 | d as u16;
            self.i += 1;
        }
        Ok(n)
    }

    /// A number as RFC 8259 writes it; one a float cannot hold is refused, as
    /// serde_json refuses it.
    fn number(&mut self) -> Result<(), Fail> {
        let start = self.i;
        let digits = |c: &mut Self| {
            let from = c.i;
            while let Some(b'0'..=b'9') = c.b.get(c.i) {
                c.i += 1;
            }
            c.i - from
        };
        if self.b[self.i] == b'-' {
            self.i += 1;
        }
        let int_start = self.i;
        match self.b.get(self.i) {
            Some(b'0') => {
                self.i += 1;
                if let Some(b'0'..=b'9') = self.b.get(self.i) {
                    return self.fail("invalid number", self.i);
                }
            }
            Some(b'1'..=b'9') => {
                digits(self);
            }
            Some(_) => return self.fail("invalid number", self.i),
            None => return self.fail("EOF while parsing a value", self.i),
        }
        let mut float = self.i - int_start > 19;
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            if digits(self) == 0 {
                return self.eof_or("invalid number");
            }
            float = true;
        }
        if let Some(b'e' | b'E') = self.b.get(self.i) {
            self.i += 1;
            if let Some(b'+' | b'-') = self.b.get(self.i) {
                self.i += 1;
            }
            if digits(self) == 0 {
                return self.eof_or("invalid number");
            }
            float = true;
        }
        if float {
            let text = std::str::from_utf8(&self.b[start..self.i]).unwrap_or("0");
            if !text.parse::<f64>().is_ok_and(f64::is_finite) {
                return self.fail("number out of range", start);
            }
        }
        Ok(())
    }

    fn eof_or<T>(&self, what: &str) -> Result<T, Fail> {
        if self.i >= self.b.len() {
            self.fail("EOF while parsing a value", self.i)
        } else {
            self.fail(what, self.i)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Accepted exactly when serde_json builds a `Value` of it.
    fn agrees(text: &str) {
        let ours = check(text);
        let theirs = serde_json::from_str::<serde_json::Value>(text);
        assert_eq!(
            ours.is_ok(),
            theirs.is_ok(),
            "{text:?}: ours {ours:?}, serde_json {theirs:?}"
        );
    }

    #[test]
    fn accepts_and_refuses_what_serde_json_does() {
        for text in [
            "{}",
            "[]",
            "0",
            "-0",
            "1.5e3",
            "1E+2",
            "-1e-400",
            "1e400",
            "-1e309",
            "1e308",
            // Below f64::MAX's rounding boundary, correctly rounded (both sides
            // read numbers so): finite; just above it: out of range.
            "1.7976931348623158e308",
            "-1.797693134862315799999e308",
            "1.7976931348623159e308",
            "01",
            "1.",
            ".5",
            "+1",
            "-",
            "1e",
            "1e+",
            "--1",
            "0x1",
            "123456789012345678901234567890",
            "true",
            "tru",
            "nul",
            "falsey",
            "null null",
            r#""\ud83d\ude00""#,
            r#""\ud800""#,
            r#""\udc00""#,
            r#""\ud800\u0041""#,
            r#""\ud800x""#,
            r#""\u12""#,
            r#""\u00e9""#,
            r#""\x""#,
            "\"a\tb\"",
            "\"a\u{7f}b\"",
            r#"{"a":1,}"#,
            r#"[1,]"#,
            r#"{"a" 1}"#,
            r#"{1:2}"#,
            r#"{"a":1 "b":2}"#,
            r#"[1 2]"#,
            r#"{"a":[{"b":"c\"d\\"}],"e":{}}"#,
            " \n[ 1 , { } ]\t",
            "",
            " ",
            "[",
            "{\"a\"",
            "\"abc",
            r#"{"a":"0123456789abcdef\"0123456789"}"#,
            "[1]]",
            "{}}",
        ] {
            agrees(text);
        }
    }

    #[test]
    fn nesting_is_refused_where_serde_json_refuses_it() {
        let at = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        agrees(&at(MAX_DEPTH));
        agrees(&at(MAX_DEPTH + 1));
        let err = check(&at(100_000)).unwrap_err();
        assert!(err.what.contains("nested deeper than 127"), "{err}");
        // Brackets inside strings do not count.
        let s = format!("[\"{}\"]", "[".repeat(1000));
        assert!(check(&s).is_ok());
    }

    #[test]
    fn top_level_members_are_located_with_decoded_keys() {
        let text = r#" {"a" : [1, {"x": 2}], "b\u0063":"s", "d":{}} "#;
        let members = check(text).unwrap();
        let got: Vec<(&str, &str, &str)> = members
            .iter()
            .map(|m| {
                (
                    m.key.as_str(),
                    &text[m.entry.clone()],
                    &text[m.value.clone()],
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("a", r#""a" : [1, {"x": 2}]"#, r#"[1, {"x": 2}]"#),
                ("bc", r#""b\u0063":"s""#, r#""s""#),
                ("d", r#""d":{}"#, "{}")
            ]
        );
        assert!(check("[1,2]").unwrap().is_empty());
    }

    #[test]
    fn errors_say_where() {
        let err = check("{\n  \"a\": \"\\ud800\"\n}").unwrap_err();
        assert_eq!(
            (err.line, err.what.as_str()),
            (2, "lone leading surrogate in hex escape")
        );
        assert!(err.to_string().contains("line 2 column"), "{err}");
    }

    /// Every single-byte change of a small plan is accepted or refused as
    /// serde_json would.
    #[test]
    fn mutations_agree_with_serde_json() {
        let base = r#"{"format_version":"1.2","resource_changes":[{"address":"a.b[\"k\"]","change":{"actions":["create"],"after":{"n":-1.5e3,"s":"\u00e9\ud83d\ude00","t":true,"f":false,"z":null,"l":[0,{}]}}}]}"#;
        let bytes = base.as_bytes();
        let alphabet = b"{}[],:\"\\u0123456789.eE+-tfnlrsaxd \n\x01";
        for i in 0..bytes.len() {
            for &c in alphabet {
                let mut m = bytes.to_vec();
                m[i] = c;
                if let Ok(text) = std::str::from_utf8(&m) {
                    agrees(text);
                }
                let mut removed = bytes.to_vec();
                removed.remove(i);
                if let Ok(text) = std::str::from_utf8(&removed) {
                    agrees(text);
                }
            }
        }
    }
}
