//! Splits a migration file into statements the way psql reads it: `;` ends a
//! statement except inside quotes ('...', E'...', "...", $tag$...$tag$) and
//! comments (`--`, nested `/* */`); a line starting with `\` is a psql
//! meta-command (`\set`, `\d`, `\gset`, ...), and `\g`-family commands also end
//! the statement before them.

/// One piece of a migration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece<'s> {
    /// 1-based line of its first token.
    pub line: u32,
    /// The text without leading comments and the terminating `;`.
    pub text: &'s str,
    /// The comments right before it (directives such as `-- eugene: ignore E2`).
    pub leading_comments: Vec<&'s str>,
    pub meta_command: bool,
}

/// The pieces of a file and its line comments (`--`), with their lines.
#[derive(Debug, Default)]
pub struct Split<'s> {
    pub pieces: Vec<Piece<'s>>,
    pub line_comments: Vec<(u32, &'s str)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Normal,
    Single { backslash_escapes: bool },
    Double,
    Dollar { tag_start: usize, tag_end: usize },
    LineComment { start: usize },
    Block { depth: u32, start: usize },
}

pub fn split(sql: &str) -> Split<'_> {
    let bytes = sql.as_bytes();
    let mut out = Split::default();
    let mut state = State::Normal;
    let mut line: u32 = 1;
    // Start (byte, line) of the statement being read, once it has a token.
    let mut current: Option<(usize, u32)> = None;
    let mut comments: Vec<&str> = Vec::new();
    let mut at_line_start = true;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match state {
            State::Normal => {
                if at_line_start && b == b'\\' {
                    let end = sql[i..].find('\n').map_or(sql.len(), |n| i + n);
                    let command = sql[i..end].trim_end();
                    let ends_statement = command
                        .split_whitespace()
                        .next()
                        .is_some_and(|c| c.starts_with("\\g"));
                    if let Some((start, start_line)) = current.take() {
                        if ends_statement {
                            push(&mut out, sql, start, i, start_line, &mut comments);
                        } else {
                            // A meta-command inside a statement: psql runs it and
                            // keeps reading the statement.
                            current = Some((start, start_line));
                        }
                    }
                    out.pieces.push(Piece {
                        line,
                        text: command,
                        leading_comments: std::mem::take(&mut comments),
                        meta_command: true,
                    });
                    i = end;
                    continue;
                }
                if !b.is_ascii_whitespace() {
                    at_line_start = false;
                }
                let next = bytes.get(i + 1).copied();
                match b {
                    b'\n' => {
                        line += 1;
                        at_line_start = true;
                    }
                    b';' => {
                        if let Some((start, start_line)) = current.take() {
                            push(&mut out, sql, start, i, start_line, &mut comments);
                        }
                    }
                    b'-' if next == Some(b'-') => {
                        state = State::LineComment { start: i };
                        i += 2;
                        continue;
                    }
                    b'/' if next == Some(b'*') => {
                        state = State::Block { depth: 1, start: i };
                        i += 2;
                        continue;
                    }
                    _ if b.is_ascii_whitespace() => {}
                    _ => {
                        if current.is_none() {
                            current = Some((i, line));
                        }
                        match b {
                            b'\'' => {
                                let escapes = i > 0
                                    && matches!(bytes[i - 1], b'E' | b'e')
                                    && (i < 2 || !is_ident_byte(bytes[i - 2]));
                                state = State::Single {
                                    backslash_escapes: escapes,
                                };
                            }
                            b'"' => state = State::Double,
                            b'$' if i == 0 || !is_ident_byte(bytes[i - 1]) => {
                                if let Some(tag_end) = dollar_tag_end(bytes, i) {
                                    state = State::Dollar {
                                        tag_start: i,
                                        tag_end,
                                    };
                                    i = tag_end;
                                    continue;
                                }
                            }
                            _ => {}
                        }
                    }
                }
            }
            State::Single { backslash_escapes } => match b {
                b'\n' => line += 1,
                b'\\' if backslash_escapes => {
                    if bytes.get(i + 1) == Some(&b'\n') {
                        line += 1;
                    }
                    i += 2;
                    continue;
                }
                b'\'' if bytes.get(i + 1) == Some(&b'\'') => {
                    i += 2;
                    continue;
                }
                b'\'' => state = State::Normal,
                _ => {}
            },
            State::Double => match b {
                b'\n' => line += 1,
                b'"' => state = State::Normal,
                _ => {}
            },
            State::Dollar { tag_start, tag_end } => {
                let tag = &bytes[tag_start..tag_end];
                if b == b'\n' {
                    line += 1;
                } else if bytes[i..].starts_with(tag) {
                    state = State::Normal;
                    i += tag.len();
                    continue;
                }
            }
            State::LineComment { start } => {
                if b == b'\n' {
                    let text = sql[start..i].trim_end_matches('\r');
                    out.line_comments.push((line, text));
                    if current.is_none() {
                        comments.push(text);
                    }
                    state = State::Normal;
                    line += 1;
                    at_line_start = true;
                }
            }
            State::Block { depth, start } => {
                let next = bytes.get(i + 1).copied();
                match b {
                    b'\n' => line += 1,
                    b'*' if next == Some(b'/') => {
                        if depth == 1 {
                            if current.is_none() {
                                comments.push(&sql[start..i + 2]);
                            }
                            state = State::Normal;
                        } else {
                            state = State::Block {
                                depth: depth - 1,
                                start,
                            };
                        }
                        i += 2;
                        continue;
                    }
                    b'/' if next == Some(b'*') => {
                        state = State::Block {
                            depth: depth + 1,
                            start,
                        };
                        i += 2;
                        continue;
                    }
                    _ => {}
                }
            }
        }
        i += 1;
    }
    if let State::LineComment { start } = state {
        out.line_comments.push((line, sql[start..].trim_end()));
    }
    if let Some((start, start_line)) = current {
        // The last statement needs no `;`; an unterminated quote or comment
        // swallows the rest of the file, as it would in psql.
        push(&mut out, sql, start, sql.len(), start_line, &mut comments);
    }
    out
}

