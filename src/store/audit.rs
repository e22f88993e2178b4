//! The audit log's entries and hash chain, the same for every store backend.
//!
//! An entry is one line of JSON: its content fields, then `"hash"`, the sha256
//! of the content exactly as written (the line without the trailing
//! `,"hash":"..."`). Each entry's `prev` is the hash of the entry before it, so
//! editing, removing or reordering an entry breaks the chain from there on.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::records::EntryData;

/// `prev` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    Plan,
    PolicyResults,
    Approval,
    Override,
    ApplyStart,
    ApplyStep,
    ApplyFinish,
    Health,
    Rollback,
    Promotion,
    Incident,
    /// A lock left by a dead process was taken over.
    LockTakeover,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Plan => "plan",
            EntryKind::PolicyResults => "policy_results",
            EntryKind::Approval => "approval",
            EntryKind::Override => "override",
            EntryKind::ApplyStart => "apply_start",
            EntryKind::ApplyStep => "apply_step",
            EntryKind::ApplyFinish => "apply_finish",
            EntryKind::Health => "health",
            EntryKind::Rollback => "rollback",
            EntryKind::Promotion => "promotion",
            EntryKind::Incident => "incident",
            EntryKind::LockTakeover => "lock_takeover",
        }
    }
}

/// What a caller records; the store adds sequence, time, links and hash.
#[derive(Debug, Clone)]
pub struct NewEntry {
    pub actor: String,
    pub environment: Option<String>,
    pub digest: Option<String>,
    pub data: EntryData,
}

impl NewEntry {
    pub fn new(actor: &str, environment: &str, data: EntryData) -> Self {
        NewEntry {
            actor: actor.to_string(),
            environment: Some(environment.to_string()),
            digest: None,
            data,
        }
    }

    pub fn digest(mut self, digest: &str) -> Self {
        self.digest = Some(digest.to_string());
        self
    }
}

/// The content of an entry. It is written (and hashed) in the order of
/// [`Wire`], with the payload's kind as `"kind"` and the payload as `"data"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "Wire", try_from = "Wire")]
pub struct Content {
    pub seq: u64,
    pub at: String,
    pub actor: String,
    pub environment: Option<String>,
    pub digest: Option<String>,
    pub data: EntryData,
    pub prev: String,
}

impl Content {
    pub fn kind(&self) -> EntryKind {
        self.data.kind()
    }
}

/// An entry's content as stored.
#[derive(Serialize, Deserialize)]
struct Wire {
    seq: u64,
    at: String,
    kind: EntryKind,
    actor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    environment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    digest: Option<String>,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    data: serde_json::Value,
    prev: String,
}

impl From<Content> for Wire {
    fn from(c: Content) -> Wire {
        Wire {
            seq: c.seq,
            at: c.at,
            kind: c.data.kind(),
            actor: c.actor,
            environment: c.environment,
            digest: c.digest,
            data: c.data.to_wire(),
            prev: c.prev,
        }
    }
}

impl TryFrom<Wire> for Content {
    type Error = serde_json::Error;

    fn try_from(w: Wire) -> Result<Content, serde_json::Error> {
        Ok(Content {
            seq: w.seq,
            at: w.at,
            actor: w.actor,
            environment: w.environment,
            digest: w.digest,
            data: EntryData::from_wire(w.kind, w.data)?,
            prev: w.prev,
        })
    }
}

/// A stored entry: content plus its hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    #[serde(flatten)]
    pub content: Content,
    pub hash: String,
}

impl std::ops::Deref for Entry {
    type Target = Content;
    fn deref(&self) -> &Content {
        &self.content
    }
}

/// Builds the next entry after `prev_hash` and its line (without newline).
pub fn seal(new: NewEntry, seq: u64, at: String, prev_hash: &str) -> (Entry, String) {
    let content = Content {
        seq,
        at,
        actor: new.actor,
        environment: new.environment,
        digest: new.digest,
        data: new.data,
        prev: prev_hash.to_string(),
    };
    let body = serde_json::to_string(&content).expect("audit content serializes");
    let hash = hex::encode(Sha256::digest(body.as_bytes()));
    let line = format!("{},\"hash\":\"{hash}\"}}", &body[..body.len() - 1]);
    (Entry { content, hash }, line)
}

/// Why an entry failed verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadEntry {
    /// 1-based position in the log.
    pub position: usize,
    /// The entry's own `seq`, when it could be read.
    pub seq: Option<u64>,
    pub reason: String,
}

/// The result of checking a whole log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub entries: usize,
    /// Hash of the last good entry (the chain head).
    pub head: String,
    pub first_bad: Option<BadEntry>,
}

/// Parses one stored line, checking that its hash matches its content.
pub fn parse_line(line: &str) -> Result<Entry, String> {
    const TAIL: usize = ",\"hash\":\"\"}".len() + 64;
    if line.len() < TAIL + 2 || !line.ends_with("\"}") {
        return Err("it is not a complete entry (truncated line?)".into());
    }
    // A line of any text may have a multi-byte character where the tail
    // should start: split_at would panic there, and so would slicing a
    // non-ASCII "hash" for the message below.
    let Some(hash) = line
        .split_at_checked(line.len() - TAIL)
        .and_then(|(_, tail)| tail.strip_prefix(",\"hash\":\""))
        .and_then(|t| t.strip_suffix("\"}"))
        .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
    else {
        return Err("it does not end with its hash".into());
    };
    let body = &line[..line.len() - TAIL];
    let content_text = format!("{body}}}");
    let actual = hex::encode(Sha256::digest(content_text.as_bytes()));
    if actual != hash {
        return Err(format!(
            "its content does not match its hash (recorded {}…, content hashes to {}…): the entry was edited",
            super::short(hash),
            super::short(&actual)
        ));
    }
    let content: Content =
        serde_json::from_str(&content_text).map_err(|e| format!("it is not a valid entry: {e}"))?;
    Ok(Entry {
        content,
        hash: hash.to_string(),
    })
}

