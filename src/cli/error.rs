//! How an error reads on stderr, in the shape docs/style.md gives
//! (`error:` / `-->` / `hint:`); with `-v`, the causes under it. Messages,
//! locations, hints and exit codes come from `opsdeploy::error`.

use std::fmt::Write as _;

use anstyle::{AnsiColor, Style};
use opsdeploy::error::{Error, Outcome};

/// What a command returns: how it came out, or the error it ends with.
pub type CliResult<T = Outcome> = Result<T, Error>;

const HINT: Style = Style::new()
    .fg_color(Some(anstyle::Color::Ansi(AnsiColor::Cyan)))
    .bold();

/// The error as printed on stderr; `verbose` adds a `caused by:` line for
/// each cause the message does not already say.
pub fn render(e: &Error, verbose: bool) -> String {
    let red = Style::new().fg_color(Some(AnsiColor::Red.into())).bold();
    let blue = Style::new().fg_color(Some(AnsiColor::Blue.into())).bold();
    let message = e.message();
    let mut out = format!("{red}error{red:#}: {message}\n");
    if let Some(loc) = e.location() {
        let _ = writeln!(out, "  {blue}-->{blue:#} {loc}");
    }
    if verbose {
        for cause in causes(e) {
            if !message.contains(&cause) {
                let _ = writeln!(out, "{blue}caused by{blue:#}: {cause}");
            }
        }
    }
    if let Some(hint) = e.hint() {
        let _ = writeln!(out, "{HINT}hint{HINT:#}: {hint}");
    }
    // Paths, names and tool messages come from outside.
    opsdeploy::escape::terminal(&out).into_owned()
}

/// The chain of `source()`s under an error, as text.
fn causes(e: &dyn std::error::Error) -> Vec<String> {
    std::iter::successors(e.source(), |c| c.source())
        .map(|c| c.to_string())
        .collect()
}

/// A `hint:` line on stderr, for a non-zero exit that is a result rather
/// than an error (failed fixtures, drift), styled as [`render`] does.
pub fn print_hint(hint: &str) {
    let hint = opsdeploy::escape::terminal(hint);
    anstream::eprintln!("{HINT}hint{HINT:#}: {hint}");
}

#[cfg(test)]
mod tests {
    use opsdeploy::error::Error;

    #[test]
    fn verbose_errors_show_each_cause_the_message_does_not_say() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "permission denied");
        let e = Error::WriteReport {
            path: "out/report.sarif".into(),
            source: io,
        };
        let plain = anstream::adapter::strip_str(&super::render(&e, true)).to_string();
        assert_eq!(
            plain,
            "error: could not write the report: permission denied\n  --> out/report.sarif\nhint: choose a writable path for -o\n"
        );

        let nested = Error::Workflow(opsdeploy::workflow::WorkflowError::tool(
            opsdeploy::workflow::Stage::Scan,
            Outer(std::io::Error::other("connection reset")),
        ));
        let quiet = anstream::adapter::strip_str(&super::render(&nested, false)).to_string();
        assert!(!quiet.contains("caused by"), "{quiet}");
        let verbose = anstream::adapter::strip_str(&super::render(&nested, true)).to_string();
        assert!(
            verbose.contains("error: trivy failed\ncaused by: connection reset\nhint: "),
            "{verbose}"
        );
    }

    /// An error whose message does not repeat its cause.
    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("trivy failed")
        }
    }

    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }
}
