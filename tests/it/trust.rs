//! Trust you can prove: approvals signed with real ssh-keygen keys, judged
//! against the allowed_signers deployed, and an audit log whose chain,
//! signatures and checkpoints catch what was forged, cut or rewritten.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use predicates::prelude::*;
use sha2::{Digest, Sha256};

use crate::support::Backend;
use crate::workflow::{HealthServer, MAIN_TF, TestProject, config};

/// Throwaway ed25519 keys made by ssh-keygen, one per person.
pub struct Keys {
    dir: tempfile::TempDir,
}

impl Keys {
    pub fn new(names: &[&str]) -> Keys {
        let dir = tempfile::tempdir().unwrap();
        for name in names {
            let ok = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
                .arg(dir.path().join(name))
                .status()
                .expect("ssh-keygen runs (scripts/setup.sh installs openssh-client)")
                .success();
            assert!(ok, "ssh-keygen for {name}");
        }
        Keys { dir }
    }

    pub fn key(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// An allowed_signers line: `name@example.com [options] KEY`.
    pub fn line(&self, name: &str, options: &str) -> String {
        let public = std::fs::read_to_string(self.dir.path().join(format!("{name}.pub"))).unwrap();
        format!("{name}@example.com {options} {}", public.trim())
    }
}

const SIGNED: &str = r#"
project = "shop"

policy "protected-deletes" {
  builtin     = true
  enforcement = "soft-mandatory"
  settings    = { extra_types = ["terraform_data"] }
}

policy "gates" {
  enabled = false
  reason  = "approvals are judged by the workflow here, not by the gates policy"
}

environment "production" {
  terraform { dir = "infra" }
  approval {
    approvers = ["alice@example.com", "bob@example.com", "carol@example.com", "dave@example.com"]
    signers   = "deploy/allowed_signers"
  }
}
"#;

fn signers(p: &TestProject, lines: &[String]) {
    std::fs::create_dir_all(p.file("deploy")).unwrap();
    std::fs::write(p.file("deploy/allowed_signers"), lines.join("\n") + "\n").unwrap();
}

fn stdout(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stdout).into_owned()
}

/// The digest of the newest plan, whatever its verdict.
fn planned(p: &TestProject, user: &str, code: i32) -> String {
    let a = p.run(user, &["plan", "production", "-q"]).code(code);
    stdout(&a).split_whitespace().nth(1).unwrap().to_string()
}

/// `ssh-keygen -Y verify` of a logged approval against the allowed_signers file.
fn ssh_keygen_verifies(p: &TestProject, entry: &serde_json::Value) -> bool {
    let sig = p.file("entry.sig");
    std::fs::write(&sig, entry["data"]["signature"].as_str().unwrap()).unwrap();
    let mut child = Command::new("ssh-keygen")
        .args(["-Y", "verify", "-n", "opsdeploy", "-I"])
        .arg(entry["actor"].as_str().unwrap())
        .arg("-f")
        .arg(p.file("deploy/allowed_signers"))
        .arg("-s")
        .arg(&sig)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let statement = entry["data"]["statement"].as_str().unwrap().to_string();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), statement.as_bytes()).unwrap();
    child.wait().unwrap().success()
}

/// Signs `file` with `ssh-keygen -Y sign -n opsdeploy` (writes `file.sig`,
/// which ssh-keygen will not overwrite).
fn ssh_keygen_sign(key: &Path, file: &Path) {
    let _ = std::fs::remove_file(format!("{}.sig", file.display()));
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", "opsdeploy", "-f"])
        .arg(key)
        .arg(file)
        .status()
        .unwrap()
        .success();
    assert!(ok, "ssh-keygen -Y sign");
}

