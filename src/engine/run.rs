//! One evaluation: a fresh store and instance, the ABI v1 call sequence, and
//! every way it can fail turned into a [`Failure`].

use std::time::Instant;

use policy_sdk::Output;
use wasmtime::{
    Caller, Engine, Extern, ExternType, Linker, Module, ResourceLimiter, Store, Trap, ValType,
};

use super::limits::TABLE_ELEMENT_BYTES;
use super::metadata::HOST_MODULE;
use super::outcome::{Evaluation, Failure, FailureKind, LogLevel, LogLine, Outcome};
use super::{EngineError, Limits, Policy, deadline_ticks};

/// Log bytes kept per evaluation; more is dropped with a note.
const LOG_CAP: usize = 64 << 10;

pub struct HostState {
    limits: Limits,
    output: Option<Vec<u8>>,
    /// Set by a host function or the limiter just before it traps, so the
    /// failure is reported precisely rather than as a generic trap.
    failure: Option<Failure>,
    /// Message from `opsdeploy.fail`.
    fail_message: Option<String>,
    logs: Vec<LogLine>,
    log_bytes: usize,
    /// Linear memory and tables (at [`TABLE_ELEMENT_BYTES`] an element): both
    /// count toward the memory limit.
    memory_bytes: u64,
}

impl HostState {
    fn fail_with(&mut self, kind: FailureKind, reason: String) -> wasmtime::Error {
        let err = wasmtime::Error::msg(reason.clone());
        self.failure.get_or_insert(Failure { kind, reason });
        err
    }

    /// Accounts a memory or table growing from `current` to `desired` bytes.
    fn grow(&mut self, what: &str, current: u64, desired: u64) -> wasmtime::Result<bool> {
        let total = self.memory_bytes - current.min(self.memory_bytes) + desired;
        if total > self.limits.memory_bytes {
            return Err(self.fail_with(
                FailureKind::MemoryLimit,
                format!(
                    "needed {} of memory ({what} growing), over the limit of {}",
                    bytes(total),
                    bytes(self.limits.memory_bytes)
                ),
            ));
        }
        self.memory_bytes = total;
        Ok(true)
    }
}

impl ResourceLimiter for HostState {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.grow("memory", current as u64, desired as u64)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let size = |elements: usize| (elements as u64).saturating_mul(TABLE_ELEMENT_BYTES);
        self.grow("a table", size(current), size(desired))
    }
}

fn bytes(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64)
    } else {
        format!("{n} bytes")
    }
}

/// Copies `len` bytes at `ptr` out of the caller's `memory`.
fn read_guest(caller: &mut Caller<'_, HostState>, ptr: i32, len: i32) -> Result<Vec<u8>, String> {
    let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
        return Err("the module exports no memory".into());
    };
    let data = memory.data(&caller);
    let (start, len) = (ptr as u32 as usize, len as u32 as usize);
    match start.checked_add(len) {
        Some(end) if end <= data.len() => Ok(data[start..end].to_vec()),
        _ => Err(format!(
            "bytes {start}..{} lie outside its memory of {} bytes",
            start as u64 + len as u64,
            data.len()
        )),
    }
}

pub fn linker(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    linker.func_wrap(
        HOST_MODULE,
        "set_output",
        |mut caller: Caller<'_, HostState>, ptr: i32, len: i32| -> wasmtime::Result<()> {
            let cap = caller.data().limits.output_bytes;
            let state_err = |caller: &mut Caller<'_, HostState>, kind, reason| {
                Err(caller.data_mut().fail_with(kind, reason))
            };
            if caller.data().output.is_some() {
                return state_err(
                    &mut caller,
                    FailureKind::MalformedOutput,
                    "it called opsdeploy.set_output twice".into(),
                );
            }
            if len as u32 as usize > cap {
                return state_err(
                    &mut caller,
                    FailureKind::OutputTooLarge,
                    format!(
                        "its output of {} exceeds the limit of {}",
                        bytes(len as u32 as u64),
                        bytes(cap as u64)
                    ),
                );
            }
            match read_guest(&mut caller, ptr, len) {
                Ok(out) => {
                    caller.data_mut().output = Some(out);
                    Ok(())
                }
                Err(e) => state_err(
                    &mut caller,
                    FailureKind::MalformedOutput,
                    format!("its output pointer is invalid: {e}"),
                ),
            }
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        "log",
        |mut caller: Caller<'_, HostState>,
         level: i32,
         ptr: i32,
         len: i32|
         -> wasmtime::Result<()> {
            let state = caller.data();
            if state.log_bytes >= LOG_CAP {
                return Ok(());
            }
            let message = match read_guest(&mut caller, ptr, len) {
                Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                Err(e) => format!("(unreadable log line: {e})"),
            };
            let state = caller.data_mut();
            state.log_bytes += message.len();
            let level = match level {
                0 => LogLevel::Debug,
                1 => LogLevel::Info,
                _ => LogLevel::Warn,
            };
            if state.log_bytes >= LOG_CAP {
                state.logs.push(LogLine {
                    level: LogLevel::Warn,
                    message: format!("log limit of {LOG_CAP} bytes reached; further lines dropped"),
                });
            } else {
                state.logs.push(LogLine { level, message });
            }
            Ok(())
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        "fail",
        |mut caller: Caller<'_, HostState>, ptr: i32, len: i32| -> wasmtime::Result<()> {
            let message = match read_guest(&mut caller, ptr, len.min(LOG_CAP as i32)) {
                Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                Err(e) => format!("(unreadable failure message: {e})"),
            };
            caller.data_mut().fail_message.get_or_insert(message);
            Ok(())
        },
    )?;
    Ok(linker)
}