fn push<'s>(
    out: &mut Split<'s>,
    sql: &'s str,
    start: usize,
    end: usize,
    line: u32,
    comments: &mut Vec<&'s str>,
) {
    let text = sql[start..end].trim_end();
    if text.is_empty() {
        return;
    }
    out.pieces.push(Piece {
        line,
        text,
        leading_comments: std::mem::take(comments),
        meta_command: false,
    });
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

/// `$$` or `$tag$` starting at `i`: the index just past the closing `$`.
fn dollar_tag_end(bytes: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    if bytes.get(j).is_some_and(|b| b.is_ascii_digit()) {
        return None; // `$1` is a parameter
    }
    while let Some(&b) = bytes.get(j) {
        if b == b'$' {
            return Some(j + 1);
        }
        if !is_ident_byte(b) {
            return None;
        }
        j += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(sql: &str) -> Vec<(u32, String)> {
        split(sql)
            .pieces
            .into_iter()
            .map(|p| (p.line, p.text.to_string()))
            .collect()
    }

    #[test]
    fn semicolons_inside_quotes_comments_and_dollar_bodies_do_not_split() {
        let sql = "insert into t values ('a;b', E'c\\';d');\n\
                   create function f() returns int as $body$ select 1; $body$ language sql;\n\
                   -- a comment; still a comment\n\
                   /* block /* nested; */ ; */ select \"x;y\" from t";
        let got = texts(sql);
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(
            got[0],
            (1, "insert into t values ('a;b', E'c\\';d')".into())
        );
        assert!(got[1].1.ends_with("language sql"));
        assert_eq!(got[2], (4, "select \"x;y\" from t".into()));
    }

    #[test]
    fn a_statement_starts_at_its_first_token_after_comments() {
        let s = split("-- header\n\n/* note */\nALTER TABLE t\n  DROP COLUMN c;\n");
        assert_eq!(s.pieces.len(), 1);
        assert_eq!(s.pieces[0].line, 4);
        assert_eq!(
            s.pieces[0].leading_comments,
            vec!["-- header", "/* note */"]
        );
        assert_eq!(s.line_comments, vec![(1, "-- header")]);
    }

    #[test]
    fn psql_meta_commands_are_pieces_of_their_own() {
        let s = split("\\set VERBOSITY terse\nselect 1\n\\gset\nselect 2;\n");
        let kinds: Vec<(bool, &str)> = s.pieces.iter().map(|p| (p.meta_command, p.text)).collect();
        assert_eq!(
            kinds,
            vec![
                (true, "\\set VERBOSITY terse"),
                (false, "select 1"),
                (true, "\\gset"),
                (false, "select 2"),
            ]
        );
    }

    #[test]
    fn parameters_are_not_dollar_quotes_and_unterminated_text_does_not_panic() {
        assert_eq!(texts("prepare p as select $1; select 2").len(), 2);
        assert_eq!(texts("select 'never closed; select 2").len(), 1);
        assert_eq!(texts("select $tag$ never closed").len(), 1);
        assert!(texts("-- only a comment").is_empty());
    }
}
