//! `measure CMD ARGS...`: runs a command with stdout discarded and prints
//! `WALL_SECONDS PEAK_RSS_KIB EXIT_CODE` (peak RSS from wait4's rusage), so
//! bench/compare.sh measures every side the same way.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((cmd, rest)) = args.split_first() else {
        eprintln!("usage: measure CMD ARGS...");
        std::process::exit(2);
    };
    let started = Instant::now();
    let child = Command::new(cmd)
        .args(rest)
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            eprintln!("error: {cmd}: {e}");
            std::process::exit(1);
        });
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    // SAFETY: waits for the child spawned above.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = started.elapsed().as_secs_f64();
    if waited != pid {
        eprintln!("error: wait4 failed");
        std::process::exit(1);
    }
    let code = std::process::ExitStatus::from_raw(status)
        .code()
        .unwrap_or(-1);
    println!("{wall:.4} {} {code}", usage.ru_maxrss);
}
