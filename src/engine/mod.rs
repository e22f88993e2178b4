//! The policy engine: loads ABI v1 policy modules (policy-sdk/ABI.md) and
//! evaluates them on wasmtime, sandboxed and limited, failing closed.

mod cache;
mod cache_key;
mod compile;
pub mod limits;
mod metadata;
mod outcome;
mod rego;
mod run;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use policy_sdk::Section;
use sha2::{Digest, Sha256};
use wasmtime::{Config, Engine, Linker, Module, WasmFeatures};

use crate::adapters::plan_view::PlanView;
pub use crate::builtins::BUILTIN_POLICIES;
use crate::builtins::{UnknownBuiltin, builtin};
pub use cache::{CacheStatus, ModuleCache};
pub use compile::{
    CHILD_ARG as COMPILE_CHILD_ARG, child_main as compile_child_main, compile_in_child,
};
pub use metadata::{METADATA_SECTION, Metadata};
pub use outcome::{Evaluation, Failure, FailureKind, LogLevel, LogLine, Outcome};
pub use rego::{
    DEFAULT_QUERY, RegoError, RegoFile, RegoMode, RegoSource, TEST_FAILED as REGO_TEST_FAILED,
    TEST_PASSED as REGO_TEST_PASSED, expand as expand_rego, read_files as read_rego_files,
    runtime_source as rego_runtime_source,
};
use run::HostState;

/// How often the epoch advances; deadlines are counted in these ticks.
const EPOCH_TICK: Duration = Duration::from_millis(10);

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("could not read policy module {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("policy module {origin} is not a valid policy: {reason}")]
    InvalidModule { origin: String, reason: String },
    #[error("policy module {origin} imports `{import}`, which is not allowed: {reason}")]
    ForbiddenImport {
        origin: String,
        import: String,
        reason: String,
    },
    #[error(
        "policy module {origin} is built for policy ABI version {found}; this opsdeploy implements version {}",
        policy_sdk::ABI_VERSION
    )]
    AbiMismatch { origin: String, found: String },
    #[error("policy module {origin} does not compile: {reason}")]
    Compile { origin: String, reason: String },
    #[error("policy module {origin} is refused before compiling: {reason}")]
    TooLarge { origin: String, reason: String },
    #[error("settings for policy `{policy}` do not match its settings schema: {problems}")]
    InvalidSettings { policy: String, problems: String },
    #[error("could not start the WebAssembly engine: {0}")]
    Engine(String),
    #[error("the Rego files of policy `{policy}` could not be read: {source}")]
    Rego { policy: String, source: RegoError },
}

/// Per-evaluation limits (ABI.md, "Limits").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub fuel: u64,
    pub memory_bytes: u64,
    pub timeout: Duration,
    pub output_bytes: usize,
}

/// The largest limits a configuration may set: beyond them a value is a
/// mistake (or an attempt to overflow a deadline), not a policy's need.
pub const MAX_FUEL: u64 = 1_000_000_000_000;
pub const MAX_MEMORY_BYTES: u64 = 4 << 30;
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

impl Limits {
    /// These limits with the ones given (configuration, flags) in their place.
    pub fn overridden(
        self,
        fuel: Option<u64>,
        memory_bytes: Option<u64>,
        timeout: Option<Duration>,
    ) -> Limits {
        Limits {
            fuel: fuel.unwrap_or(self.fuel),
            memory_bytes: memory_bytes.unwrap_or(self.memory_bytes),
            timeout: timeout.unwrap_or(self.timeout),
            output_bytes: self.output_bytes,
        }
    }

    /// Whether each limit that is set lies between the smallest useful value
    /// and the maximum above; an error names the setting and says why.
    pub fn check(
        fuel: Option<u64>,
        memory: Option<u64>,
        timeout: Option<Duration>,
    ) -> Result<(), (&'static str, String)> {
        if let Some(f) = fuel
            && !(1..=MAX_FUEL).contains(&f)
        {
            return Err((
                "fuel",
                format!("is {f}; it must be between 1 and {MAX_FUEL}"),
            ));
        }
        if let Some(m) = memory
            && !((64 << 10)..=MAX_MEMORY_BYTES).contains(&m)
        {
            return Err((
                "memory",
                format!(
                    "is {m} bytes; it must be between 64KiB (one page) and 4GiB (all a 32-bit policy can address)"
                ),
            ));
        }
        if let Some(t) = timeout
            && !(Duration::from_millis(1)..=MAX_TIMEOUT).contains(&t)
        {
            return Err((
                "timeout",
                format!("is {t:?}; it must be between 1ms and 1h"),
            ));
        }
        Ok(())
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: 20_000_000_000,
            memory_bytes: 256 << 20,
            timeout: Duration::from_secs(30),
            output_bytes: 16 << 20,
        }
    }
}

