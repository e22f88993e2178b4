//! `measure CMD ARGS...`: runs a command with stdout discarded and prints
//! `WALL_SECONDS PEAK_RSS_KIB EXIT_CODE CPU_SECONDS` (peak RSS and user +
//! system CPU time from wait4's rusage), so bench/compare.sh measures every
//! side the same way. CPU time is what a loaded, shared machine distorts
//! least; wall time is what a user waits.

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
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let cpu = secs(usage.ru_utime) + secs(usage.ru_stime);
    println!("{wall:.4} {} {code} {cpu:.4}", usage.ru_maxrss);
}