#[test]
fn signed_approvals_name_the_key_holder_and_only_keys_already_deployed_count() {
    let keys = Keys::new(&["alice", "bob", "carol", "dave"]);
    let p = TestProject::new(SIGNED);
    let key = |n: &str| keys.key(n).display().to_string();
    signers(
        &p,
        &[
            keys.line("alice", ""),
            keys.line("bob", "namespaces=\"git,opsdeploy\""),
            keys.line("dave", "valid-before=\"20200101Z\""),
        ],
    );
    p.run("alice@example.com", &["plan", "production"])
        .success()
        .stdout(predicate::str::contains(
            "approvals signed: keys in deploy/allowed_signers as planned (no signed deployment of production yet",
        ));
    p.run("bob@example.com", &["approve", "production"])
        .code(4)
        .stderr(predicate::str::contains(
            "must be signed and no signing key is set",
        ));
    // Whoever says they are bob, alice's key speaks for alice.
    p.run(
        "bob@example.com",
        &["approve", "production", "--key", &key("alice")],
    )
    .code(4)
    .stderr(predicate::str::contains(
        "OPSDEPLOY_USER says you are bob@example.com, but the key SHA256:",
    ))
    .stderr(predicate::str::contains(
        "is alice@example.com's in deploy/allowed_signers",
    ));
    p.run("dave@example.com", &["approve", "production", "--key", &key("dave")])
        .code(4)
        .stderr(predicate::str::contains(
            "does not count now: it was valid only before 2020-01-01T00:00:00Z (deploy/allowed_signers:3)",
        ));
    // bob's key held by ssh-agent, only its public half on disk.
    let socket = p.file("agent.sock");
    let mut agent = Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&socket)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if socket.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let added = Command::new("ssh-add")
        .arg("-q")
        .arg(keys.key("bob"))
        .env("SSH_AUTH_SOCK", &socket)
        .status()
        .unwrap()
        .success();
    let bob_pub = format!("{}.pub", key("bob"));
    let approved = p.run_with(
        "bob@example.com",
        &[
            "approve",
            "production",
            "--key",
            &bob_pub,
            "--comment",
            "reviewed",
        ],
        &[("SSH_AUTH_SOCK", socket.to_str().unwrap())],
    );
    let _ = agent.kill();
    let _ = agent.wait();
    assert!(added, "ssh-add");
    approved
        .success()
        .stdout(predicate::str::contains(
            "as bob@example.com (1 of 1 approvals)",
        ))
        // What is approved is shown before it is signed.
        .stderr(predicate::str::contains(
            "+ terraform_data.database (create)",
        ));
    let entries = p.audit_entries();
    let approval = entries.iter().find(|e| e["kind"] == "approval").unwrap();
    assert!(ssh_keygen_verifies(&p, approval), "ssh-keygen -Y verify");
    p.run("alice@example.com", &["apply", "production", "--yes"])
        .success();
    p.run("alice@example.com", &["status", "production"])
        .success()
        .stdout(predicate::str::contains(
            "approvals signed: keys in deploy/allowed_signers as deployed by plan",
        ));

    // A plan that replaces the database and adds carol's key.
    std::fs::write(
        p.file("infra/main.tf"),
        MAIN_TF.replace("default = 15", "default = 16"),
    )
    .unwrap();
    signers(
        &p,
        &[
            keys.line("alice", ""),
            keys.line("bob", ""),
            keys.line("carol", ""),
        ],
    );
    let digest = planned(&p, "carol@example.com", 3);
    p.run("carol@example.com", &["status", "production"])
        .success();
    let plan_text = stdout(&p.run("carol@example.com", &["report", &digest]).success());
    assert!(
        plan_text.contains("-/+ terraform_data.database (replace: replace_because_cannot_update)")
            || plan_text.contains("-/+ terraform_data.database (replace"),
        "{plan_text}"
    );
    p.run(
        "carol@example.com",
        &[
            "approve",
            "production",
            "--plan",
            &digest,
            "--key",
            &key("carol"),
        ],
    )
    .code(4)
    .stderr(predicate::str::contains(
        "(carol@example.com) is added to deploy/allowed_signers by the very plan being approved",
    ));
    // A signed override, by a key deployed now.
    p.run(
        "bob@example.com",
        &[
            "approve",
            "production",
            "--plan",
            &digest,
            "--key",
            &key("bob"),
            "--override",
            "protected-deletes",
            "--reason",
            "engine upgrade",
        ],
    )
    .success()
    .stdout(predicate::str::contains(
        "override of policy protected-deletes for plan",
    ))
    .stdout(predicate::str::contains("recorded by bob@example.com"));

    // Detached: a runner prints the statement, the approver signs it anywhere.
    let statement = p.file("s.json");
    let claim_bob = p.run(
        "bob@example.com",
        &["approve", "production", "--plan", &digest, "--statement"],
    );
    std::fs::write(&statement, &claim_bob.success().get_output().stdout).unwrap();
    ssh_keygen_sign(&keys.key("alice"), &statement);
    let sig = format!("{}.sig", statement.display());
    // alice's signature on a statement naming bob does not make her bob.
    p.run(
        "bob@example.com",
        &[
            "approve",
            "production",
            "--plan",
            &digest,
            "--signature",
            &sig,
        ],
    )
    .code(4)
    .stderr(predicate::str::contains(
        "is alice@example.com's in deploy/allowed_signers, not bob@example.com's",
    ));
    let out = p
        .run(
            "alice@example.com",
            &["approve", "production", "--plan", &digest, "--statement"],
        )
        .success()
        .get_output()
        .stdout
        .clone();
    std::fs::write(&statement, out).unwrap();
    ssh_keygen_sign(&keys.key("alice"), &statement);
    p.run(
        "ci@example.com",
        &[
            "approve",
            "production",
            "--plan",
            &digest,
            "--signature",
            &sig,
        ],
    )
    .success()
    .stdout(predicate::str::contains(
        "as alice@example.com (1 of 1 approvals)",
    ));
    p.run(
        "ci@example.com",
        &["apply", "production", "--plan", &digest, "--yes"],
    )
    .success();
    p.run("auditor@example.com", &["audit", "verify"])
        .success()
        .stdout(predicate::str::contains(
            "signatures: 3 signed approvals and overrides verified",
        ));

    // Renaming the approver and recomputing the whole chain: the signature tells.
    rewrite(&p, |line| {
        if line.contains("\"kind\":\"approval\"") {
            line.replacen(
                "\"actor\":\"bob@example.com\"",
                "\"actor\":\"mallory@example.com\"",
                1,
            )
        } else {
            line.to_string()
        }
    });
    p.run("auditor@example.com", &["audit", "verify"])
        .code(1)
        .stderr(predicate::str::contains(
            "by mallory@example.com) is not a valid signed approval",
        ))
        .stderr(predicate::str::contains(
            "the signed statement says approver \"bob@example.com\"",
        ));
}

