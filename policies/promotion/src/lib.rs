//! promotion: an environment with `promote_from` (production) deploys only
//! what is deployed and healthy there (staging) — the same terraform
//! configuration (by the fingerprint opsdeploy records), the same image
//! digests, the same chart versions, and no migration that did not run as
//! part of that deployment. Anything that differs is denied, naming both
//! sides. A source deployment no health check verified is `unverified`:
//! denied unless the environment accepts it (`promote { allow_unverified }`).
//!
//! Images come from the scan reports (`Metadata.RepoDigests` of image scans)
//! and from the rendered helm manifests (`containers[].image`, pinned or not).

use std::collections::{BTreeMap, BTreeSet};

use policy_sdk::helm::{Manifest, split_reference};
use policy_sdk::input::Deployment;
use policy_sdk::prelude::*;
use policy_sdk::scan::ScanKind;
use policy_sdk::text::short_digest;
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Artifact {
    Terraform,
    Images,
    Charts,
    Migrations,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// What must match the source environment.
    artifacts: Vec<Artifact>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            artifacts: vec![
                Artifact::Terraform,
                Artifact::Images,
                Artifact::Charts,
                Artifact::Migrations,
            ],
        }
    }
}

/// An image this deployment ships: the reference as deployed and its digest
/// when known (pinned in the reference, or from a scan report).
#[derive(Debug, Clone)]
struct Shipped<'p> {
    reference: String,
    digest: Option<String>,
    from: Origin<'p>,
}

/// Where an image was found, spelt out only when a message needs it.
#[derive(Debug, Clone, Copy)]
enum Origin<'p> {
    Scan,
    Manifest(&'p str, &'p Manifest<'p>),
}

impl std::fmt::Display for Origin<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Scan => f.write_str("scan report"),
            Origin::Manifest(release, m) => {
                write!(f, "helm release {release} ({})", m.display_name())
            }
        }
    }
}

fn shipped_images<'p>(input: &'p Input) -> Vec<Shipped<'p>> {
    let mut by_ref: BTreeMap<String, Shipped> = BTreeMap::new();
    let mut scanned: BTreeMap<String, String> = BTreeMap::new();
    if let Some(scans) = &input.scans {
        for scan in scans.reports.iter().filter(|s| s.kind == ScanKind::Image) {
            let target = scan.target.to_string();
            let digest = scan
                .report
                .metadata
                .as_ref()
                .and_then(|m| m.repo_digests.first())
                .and_then(|d| split_reference(d).2)
                .or_else(|| split_reference(&target).2)
                .map(str::to_string);
            if let Some(d) = &digest {
                scanned.insert(target.clone(), d.clone());
            }
            by_ref.insert(
                target.clone(),
                Shipped {
                    reference: target,
                    digest,
                    from: Origin::Scan,
                },
            );
        }
    }
    for release in &input.helm {
        for manifest in &release.manifests {
            for image in manifest.container_images() {
                let digest = split_reference(&image)
                    .2
                    .map(str::to_string)
                    .or_else(|| scanned.get(&image).cloned());
                by_ref.entry(image.clone()).or_insert(Shipped {
                    reference: image,
                    digest,
                    from: Origin::Manifest(&release.release, manifest),
                });
            }
        }
    }
    by_ref.into_values().collect()
}

