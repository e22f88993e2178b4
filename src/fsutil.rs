//! File writes that never leave a half-written file behind, and reads of
//! project files that never leave the project.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically: a temporary file in the same directory,
/// fsync, rename over the target, fsync of the directory. A crash leaves either
/// the old content or the new, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    // The rename is durable only once the directory entry is on disk.
    File::open(dir)?.sync_all()?;
    Ok(())
}

/// Why a project file was not read.
#[derive(Debug, thiserror::Error)]
pub enum ProjectReadError {
    #[error(
        "{path} leaves the project: it resolves to {}, outside it; opsdeploy never follows a symlink out of the project",
        target.display()
    )]
    Escapes { path: PathBuf, target: PathBuf },
    #[error("{path} is not a regular file")]
    NotAFile { path: PathBuf },
    #[error("could not read {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// Where `path` really is, unless that is outside `root` (through a symlink
/// anywhere on the way); `Ok(None)` when nothing is there.
pub fn resolve_in_project(root: &Path, path: &Path) -> Result<Option<PathBuf>, ProjectReadError> {
    let io_err = |source| ProjectReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let real = match fs::canonicalize(path) {
        Ok(p) => p,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(e)),
    };
    let root = fs::canonicalize(root).map_err(io_err)?;
    if real.starts_with(&root) {
        Ok(Some(real))
    } else {
        Err(ProjectReadError::Escapes {
            path: path.to_path_buf(),
            target: real,
        })
    }
}

/// Reads a regular file inside `root`; `Ok(None)` when it does not exist. A
/// path that resolves outside `root` is an error naming it, and the file
/// that was opened is checked again (a symlink swapped in meanwhile).
pub fn read_in_project(root: &Path, path: &Path) -> Result<Option<Vec<u8>>, ProjectReadError> {
    let Some(real) = resolve_in_project(root, path)? else {
        return Ok(None);
    };
    let io_err = |source| ProjectReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = fs::metadata(&real).map_err(io_err)?;
    if !meta.is_file() {
        return Err(ProjectReadError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    let mut file = File::open(&real).map_err(io_err)?;
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let opened =
            fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).map_err(io_err)?;
        let root_real = fs::canonicalize(root).map_err(io_err)?;
        if !opened.starts_with(&root_real) {
            return Err(ProjectReadError::Escapes {
                path: path.to_path_buf(),
                target: opened,
            });
        }
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.read_to_end(&mut bytes).map_err(io_err)?;
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symlink_out_of_the_project_is_refused_naming_it() {
        let project = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), "x").unwrap();
        fs::write(project.path().join("inside"), "y").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), project.path().join(".env"))
            .unwrap();
        std::os::unix::fs::symlink("inside", project.path().join("alias")).unwrap();
        let err = read_in_project(project.path(), &project.path().join(".env")).unwrap_err();
        assert!(err.to_string().contains(".env leaves the project"), "{err}");
        let ok = read_in_project(project.path(), &project.path().join("alias")).unwrap();
        assert_eq!(ok.as_deref(), Some(&b"y"[..]));
        assert!(
            read_in_project(project.path(), &project.path().join("missing"))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn write_atomic_replaces_content_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/state.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);
    }
}
