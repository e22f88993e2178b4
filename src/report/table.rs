//! Aligned tables for human output: every command that prints rows (status,
//! policy results, audit log, fixtures, drift, apply steps) prints them
//! through [`Table`], so they line up and colour the same way everywhere.
//!
//! Colour is written as ANSI styles; the caller prints through `anstream`,
//! which strips them off a terminal, with `NO_COLOR` or `--no-color`. The
//! verdict word is always written, so meaning never rests on colour alone.

use std::fmt::Write as _;

use anstyle::{AnsiColor, Color, Style};
use unicode_width::UnicodeWidthStr;

pub(crate) const RED: Style = Style::new()
    .fg_color(Some(Color::Ansi(AnsiColor::Red)))
    .bold();
pub(crate) const YELLOW: Style = Style::new()
    .fg_color(Some(Color::Ansi(AnsiColor::Yellow)))
    .bold();
pub(crate) const GREEN: Style = Style::new()
    .fg_color(Some(Color::Ansi(AnsiColor::Green)))
    .bold();
pub(crate) const BOLD: Style = Style::new().bold();
pub(crate) const DIM: Style = Style::new().dimmed();

/// Spaces between columns.
const GAP: usize = 2;

/// One cell: plain text (what widths are computed from) and its style.
#[derive(Debug, Clone, Default)]
pub struct Cell {
    text: String,
    style: Style,
}

impl Cell {
    pub fn styled(text: impl Into<String>, style: Style) -> Cell {
        Cell {
            text: one_line(&text.into()),
            style,
        }
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Cell {
        Cell::styled(text, Style::new())
    }
}

impl From<String> for Cell {
    fn from(text: String) -> Cell {
        Cell::styled(text, Style::new())
    }
}

impl From<&String> for Cell {
    fn from(text: &String) -> Cell {
        Cell::styled(text.as_str(), Style::new())
    }
}

/// A verdict word in its colour: green passes, yellow warns, red refuses.
pub fn verdict(word: &str) -> Cell {
    let style = match word {
        "pass" | "ok" | "allowed" | "healthy" | "applied" | "approved" => GREEN,
        "warn" | "overridden" | "info" | "note" | "pending" | "unverified" => YELLOW,
        "deny"
        | "denied"
        | "blocked"
        | "FAIL"
        | "FAILED"
        | "failed"
        | "not healthy"
        | "interrupted"
        | "drifted"
        | "ROLLBACK INCOMPLETE" => RED,
        "shadow" => DIM,
        _ => Style::new(),
    };
    Cell::styled(word, style)
}

/// Rows under a bold header, columns as wide as their widest cell (display
/// width, so CJK and emoji line up), optional unaligned detail lines under a
/// row, starting at its second column.
#[derive(Debug, Clone)]
pub struct Table {
    indent: usize,
    header: Vec<String>,
    right: Vec<usize>,
    rows: Vec<Row>,
}

#[derive(Debug, Clone)]
struct Row {
    cells: Vec<Cell>,
    details: Vec<String>,
}

impl Table {
    /// A table with these column headings, indented two spaces.
    pub fn new(header: &[&str]) -> Table {
        Table {
            indent: 2,
            header: header.iter().map(|h| h.to_string()).collect(),
            right: Vec::new(),
            rows: Vec::new(),
        }
    }

    pub fn indent(mut self, indent: usize) -> Table {
        self.indent = indent;
        self
    }

    /// Right-aligns column `column` (numbers).
    pub fn right_align(mut self, column: usize) -> Table {
        self.right.push(column);
        self
    }

    pub fn row<C: Into<Cell>>(&mut self, cells: impl IntoIterator<Item = C>) -> &mut Table {
        self.rows.push(Row {
            cells: cells.into_iter().map(Into::into).collect(),
            details: Vec::new(),
        });
        self
    }

