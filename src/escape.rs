//! Text from outside — policy messages, resource addresses and keys, user
//! names, module and file names, a tool's output — made safe to show: a
//! control character could clear the screen, retitle the window, hide a
//! line or reorder one (bidirectional overrides) on the terminal of whoever
//! reads opsdeploy's output, AUDIT_LOG.md or a Markdown or HTML report.
//! Every renderer passes such text through here; it shows each control
//! character as a visible escape (`\x1b`, `\u{202e}`) instead.

use std::borrow::Cow;
use std::fmt::Write as _;

/// C0 controls but tab and newline, DEL, C1 controls, and the Unicode
/// bidirectional embedding, override and isolate characters.
pub fn is_control(c: char) -> bool {
    matches!(c, '\0'..='\u{8}' | '\u{b}'..='\u{1f}' | '\u{7f}'..='\u{9f}')
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// How a control character is shown.
pub fn visible(c: char) -> String {
    if (c as u32) < 0x80 {
        format!("\\x{:02x}", c as u32)
    } else {
        format!("\\u{{{:x}}}", c as u32)
    }
}

/// `s` with every control character shown escaped.
pub fn controls(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_control(c) {
            out.push_str(&visible(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Human output as written to a terminal: like [`controls`], except the
/// colour and weight sequences opsdeploy styles its own words with (SGR:
/// bold, dim, foreground colours and their resets), which are kept. Cursor
/// movement, screen clearing, window titles, concealed text and the rest are
/// escaped wherever they come from.
pub fn terminal(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        if c == '\x1b'
            && let Some(len) = style_sequence(rest)
        {
            out.push_str(&rest[..len]);
            rest = &rest[len..];
            continue;
        }
        if is_control(c) {
            let _ = write!(out, "{}", visible(c));
        } else {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    Cow::Owned(out)
}

/// The length of the SGR sequence `s` starts with, when every parameter is
/// one opsdeploy's styles use: reset (0), bold (1), dim (2), normal weight
/// (22), foreground colours (30-37, 90-97) and their reset (39).
fn style_sequence(s: &str) -> Option<usize> {
    let body = s.strip_prefix("\x1b[")?;
    let end = body.find(|c: char| !(c.is_ascii_digit() || c == ';'))?;
    if !body[end..].starts_with('m') || end > 16 {
        return None;
    }
    let allowed = |p: &str| {
        p.is_empty() || matches!(p.parse::<u8>(), Ok(0 | 1 | 2 | 22 | 30..=37 | 39 | 90..=97))
    };
    body[..end].split(';').all(allowed).then_some(2 + end + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_shown_escaped_and_plain_text_is_untouched() {
        assert_eq!(controls("plain\ttext\n"), "plain\ttext\n");
        assert_eq!(
            controls("a\x1b]0;PWNED\x07b\u{9b}2J\u{202e}"),
            "a\\x1b]0;PWNED\\x07b\\u{9b}2J\\u{202e}"
        );
        assert_eq!(controls("\r"), "\\x0d");
    }

    #[test]
    fn the_terminal_keeps_only_colour_and_weight() {
        let ours = format!(
            "{}deny{} ok",
            anstyle::Style::new()
                .bold()
                .fg_color(Some(anstyle::AnsiColor::Red.into()))
                .render(),
            anstyle::Reset.render()
        );
        assert_eq!(terminal(&ours), ours);
        assert_eq!(terminal("\x1b[2J\x1b[8mhidden"), "\\x1b[2J\\x1b[8mhidden");
        assert_eq!(terminal("\x1b]0;title\x07"), "\\x1b]0;title\\x07");
        assert_eq!(terminal("\x1b[31"), "\\x1b[31");
    }
}
