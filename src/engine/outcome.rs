//! What one evaluation of one policy produced.

use std::time::Duration;

use policy_sdk::{Severity, Violation};
use serde::{Deserialize, Serialize};

use crate::redact::Redactor;

/// Why an evaluation did not produce a result. Every kind is a denial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureKind {
    /// The guest called `opsdeploy.fail` (a panic, in the Rust SDK).
    Panic,
    Trap,
    OutOfFuel,
    Timeout,
    MemoryLimit,
    AbiMismatch,
    /// Missing or mistyped exports, or instantiation failed.
    Instantiate,
    /// `opsdeploy_evaluate` returned a status other than 0.
    Status,
    NoOutput,
    MalformedOutput,
    OutputTooLarge,
    /// The module was refused at load: invalid, forbidden import, or wrong ABI.
    Refused,
}

impl FailureKind {
    /// The rule id the denial is reported under.
    pub fn rule(self) -> &'static str {
        match self {
            FailureKind::Panic => "policy-panic",
            FailureKind::Trap => "policy-trap",
            FailureKind::OutOfFuel => "policy-out-of-fuel",
            FailureKind::Timeout => "policy-timeout",
            FailureKind::MemoryLimit => "policy-memory-limit",
            FailureKind::AbiMismatch => "policy-abi-mismatch",
            FailureKind::Instantiate => "policy-instantiate",
            FailureKind::Status => "policy-error-status",
            FailureKind::NoOutput => "policy-no-output",
            FailureKind::MalformedOutput => "policy-malformed-output",
            FailureKind::OutputTooLarge => "policy-output-too-large",
            FailureKind::Refused => "policy-refused",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub kind: FailureKind,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    Completed { violations: Vec<Violation> },
    Failed(Failure),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub level: LogLevel,
    pub message: String,
}

/// One policy's evaluation: its identity, outcome and cost. Stored in a
/// bundle's results and read back from there, so it deserializes too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub policy: String,
    pub sha256: String,
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Fuel consumed; `None` when the deadline stopped the policy, since
    /// wasmtime cannot say then how much ran.
    pub fuel_used: Option<u64>,
    #[serde(with = "millis")]
    pub duration_ms: Duration,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<LogLine>,
}

/// A duration as milliseconds with microsecond precision.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64((d.as_secs_f64() * 1e6).round() / 1e3)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let ms = f64::deserialize(d)?;
        Duration::try_from_secs_f64(ms / 1e3).map_err(serde::de::Error::custom)
    }
}

impl Evaluation {
    /// The denial for a module that could not be loaded (fail closed).
    pub fn refused(source: &super::ModuleSource, err: &super::EngineError) -> Evaluation {
        let kind = match err {
            super::EngineError::AbiMismatch { .. } => FailureKind::AbiMismatch,
            _ => FailureKind::Refused,
        };
        Evaluation {
            policy: source.fallback_name.clone(),
            sha256: source.sha256.clone(),
            outcome: Outcome::Failed(Failure {
                kind,
                reason: err.to_string(),
            }),
            fuel_used: Some(0),
            duration_ms: Duration::ZERO,
            logs: Vec::new(),
        }
    }

    /// The violations, with a failure reported as one `deny` violation: a policy
    /// that could not run is a denial (fail closed).
    pub fn violations(&self) -> Vec<Violation> {
        match &self.outcome {
            Outcome::Completed { violations } => violations.clone(),
            Outcome::Failed(f) => vec![Violation::deny(
                f.kind.rule(),
                format!("policy `{}` failed: {}", self.policy, f.reason),
            )],
        }
    }

    /// A `deny` violation or a failure.
    pub fn denies(&self) -> bool {
        match &self.outcome {
            Outcome::Completed { violations } => {
                violations.iter().any(|v| v.severity == Severity::Deny)
            }
            Outcome::Failed(_) => true,
        }
    }

    pub fn failure(&self) -> Option<&Failure> {
        match &self.outcome {
            Outcome::Failed(f) => Some(f),
            Outcome::Completed { .. } => None,
        }
    }

    /// Scrubs the free text (violations, failure reason, logs) of the
    /// redactor's secrets.
    pub fn scrub(&mut self, redactor: &Redactor) {
        if redactor.is_empty() {
            return;
        }
        match &mut self.outcome {
            Outcome::Completed { violations } => redactor.scrub_violations(violations),
            Outcome::Failed(f) => f.reason = redactor.scrub(&f.reason),
        }
        for log in &mut self.logs {
            log.message = redactor.scrub(&log.message);
        }
    }
}
