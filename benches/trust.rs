//! What signed approvals cost: signing one approval statement (ssh-keygen,
//! as `opsdeploy approve` does), verifying one in-process, and `audit
//! verify` over a 100,000-entry log holding 1,000 signed approvals (chain,
//! every signature against the signers in force, the checkpoint). A plain
//! timing harness printing medians: `cargo bench --locked --bench trust`
//! (release profile); it leaves the project it built in a temp dir and
//! prints it, so the CLI can be timed on the same log.

use std::process::Command;
use std::time::{Duration, Instant};

use opsdeploy::store::audit::{GENESIS, seal};
use opsdeploy::store::records::{
    ApprovalData, PlanData, PlannedSigners, SignedStatement, StepData,
};
use opsdeploy::store::{EntryData, NewEntry, rfc3339};
use opsdeploy::trust::signature::{self, SigningKey};
use opsdeploy::trust::signers::{AllowedSigners, fingerprint};
use opsdeploy::trust::statement::{Head, Kind, STATEMENT, Statement, VERSION};
use opsdeploy::workflow::{Project, audit};

const ENTRIES: u64 = 100_000;
const APPROVALS: u64 = 1_000;
const RUNS: usize = 5;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let dir = tempfile::Builder::new()
        .prefix("opsdeploy-trust-bench-")
        .tempdir()
        .expect("temp dir")
        .keep();
    let key_path = dir.join("bob");
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "bob", "-f"])
        .arg(&key_path)
        .status()
        .expect("ssh-keygen runs")
        .success();
    assert!(ok, "ssh-keygen");
    let public = std::fs::read_to_string(dir.join("bob.pub")).expect("bob.pub");
    let signers_text = format!("bob@example.com {}", public.trim());
    std::fs::create_dir_all(dir.join("deploy")).expect("deploy/");
    std::fs::write(dir.join("deploy/allowed_signers"), &signers_text).expect("allowed_signers");
    std::fs::write(
        dir.join("opsdeploy.hcl"),
        "project = \"bench\"\nenvironment \"production\" {\n  approval { signers = \"deploy/allowed_signers\" }\n}\n",
    )
    .expect("opsdeploy.hcl");
    let key = SigningKey::find(Some(&key_path), &dir)
        .expect("key")
        .expect("key");
    let signers = PlannedSigners {
        path: "deploy/allowed_signers".into(),
        sha256: opsdeploy::store::bundle::sha256_hex(signers_text.as_bytes()),
        text: signers_text.clone(),
    };

    // The log: blocks of one plan (carrying its signers), one signed
    // approval of it, and apply steps as filler.
    let every = ENTRIES / APPROVALS;
    let (mut lines, mut prev, mut sign_times, mut verify_times) =
        (String::new(), GENESIS.to_string(), Vec::new(), Vec::new());
    let base = 1_795_550_103;
    let allowed = AllowedSigners::parse("deploy/allowed_signers", &signers_text).expect("signers");
    for seq in 1..=ENTRIES {
        let at = rfc3339(base + seq as i64);
        let digest = format!("{:064x}", seq / every);
        let new = match seq % every {
            1 => {
                let plan = PlanData {
                    summary: "bench".into(),
                    counts: Default::default(),
                    git_revision: None,
                    signers: Some(signers.clone()),
                    policies_off: Vec::new(),
                };
                NewEntry::new("alice@example.com", "production", EntryData::Plan(plan))
                    .digest(&digest)
            }
            2 => {
                let st = Statement {
                    statement: STATEMENT.into(),
                    version: VERSION,
                    project: "bench".into(),
                    environment: "production".into(),
                    digest: digest.clone(),
                    kind: Kind::Approval,
                    policy: None,
                    reason: None,
                    comment: None,
                    approver: "bob@example.com".into(),
                    audit_head: Head {
                        seq: seq - 1,
                        hash: prev.clone(),
                    },
                    signed_at: at.clone(),
                    expires_at: rfc3339(base + seq as i64 + 86_400),
                };
                let text = st.to_text();
                let t = Instant::now();
                let sig = key.sign(text.as_bytes()).expect("sign");
                sign_times.push(t.elapsed());
                let t = Instant::now();
                let by = signature::verify(text.as_bytes(), &sig).expect("verify");
                allowed
                    .check("deploy/allowed_signers", &by, "bob@example.com", base)
                    .expect("bob is listed");
                verify_times.push(t.elapsed());
                let approval = ApprovalData {
                    comment: None,
                    signed: Some(SignedStatement {
                        statement: text,
                        signature: sig,
                        key: fingerprint(&by),
                    }),
                };
                NewEntry::new(
                    "bob@example.com",
                    "production",
                    EntryData::Approval(approval),
                )
                .digest(&digest)
            }
            _ => {
                let step = StepData::new("migration", true, format!("step {seq}"), seq);
                NewEntry::new("ci@example.com", "production", EntryData::ApplyStep(step))
                    .digest(&digest)
            }
        };
        let (entry, line) = seal(new, seq, at, &prev);
        prev = entry.hash;
        lines.push_str(&line);
        lines.push('\n');
    }
    std::fs::create_dir_all(dir.join(".opsdeploy")).expect(".opsdeploy/");
    std::fs::write(dir.join(".opsdeploy/audit.jsonl"), lines).expect("audit.jsonl");

    let project = Project::open(&dir).expect("project");
    let checkpoint = dir.join("checkpoint");
    let cp = audit::checkpoint(&project, None).expect("checkpoint");
    std::fs::write(&checkpoint, cp.to_text()).expect("checkpoint file");
    let mut runs = Vec::new();
    for _ in 0..RUNS {
        // What `audit verify --checkpoint FILE` does: chain, every signature
        // against the signers in force, the checkpoint.
        let t = Instant::now();
        let v = audit::verify(&project, std::slice::from_ref(&checkpoint)).expect("verify");
        runs.push(t.elapsed());
        assert_eq!((v.signed as u64, v.checkpoints.len()), (APPROVALS, 1));
    }
    println!(
        "sign one approval (ssh-keygen -Y sign, ed25519): median {:?}",
        median(sign_times)
    );
    println!(
        "verify one approval in-process (ed25519 + allowed_signers): median {:?}",
        median(verify_times)
    );
    println!(
        "audit verify, {ENTRIES} entries, {APPROVALS} signed approvals: median {:?} of {RUNS}",
        median(runs)
    );
    println!(
        "project left at {} (time the CLI: target/release/opsdeploy -C {} audit verify)",
        dir.display(),
        dir.display()
    );
}
