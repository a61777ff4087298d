//! Binds the market to the node's host ABI (`v2v_abi::host`) when built for wasm32.
//!
//! This is the only module with `unsafe`: calling the host's imports, which read and write
//! this instance's linear memory at the pointers passed. Every pointer passed points into a
//! live Rust allocation of at least the stated length.
#![allow(unsafe_code)]

use v2v_abi::genesis::GenesisMarket;
use v2v_abi::host::{STATUS_ERROR, STATUS_OK};

use crate::{Host, MarketError};

#[link(wasm_import_module = "v2v")]
unsafe extern "C" {
    fn input_len() -> i32;
    fn input_read(dst: *mut u8);
    fn output_write(ptr: *const u8, len: i32);
    fn return_read(dst: *mut u8);
    fn storage_get(key_ptr: *const u8, key_len: i32) -> i64;
    fn storage_set(key_ptr: *const u8, key_len: i32, val_ptr: *const u8, val_len: i32);
    fn storage_remove(key_ptr: *const u8, key_len: i32);
    fn storage_next_key(
        prefix_ptr: *const u8,
        prefix_len: i32,
        after_ptr: *const u8,
        after_len: i32,
        has_after: i32,
    ) -> i64;
    fn emit_event(ptr: *const u8, len: i32);
    fn caller(dst: *mut u8);
    fn block_height() -> i64;
    fn block_timestamp() -> i64;
}

struct WasmHost;

/// Copies the host's return buffer (of length `len`, or none when negative) into a vector.
fn take_return(len: i64) -> Option<Vec<u8>> {
    let len = usize::try_from(len).ok()?;
    let mut buf = vec![0u8; len];
    // SAFETY: `buf` is a live allocation of exactly the length the host reported.
    unsafe { return_read(buf.as_mut_ptr()) };
    Some(buf)
}

fn len32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

impl Host for WasmHost {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        // SAFETY: the key slice is live for the call.
        take_return(unsafe { storage_get(key.as_ptr(), len32(key.len())) })
    }

    fn set(&mut self, key: &[u8], value: &[u8]) {
        // SAFETY: both slices are live for the call.
        unsafe {
            storage_set(
                key.as_ptr(),
                len32(key.len()),
                value.as_ptr(),
                len32(value.len()),
            )
        }
    }

    fn remove(&mut self, key: &[u8]) {
        // SAFETY: the key slice is live for the call.
        unsafe { storage_remove(key.as_ptr(), len32(key.len())) }
    }

    fn next_key(&self, prefix: &[u8], after: Option<&[u8]>) -> Option<Vec<u8>> {
        let (ap, al, has) = match after {
            Some(a) => (a.as_ptr(), len32(a.len()), 1),
            None => (core::ptr::null(), 0, 0),
        };
        // SAFETY: the prefix and `after` slices are live for the call.
        take_return(unsafe { storage_next_key(prefix.as_ptr(), len32(prefix.len()), ap, al, has) })
    }

    fn emit(&mut self, event: &serde_json::Value) {
        let bytes = event.to_string();
        // SAFETY: the string is live for the call.
        unsafe { emit_event(bytes.as_ptr(), len32(bytes.len())) }
    }

    fn caller(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        // SAFETY: `out` is 32 writable bytes.
        unsafe { caller(out.as_mut_ptr()) };
        out
    }

    fn block_height(&self) -> u64 {
        // SAFETY: no pointers.
        unsafe { block_height() as u64 }
    }

    fn block_timestamp(&self) -> u64 {
        // SAFETY: no pointers.
        unsafe { block_timestamp() as u64 }
    }
}

fn read_input() -> Vec<u8> {
    // SAFETY: no pointers.
    let len = usize::try_from(unsafe { input_len() }).unwrap_or(0);
    let mut buf = vec![0u8; len];
    // SAFETY: `buf` has exactly the input's length.
    unsafe { input_read(buf.as_mut_ptr()) };
    buf
}

fn finish(result: Result<Vec<u8>, MarketError>) -> i32 {
    let (status, bytes) = match result {
        Ok(out) => (STATUS_OK, out),
        Err(e) => (STATUS_ERROR, e.to_string().into_bytes()),
    };
    // SAFETY: `bytes` is live for the call.
    unsafe { output_write(bytes.as_ptr(), len32(bytes.len())) };
    status
}

#[unsafe(no_mangle)]
pub extern "C" fn v2v_version() -> i32 {
    crate::VERSION as i32
}

#[unsafe(no_mangle)]
pub extern "C" fn v2v_init() -> i32 {
    let input = read_input();
    finish(
        serde_json::from_slice::<GenesisMarket>(&input)
            .map_err(|e| MarketError::InvalidGenesis(e.to_string()))
            .and_then(|g| crate::init(&mut WasmHost, &g))
            .map(|()| Vec::new()),
    )
}

#[unsafe(no_mangle)]
pub extern "C" fn v2v_call() -> i32 {
    let input = read_input();
    finish(crate::market::execute_raw(&mut WasmHost, &input))
}

#[unsafe(no_mangle)]
pub extern "C" fn v2v_query() -> i32 {
    let input = read_input();
    finish(crate::market::query_raw(&WasmHost, &input))
}

/// Only the upgrade fixtures export a migration (version 1 has nothing to migrate from).
#[cfg(any(feature = "next-version", feature = "failing-migration"))]
#[unsafe(no_mangle)]
pub extern "C" fn v2v_migrate() -> i32 {
    let input = read_input();
    let from = <[u8; 4]>::try_from(&input[..])
        .map(u32::from_le_bytes)
        .map_err(|_| MarketError::Migration("the input is not a version".into()));
    finish(from.and_then(|v| crate::migrate::migrate(&mut WasmHost, v).map(|()| Vec::new())))
}