pub fn evaluate(input: &Input) -> Vec<Violation> {
    let settings: Settings = match input.settings_or_denial("promotion") {
        Ok(s) => s,
        Err(denial) => return vec![denial],
    };
    let env = &input.environment.name;
    let Some(source) = input.environment.promote_from.as_deref() else {
        return Vec::new();
    };
    let deployed = input
        .deployments
        .as_ref()
        .and_then(|d| d.by_environment.get(source));
    let Some(deployed) = deployed else {
        return vec![Violation::deny(
            "source-not-deployed",
            format!(
                "{env} is promoted from {source}, but {source} has no recorded deployment; deploy {source} first"
            ),
        )];
    };
    let mut out = Vec::new();
    let unverified =
        deployed.status == "succeeded" && deployed.health.as_deref() == Some("unverified");
    if unverified {
        let what = format!(
            "{source}'s last deployment ({}, {}) is unverified: {source} has no health check, so nothing showed it healthy",
            short_digest(&deployed.digest),
            deployed.at
        );
        out.push(if input.environment.allow_unverified {
            Violation::warn(
                "source-unverified",
                format!("{what}; {env} accepts that (promote {{ allow_unverified = true }})"),
            )
        } else {
            Violation::deny(
                "source-unverified",
                format!("{what}; add a health check to {source}, or accept it with promote {{ allow_unverified = true }} in {env}"),
            )
        });
    } else if deployed.status != "succeeded" || !deployed.healthy {
        out.push(Violation::deny(
            "source-not-healthy",
            format!(
                "{source}'s last deployment ({}, {}) is {}{}; only what is healthy on {source} can go to {env}",
                short_digest(&deployed.digest),
                deployed.at,
                deployed.status,
                if deployed.healthy { "" } else { " and not healthy" }
            ),
        ));
    }
    if settings.artifacts.contains(&Artifact::Terraform) {
        check_terraform(input, source, deployed, &mut out);
    }
    if settings.artifacts.contains(&Artifact::Images) {
        check_images(input, source, deployed, &mut out);
    }
    if settings.artifacts.contains(&Artifact::Charts) {
        check_charts(input, source, deployed, &mut out);
    }
    if settings.artifacts.contains(&Artifact::Migrations) {
        check_migrations(input, source, deployed, &mut out);
    }
    out
}

fn check_images(input: &Input, source: &str, deployed: &Deployment, out: &mut Vec<Violation>) {
    let env = &input.environment.name;
    // What the source runs, indexed: digests, references, and by repository.
    let mut digests: BTreeSet<&str> = BTreeSet::new();
    let mut references: BTreeSet<&str> = BTreeSet::new();
    let mut by_repo: BTreeMap<&str, Vec<&policy_sdk::input::Image>> = BTreeMap::new();
    for i in &deployed.images {
        let (repo, _, pinned) = split_reference(&i.reference);
        digests.extend(i.digest.as_deref());
        digests.extend(pinned);
        references.insert(&i.reference);
        by_repo.entry(repo).or_default().push(i);
    }
    for image in shipped_images(input) {
        let ok = match &image.digest {
            Some(d) => digests.contains(d.as_str()),
            None => references.contains(image.reference.as_str()),
        };
        if ok {
            if image.digest.is_none() {
                out.push(
                    Violation::warn(
                        "image-unverified",
                        format!(
                            "{} ({}) matches {source} by tag only: its digest is unknown, so it may not be the same image; pin it by digest or scan it",
                            image.reference, image.from
                        ),
                    )
                    .at_address(image.reference.as_str()),
                );
            }
            continue;
        }
        let (repo, _, _) = split_reference(&image.reference);
        let ours = match &image.digest {
            Some(d) => format!("{} ({})", image.reference, short_digest(d)),
            None => image.reference.clone(),
        };
        let theirs = match by_repo.get(repo) {
            Some(list) => {
                let list: Vec<String> = list
                    .iter()
                    .map(|i| match &i.digest {
                        Some(d) => format!("{} ({})", i.reference, short_digest(d)),
                        None => i.reference.to_string(),
                    })
                    .collect();
                format!("{source} runs {}", list.join(", "))
            }
            None => format!("{source} runs no {repo} image"),
        };
        out.push(
            Violation::deny(
                "image-not-on-source",
                format!(
                    "{env} would deploy {ours} from the {}, which is not deployed on {source}: {theirs}",
                    image.from
                ),
            )
            .at_address(image.reference.as_str()),
        );
    }
}

fn check_terraform(input: &Input, source: &str, deployed: &Deployment, out: &mut Vec<Violation>) {
    let env = &input.environment.name;
    let Some(ours) = input
        .terraform
        .as_ref()
        .and_then(|t| t.config_digest.as_deref())
    else {
        return;
    };
    let theirs = deployed.terraform_config.as_deref();
    if theirs == Some(ours) {
        return;
    }
    out.push(Violation::deny(
        "terraform-not-on-source",
        format!(
            "{env} would apply terraform configuration {}, which is not deployed on {source}: {}; deploy it to {source} first (`opsdeploy promote {source} {env}` names what differs)",
            short_digest(ours),
            match theirs {
                Some(t) => format!("{source} runs configuration {}", short_digest(t)),
                None => format!("{source}'s deployment {} recorded no terraform configuration", short_digest(&deployed.digest)),
            }
        ),
    ));
}