/// Rewrites every line of the file log with `edit`, then recomputes the
/// whole chain: what someone with write access to .opsdeploy/ can do.
fn rewrite(p: &TestProject, edit: impl Fn(&str) -> String) {
    let path = p.file(".opsdeploy/audit.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut prev = "0".repeat(64);
    let mut out = String::new();
    for line in text.lines() {
        let content = &line[..line.len() - ",\"hash\":\"\"}".len() - 64];
        let content = edit(&format!("{content}}}"));
        let old_prev = content.split("\"prev\":\"").nth(1).unwrap()[..64].to_string();
        let content = content.replace(
            &format!("\"prev\":\"{old_prev}\""),
            &format!("\"prev\":\"{prev}\""),
        );
        let hash = hex::encode(Sha256::digest(content.as_bytes()));
        out.push_str(&format!(
            "{},\"hash\":\"{hash}\"}}\n",
            &content[..content.len() - 1]
        ));
        prev = hash;
    }
    std::fs::write(&path, out).unwrap();
}

#[test]
fn a_forged_cut_or_rewritten_log_is_refused_naming_where() {
    let health = HealthServer::start(200);
    let p = TestProject::new(&config(&health.url(), ""));
    p.plan_approved("alice@example.com", "staging");
    p.run("alice@example.com", &["apply", "staging", "--yes"])
        .success();
    assert!(
        p.read("PROJECT_STATE.md")
            .contains("opsdeploy audit checkpoint v1")
    );
    let cp = p.file("checkpoint.txt");
    let out = p
        .run("auditor@example.com", &["audit", "checkpoint"])
        .success();
    std::fs::write(&cp, &out.get_output().stdout).unwrap();
    let size = p.audit_entries().len();
    let digest = p.plan("alice@example.com", "staging");
    p.run(
        "auditor@example.com",
        &["approve", "staging", "--plan", &digest, "--statement"],
    )
    .code(2)
    .stderr(predicate::str::contains("has no `approval { signers }`"));
    p.run("alice@example.com", &["status"])
        .success()
        .stdout(predicate::str::contains(
            "approvals unsigned: identity not verified",
        ));

    // A forged approval appended with a chain of its own: refused before anything else.
    let log = p.file(".opsdeploy/audit.jsonl");
    let original = std::fs::read_to_string(&log).unwrap();
    let n = original.lines().count() + 1;
    let content = format!(
        "{{\"seq\":1,\"at\":\"2026-11-24T20:00:00Z\",\"kind\":\"approval\",\"actor\":\"bob@example.com\",\"environment\":\"staging\",\"digest\":\"{digest}\",\"prev\":\"{}\"}}",
        "0".repeat(64)
    );
    let hash = hex::encode(Sha256::digest(content.as_bytes()));
    let forged = format!("{},\"hash\":\"{hash}\"}}\n", &content[..content.len() - 1]);
    std::fs::write(&log, format!("{original}{forged}")).unwrap();
    for args in [&["apply", "staging", "--yes"][..], &["status"][..]] {
        p.run("alice@example.com", args)
            .code(1)
            .stderr(predicate::str::contains(format!("is damaged at entry {n}")))
            .stderr(predicate::str::contains(
                "its link to the previous entry is broken",
            ));
    }
    std::fs::write(&log, &original).unwrap();

    // The tail cut after the checkpoint.
    let cut: String = original
        .lines()
        .take(size - 2)
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&log, cut).unwrap();
    p.run(
        "auditor@example.com",
        &["audit", "verify", "--checkpoint", cp.to_str().unwrap()],
    )
    .code(1)
    .stderr(predicate::str::contains(format!(
        "the audit log does not extend the checkpoint at size {size}"
    )))
    .stderr(predicate::str::contains(format!(
        "the log has {} entries but had {size} at the checkpoint",
        size - 2
    )));
    std::fs::write(&log, &original).unwrap();
    p.run(
        "auditor@example.com",
        &["audit", "verify", "--checkpoint", cp.to_str().unwrap()],
    )
    .success()
    .stdout(predicate::str::contains(format!(
        "the log extends size {size}"
    )));

    // The approver renamed and the whole chain recomputed: PROJECT_STATE.md's
    // checkpoint (written by the apply) no longer matches.
    rewrite(&p, |line| {
        line.replace(
            "\"actor\":\"alice@example.com\"",
            "\"actor\":\"mallory@example.com\"",
        )
    });
    p.run("auditor@example.com", &["audit", "verify"])
        .code(1)
        .stderr(predicate::str::contains(
            "the audit log does not extend the checkpoint at size",
        ))
        .stderr(predicate::str::contains("--> PROJECT_STATE.md"))
        .stderr(predicate::str::contains(
            "the log was rewritten at or before size",
        ));
}

