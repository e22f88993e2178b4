//! `opsdeploy policy new NAME --lang c|zig|assemblyscript|rego`: the
//! replica-floor policy in that language, with the fixtures every version of it
//! passes (CI builds and tests each one, tests/it/polyglot.rs).

use std::path::Path;

use super::project::Language;
use super::scaffold::{ScaffoldError, Scaffolded, fresh_dir, new_policy, write_file};

/// The fixtures shared by every language's version.
pub const FIXTURES: &[(&str, &str)] = &[
    (
        "below_floor_is_denied.json",
        include_str!("templates/fixtures/below_floor_is_denied.json"),
    ),
    (
        "every_release_is_checked.json",
        include_str!("templates/fixtures/every_release_is_checked.json"),
    ),
    (
        "missing_replicas_counts_as_one.json",
        include_str!("templates/fixtures/missing_replicas_counts_as_one.json"),
    ),
    (
        "no_floor_for_the_environment_passes.json",
        include_str!("templates/fixtures/no_floor_for_the_environment_passes.json"),
    ),
    (
        "no_helm_section_passes.json",
        include_str!("templates/fixtures/no_helm_section_passes.json"),
    ),
    (
        "replicas_that_are_not_a_number_are_not_judged.json",
        include_str!("templates/fixtures/replicas_that_are_not_a_number_are_not_judged.json"),
    ),
];

/// The template's name, replaced by the new policy's in its metadata.
const TEMPLATE_NAME: &str = "replica-floor";

/// (file, contents, the metadata's name field as written in that file)
fn sources(lang: Language) -> &'static [(&'static str, &'static str, &'static str)] {
    match lang {
        Language::C => &[(
            "policy.c",
            include_str!("templates/c/policy.c"),
            r#"name\\\":\\\"replica-floor"#,
        )],
        Language::Zig => &[(
            "policy.zig",
            include_str!("templates/zig/policy.zig"),
            r#"\"name\":\"replica-floor"#,
        )],
        Language::AssemblyScript => &[
            (
                "policy.ts",
                include_str!("templates/assemblyscript/policy.ts"),
                "",
            ),
            (
                "metadata.json",
                include_str!("templates/assemblyscript/metadata.json"),
                r#""name": "replica-floor"#,
            ),
        ],
        Language::Rego => &[
            (
                "policy.rego",
                include_str!("templates/rego/policy.rego"),
                "",
            ),
            (
                "policy_test.rego",
                include_str!("templates/rego/policy_test.rego"),
                "",
            ),
            ("rego.json", include_str!("templates/rego/rego.json"), ""),
        ],
        Language::Rust => &[],
    }
}

fn build_line(lang: Language) -> &'static str {
    match lang {
        Language::C => "clang --target=wasm32 -nostdlib -O2 -Wl,--no-entry -o build/NAME.wasm *.c",
        Language::Zig => {
            "zig build-exe policy.zig -target wasm32-freestanding -fno-entry -rdynamic -O ReleaseSmall"
        }
        Language::AssemblyScript => {
            "asc policy.ts -O --runtime stub --use abort=policy/abort --exportStart _initialize (then metadata.json is added as the opsdeploy.metadata section)"
        }
        Language::Rego | Language::Rust => "",
    }
}

/// Creates the policy `NAME` in `parent`, written in `lang`.
pub fn new_policy_in(
    parent: &Path,
    name: &str,
    lang: Language,
) -> Result<Scaffolded, ScaffoldError> {
    if lang == Language::Rust {
        return new_policy(parent, name);
    }
    let dir = fresh_dir(parent, name)?;
    let write = |rel: &str, content: &str| write_file(&dir, rel, content);
    for (file, text, name_field) in sources(lang) {
        let text = if name_field.is_empty() {
            text.to_string()
        } else {
            text.replace(name_field, &name_field.replace(TEMPLATE_NAME, name))
        };
        write(file, &text)?;
    }
    for (file, text) in FIXTURES {
        write(&format!("fixtures/{file}"), text)?;
    }
    write(".gitignore", "/build\n")?;
    write("README.md", &readme(name, lang))?;
    Ok(Scaffolded {
        sdk: dir.clone(),
        dir,
        sdk_vendored: false,
    })
}

fn readme(name: &str, lang: Language) -> String {
    let usage = if lang == Language::Rego {
        format!(
            r#"Use it from opsdeploy.hcl (conftest's conventions: package main, deny /
violation / warn rules yielding strings or objects with `msg`):

    policy "{name}" {{
      rego        = ["path/to/{name}/*.rego"]
      input       = "kubernetes"
      enforcement = "soft-mandatory"
      settings    = {{ floors = {{ production = 3 }} }}
    }}
"#
        )
    } else {
        format!(
            r#"Built with:

    {build}

Use it from opsdeploy.hcl:

    policy "{name}" {{
      source      = "path/to/{name}/build/{wasm}.wasm"
      enforcement = "soft-mandatory"
      settings    = {{ floors = {{ production = 3 }} }}
    }}
"#,
            build = build_line(lang),
            wasm = name.replace('-', "_")
        )
    };
    format!(
        r#"# {name}

An opsdeploy policy in {lang} (ABI v1): deny a Deployment or StatefulSet with
fewer replicas than the environment's floor.

    opsdeploy policy test .     # build and run fixtures/*.json
    opsdeploy policy build .    # just build

{usage}"#,
        lang = lang.as_str()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_new_name_replaces_the_template_name_in_the_metadata_only() {
        let tmp = tempfile::tempdir().unwrap();
        for lang in [Language::C, Language::Zig, Language::AssemblyScript] {
            let name = format!("floor-{}", lang.as_str());
            let made = new_policy_in(tmp.path(), &name, lang).unwrap();
            let all: String = std::fs::read_dir(&made.dir)
                .unwrap()
                .flatten()
                .filter(|e| e.path().is_file())
                .map(|e| std::fs::read_to_string(e.path()).unwrap())
                .collect();
            assert!(all.contains(&name), "{lang:?}: the name is in the metadata");
            assert!(
                all.contains(r#"\"rule\":\"replica-floor"#),
                "{lang:?}: the rule id stays"
            );
            assert_eq!(
                std::fs::read_dir(made.dir.join("fixtures"))
                    .unwrap()
                    .count(),
                FIXTURES.len()
            );
        }
    }
}