/// A loaded, compiled policy, ready to evaluate any number of times.
#[derive(Clone)]
pub struct Policy {
    /// From the metadata, else the file name.
    pub name: String,
    /// Where it came from: a path or `builtin:NAME`.
    pub origin: String,
    pub sha256: String,
    pub metadata: Option<Metadata>,
    /// Input sections passed to it; `None` means all (no metadata).
    pub reads: Option<Vec<Section>>,
    /// What of a terraform plan is passed to it (from its metadata).
    pub plan_view: PlanView,
    pub cache_status: CacheStatus,
    module: Module,
    settings_validator: Option<Arc<jsonschema::Validator>>,
    /// A Rego policy's program (JSON), given to the Rego runtime with each input.
    program: Option<Arc<str>>,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("name", &self.name)
            .field("origin", &self.origin)
            .field("sha256", &self.sha256)
            .finish_non_exhaustive()
    }
}

impl Policy {
    /// Validates a settings value against the policy's declared schema.
    pub fn check_settings(&self, settings: &serde_json::Value) -> Result<(), EngineError> {
        let Some(validator) = &self.settings_validator else {
            return Ok(());
        };
        let problems: Vec<String> = validator
            .iter_errors(settings)
            .map(|e| {
                let at = e.instance_path().to_string();
                if at.is_empty() {
                    e.to_string()
                } else {
                    format!("{at}: {e}")
                }
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(EngineError::InvalidSettings {
                policy: self.name.clone(),
                problems: problems.join("; "),
            })
        }
    }
}

/// One wasmtime engine, its host functions and the compiled-module cache.
pub struct PolicyEngine {
    engine: Engine,
    linker: Linker<HostState>,
    cache: Option<ModuleCache>,
    ticker_stop: Arc<AtomicBool>,
}

impl Drop for PolicyEngine {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

impl PolicyEngine {
    /// An engine caching compiled modules in `cache` (none: compile every time).
    pub fn new(cache: Option<ModuleCache>) -> Result<Self, EngineError> {
        let engine =
            Engine::new(&engine_config()).map_err(|e| EngineError::Engine(e.to_string()))?;
        let linker = run::linker(&engine).map_err(|e| EngineError::Engine(e.to_string()))?;
        let ticker_stop = Arc::new(AtomicBool::new(false));
        {
            let engine = engine.clone();
            let stop = ticker_stop.clone();
            std::thread::Builder::new()
                .name("opsdeploy-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(EPOCH_TICK);
                        engine.increment_epoch();
                    }
                })
                .map_err(|e| EngineError::Engine(e.to_string()))?;
        }
        Ok(PolicyEngine {
            engine,
            linker,
            cache,
            ticker_stop,
        })
    }

    /// An engine with the default on-disk cache, when a cache directory exists.
    pub fn with_default_cache() -> Result<Self, EngineError> {
        Self::new(ModuleCache::default_dir().map(ModuleCache::new))
    }

    pub fn cache(&self) -> Option<&ModuleCache> {
        self.cache.as_ref()
    }

    /// Loads a policy module with the default limits ([`Self::load_with`]).
    pub fn load(&self, source: &ModuleSource) -> Result<Policy, EngineError> {
        self.load_with(source, &Limits::default())
    }

    /// Loads a policy module: inspects imports, metadata and structure, then
    /// compiles it within `limits` (or loads it from the cache) and checks
    /// its exports.
    pub fn load_with(&self, source: &ModuleSource, limits: &Limits) -> Result<Policy, EngineError> {
        let (origin, bytes) = (source.origin.as_str(), &*source.bytes);
        let sha256 = source.sha256.clone();
        limits::check_structure(origin, bytes, limits)?;
        let inspection = metadata::inspect(origin, bytes)?;
        let reads = match &inspection.metadata {
            Some(meta) => Some(metadata::resolve_reads(origin, meta)?),
            None => None,
        };
        let plan_view = match &inspection.metadata {
            Some(meta) => metadata::resolve_plan_view(origin, meta)?,
            None => PlanView::default(),
        };
        let settings_validator = match inspection
            .metadata
            .as_ref()
            .and_then(|m| m.settings_schema.as_ref())
        {
            Some(schema) => Some(Arc::new(jsonschema::validator_for(schema).map_err(
                |e| EngineError::InvalidModule {
                    origin: origin.to_string(),
                    reason: format!("its settings_schema is not a valid JSON Schema: {e}"),
                },
            )?)),
            None => None,
        };
        let compile = || compile::compile(&self.engine, origin, bytes, limits);
        let (module, cache_status) = match &self.cache {
            Some(cache) => cache.load_or_compile(&self.engine, &sha256, compile)?,
            None => (compile()?.module, CacheStatus::Disabled),
        };
        run::check_exports(origin, &module)?;
        // A module names itself: shown escaped wherever it is printed.
        let name = inspection
            .metadata
            .as_ref()
            .map(|m| crate::escape::controls(&m.name).into_owned())
            .unwrap_or_else(|| source.fallback_name.clone());
        tracing::debug!(policy = %name, %origin, ?cache_status, "loaded policy");
        Ok(Policy {
            name,
            origin: origin.to_string(),
            sha256,
            metadata: inspection.metadata,
            reads,
            plan_view,
            cache_status,
            module,
            settings_validator,
            program: None,
        })
    }