/// A reactor's initializer (WASI's convention, e.g. AssemblyScript's
/// `--exportStart _initialize`): called once, before anything else, when exported.
const INITIALIZE: &str = "_initialize";

/// The exports ABI v1 requires, with their signatures.
const EXPORTS: &[(&str, &[ValType], &[ValType])] = &[
    ("opsdeploy_abi_version", &[], &[ValType::I32]),
    ("opsdeploy_alloc", &[ValType::I32], &[ValType::I32]),
    (
        "opsdeploy_evaluate",
        &[ValType::I32, ValType::I32],
        &[ValType::I32],
    ),
];

pub fn check_exports(origin: &str, module: &Module) -> Result<(), EngineError> {
    let invalid = |reason: String| EngineError::InvalidModule {
        origin: origin.to_string(),
        reason,
    };
    match module.get_export("memory") {
        Some(ExternType::Memory(_)) => {}
        _ => return Err(invalid("it does not export `memory`".into())),
    }
    if let Some(ty) = module.get_export(INITIALIZE) {
        let ok =
            matches!(&ty, ExternType::Func(f) if f.params().len() == 0 && f.results().len() == 0);
        if !ok {
            return Err(invalid(format!(
                "its export `{INITIALIZE}` must be a function () -> ()"
            )));
        }
    }
    for (name, params, results) in EXPORTS {
        let sig_ok = match module.get_export(name) {
            Some(ExternType::Func(f)) => {
                let same = |a: &mut dyn ExactSizeIterator<Item = ValType>, b: &[ValType]| {
                    a.len() == b.len() && a.zip(b).all(|(x, y)| ValType::eq(&x, y))
                };
                same(&mut f.params(), params) && same(&mut f.results(), results)
            }
            Some(_) => false,
            None => return Err(invalid(format!("it does not export `{name}`"))),
        };
        if !sig_ok {
            return Err(invalid(format!(
                "its export `{name}` must have the signature ({}) -> ({})",
                vec!["i32"; params.len()].join(", "),
                vec!["i32"; results.len()].join(", ")
            )));
        }
    }
    Ok(())
}

pub fn evaluate(
    engine: &Engine,
    linker: &Linker<HostState>,
    policy: &Policy,
    input: &[&[u8]],
    limits: &Limits,
) -> Evaluation {
    let started = Instant::now();
    let mut store = Store::new(
        engine,
        HostState {
            limits: *limits,
            output: None,
            failure: None,
            fail_message: None,
            logs: Vec::new(),
            log_bytes: 0,
            memory_bytes: 0,
        },
    );
    store.limiter(|s| s as &mut dyn ResourceLimiter);
    let outcome = match store.set_fuel(limits.fuel) {
        Ok(()) => {
            store.set_epoch_deadline(deadline_ticks(limits.timeout));
            store.epoch_deadline_trap();
            match call_sequence(&mut store, linker, &policy.module, input) {
                Ok(violations) => Outcome::Completed { violations },
                Err(failure) => Outcome::Failed(failure),
            }
        }
        Err(e) => Outcome::Failed(Failure {
            kind: FailureKind::Instantiate,
            reason: e.to_string(),
        }),
    };
    // wasmtime keeps the fuel counter in a register inside a loop and saves it
    // only at calls, so after a deadline interrupt the stored count can be far
    // behind (a tight loop reads as a handful of units): unknown, not a guess.
    let fuel_used = match &outcome {
        Outcome::Failed(f) if f.kind == FailureKind::Timeout => None,
        _ => Some(limits.fuel - store.get_fuel().unwrap_or(0).min(limits.fuel)),
    };
    let outcome = match outcome {
        Outcome::Failed(mut f) if f.kind == FailureKind::OutOfFuel => {
            f.reason = format!("ran out of fuel (limit {} units)", limits.fuel);
            Outcome::Failed(f)
        }
        other => other,
    };
    let state = store.into_data();
    // What a policy logs may quote the plan's sensitive values: -v says how
    // much it logged, the lines stay in the (scrubbed) results.
    if !state.logs.is_empty() {
        tracing::debug!(
            policy = %policy.name,
            lines = state.logs.len(),
            bytes = state.log_bytes,
            "policy logged"
        );
    }
    Evaluation {
        policy: policy.name.clone(),
        sha256: policy.sha256.clone(),
        outcome,
        fuel_used,
        duration_ms: started.elapsed(),
        logs: state.logs,
    }
}