fn check_charts(input: &Input, source: &str, deployed: &Deployment, out: &mut Vec<Violation>) {
    let env = &input.environment.name;
    let on_source: BTreeMap<&str, _> = deployed
        .charts
        .iter()
        .map(|c| (c.release.as_ref(), c))
        .collect();
    for release in &input.helm {
        let ours = format!(
            "{} {}",
            release.chart,
            release.chart_version.as_deref().unwrap_or("(no version)")
        );
        let theirs = on_source.get(release.release.as_ref());
        let differs = match theirs {
            None => Some(format!("{source} has no release {}", release.release)),
            Some(c) if c.chart != release.chart || c.version != release.chart_version => {
                Some(format!(
                    "{source} runs {} {}",
                    c.chart,
                    c.version.as_deref().unwrap_or("(no version)")
                ))
            }
            Some(_) => None,
        };
        if let Some(theirs) = differs {
            out.push(
                Violation::deny(
                    "chart-not-on-source",
                    format!(
                        "helm release {} would deploy {ours} to {env}, which is not deployed on {source}: {theirs}",
                        release.release
                    ),
                )
                .at_address(release.release.as_ref()),
            );
        }
    }
}

fn check_migrations(input: &Input, source: &str, deployed: &Deployment, out: &mut Vec<Violation>) {
    let env = &input.environment.name;
    let on_source: BTreeSet<&str> = deployed.migrations.iter().map(|m| m.as_ref()).collect();
    for m in &input.migrations {
        let pending = !m.ran_on.iter().any(|r| r.environment == *env);
        if pending && !on_source.contains(m.id.as_ref()) {
            out.push(
                Violation::deny(
                    "migration-not-on-source",
                    format!(
                        "migration {} would run on {env} but is not part of {source}'s healthy deployment {}",
                        m.id,
                        short_digest(&deployed.digest)
                    ),
                )
                .at_path(m.path.as_ref()),
            );
        }
    }
}