    /// Evaluates one policy on one input document (already narrowed to the
    /// sections it reads). Never panics and never returns an error: every
    /// failure is an [`Outcome::Failed`], which callers treat as a denial.
    pub fn evaluate(&self, policy: &Policy, input: &[u8], limits: &Limits) -> Evaluation {
        self.evaluate_parts(policy, &[input], limits)
    }

    /// [`PolicyEngine::evaluate`] on the input document made of `parts` laid
    /// end to end, written straight into the instance's memory: a document
    /// spliced around a large plan is never assembled on the host.
    pub fn evaluate_parts(&self, policy: &Policy, parts: &[&[u8]], limits: &Limits) -> Evaluation {
        match &policy.program {
            // The Rego runtime reads its program's line, then the document.
            Some(program) => {
                let wrapped = rego::wrap(program, parts);
                run::evaluate(&self.engine, &self.linker, policy, &wrapped, limits)
            }
            None => run::evaluate(&self.engine, &self.linker, policy, parts, limits),
        }
    }

    /// Evaluates independent policies in parallel, each on its input parts;
    /// results keep the order of `jobs`.
    pub fn evaluate_all(&self, jobs: &[(&Policy, Vec<&[u8]>, Limits)]) -> Vec<Evaluation> {
        use rayon::prelude::*;
        jobs.par_iter()
            .map(|(policy, parts, limits)| self.evaluate_parts(policy, parts, limits))
            .collect()
    }
}

/// The metadata a module carries, read without compiling it.
pub fn inspect_metadata(origin: &str, bytes: &[u8]) -> Result<Option<Metadata>, EngineError> {
    metadata::inspect(origin, bytes).map(|i| i.metadata)
}

/// A policy module's bytes and where they came from, before loading.
#[derive(Debug, Clone)]
pub struct ModuleSource {
    /// A path or `builtin:NAME`.
    pub origin: String,
    /// The name used when the module carries no metadata: the file stem.
    pub fallback_name: String,
    pub bytes: std::borrow::Cow<'static, [u8]>,
    pub sha256: String,
}

impl ModuleSource {
    pub fn from_bytes(
        origin: &str,
        fallback_name: &str,
        bytes: std::borrow::Cow<'static, [u8]>,
    ) -> Self {
        ModuleSource {
            origin: origin.to_string(),
            fallback_name: fallback_name.to_string(),
            sha256: hex::encode(Sha256::digest(&bytes)),
            bytes,
        }
    }

    /// Reads a `.wasm` file.
    pub fn read(path: &Path) -> Result<Self, EngineError> {
        let bytes = std::fs::read(path).map_err(|source| EngineError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().replace('_', "-"))
            .unwrap_or_else(|| "policy".into());
        Ok(Self::from_bytes(
            &path.display().to_string(),
            &stem,
            bytes.into(),
        ))
    }

    /// A built-in policy by name.
    pub fn builtin(name: &str) -> Result<Self, UnknownBuiltin> {
        builtin(name).map(|b| Self::from_bytes(&format!("builtin:{name}"), name, b.into()))
    }
}

impl EngineError {
    /// The module itself is unusable (as opposed to unreadable, or the
    /// project's settings being wrong): a denial when a deploy depends on it.
    pub fn is_policy_defect(&self) -> bool {
        matches!(
            self,
            EngineError::InvalidModule { .. }
                | EngineError::ForbiddenImport { .. }
                | EngineError::AbiMismatch { .. }
                | EngineError::Compile { .. }
                | EngineError::TooLarge { .. }
        )
    }
}

/// The WebAssembly features policies may use (ABI.md, "WebAssembly features"),
/// set one by one so a wasmtime upgrade changing its defaults changes nothing
/// here: WebAssembly 2.0 (what rustc, clang, Zig and AssemblyScript emit by
/// default) plus extended constant expressions; everything else is refused at
/// load, notably threads and relaxed SIMD, whose results may differ by machine.
/// Not GC types (`externref` values): wasmtime is built without GC support.
pub const WASM_FEATURES: WasmFeatures = WasmFeatures::WASM2
    .union(WasmFeatures::EXTENDED_CONST)
    .difference(WasmFeatures::GC_TYPES);

fn pin_features(config: &mut Config) {
    for flag in WasmFeatures::all().iter() {
        config.wasm_features(flag, WASM_FEATURES.contains(flag));
    }
}

/// Whole epoch ticks covering `timeout` (at least one, at most what a
/// deadline added to the epoch counter cannot overflow).
fn deadline_ticks(timeout: Duration) -> u64 {
    let ticks = timeout.as_nanos().div_ceil(EPOCH_TICK.as_nanos());
    u64::try_from(ticks)
        .unwrap_or(u64::MAX)
        .clamp(1, u64::MAX / 2)
}

/// The engine configuration, the same in every process that compiles or runs
/// policies (the compile child's artifacts must load in the parent).
fn engine_config() -> Config {
    let mut config = Config::new();
    pin_features(&mut config);
    config
        .consume_fuel(true)
        .epoch_interruption(true)
        // Same result on every machine: no NaN bit patterns or relaxed-SIMD
        // choices that differ by CPU.
        .cranelift_nan_canonicalization(true)
        .relaxed_simd_deterministic(true);
    config
}
