//! The one error type commands return, rendered in the shape STYLE.md gives
//! (`error:` / `-->` / `hint:`) with an exit code from DESIGN.md's table.

use std::fmt::Write as _;

use anstyle::{AnsiColor, Style};

/// Exit codes (DESIGN.md, "Command line").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    Ok = 0,
    Error = 1,
    Usage = 2,
    BlockedByPolicy = 3,
    ApprovalMissing = 4,
    RolledBack = 5,
    RollbackFailed = 6,
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e as u8)
    }
}

const HINT: Style = Style::new()
    .fg_color(Some(anstyle::Color::Ansi(AnsiColor::Cyan)))
    .bold();

#[derive(Debug)]
pub struct CliError {
    pub exit: Exit,
    pub message: String,
    pub location: Option<String>,
    pub hint: Option<String>,
}

impl CliError {
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        CliError {
            exit,
            message: message.into(),
            location: None,
            hint: None,
        }
    }

    pub fn error(message: impl Into<String>) -> Self {
        Self::new(Exit::Error, message)
    }

    pub fn at(mut self, location: impl Into<String>) -> Self {
        self.location = Some(location.into());
        self
    }

    /// [`CliError::at`] when there is a location: no empty `-->` line.
    pub fn at_opt(mut self, location: Option<String>) -> Self {
        self.location = location;
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The message as printed on stderr.
    pub fn render(&self) -> String {
        let red = Style::new().fg_color(Some(AnsiColor::Red.into())).bold();
        let blue = Style::new().fg_color(Some(AnsiColor::Blue.into())).bold();
        let mut out = format!("{red}error{red:#}: {}\n", self.message);
        if let Some(loc) = &self.location {
            let _ = writeln!(out, "  {blue}-->{blue:#} {loc}");
        }
        if let Some(hint) = &self.hint {
            let _ = writeln!(out, "{HINT}hint{HINT:#}: {hint}");
        }
        out
    }
}

/// A `hint:` line on stderr, for a non-zero exit that is a result rather
/// than an error (failed fixtures, drift), styled as [`CliError::render`] does.
pub fn print_hint(hint: &str) {
    anstream::eprintln!("{HINT}hint{HINT:#}: {hint}");
}

/// The command line this run was started with, quoted for a shell, to say
/// "run it again" in a hint.
pub fn this_command() -> String {
    opsdeploy::workflow::rollout::shell_line(std::env::args().skip(1))
}

pub type CliResult<T = Exit> = Result<T, CliError>;

impl From<opsdeploy::workflow::WorkflowError> for CliError {
    fn from(e: opsdeploy::workflow::WorkflowError) -> Self {
        use opsdeploy::workflow::ErrorClass;
        let exit = match e.class() {
            ErrorClass::Error => Exit::Error,
            ErrorClass::Usage => Exit::Usage,
            ErrorClass::BlockedByPolicy => Exit::BlockedByPolicy,
            ErrorClass::ApprovalMissing => Exit::ApprovalMissing,
            ErrorClass::RolledBack => Exit::RolledBack,
            ErrorClass::RollbackFailed => Exit::RollbackFailed,
        };
        let location = e.location();
        let message = e.to_string();
        // Configuration errors read `opsdeploy.hcl:3: what`; the `-->` line
        // already says where, so the message says only what.
        let message = match &location {
            Some(loc) => message
                .strip_prefix(&format!("{loc}: "))
                .map(String::from)
                .unwrap_or(message),
            None => message,
        };
        CliError {
            exit,
            location,
            hint: e.hint(),
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_to_run_again_is_quoted_for_a_shell() {
        let args = ["scan", "nginx:1.27", "--env", "my env", "it's"].map(String::from);
        assert_eq!(
            opsdeploy::workflow::rollout::shell_line(args),
            r#"opsdeploy scan nginx:1.27 --env 'my env' 'it'\''s'"#
        );
    }
}
