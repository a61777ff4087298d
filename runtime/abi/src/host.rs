//! The host ABI: the Wasm import module the node provides and the exports it expects.
//!
//! Data crosses the boundary through two buffers owned by the host. The *input* buffer holds
//! the entry point's argument bytes (`input_len`, `input_read`); a host call that returns
//! variable-length data (a storage value, the next key) stores it in the *return* buffer and
//! returns its length, or `-1` for none, and the contract copies it out with `return_read`.
//! The contract hands its result to the host with `output_write`. Every pointer and length the
//! contract passes is bounds-checked by the host; an out-of-bounds access traps the call.

/// Name of the import module.
pub const IMPORT_MODULE: &str = "v2v";

/// Imports (module [`IMPORT_MODULE`]), with their Wasm signatures.
pub mod import {
    /// `() -> i32`: length of the input buffer.
    pub const INPUT_LEN: &str = "input_len";
    /// `(dst: i32)`: copies the input buffer to `dst`.
    pub const INPUT_READ: &str = "input_read";
    /// `(ptr: i32, len: i32)`: sets the entry point's output bytes.
    pub const OUTPUT_WRITE: &str = "output_write";
    /// `(dst: i32)`: copies the return buffer to `dst`.
    pub const RETURN_READ: &str = "return_read";
    /// `(key_ptr: i32, key_len: i32) -> i64`: value length into the return buffer, or -1.
    pub const STORAGE_GET: &str = "storage_get";
    /// `(key_ptr: i32, key_len: i32, val_ptr: i32, val_len: i32)`.
    pub const STORAGE_SET: &str = "storage_set";
    /// `(key_ptr: i32, key_len: i32)`.
    pub const STORAGE_REMOVE: &str = "storage_remove";
    /// `(prefix_ptr: i32, prefix_len: i32, after_ptr: i32, after_len: i32, has_after: i32) -> i64`:
    /// the smallest key that starts with the prefix and is greater than `after` (when
    /// `has_after` is 1), its length into the return buffer; -1 when there is none.
    pub const STORAGE_NEXT_KEY: &str = "storage_next_key";
    /// `(ptr: i32, len: i32)`: records an event (UTF-8 JSON object) in the receipt.
    pub const EMIT_EVENT: &str = "emit_event";
    /// `(dst: i32)`: writes the 32-byte ed25519 public key of the transaction's signer.
    pub const CALLER: &str = "caller";
    /// `() -> i64`: height of the block being executed.
    pub const BLOCK_HEIGHT: &str = "block_height";
    /// `() -> i64`: the block's timestamp, milliseconds since the Unix epoch.
    pub const BLOCK_TIMESTAMP: &str = "block_timestamp";

    /// Every import the host provides; a contract importing anything else is refused.
    pub const ALL: &[&str] = &[
        INPUT_LEN,
        INPUT_READ,
        OUTPUT_WRITE,
        RETURN_READ,
        STORAGE_GET,
        STORAGE_SET,
        STORAGE_REMOVE,
        STORAGE_NEXT_KEY,
        EMIT_EVENT,
        CALLER,
        BLOCK_HEIGHT,
        BLOCK_TIMESTAMP,
    ];
}

/// Exports a market contract must provide.
pub mod export {
    /// The linear memory.
    pub const MEMORY: &str = "memory";
    /// `() -> i32`: the contract version (upgrades must increase it).
    pub const VERSION: &str = "v2v_version";
    /// `() -> i32`: genesis; input is the genesis market JSON. 0 = ok, 1 = error (output: message).
    pub const INIT: &str = "v2v_init";
    /// `() -> i32`: a transaction; input is `method` then `args` (see [`crate::call`]).
    pub const CALL: &str = "v2v_call";
    /// `() -> i32`: a read-only query; input is `method` then JSON arguments; output is JSON.
    pub const QUERY: &str = "v2v_query";
    /// Optional, `() -> i32`: run once when this code takes over from older code, before
    /// any transaction; input is the previous version (u32 little-endian). An error (or a
    /// trap, or running out of fuel) cancels the upgrade and leaves the old code in force.
    pub const MIGRATE: &str = "v2v_migrate";
}

/// Storage keys starting with this byte belong to the node (the contract code and upgrade
/// records): a contract can neither read nor write them, and never sees them when it
/// iterates.
pub const RESERVED_KEY_PREFIX: u8 = b':';

/// Status returned by the entry points.
pub const STATUS_OK: i32 = 0;
pub const STATUS_ERROR: i32 = 1;

/// Largest storage key, in bytes.
pub const MAX_KEY_LEN: usize = 1024;
/// Largest storage value, in bytes.
pub const MAX_VALUE_LEN: usize = 256 * 1024;
/// Largest event, in bytes.
pub const MAX_EVENT_LEN: usize = 16 * 1024;
/// Largest entry-point output, in bytes.
pub const MAX_OUTPUT_LEN: usize = 4 * 1024 * 1024;

/// Encodes an entry point's input: `method` (u32 length + UTF-8) then `args` (u32 length + bytes).
pub fn encode_entry_input(method: &str, args: &[u8]) -> alloc::vec::Vec<u8> {
    let mut w = crate::Writer::with_capacity(8 + method.len() + args.len());
    w.str(method).bytes(args);
    w.finish()
}

/// Decodes an entry point's input into `(method, args)`.
pub fn decode_entry_input(
    input: &[u8],
) -> Result<(alloc::string::String, &[u8]), crate::DecodeError> {
    let mut r = crate::Reader::new(input);
    let method = r.string("method", crate::call::MAX_METHOD_LEN)?;
    let args = r.bytes("args", usize::MAX)?;
    r.finish()?;
    Ok((method, args))
}
