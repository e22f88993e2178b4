//! The processes opsdeploy starts (terraform, helm, trivy, the smoke test,
//! the migration runner, the monitor query) run in a process group of their
//! own and die with opsdeploy, however it dies.
//!
//! Each command runs under a small `/bin/sh` that leads the group: it starts
//! the command, waits for it and exits with its status. The kernel sends the
//! leader SIGTERM when opsdeploy's thread that started it dies (Linux
//! `PR_SET_PDEATHSIG`, which also fires on `kill -9`), and the leader's trap
//! then kills the whole group — the command and everything it started
//! (`sleep` under a smoke-test script). A deadline kills the group too.

use std::ffi::OsStr;
use std::io;
use std::path::Path;
use std::process::{Child, Command};

/// Kills the group of the shell's children when the shell is told to stop.
const LEADER: &str = "trap 'kill -KILL 0' TERM; \"$@\" & wait $!";

/// A command running `program args` in its own process group, started in
/// `dir`; an error when `program` cannot be found (as spawning it would be).
pub fn command(
    program: &OsStr,
    args: &[impl AsRef<OsStr>],
    dir: Option<&Path>,
) -> io::Result<Command> {
    let shown = Path::new(program);
    let found = if shown.components().count() > 1 {
        dir.map_or(shown.to_path_buf(), |d| d.join(shown)).is_file()
    } else {
        which::which(program).is_ok()
    };
    if !found {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} not found", shown.display()),
        ));
    }
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(LEADER)
        .arg("opsdeploy-child")
        .arg(program)
        .args(args);
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    leads_own_group(&mut cmd);
    Ok(cmd)
}

#[cfg(unix)]
fn leads_own_group(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: only async-signal-safe calls (setpgid, prctl, getppid, _exit)
    // run between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setpgid(0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            #[cfg(target_os = "linux")]
            {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(io::Error::last_os_error());
                }
                // opsdeploy died before the signal was armed: stop now.
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
            }
            #[cfg(not(target_os = "linux"))]
            let _ = parent;
            Ok(())
        });
    }
}

#[cfg(not(unix))]
fn leads_own_group(_: &mut Command) {}

/// Kills `child`'s whole process group and reaps the child.
pub fn kill_group(child: &mut Child) {
    #[cfg(unix)]
    // SAFETY: a plain syscall on the group `child` leads.
    unsafe {
        libc::killpg(child.id() as libc::pid_t, libc::SIGKILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn the_command_runs_with_its_arguments_and_exit_status() {
        let dir = tempfile::tempdir().unwrap();
        let out = command(
            OsStr::new("sh"),
            &["-c", "pwd; echo \"$1\"; exit 3", "x", "two words"],
            Some(dir.path()),
        )
        .unwrap()
        .output()
        .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.ends_with("\ntwo words\n"), "{text}");
        assert_eq!(out.status.code(), Some(3));
    }

    #[test]
    fn a_missing_program_is_an_error_before_anything_starts() {
        let err = command(OsStr::new("no-such-program-opsdeploy"), &[""; 0], None).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn killing_the_group_stops_what_the_command_started() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("grandchild.pid");
        let mut child = command(
            OsStr::new("sh"),
            &["-c", "sleep 30 & echo $! > grandchild.pid; wait"],
            Some(dir.path()),
        )
        .unwrap()
        .spawn()
        .unwrap();
        let started = Instant::now();
        while !pid_file.is_file()
            || std::fs::read_to_string(&pid_file)
                .unwrap()
                .trim()
                .is_empty()
        {
            assert!(started.elapsed() < Duration::from_secs(10));
            std::thread::sleep(Duration::from_millis(20));
        }
        let grandchild: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        kill_group(&mut child);
        assert!(gone(grandchild), "sleep {grandchild} survived its group");
    }

    /// Whether `pid` has exited (a zombie waiting for its reaper counts).
    pub fn gone(pid: i32) -> bool {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
                Err(_) => return true,
                Ok(stat)
                    if stat
                        .rsplit(')')
                        .next()
                        .is_some_and(|s| s.trim_start().starts_with('Z')) =>
                {
                    return true;
                }
                Ok(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        false
    }
}