/// Whether `entry`, at 1-based `position`, links to the entry before it.
fn check_link(entry: &Entry, position: usize, prev: &str) -> Result<(), String> {
    if entry.prev != prev {
        return Err(
            "its link to the previous entry is broken: an entry before it was removed, replaced or reordered"
                .into(),
        );
    }
    if entry.seq != position as u64 {
        return Err(format!(
            "its sequence number is {}, expected {position}",
            entry.seq
        ));
    }
    Ok(())
}

/// The first entry of already parsed `entries` that does not link to the one
/// before it: what every command that trusts the log checks first.
pub fn check_chain(entries: &[Entry]) -> Option<BadEntry> {
    let mut prev = GENESIS;
    for (i, entry) in entries.iter().enumerate() {
        if let Err(reason) = check_link(entry, i + 1, prev) {
            return Some(BadEntry {
                position: i + 1,
                seq: Some(entry.seq),
                reason,
            });
        }
        prev = &entry.hash;
    }
    None
}

/// Checks every line and every link; stops at the first bad entry.
pub fn verify<'a>(lines: impl IntoIterator<Item = &'a str>) -> Verification {
    let mut prev = GENESIS.to_string();
    let mut count = 0;
    for (i, line) in lines.into_iter().enumerate() {
        let position = i + 1;
        let entry = match parse_line(line) {
            Ok(e) => e,
            Err(reason) => {
                let seq = serde_json::from_str::<serde_json::Value>(line)
                    .ok()
                    .and_then(|v| v.get("seq").and_then(|s| s.as_u64()));
                return Verification {
                    entries: count,
                    head: prev,
                    first_bad: Some(BadEntry {
                        position,
                        seq,
                        reason,
                    }),
                };
            }
        };
        if let Err(reason) = check_link(&entry, position, &prev) {
            return Verification {
                entries: count,
                head: prev,
                first_bad: Some(BadEntry {
                    position,
                    seq: Some(entry.seq),
                    reason,
                }),
            };
        }
        prev = entry.hash.clone();
        count += 1;
    }
    Verification {
        entries: count,
        head: prev,
        first_bad: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::records::ApprovalData;

    fn chain(n: u64) -> Vec<String> {
        let mut prev = GENESIS.to_string();
        (1..=n)
            .map(|seq| {
                let new = NewEntry::new(
                    "alice@example.com",
                    "staging",
                    EntryData::Approval(ApprovalData {
                        comment: Some(format!("ok {seq}")),
                        signed: None,
                    }),
                )
                .digest("abc");
                let (entry, line) = seal(new, seq, "2026-11-24T20:00:00Z".into(), &prev);
                prev = entry.hash;
                line
            })
            .collect()
    }

    #[test]
    fn a_sealed_chain_verifies() {
        let lines = chain(5);
        let v = verify(lines.iter().map(String::as_str));
        assert_eq!(v.first_bad, None);
        assert_eq!(v.entries, 5);
        let last = parse_line(&lines[4]).unwrap();
        assert_eq!(v.head, last.hash);
    }

    #[test]
    fn an_edited_entry_is_named() {
        let mut lines = chain(5);
        lines[2] = lines[2].replace("ok 3", "ok 9");
        let v = verify(lines.iter().map(String::as_str));
        let bad = v.first_bad.unwrap();
        assert_eq!((bad.position, bad.seq), (3, Some(3)));
        assert!(bad.reason.contains("was edited"), "{}", bad.reason);
        assert_eq!(v.entries, 2);
    }

    #[test]
    fn a_removed_or_reordered_entry_breaks_the_link() {
        let mut lines = chain(5);
        lines.remove(1);
        let bad = verify(lines.iter().map(String::as_str)).first_bad.unwrap();
        assert_eq!(bad.position, 2);
        assert!(bad.reason.contains("link"), "{}", bad.reason);

        let mut lines = chain(3);
        lines.swap(0, 1);
        assert_eq!(
            verify(lines.iter().map(String::as_str))
                .first_bad
                .unwrap()
                .position,
            1
        );
    }

    /// Found reading parse_line for the audit_log fuzz target: a line with a
    /// multi-byte character where the hash should start panicked in
    /// `split_at`, and one with a non-ASCII "hash" panicked slicing it for
    /// the message.
    #[test]
    fn non_ascii_where_the_hash_goes_is_reported_not_panicked_on() {
        // 83 bytes: the 76-byte tail would start in the middle of an "é".
        let straddling = format!("{}y\"}}", "é".repeat(40));
        // A well-placed tail whose 64-byte "hash" has an "é" across byte 12.
        let non_ascii_hash = format!(
            "{{\"seq\":1,\"hash\":\"{}é{}\"}}",
            "a".repeat(11),
            "b".repeat(51)
        );
        for bad in [straddling, non_ascii_hash] {
            let err = parse_line(&bad).unwrap_err();
            assert!(err.contains("does not end with its hash"), "{err}");
            assert_eq!(verify([bad.as_str()]).first_bad.unwrap().position, 1);
        }
    }

    #[test]
    fn a_torn_line_is_reported_not_panicked_on() {
        let mut lines = chain(2);
        lines[1].truncate(40);
        let bad = verify(lines.iter().map(String::as_str)).first_bad.unwrap();
        assert_eq!(bad.position, 2);
        assert!(bad.reason.contains("truncated"), "{}", bad.reason);
    }
}
