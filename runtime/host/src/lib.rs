//! The wasmtime host that executes market contracts deterministically.
//!
//! Owns: the deterministic engine configuration, validation of contract code, the cache of
//! compiled modules, the host functions of `v2v_abi::host`, fuel metering and the memory
//! limiter. It does not own chain state: a call borrows the contract storage by value
//! ([`ContractStorage`] is moved in and handed back), records its writes in an overlay and
//! returns them, so a failed call leaves nothing behind.
#![forbid(unsafe_code)]

mod host_fns;
mod overlay;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use thiserror::Error;
use v2v_abi::host::{STATUS_ERROR, STATUS_OK, export};
use wasmtime::{Config, Engine, ExternType, InstancePre, Linker, Module, Store, Trap, ValType};

pub use overlay::Overlay;
pub use v2v_primitives::{ContractStorage, StorageIter};

/// Limits applied to every contract call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Fuel (roughly: Wasm instructions plus host-call charges) per call.
    pub fuel_per_call: u64,
    /// Largest linear memory a call may grow to, in bytes.
    pub memory_bytes: usize,
    /// Largest contract code accepted, in bytes.
    pub max_code_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            fuel_per_call: 50_000_000,
            memory_bytes: 64 * 1024 * 1024,
            max_code_bytes: 4 * 1024 * 1024,
        }
    }
}

/// Why contract code was refused.
#[derive(Debug, Error)]
pub enum LoadError {
    #[error("contract code is {len} bytes, the limit is {max}")]
    TooLarge { len: usize, max: usize },
    #[error("contract code does not compile: {0}")]
    Compile(String),
    #[error("contract imports '{module}::{name}', which the host does not provide")]
    ForbiddenImport { module: String, name: String },
    #[error("contract does not export '{0}' with the expected type")]
    MissingExport(&'static str),
    #[error("contract cannot be instantiated: {0}")]
    Instantiate(String),
    #[error("contract version call failed: {0}")]
    Version(String),
}

/// Why a call failed. Each is recorded in the transaction's receipt.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum ExecError {
    /// The contract rejected the call (its message).
    #[error("{0}")]
    Contract(String),
    #[error("out of fuel (limit {0})")]
    OutOfFuel(u64),
    #[error("memory limit of {0} bytes exceeded")]
    MemoryLimit(usize),
    #[error("wasm stack overflow")]
    StackOverflow,
    #[error("contract trapped: {0}")]
    Trap(String),
    #[error("host call rejected: {0}")]
    HostCall(String),
}

/// Which entry point to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// Genesis (`v2v_init`).
    Init,
    /// A transaction (`v2v_call`).
    Call,
    /// A read-only query (`v2v_query`); its writes are discarded.
    Query,
    /// The migration of new code taking over (`v2v_migrate`, optional: see
    /// [`Contract::has_migrate`]).
    Migrate,
}

impl Entry {
    fn export(self) -> &'static str {
        match self {
            Entry::Init => export::INIT,
            Entry::Call => export::CALL,
            Entry::Query => export::QUERY,
            Entry::Migrate => export::MIGRATE,
        }
    }
}

/// Who calls, and in which block.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallContext {
    pub caller: [u8; 32],
    pub height: u64,
    pub timestamp: u64,
}

/// What a call produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The entry point's output, or why it failed.
    pub result: Result<Vec<u8>, ExecError>,
    /// The storage writes (`None` = removed); empty when the call failed.
    pub writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Events emitted (JSON objects); empty when the call failed.
    pub events: Vec<String>,
    pub fuel_used: u64,
}

/// Compiled, validated contract code.
pub struct Contract {
    code_hash: [u8; 32],
    version: u32,
    has_migrate: bool,
    pre: InstancePre<host_fns::HostState>,
}

impl std::fmt::Debug for Contract {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Contract")
            .field("code_hash", &v2v_abi::genesis::to_hex(&self.code_hash))
            .field("version", &self.version)
            .finish()
    }
}

