//! Compiling a policy module under the policy's own time and memory limits.
//!
//! The structural checks (`limits.rs`) refuse what no policy needs; what is
//! left can still make cranelift slow or hungry. The opsdeploy binary compiles
//! in a child of itself (`opsdeploy __compile-policy`, wasm on stdin, the
//! compiled artifact on stdout) that may use the policy's timeout in CPU time
//! (`RLIMIT_CPU`) and its memory limit in resident memory (the parent reads
//! the child's peak, `VmHWM`, as it runs and kills it beyond the limit), so a
//! compile bomb is a denial, never a stalled or swapping deploy. CPU time, not
//! wall-clock time: a loaded CI machine slows a legitimate compile down, but
//! does not make it more work. A library user that does not opt in
//! ([`compile_in_child`]) compiles in its own process, structural checks only.

use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::OnceLock;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use wasmtime::{Engine, Module};

use super::{EngineError, Limits};

/// The hidden first argument that makes the opsdeploy binary a compiler child.
pub const CHILD_ARG: &str = "__compile-policy";

/// The child's exit code when cranelift refused the module (message on stderr).
const COMPILE_FAILED: u8 = 2;
/// What is kept of the child's stderr.
const STDERR_CAP: u64 = 16 << 10;
/// How often the parent looks at a running compile.
const POLL: Duration = Duration::from_millis(2);

static CHILD: OnceLock<PathBuf> = OnceLock::new();

/// From now on, compile every policy in `exe CHILD_ARG` (the running opsdeploy
/// binary). The CLI calls this once at start.
pub fn compile_in_child(exe: PathBuf) {
    let _ = CHILD.set(exe);
}

/// A compiled module, and its serialized artifact when the compile produced
/// one (the child does; the module cache stores it as is).
pub struct Compiled {
    pub module: Module,
    pub artifact: Option<Vec<u8>>,
}

pub(crate) fn compile(
    engine: &Engine,
    origin: &str,
    wasm: &[u8],
    limits: &Limits,
) -> Result<Compiled, EngineError> {
    match CHILD.get() {
        Some(exe) => in_child(engine, exe, origin, wasm, limits),
        None => Module::new(engine, wasm)
            .map(|module| Compiled {
                module,
                artifact: None,
            })
            .map_err(|e| failed(origin, format!("{e:#}"))),
    }
}

fn failed(origin: &str, reason: String) -> EngineError {
    EngineError::Compile {
        origin: origin.to_string(),
        reason,
    }
}

/// The child's side: reads the module, compiles it with the engine
/// configuration the parent uses, writes the artifact.
pub fn child_main() -> ExitCode {
    let mut wasm = Vec::new();
    if let Err(e) = std::io::stdin().lock().read_to_end(&mut wasm) {
        eprintln!("could not read the module: {e}");
        return ExitCode::FAILURE;
    }
    let engine = match Engine::new(&super::engine_config()) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("could not start the WebAssembly engine: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    match engine.precompile_module(&wasm) {
        Ok(artifact) => match std::io::stdout().lock().write_all(&artifact) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("could not hand over the compiled module: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::from(COMPILE_FAILED)
        }
    }
}