#[test]
fn the_runtime_role_cannot_disable_triggers_delete_or_update_the_audit_log() {
    let Some(admin) = crate::support::test_server() else {
        return;
    };
    let db = crate::support::create_database(&admin);
    let role = format!("rt_{}", std::process::id());
    let mut client = postgres::Client::connect(&db, postgres::NoTls).unwrap();
    client
        .batch_execute(&format!(
            "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN"
        ))
        .ok();
    let (base, dbname) = db.rsplit_once('/').unwrap();
    let runtime_url =
        base.replacen("postgres://postgres@", &format!("postgres://{role}@"), 1) + "/" + dbname;
    let p = TestProject::with_backend(
        &config("http://127.0.0.1:9/", ""),
        Backend::Postgres {
            url: runtime_url.clone(),
        },
    );
    p.run_with(
        "alice@example.com",
        &["state", "init", "--admin-url", &db],
        &[],
    )
    .success()
    .stdout(predicate::str::contains(format!(
        "{role} may read and append the audit log, and alter nothing"
    )));
    // As the runtime role: no warning about its rights, and the workflow works.
    p.plan("alice@example.com", "staging");
    p.run("alice@example.com", &["approve", "staging"])
        .success()
        .stderr(predicate::str::contains("can disable the audit log's triggers").not());
    let mut rt = postgres::Client::connect(&runtime_url, postgres::NoTls).unwrap();
    for sql in [
        "ALTER TABLE opsdeploy.audit_log DISABLE TRIGGER USER",
        "ALTER TABLE opsdeploy.audit_log DISABLE TRIGGER ALL",
        "DROP TRIGGER audit_log_append_only ON opsdeploy.audit_log",
        "UPDATE opsdeploy.audit_log SET actor = 'mallory' WHERE seq = 3",
        "DELETE FROM opsdeploy.audit_log WHERE seq > 1",
        "TRUNCATE opsdeploy.audit_log CASCADE",
        "DELETE FROM opsdeploy.approvals",
        "UPDATE opsdeploy.approvals SET actor = 'mallory'",
    ] {
        let err = rt.batch_execute(sql).unwrap_err();
        let msg = err
            .as_db_error()
            .map(|e| e.message().to_string())
            .unwrap_or_default();
        assert!(
            msg.contains("must be owner") || msg.contains("permission denied"),
            "{sql}: {err}"
        );
    }
    // Connecting as a superuser is warned about.
    p.run_with(
        "alice@example.com",
        &["status"],
        &[("OPSDEPLOY_DATABASE_URL", &db)],
    )
    .success()
    .stderr(predicate::str::contains(
        "a superuser: it can disable the audit log's triggers",
    ));
    drop(rt);
    client
        .batch_execute(&format!("DROP OWNED BY {role}; "))
        .ok();
}

