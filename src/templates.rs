//! `opsdeploy init`: starting points from infra-templates/, embedded in the binary.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::fsutil::write_atomic;

include!(concat!(env!("OUT_DIR"), "/templates.rs"));

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("there is no template \"{name}\"")]
    Unknown { name: String, known: Vec<String> },
    #[error("{dir} already has {file}; init writes only into a project without one")]
    Exists { dir: PathBuf, file: String },
    #[error("could not write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Template names, sorted.
pub fn names() -> Vec<String> {
    let mut names: Vec<String> = TEMPLATE_FILES.iter().map(|(t, ..)| t.to_string()).collect();
    names.dedup();
    names
}

/// What `init` wrote; also its `--format json`.
#[derive(Debug, serde::Serialize)]
pub struct Initialized {
    pub dir: PathBuf,
    pub template: String,
    /// Files written, relative to `dir`.
    pub files: Vec<String>,
}

/// Writes template `name` into `dir`; refuses to overwrite any file.
pub fn init(dir: &Path, name: &str) -> Result<Initialized, TemplateError> {
    let files: Vec<_> = TEMPLATE_FILES.iter().filter(|(t, ..)| *t == name).collect();
    if files.is_empty() {
        return Err(TemplateError::Unknown {
            name: name.to_string(),
            known: names(),
        });
    }
    if let Some((_, rel, ..)) = files.iter().find(|(_, rel, ..)| dir.join(rel).exists()) {
        return Err(TemplateError::Exists {
            dir: dir.to_path_buf(),
            file: rel.to_string(),
        });
    }
    let mut written = Vec::new();
    for (_, rel, bytes, exec) in files {
        let path = dir.join(rel);
        let write_err = |source| TemplateError::Write {
            path: path.clone(),
            source,
        };
        write_atomic(&path, bytes).map_err(write_err)?;
        if *exec {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .map_err(write_err)?;
        }
        written.push(rel.to_string());
    }
    // A template's policy crates build against the policy-sdk of this opsdeploy,
    // vendored as `opsdeploy policy new` does outside a checkout.
    for (_, rel, bytes, _) in TEMPLATE_FILES.iter().filter(|(t, ..)| *t == name) {
        let Some(krate) = rel.strip_suffix("/Cargo.toml") else {
            continue;
        };
        if krate.starts_with("policies/")
            && String::from_utf8_lossy(bytes).contains("path = \"vendor/policy-sdk\"")
        {
            crate::authoring::scaffold::vendor_sdk(&dir.join(krate))
                .map_err(|(path, source)| TemplateError::Write { path, source })?;
            written.push(format!("{krate}/vendor/policy-sdk/"));
        }
    }
    Ok(Initialized {
        dir: dir.to_path_buf(),
        template: name.to_string(),
        files: written,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quickstart_is_embedded_with_its_scripts_executable() {
        assert!(names().contains(&"quickstart".to_string()));
        let dir = tempfile::tempdir().unwrap();
        let files = init(dir.path(), "quickstart").unwrap().files;
        assert!(files.contains(&"opsdeploy.hcl".to_string()));
        let mode = std::fs::metadata(dir.path().join("scripts/app.py"))
            .unwrap()
            .permissions()
            .mode();
        assert_ne!(mode & 0o111, 0);
        crate::config::Config::load(dir.path()).expect("the quickstart config is valid");
        assert!(matches!(
            init(dir.path(), "quickstart"),
            Err(TemplateError::Exists { .. })
        ));
        assert!(matches!(
            init(dir.path(), "nope"),
            Err(TemplateError::Unknown { .. })
        ));
    }
}