    /// A line under the last row (a violation, a lock, a note); it may hold
    /// styles and is not aligned.
    pub fn detail(&mut self, line: impl Into<String>) -> &mut Table {
        if let Some(row) = self.rows.last_mut() {
            row.details.push(line.into());
        }
        self
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    fn widths(&self) -> Vec<usize> {
        let columns = self
            .rows
            .iter()
            .map(|r| r.cells.len())
            .chain([self.header.len()])
            .max()
            .unwrap_or(0);
        (0..columns)
            .map(|i| {
                let header = self.header.get(i).map_or(0, |h| h.width());
                self.rows
                    .iter()
                    .filter_map(|r| r.cells.get(i))
                    .map(|c| c.text.width())
                    .chain([header])
                    .max()
                    .unwrap_or(0)
            })
            .collect()
    }

    pub fn render(&self) -> String {
        let widths = self.widths();
        let mut out = String::new();
        if !self.header.is_empty() {
            let header: Vec<Cell> = self
                .header
                .iter()
                .map(|h| Cell::styled(h.as_str(), BOLD))
                .collect();
            self.line(&header, &widths, &mut out);
        }
        let detail_indent = self.indent + widths.first().map_or(0, |w| w + GAP);
        for row in &self.rows {
            self.line(&row.cells, &widths, &mut out);
            for d in &row.details {
                // Details mix opsdeploy's styles with text from outside.
                let d = crate::escape::terminal(d);
                let _ = writeln!(out, "{:detail_indent$}{d}", "");
            }
        }
        out
    }

    fn line(&self, cells: &[Cell], widths: &[usize], out: &mut String) {
        let mut line = " ".repeat(self.indent);
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                line.push_str(&" ".repeat(GAP));
            }
            let pad = " ".repeat(widths[i].saturating_sub(cell.text.width()));
            let style = cell.style;
            let text = &cell.text;
            if self.right.contains(&i) {
                let _ = write!(line, "{pad}{style}{text}{style:#}");
            } else {
                let _ = write!(line, "{style}{text}{style:#}{pad}");
            }
        }
        // An empty last cell would leave padding at the end of the line.
        out.push_str(line.trim_end_matches(' '));
        out.push('\n');
    }
}

/// Text from policies and tools may hold newlines or escapes; in a cell they
/// would break the alignment (or drive the terminal), so they become spaces.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() || crate::escape::is_control(c) {
                ' '
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(t: &Table) -> String {
        anstream::adapter::strip_str(&t.render()).to_string()
    }

    #[test]
    fn columns_are_as_wide_as_their_widest_cell_and_lines_have_no_trailing_space() {
        let mut t = Table::new(&["result", "policy", "note"]);
        t.row([verdict("pass"), "no-secrets".into(), "".into()]);
        t.row([verdict("overridden"), "cost".into(), "by bob".into()]);
        assert_eq!(
            plain(&t),
            "  result      policy      note\n  pass        no-secrets\n  overridden  cost        by bob\n"
        );
    }

    #[test]
    fn wide_characters_are_measured_by_display_width() {
        let mut t = Table::new(&["a", "b"]).indent(0);
        t.row(["日本", "x"]);
        t.row(["ab", "y"]);
        assert_eq!(plain(&t), "a     b\n日本  x\nab    y\n");
    }

    #[test]
    fn details_start_under_the_second_column() {
        let mut t = Table::new(&["seq", "what"]).right_align(0);
        t.row(["7", "plan"]).detail("--> here");
        t.row(["12", "apply"]);
        assert_eq!(
            plain(&t),
            "  seq  what\n    7  plan\n       --> here\n   12  apply\n"
        );
    }

    #[test]
    fn control_characters_in_cells_cannot_break_the_layout() {
        let mut t = Table::new(&[]).indent(0);
        t.row(["a\nb\x1b[31m", "c"]);
        assert_eq!(plain(&t), "a b [31m  c\n");
    }

    #[test]
    fn verdicts_are_coloured_and_always_spelled_out() {
        let deny = verdict("deny");
        assert_eq!(deny.text, "deny");
        assert_eq!(deny.style, RED);
        assert_eq!(verdict("pass").style, GREEN);
        assert_eq!(verdict("overridden").style, YELLOW);
        let mut t = Table::new(&["r"]);
        t.row([deny]);
        assert!(t.render().contains("\x1b["), "styled when not stripped");
    }
}
