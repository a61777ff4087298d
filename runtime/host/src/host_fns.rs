//! The host functions of `v2v_abi::host::import`, their fuel charges and the memory limiter.

use std::fmt;

use v2v_abi::host::{
    IMPORT_MODULE, MAX_EVENT_LEN, MAX_KEY_LEN, MAX_OUTPUT_LEN, MAX_VALUE_LEN, RESERVED_KEY_PREFIX,
    import,
};
use wasmtime::{Caller, Extern, Linker, Memory, ResourceLimiter, Trap};

use crate::CallContext;
use crate::overlay::Overlay;
use v2v_primitives::ContractStorage;

/// Fuel charged per host call, on top of the Wasm instructions that led to it.
const CALL_FUEL: u64 = 100;
/// Fuel per byte read from storage or copied across the boundary.
const READ_BYTE_FUEL: u64 = 1;
/// Fuel per byte written to storage: writes grow every replica's state, so they cost more.
const WRITE_BYTE_FUEL: u64 = 10;

/// A contract misused a host function (bad pointer, oversized key, ...): the call traps.
#[derive(Debug)]
pub(crate) struct HostCallError(pub String);

impl fmt::Display for HostCallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HostCallError {}

fn fail(msg: impl Into<String>) -> wasmtime::Error {
    wasmtime::Error::new(HostCallError(msg.into()))
}

/// Bounds linear memory and tables; remembers whether the bound was hit so that the trap the
/// contract then raises (a failed allocation aborts) is reported as what it is.
#[derive(Debug)]
pub(crate) struct Limiter {
    memory_bytes: usize,
    pub(crate) exceeded: bool,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.exceeded = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }

    fn instances(&self) -> usize {
        1
    }

    fn memories(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        4
    }
}

/// Everything one call's store holds.
pub(crate) struct HostState {
    base: ContractStorage,
    overlay: Overlay,
    ctx: CallContext,
    input: Vec<u8>,
    output: Vec<u8>,
    ret: Vec<u8>,
    events: Vec<String>,
    pub(crate) limiter: Limiter,
}

impl fmt::Debug for HostState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostState").field("ctx", &self.ctx).finish()
    }
}

impl HostState {
    pub(crate) fn new(
        base: ContractStorage,
        ctx: CallContext,
        input: Vec<u8>,
        memory_bytes: usize,
    ) -> Self {
        Self {
            base,
            overlay: Overlay::default(),
            ctx,
            input,
            output: Vec::new(),
            ret: Vec::new(),
            events: Vec::new(),
            limiter: Limiter {
                memory_bytes,
                exceeded: false,
            },
        }
    }

    pub(crate) fn empty() -> Self {
        Self::new(
            ContractStorage::new(),
            CallContext::default(),
            Vec::new(),
            16 * 1024 * 1024,
        )
    }

    pub(crate) fn into_parts(self) -> (ContractStorage, Overlay, Vec<String>, Vec<u8>) {
        (self.base, self.overlay, self.events, self.output)
    }
}

fn memory(caller: &mut Caller<'_, HostState>) -> wasmtime::Result<Memory> {
    match caller.get_export(v2v_abi::host::export::MEMORY) {
        Some(Extern::Memory(m)) => Ok(m),
        _ => Err(fail("contract has no exported memory")),
    }
}

fn charge(caller: &mut Caller<'_, HostState>, amount: u64) -> wasmtime::Result<()> {
    let left = caller.get_fuel()?;
    if left < amount {
        caller.set_fuel(0)?;
        return Err(wasmtime::Error::new(Trap::OutOfFuel));
    }
    caller.set_fuel(left - amount)?;
    Ok(())
}

fn to_usize(v: i32, what: &str) -> wasmtime::Result<usize> {
    usize::try_from(v).map_err(|_| fail(format!("negative {what}")))
}

/// Copies `len` bytes at `ptr` out of the contract's memory, bounds-checked.
fn read_bytes(
    caller: &mut Caller<'_, HostState>,
    ptr: i32,
    len: i32,
    max: usize,
    what: &str,
) -> wasmtime::Result<Vec<u8>> {
    let len = to_usize(len, what)?;
    if len > max {
        return Err(fail(format!(
            "{what} of {len} bytes exceeds the limit of {max}"
        )));
    }
    charge(caller, CALL_FUEL + READ_BYTE_FUEL * len as u64)?;
    let ptr = u32::try_from(ptr).map_err(|_| fail(format!("bad {what} pointer")))? as usize;
    let mem = memory(caller)?;
    let mut buf = vec![0u8; len];
    mem.read(&*caller, ptr, &mut buf)
        .map_err(|_| fail(format!("{what} lies outside the contract's memory")))?;
    Ok(buf)
}

fn write_bytes(caller: &mut Caller<'_, HostState>, ptr: i32, bytes: &[u8]) -> wasmtime::Result<()> {
    charge(caller, CALL_FUEL + READ_BYTE_FUEL * bytes.len() as u64)?;
    let ptr = u32::try_from(ptr).map_err(|_| fail("bad destination pointer"))? as usize;
    let mem = memory(caller)?;
    mem.write(&mut *caller, ptr, bytes)
        .map_err(|_| fail("destination lies outside the contract's memory"))
}

/// Puts `value` in the return buffer and returns its length, or -1 for none.
fn set_return(caller: &mut Caller<'_, HostState>, value: Option<Vec<u8>>) -> wasmtime::Result<i64> {
    match value {
        None => Ok(-1),
        Some(v) => {
            charge(caller, READ_BYTE_FUEL * v.len() as u64)?;
            let len = v.len() as i64;
            caller.data_mut().ret = v;
            Ok(len)
        }
    }
}