fn in_child(
    engine: &Engine,
    exe: &PathBuf,
    origin: &str,
    wasm: &[u8],
    limits: &Limits,
) -> Result<Compiled, EngineError> {
    let memory = limits.memory_bytes;
    let cpu_secs = limits.timeout.as_secs_f64().ceil().max(1.0) as u64;
    // Only for a child that stops making progress (it never should): CPU
    // time and memory are the limits a module can push against.
    let backstop = limits.timeout.saturating_mul(10);
    let mut cmd = Command::new(exe);
    cmd.arg(CHILD_ARG)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: only setrlimit and prctl, both async-signal-safe, run between
    // fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // SIGXCPU at the soft limit, SIGKILL a second later.
            set_limit(libc::RLIMIT_CPU, cpu_secs, cpu_secs + 1)?;
            set_limit(libc::RLIMIT_CORE, 0, 0)?;
            // Nobody would watch its memory once the parent is gone.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(|e| {
        failed(
            origin,
            format!("could not start the policy compiler {}: {e}", exe.display()),
        )
    })?;
    let stdin = child.stdin.take().map(|mut pipe| {
        let wasm = wasm.to_vec();
        // A child that dies early closes the pipe; its status says why.
        std::thread::spawn(move || {
            let _ = pipe.write_all(&wasm);
        })
    });
    let stdout = child.stdout.take().map(|pipe| drain(pipe, u64::MAX));
    let stderr = child.stderr.take().map(|pipe| drain(pipe, STDERR_CAP));
    let mut peak = 0u64;
    let stop = |child: &mut std::process::Child, reason: String| {
        let _ = child.kill();
        let _ = child.wait();
        Err(failed(origin, reason))
    };
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {
                peak = peak.max(peak_resident(child.id()).unwrap_or(0));
                if peak > memory {
                    return stop(
                        &mut child,
                        format!(
                            "compiling it needed more than its memory limit of {}; the compiler was stopped",
                            mib(memory)
                        ),
                    );
                }
                if started.elapsed() >= backstop {
                    return stop(
                        &mut child,
                        format!(
                            "compiling it made no progress for {backstop:?}; the compiler was stopped"
                        ),
                    );
                }
                std::thread::sleep(POLL);
            }
            Err(e) => return stop(&mut child, format!("the policy compiler was lost: {e}")),
        }
    };
    if let Some(h) = stdin {
        let _ = h.join();
    }
    let join = |h: Option<JoinHandle<Vec<u8>>>| h.and_then(|h| h.join().ok()).unwrap_or_default();
    let artifact = join(stdout);
    let message = String::from_utf8_lossy(&join(stderr)).trim().to_string();
    tracing::debug!(
        origin,
        wasm_bytes = wasm.len(),
        artifact_bytes = artifact.len(),
        peak_resident_bytes = peak,
        millis = started.elapsed().as_millis() as u64,
        code = status.code(),
        "policy compiled in a child process"
    );
    if status.success() {
        // SAFETY: the artifact is what our own binary's `precompile_module`
        // wrote, with this engine configuration, through a pipe only we hold.
        let module = unsafe { Module::deserialize(engine, &artifact) }
            .map_err(|e| failed(origin, format!("the compiled module did not load: {e:#}")))?;
        return Ok(Compiled {
            module,
            artifact: Some(artifact),
        });
    }
    let reason = if status.code() == Some(i32::from(COMPILE_FAILED)) {
        message
    } else if matches!(status.signal(), Some(libc::SIGXCPU | libc::SIGKILL)) {
        format!(
            "compiling it needed more than its time limit of {cpu_secs} s of CPU time; the compiler was stopped"
        )
    } else if status.signal() == Some(libc::SIGABRT) || message.contains("memory allocation") {
        format!(
            "the compiler ran out of memory (limit {}); the compiler was stopped",
            mib(memory)
        )
    } else {
        format!("the policy compiler failed ({status}): {message}")
    };
    Err(failed(origin, reason))
}

fn mib(bytes: u64) -> String {
    format!("{} MiB", bytes >> 20)
}

/// The peak resident memory of process `pid` so far (`VmHWM`), in bytes.
fn peak_resident(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn set_limit(resource: libc::__rlimit_resource_t, soft: u64, hard: u64) -> std::io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: a valid resource and a pointer to a live rlimit.
    if unsafe { libc::setrlimit(resource, &limit) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Reads a pipe to its end (so the child never blocks on it), keeping `cap` bytes.
fn drain(mut pipe: impl Read + Send + 'static, cap: u64) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let _ = (&mut pipe).take(cap).read_to_end(&mut kept);
        let _ = std::io::copy(&mut pipe, &mut std::io::sink());
        kept
    })
}