fn call_sequence(
    store: &mut Store<HostState>,
    linker: &Linker<HostState>,
    module: &Module,
    input: &[&[u8]],
) -> Result<Vec<policy_sdk::Violation>, Failure> {
    let fail = |kind, reason: String| Failure { kind, reason };
    // Instantiation runs the module's start function, if it has one.
    let instance = linker
        .instantiate(&mut *store, module)
        .map_err(|e| classify(store, e, FailureKind::Instantiate))?;
    if let Ok(init) = instance.get_typed_func::<(), ()>(&mut *store, INITIALIZE) {
        init.call(&mut *store, ())
            .map_err(|e| classify(store, e, FailureKind::Trap))?;
    }
    let abi = instance
        .get_typed_func::<(), i32>(&mut *store, "opsdeploy_abi_version")
        .map_err(|e| fail(FailureKind::Instantiate, e.to_string()))?;
    let alloc = instance
        .get_typed_func::<i32, i32>(&mut *store, "opsdeploy_alloc")
        .map_err(|e| fail(FailureKind::Instantiate, e.to_string()))?;
    let evaluate = instance
        .get_typed_func::<(i32, i32), i32>(&mut *store, "opsdeploy_evaluate")
        .map_err(|e| fail(FailureKind::Instantiate, e.to_string()))?;
    let memory = instance
        .get_memory(&mut *store, "memory")
        .ok_or_else(|| fail(FailureKind::Instantiate, "no exported memory".into()))?;

    let version = abi
        .call(&mut *store, ())
        .map_err(|e| classify(store, e, FailureKind::Trap))?;
    if version as u32 != policy_sdk::ABI_VERSION {
        return Err(fail(
            FailureKind::AbiMismatch,
            format!(
                "it implements policy ABI version {version}; this opsdeploy implements version {}",
                policy_sdk::ABI_VERSION
            ),
        ));
    }
    let total: usize = input.iter().map(|p| p.len()).sum();
    let len = i32::try_from(total).map_err(|_| {
        fail(
            FailureKind::MemoryLimit,
            format!(
                "its input of {} does not fit a 32-bit memory",
                bytes(total as u64)
            ),
        )
    })?;
    let ptr = alloc
        .call(&mut *store, len)
        .map_err(|e| classify(store, e, FailureKind::Trap))?;
    let no_room = || {
        fail(
            FailureKind::Instantiate,
            format!(
                "opsdeploy_alloc({len}) returned {}, which does not leave room for the input in its memory",
                ptr as u32
            ),
        )
    };
    let start = ptr as u32 as usize;
    let dest = memory
        .data_mut(&mut *store)
        .get_mut(start..start + total)
        .ok_or_else(no_room)?;
    let mut at = 0;
    for part in input {
        dest[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    let status = evaluate
        .call(&mut *store, (ptr, len))
        .map_err(|e| classify(store, e, FailureKind::Trap))?;

    let state = store.data_mut();
    if let Some(message) = state.fail_message.take() {
        return Err(fail(FailureKind::Panic, message));
    }
    if status != 0 {
        return Err(fail(
            FailureKind::Status,
            format!("opsdeploy_evaluate returned status {status}"),
        ));
    }
    let Some(output) = state.output.take() else {
        return Err(fail(
            FailureKind::NoOutput,
            "it returned without calling opsdeploy.set_output".into(),
        ));
    };
    parse_output(&output)
}

/// Turns a wasmtime error into the most precise failure known.
fn classify(store: &mut Store<HostState>, err: wasmtime::Error, default: FailureKind) -> Failure {
    let state = store.data_mut();
    if let Some(failure) = state.failure.take() {
        return failure;
    }
    if let Some(message) = state.fail_message.take() {
        return Failure {
            kind: FailureKind::Panic,
            reason: message,
        };
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => Failure {
            kind: FailureKind::OutOfFuel,
            reason: "ran out of fuel".into(),
        },
        Some(Trap::Interrupt) => Failure {
            kind: FailureKind::Timeout,
            reason: format!(
                "did not finish within its deadline of {:?}",
                state.limits.timeout
            ),
        },
        Some(Trap::StackOverflow) => Failure {
            kind: FailureKind::Trap,
            reason: "trapped: call stack exhausted (unbounded recursion?)".into(),
        },
        Some(trap) => Failure {
            kind: FailureKind::Trap,
            reason: format!("trapped: {trap}"),
        },
        None => Failure {
            kind: default,
            reason: format!("{err:#}"),
        },
    }
}

fn parse_output(output: &[u8]) -> Result<Vec<policy_sdk::Violation>, Failure> {
    let malformed = |reason: String| Failure {
        kind: FailureKind::MalformedOutput,
        reason,
    };
    let text = std::str::from_utf8(output)
        .map_err(|e| malformed(format!("its output is not UTF-8: {e}")))?;
    let parsed: Output = serde_json::from_str(text).map_err(|e| {
        malformed(format!(
            "its output is not a result document ({{\"violations\": [...]}}): {e}"
        ))
    })?;
    if let Some(i) = parsed
        .violations
        .iter()
        .position(|v| v.rule.trim().is_empty())
    {
        return Err(malformed(format!(
            "violation {i} of its output has an empty rule id"
        )));
    }
    Ok(parsed.violations)
}