policy_sdk::export_policy! {
    name: "promotion",
    description: "Deploy to an environment with promote_from only the terraform configuration, image digests, chart versions and migrations deployed and healthy there",
    reads: [terraform, helm, scans, deployments, migrations],
    // Of `terraform` only the configuration's digest: no plan keys.
    terraform_plan: [],
    settings_schema: r#"{"type":"object","additionalProperties":false,"properties":{"artifacts":{"type":"array","items":{"enum":["terraform","images","charts","migrations"]}}}}"#,
    evaluate: evaluate,
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAGING: &str = r#"{"environment":"staging","digest":"sha256:b0b0","at":"2025-03-01T10:00:00Z",
        "status":"succeeded","healthy":true,
        "images":[{"reference":"reg.example.com/api:1.2.0","digest":"sha256:aaaa"}],
        "charts":[{"release":"api","chart":"api","version":"1.4.0"}],
        "migrations":["0001_init"]}"#;

    fn doc(staging: &str, image_digest: &str, chart_version: &str, migrations: &str) -> String {
        format!(
            r#"{{"schema_version":1,"environment":{{"name":"production","project":"shop","promote_from":"staging"}},
            "settings":null,
            "scans":{{"reports":[{{"target":"reg.example.com/api:1.2.0","kind":"image",
               "report":{{"SchemaVersion":2,"Metadata":{{"RepoDigests":["reg.example.com/api@{image_digest}"]}}}}}}]}},
            "helm":[{{"release":"api","chart":"api","chart_version":"{chart_version}","namespace":"prod",
               "manifests":[{{"api_version":"apps/v1","kind":"Deployment","name":"api",
                 "object":{{"spec":{{"template":{{"spec":{{"containers":[{{"name":"api","image":"reg.example.com/api:1.2.0"}}],
                 "initContainers":[{{"name":"migrate","image":"reg.example.com/tools@sha256:cccc"}}]}}}}}}}}}}]}}],
            "deployments":{{"by_environment":{{"staging":{staging}}}}},
            "migrations":{migrations}}}"#
        )
    }

    fn run(json: &str) -> Vec<Violation> {
        evaluate(&Input::from_json(json).unwrap())
    }

    fn rules(v: &[Violation]) -> Vec<&str> {
        v.iter().map(|v| v.rule.as_str()).collect()
    }

    const MIGRATIONS: &str = r#"[{"id":"0001_init","path":"db/0001_init.sql","sha256":"s","sql":"","ran_on":[{"environment":"staging","sha256":"s"}]}]"#;

    #[test]
    fn what_staging_runs_healthy_may_go_to_production() {
        let staging = STAGING.replace(
            r#""images":["#,
            r#""images":[{"reference":"reg.example.com/tools@sha256:cccc"},"#,
        );
        let v = run(&doc(&staging, "sha256:aaaa", "1.4.0", MIGRATIONS));
        assert!(v.is_empty(), "{v:?}");
    }

    #[test]
    fn a_different_digest_chart_or_migration_is_denied_naming_both_sides() {
        let migrations = r#"[{"id":"0002_new","path":"db/0002_new.sql","sha256":"s","sql":""}]"#;
        let v = run(&doc(STAGING, "sha256:ffff", "1.5.0", migrations));
        assert_eq!(
            rules(&v),
            vec![
                "image-not-on-source",
                "image-not-on-source",
                "chart-not-on-source",
                "migration-not-on-source"
            ]
        );
        assert!(
            v[0].message
                .contains("staging runs reg.example.com/api:1.2.0 (aaaa)"),
            "{}",
            v[0].message
        );
        assert!(
            v[2].message.contains("api 1.5.0") && v[2].message.contains("staging runs api 1.4.0"),
            "{}",
            v[2].message
        );
        assert_eq!(v[3].path.as_deref(), Some("db/0002_new.sql"));
    }

    #[test]
    fn an_unhealthy_or_missing_source_deployment_is_denied() {
        let failed = STAGING
            .replace(r#""healthy":true"#, r#""healthy":false"#)
            .replace(
                r#""images":["#,
                r#""images":[{"reference":"reg.example.com/tools@sha256:cccc"},"#,
            );
        let v = run(&doc(&failed, "sha256:aaaa", "1.4.0", MIGRATIONS));
        assert_eq!(rules(&v), vec!["source-not-healthy"]);
        let none = doc(STAGING, "sha256:aaaa", "1.4.0", MIGRATIONS)
            .replace(r#""staging":{"environment""#, r#""qa":{"environment""#);
        assert_eq!(rules(&run(&none)), vec!["source-not-deployed"]);
    }

    #[test]
    fn a_terraform_configuration_staging_does_not_run_is_denied() {
        let staging = STAGING
            .replace(
                r#""images":["#,
                r#""images":[{"reference":"reg.example.com/tools@sha256:cccc"},"#,
            )
            .replace(
                r#""healthy":true"#,
                r#""healthy":true,"terraform_config":"aaaa1111""#,
            );
        let with = |digest: &str| {
            doc(&staging, "sha256:aaaa", "1.4.0", MIGRATIONS).replace(
                r#""settings":null,"#,
                &format!(
                    r#""settings":null,"terraform":{{"dir":"infra","config_digest":"{digest}","plan":{{}}}},"#
                ),
            )
        };
        assert!(run(&with("aaaa1111")).is_empty());
        let v = run(&with("bbbb2222"));
        assert_eq!(rules(&v), vec!["terraform-not-on-source"]);
        assert!(
            v[0].message
                .contains("terraform configuration bbbb2222, which is not deployed on staging: staging runs configuration aaaa1111"),
            "{}",
            v[0].message
        );
    }

    #[test]
    fn an_unverified_source_is_denied_unless_the_environment_accepts_it() {
        let unverified = STAGING
            .replace(
                r#""healthy":true"#,
                r#""healthy":false,"health":"unverified""#,
            )
            .replace(
                r#""images":["#,
                r#""images":[{"reference":"reg.example.com/tools@sha256:cccc"},"#,
            );
        let json = doc(&unverified, "sha256:aaaa", "1.4.0", MIGRATIONS);
        let v = run(&json);
        assert_eq!(rules(&v), vec!["source-unverified"]);
        assert_eq!(v[0].severity, Severity::Deny);
        let accepted = json.replace(
            r#""promote_from":"staging"}"#,
            r#""promote_from":"staging","allow_unverified":true}"#,
        );
        let v = run(&accepted);
        assert_eq!(rules(&v), vec!["source-unverified"]);
        assert_eq!(v[0].severity, Severity::Warn);
    }

    #[test]
    fn environments_without_promote_from_are_not_checked() {
        let json = doc(STAGING, "sha256:ffff", "9", MIGRATIONS)
            .replace(r#","promote_from":"staging""#, "");
        assert!(run(&json).is_empty());
    }
}