impl Contract {
    pub fn code_hash(&self) -> [u8; 32] {
        self.code_hash
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    /// Whether the code exports a migration entry point (`v2v_migrate`).
    pub fn has_migrate(&self) -> bool {
        self.has_migrate
    }
}

/// The Wasm engine, its host functions and the compiled-module cache. Cheap to share.
#[derive(Clone)]
pub struct Runtime {
    engine: Engine,
    linker: Arc<Linker<host_fns::HostState>>,
    limits: Limits,
    cache: Arc<Mutex<BTreeMap<[u8; 32], Arc<Contract>>>>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("limits", &self.limits)
            .finish()
    }
}

/// The deterministic configuration (see wasmtime's "deterministic execution" guide): canonical
/// NaNs, no threads (the `threads` feature is not even compiled in), no SIMD (relaxed SIMD is nondeterministic across CPUs), fuel rather than
/// epochs, and a bounded stack.
fn deterministic_config() -> Config {
    let mut c = Config::new();
    c.consume_fuel(true)
        .cranelift_nan_canonicalization(true)
        .wasm_relaxed_simd(false)
        .wasm_simd(false)
        .wasm_multi_memory(false)
        .wasm_memory64(false)
        .max_wasm_stack(512 * 1024);
    c
}

impl Runtime {
    pub fn new(limits: Limits) -> Result<Self, LoadError> {
        let engine = Engine::new(&deterministic_config())
            .map_err(|e| LoadError::Compile(format!("engine: {e}")))?;
        let mut linker = Linker::new(&engine);
        host_fns::define(&mut linker).map_err(|e| LoadError::Compile(format!("linker: {e}")))?;
        Ok(Self {
            engine,
            linker: Arc::new(linker),
            limits,
            cache: Arc::new(Mutex::new(BTreeMap::new())),
        })
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Validates and compiles contract code, or returns the cached compilation.
    pub fn load(&self, wasm: &[u8]) -> Result<Arc<Contract>, LoadError> {
        let code_hash = *blake3::hash(wasm).as_bytes();
        if let Some(c) = self.lock_cache().get(&code_hash) {
            return Ok(c.clone());
        }
        if wasm.len() > self.limits.max_code_bytes {
            return Err(LoadError::TooLarge {
                len: wasm.len(),
                max: self.limits.max_code_bytes,
            });
        }
        let module = Module::from_binary(&self.engine, wasm)
            .map_err(|e| LoadError::Compile(e.to_string()))?;
        for import in module.imports() {
            let known = import.module() == v2v_abi::host::IMPORT_MODULE
                && v2v_abi::host::import::ALL.contains(&import.name());
            if !known {
                return Err(LoadError::ForbiddenImport {
                    module: import.module().into(),
                    name: import.name().into(),
                });
            }
        }
        let has_migrate = check_exports(&module)?;
        let pre = self
            .linker
            .instantiate_pre(&module)
            .map_err(|e| LoadError::Instantiate(e.to_string()))?;
        let version = self.read_version(&pre)?;
        let contract = Arc::new(Contract {
            code_hash,
            version,
            has_migrate,
            pre,
        });
        self.lock_cache().insert(code_hash, contract.clone());
        Ok(contract)
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, BTreeMap<[u8; 32], Arc<Contract>>> {
        // A panic while holding this lock cannot leave the map inconsistent (single inserts).
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn read_version(&self, pre: &InstancePre<host_fns::HostState>) -> Result<u32, LoadError> {
        let mut store = self.new_store(host_fns::HostState::empty());
        store
            .set_fuel(1_000_000)
            .map_err(|e| LoadError::Version(e.to_string()))?;
        let instance = pre
            .instantiate(&mut store)
            .map_err(|e| LoadError::Instantiate(e.to_string()))?;
        let f = instance
            .get_typed_func::<(), i32>(&mut store, export::VERSION)
            .map_err(|_| LoadError::MissingExport(export::VERSION))?;
        let v = f
            .call(&mut store, ())
            .map_err(|e| LoadError::Version(e.to_string()))?;
        u32::try_from(v).map_err(|_| LoadError::Version(format!("negative version {v}")))
    }

    fn new_store(&self, state: host_fns::HostState) -> Store<host_fns::HostState> {
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        store
    }

    /// Runs `entry` with `input` against `storage`, which is handed back with the outcome.
    /// The storage itself is never modified: the writes come back in the outcome.
    pub fn run(
        &self,
        contract: &Contract,
        storage: ContractStorage,
        ctx: CallContext,
        entry: Entry,
        input: Vec<u8>,
    ) -> (ContractStorage, Outcome) {
        let fuel = self.limits.fuel_per_call;
        let state = host_fns::HostState::new(storage, ctx, input, self.limits.memory_bytes);
        let mut store = self.new_store(state);
        let run = (|| -> Result<i32, wasmtime::Error> {
            store.set_fuel(fuel)?;
            let instance = contract.pre.instantiate(&mut store)?;
            let f = instance.get_typed_func::<(), i32>(&mut store, entry.export())?;
            f.call(&mut store, ())
        })();
        let fuel_used = fuel.saturating_sub(store.get_fuel().unwrap_or(0));
        let state = store.into_data();
        let memory_hit = state.limiter.exceeded;
        let (storage, overlay, events, output) = state.into_parts();
        let result = match run {
            Ok(STATUS_OK) => Ok(output),
            Ok(STATUS_ERROR) => Err(ExecError::Contract(
                String::from_utf8_lossy(&output).into_owned(),
            )),
            Ok(other) => Err(ExecError::Trap(format!(
                "entry point returned status {other}"
            ))),
            Err(e) => Err(classify(&e, fuel, memory_hit, self.limits.memory_bytes)),
        };
        let outcome = match result {
            Ok(out) if entry != Entry::Query => Outcome {
                result: Ok(out),
                writes: overlay.into_writes(),
                events,
                fuel_used,
            },
            other => Outcome {
                result: other,
                writes: BTreeMap::new(),
                events: Vec::new(),
                fuel_used,
            },
        };
        (storage, outcome)
    }
}

fn classify(e: &wasmtime::Error, fuel: u64, memory_hit: bool, memory_bytes: usize) -> ExecError {
    if let Some(h) = e.downcast_ref::<host_fns::HostCallError>() {
        return ExecError::HostCall(h.0.clone());
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => ExecError::OutOfFuel(fuel),
        Some(Trap::StackOverflow) => ExecError::StackOverflow,
        // A failed allocation aborts (traps) inside the contract: report the real cause.
        Some(_) | None if memory_hit => ExecError::MemoryLimit(memory_bytes),
        Some(t) => ExecError::Trap(t.to_string()),
        None => ExecError::Trap(e.to_string()),
    }
}

/// Checks the required exports; returns whether the optional migration entry is exported.
fn check_exports(module: &Module) -> Result<bool, LoadError> {
    let func_ok = |name: &'static str, results: &[ValType]| -> Result<(), LoadError> {
        match module.get_export(name) {
            Some(ExternType::Func(f))
                if f.params().len() == 0
                    && f.results().len() == results.len()
                    && f.results().zip(results).all(|(a, b)| a.matches(b)) =>
            {
                Ok(())
            }
            _ => Err(LoadError::MissingExport(name)),
        }
    };
    match module.get_export(export::MEMORY) {
        Some(ExternType::Memory(_)) => {}
        _ => return Err(LoadError::MissingExport(export::MEMORY)),
    }
    for name in [export::VERSION, export::INIT, export::CALL, export::QUERY] {
        func_ok(name, &[ValType::I32])?;
    }
    match module.get_export(export::MIGRATE) {
        None => Ok(false),
        Some(_) => func_ok(export::MIGRATE, &[ValType::I32]).map(|()| true),
    }
}