#[test]
fn plan_and_report_list_every_resource_change_with_its_action() {
    let health = HealthServer::start(200);
    let p = TestProject::new(&config(&health.url(), ""));
    let old = "resource \"terraform_data\" \"old\" {\n  input = \"retired soon\"\n}\n";
    std::fs::write(p.file("infra/main.tf"), format!("{MAIN_TF}{old}")).unwrap();
    p.plan_approved("alice@example.com", "staging");
    p.run("alice@example.com", &["apply", "staging", "--yes"])
        .success();
    // One of each: web updated in place, the database replaced, old deleted, cache created.
    let next = MAIN_TF
        .replace("default = 15", "default = 16")
        .replace("replicas = 2", "replicas = 3")
        + "resource \"terraform_data\" \"cache\" {\n  input = \"new\"\n}\n";
    std::fs::write(p.file("infra/main.tf"), next).unwrap();
    let out = p
        .run(
            "alice@example.com",
            &["plan", "staging", "--format", "json"],
        )
        .success()
        .get_output()
        .stdout
        .clone();
    let plan: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let digest = plan["digest"].as_str().unwrap().to_string();
    let out = p
        .run(
            "alice@example.com",
            &["report", &digest, "--format", "json"],
        )
        .success()
        .get_output()
        .stdout
        .clone();
    let report: serde_json::Value = serde_json::from_slice(&out).unwrap();
    for resources in [
        &plan["manifest"]["summary"]["terraform"]["resources"],
        &report["bundle"]["changes"]["terraform"]["resources"],
    ] {
        let action = |address: &str| {
            resources
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["address"] == address)
                .unwrap_or_else(|| panic!("{address} in {resources}"))
                .clone()
        };
        assert_eq!(action("terraform_data.cache")["action"], "create");
        let web = action("terraform_data.web");
        assert_eq!(web["action"], "update");
        assert_eq!(web["changed"][0]["name"], "input", "{web}");
        assert_eq!(web["changed"][0]["after"]["replicas"], 3, "{web}");
        let db = action("terraform_data.database");
        assert_eq!(db["action"], "replace");
        assert_eq!(db["reason"], "replace_because_cannot_update");
        assert_eq!(action("terraform_data.old")["action"], "delete");
        assert_eq!(resources.as_array().unwrap().len(), 4, "{resources}");
    }
    assert_eq!(
        report["bundle"]["trust"][0],
        "approvals unsigned: identity not verified"
    );
    let human = String::from_utf8_lossy(
        &p.run("alice@example.com", &["report", &digest])
            .success()
            .get_output()
            .stdout,
    )
    .into_owned();
    for line in [
        "+ terraform_data.cache (create)",
        "~ terraform_data.web (update)",
        "-/+ terraform_data.database (replace: replace_because_cannot_update)",
        "- terraform_data.old (delete: delete_because_no_resource_config)",
        "approvals unsigned: identity not verified",
    ] {
        assert!(human.contains(line), "{line:?} in\n{human}");
    }
}

/// The input document says whether an environment's approvals are signed,
/// and gates warns (`approvals-unsigned`) for production while they are not —
/// never once `approval { signers }` is set.
#[test]
fn gates_warns_for_production_only_while_its_approvals_are_unsigned() {
    let gates_on = SIGNED.replace(
        "policy \"gates\" {\n  enabled = false\n  reason  = \"approvals are judged by the workflow here, not by the gates policy\"\n}\n",
        "",
    );
    assert!(!gates_on.contains("gates"), "{gates_on}");
    let unsigned = gates_on.replace("    signers   = \"deploy/allowed_signers\"\n", "");
    assert!(!unsigned.contains("signers"), "{unsigned}");
    let keys = Keys::new(&["alice"]);
    for (config, signed) in [(gates_on.as_str(), true), (unsigned.as_str(), false)] {
        let p = TestProject::new(config);
        if signed {
            signers(&p, &[keys.line("alice", "")]);
        }
        // No PROJECT_STATE.md here, so gates blocks (exit 3); its warning
        // is what this test looks at.
        let shown = stdout(&p.run("alice@example.com", &["plan", "production"]).code(3));
        assert_eq!(shown.contains("approvals-unsigned"), !signed, "{shown}");
        let bundles: Vec<_> = std::fs::read_dir(p.file(".opsdeploy/bundles"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(bundles.len(), 1, "{bundles:?}");
        let input: serde_json::Value =
            serde_json::from_slice(&std::fs::read(bundles[0].join("input.json")).unwrap()).unwrap();
        assert_eq!(
            input["approvals"]["signed"], signed,
            "{}",
            input["approvals"]
        );
    }
}