fn reserved() -> wasmtime::Error {
    fail("storage keys starting with ':' belong to the node")
}

/// Reads a storage key the contract passed; the node's own keys are out of its reach.
fn contract_key(
    caller: &mut Caller<'_, HostState>,
    ptr: i32,
    len: i32,
) -> wasmtime::Result<Vec<u8>> {
    let key = read_bytes(caller, ptr, len, MAX_KEY_LEN, "key")?;
    if key.first() == Some(&RESERVED_KEY_PREFIX) {
        return Err(reserved());
    }
    Ok(key)
}

pub(crate) fn define(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    let m = IMPORT_MODULE;
    linker.func_wrap(
        m,
        import::INPUT_LEN,
        |caller: Caller<'_, HostState>| -> i32 {
            i32::try_from(caller.data().input.len()).unwrap_or(i32::MAX)
        },
    )?;
    linker.func_wrap(
        m,
        import::INPUT_READ,
        |mut caller: Caller<'_, HostState>, dst: i32| -> wasmtime::Result<()> {
            let input = std::mem::take(&mut caller.data_mut().input);
            let r = write_bytes(&mut caller, dst, &input);
            caller.data_mut().input = input;
            r
        },
    )?;
    linker.func_wrap(
        m,
        import::OUTPUT_WRITE,
        |mut caller: Caller<'_, HostState>, ptr: i32, len: i32| -> wasmtime::Result<()> {
            let out = read_bytes(&mut caller, ptr, len, MAX_OUTPUT_LEN, "output")?;
            caller.data_mut().output = out;
            Ok(())
        },
    )?;
    linker.func_wrap(
        m,
        import::RETURN_READ,
        |mut caller: Caller<'_, HostState>, dst: i32| -> wasmtime::Result<()> {
            let ret = std::mem::take(&mut caller.data_mut().ret);
            let r = write_bytes(&mut caller, dst, &ret);
            caller.data_mut().ret = ret;
            r
        },
    )?;
    linker.func_wrap(
        m,
        import::STORAGE_GET,
        |mut caller: Caller<'_, HostState>, kp: i32, kl: i32| -> wasmtime::Result<i64> {
            let key = contract_key(&mut caller, kp, kl)?;
            let st = caller.data();
            let value = st.overlay.get(&st.base, &key).map(<[u8]>::to_vec);
            set_return(&mut caller, value)
        },
    )?;
    linker.func_wrap(
        m,
        import::STORAGE_SET,
        |mut caller: Caller<'_, HostState>,
         kp: i32,
         kl: i32,
         vp: i32,
         vl: i32|
         -> wasmtime::Result<()> {
            let key = contract_key(&mut caller, kp, kl)?;
            let value = read_bytes(&mut caller, vp, vl, MAX_VALUE_LEN, "value")?;
            charge(
                &mut caller,
                WRITE_BYTE_FUEL * (key.len() + value.len()) as u64,
            )?;
            caller.data_mut().overlay.set(key, value);
            Ok(())
        },
    )?;
    linker.func_wrap(
        m,
        import::STORAGE_REMOVE,
        |mut caller: Caller<'_, HostState>, kp: i32, kl: i32| -> wasmtime::Result<()> {
            let key = contract_key(&mut caller, kp, kl)?;
            caller.data_mut().overlay.remove(key);
            Ok(())
        },
    )?;
    linker.func_wrap(
        m,
        import::STORAGE_NEXT_KEY,
        |mut caller: Caller<'_, HostState>,
         pp: i32,
         pl: i32,
         ap: i32,
         al: i32,
         has_after: i32|
         -> wasmtime::Result<i64> {
            let prefix = read_bytes(&mut caller, pp, pl, MAX_KEY_LEN, "prefix")?;
            if prefix.first() == Some(&RESERVED_KEY_PREFIX) {
                return Err(reserved());
            }
            let after = if has_after != 0 {
                Some(read_bytes(&mut caller, ap, al, MAX_KEY_LEN, "key")?)
            } else {
                None
            };
            let st = caller.data();
            let mut next = st.overlay.next_key(&st.base, &prefix, after.as_deref());
            // Only an empty prefix can reach the node's keys: step over all of them.
            if next.as_ref().and_then(|k| k.first()) == Some(&RESERVED_KEY_PREFIX) {
                let mut past = vec![RESERVED_KEY_PREFIX];
                past.resize(MAX_KEY_LEN + 1, 0xff);
                next = st.overlay.next_key(&st.base, &prefix, Some(&past));
            }
            set_return(&mut caller, next)
        },
    )?;
    linker.func_wrap(
        m,
        import::EMIT_EVENT,
        |mut caller: Caller<'_, HostState>, ptr: i32, len: i32| -> wasmtime::Result<()> {
            let bytes = read_bytes(&mut caller, ptr, len, MAX_EVENT_LEN, "event")?;
            let text = String::from_utf8(bytes).map_err(|_| fail("event is not UTF-8"))?;
            caller.data_mut().events.push(text);
            Ok(())
        },
    )?;
    linker.func_wrap(
        m,
        import::CALLER,
        |mut caller: Caller<'_, HostState>, dst: i32| -> wasmtime::Result<()> {
            let who = caller.data().ctx.caller;
            write_bytes(&mut caller, dst, &who)
        },
    )?;
    linker.func_wrap(
        m,
        import::BLOCK_HEIGHT,
        |caller: Caller<'_, HostState>| -> i64 { caller.data().ctx.height as i64 },
    )?;
    linker.func_wrap(
        m,
        import::BLOCK_TIMESTAMP,
        |caller: Caller<'_, HostState>| -> i64 { caller.data().ctx.timestamp as i64 },
    )?;
    Ok(())
}
