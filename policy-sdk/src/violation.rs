use serde::{Deserialize, Serialize};

/// How serious a violation is, as the policy sees it.
///
/// The project's configuration decides what a `deny` does (the policy's
/// enforcement level): advisory policies only warn, mandatory ones block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warn,
    Deny,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warn => "warn",
            Severity::Deny => "deny",
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One finding of a policy: which rule, what is wrong, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Violation {
    /// Stable rule id, e.g. `protected-delete`.
    pub rule: String,
    pub message: String,
    pub severity: Severity,
    /// Terraform resource address, helm release/manifest or image it concerns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Project file it concerns, relative to the project directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// 1-based line in `path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
}

impl Violation {
    pub fn new(rule: impl Into<String>, severity: Severity, message: impl Into<String>) -> Self {
        Violation {
            rule: rule.into(),
            message: message.into(),
            severity,
            address: None,
            path: None,
            line: None,
        }
    }

    pub fn deny(rule: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(rule, Severity::Deny, message)
    }

    pub fn warn(rule: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(rule, Severity::Warn, message)
    }

    pub fn info(rule: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(rule, Severity::Info, message)
    }

    pub fn at_address(mut self, address: impl Into<String>) -> Self {
        self.address = Some(address.into());
        self
    }

    pub fn at_path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    pub fn at_line(mut self, line: u32) -> Self {
        self.line = Some(line);
        self
    }
}

/// What a policy hands back through `opsdeploy.set_output`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Output {
    pub violations: Vec<Violation>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_round_trips_with_optional_locations_omitted() {
        let out = Output {
            violations: vec![Violation::deny("r", "m").at_address("aws_s3_bucket.b")],
        };
        let json = serde_json::to_string(&out).unwrap();
        assert_eq!(
            json,
            r#"{"violations":[{"rule":"r","message":"m","severity":"deny","address":"aws_s3_bucket.b"}]}"#
        );
        assert_eq!(serde_json::from_str::<Output>(&json).unwrap(), out);
    }

    #[test]
    fn unknown_severity_is_rejected() {
        let err = serde_json::from_str::<Output>(
            r#"{"violations":[{"rule":"r","message":"m","severity":"fatal"}]}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("unknown variant `fatal`"), "{err}");
    }
}
