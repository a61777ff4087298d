//! What the market needs from its environment.

/// Storage, events and context, provided by the node (through Wasm imports) or by
/// [`crate::MemoryHost`] natively. Keys iterate in byte order, which is what makes
/// prefix scans deterministic.
pub trait Host {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>>;
    fn set(&mut self, key: &[u8], value: &[u8]);
    fn remove(&mut self, key: &[u8]);
    /// The smallest key starting with `prefix` that is greater than `after` (if given).
    fn next_key(&self, prefix: &[u8], after: Option<&[u8]>) -> Option<Vec<u8>>;
    /// Records an event (a JSON object) in the transaction's receipt.
    fn emit(&mut self, event: &serde_json::Value);
    /// The signer's ed25519 public key.
    fn caller(&self) -> [u8; 32];
    fn block_height(&self) -> u64;
    fn block_timestamp(&self) -> u64;
}
