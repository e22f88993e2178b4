//! The approval statement: what an approver signs.
//!
//! Version 1 is one line of JSON, keys in this order, compact, ending in a
//! newline (the bytes `opsdeploy approve --statement` prints and ssh-keygen
//! signs):
//!
//! ```text
//! {"statement":"opsdeploy-approval","version":1,"project":"shop","environment":"production",
//!  "digest":"<64 hex>","kind":"approval"|"override","policy":"…"?,"reason":"…"?,"comment":"…"?,
//!  "approver":"bob@example.com","audit_head":{"seq":41,"hash":"<64 hex>"},
//!  "signed_at":"2026-11-24T20:15:03Z","expires_at":"2026-12-01T20:15:03Z"}
//! ```
//!
//! `audit_head` is the last log entry the approver saw: the signature covers
//! everything up to it, so dropping or rewriting any of it breaks the approval.
//! A statement that is not exactly in this form is refused, so two byte
//! strings never mean the same approval.

use serde::{Deserialize, Serialize};

use super::TrustError;

pub const STATEMENT: &str = "opsdeploy-approval";
pub const VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Approval,
    Override,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Head {
    pub seq: u64,
    pub hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    pub statement: String,
    pub version: u32,
    pub project: String,
    pub environment: String,
    pub digest: String,
    pub kind: Kind,
    /// The policy an override lifts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// Why the override is justified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The principal the signer speaks as.
    pub approver: String,
    pub audit_head: Head,
    pub signed_at: String,
    pub expires_at: String,
}

impl Statement {
    /// The exact bytes that are signed.
    pub fn to_text(&self) -> String {
        let mut s = serde_json::to_string(self).expect("a statement serializes");
        s.push('\n');
        s
    }

    /// Reads a statement, refusing anything but its canonical text.
    pub fn parse(file: &str, text: &str) -> Result<Statement, TrustError> {
        let bad = |m: String| TrustError::invalid(file, None, m);
        let s: Statement = serde_json::from_str(text)
            .map_err(|e| bad(format!("it is not an opsdeploy approval statement: {e}")))?;
        if s.statement != STATEMENT || s.version != VERSION {
            return Err(bad(format!(
                "it is a \"{}\" statement version {}; this opsdeploy reads \"{STATEMENT}\" version {VERSION}",
                s.statement, s.version
            )));
        }
        if s.to_text() != text {
            return Err(bad(
                "it is not in canonical form (one line, keys in order, ending in a newline): sign the file exactly as `opsdeploy approve --statement` printed it"
                    .into(),
            ));
        }
        if (s.kind == Kind::Override) != s.policy.is_some()
            || s.policy.is_some() != s.reason.is_some()
        {
            return Err(bad(
                "an override names its policy and reason, and an approval neither".into(),
            ));
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement() -> Statement {
        Statement {
            statement: STATEMENT.into(),
            version: VERSION,
            project: "shop".into(),
            environment: "production".into(),
            digest: "ab".repeat(32),
            kind: Kind::Approval,
            policy: None,
            reason: None,
            comment: Some("looks good".into()),
            approver: "bob@example.com".into(),
            audit_head: Head {
                seq: 7,
                hash: "cd".repeat(32),
            },
            signed_at: "2026-11-24T20:15:03Z".into(),
            expires_at: "2026-12-01T20:15:03Z".into(),
        }
    }

    #[test]
    fn the_canonical_text_round_trips_and_is_documented_in_order() {
        let s = statement();
        let text = s.to_text();
        assert!(
            text.starts_with(
                "{\"statement\":\"opsdeploy-approval\",\"version\":1,\"project\":\"shop\","
            ),
            "{text}"
        );
        assert!(
            text.ends_with("\"expires_at\":\"2026-12-01T20:15:03Z\"}\n"),
            "{text}"
        );
        assert_eq!(Statement::parse("s.json", &text).unwrap(), s);
    }

    #[test]
    fn a_reformatted_or_foreign_statement_is_refused() {
        let text = statement().to_text();
        let pretty = serde_json::to_string_pretty(&statement()).unwrap();
        for (bad, says) in [
            (pretty, "canonical form"),
            (text.trim_end().to_string(), "canonical form"),
            (
                text.replace("opsdeploy-approval", "other"),
                "\"other\" statement",
            ),
            (text.replace("\"version\":1", "\"version\":2"), "version 2"),
            (text.replace("\"approver\"", "\"signer\""), "unknown field"),
        ] {
            let err = Statement::parse("s.json", &bad).unwrap_err().to_string();
            assert!(err.starts_with("s.json: "), "{err}");
            assert!(err.contains(says), "{err}");
        }
    }
}
