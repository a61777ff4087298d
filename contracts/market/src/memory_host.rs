//! A native [`Host`] over an ordered in-memory map, for tests and benchmarks.

use std::collections::BTreeMap;
use std::ops::Bound;

use crate::Host;

#[derive(Debug, Default, Clone)]
pub struct MemoryHost {
    pub storage: BTreeMap<Vec<u8>, Vec<u8>>,
    pub events: Vec<serde_json::Value>,
    pub caller: [u8; 32],
    pub height: u64,
    pub timestamp: u64,
}

impl Host for MemoryHost {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.storage.get(key).cloned()
    }

    fn set(&mut self, key: &[u8], value: &[u8]) {
        self.storage.insert(key.to_vec(), value.to_vec());
    }

    fn remove(&mut self, key: &[u8]) {
        self.storage.remove(key);
    }

    fn next_key(&self, prefix: &[u8], after: Option<&[u8]>) -> Option<Vec<u8>> {
        let lower = match after {
            Some(a) if a >= prefix => Bound::Excluded(a.to_vec()),
            _ => Bound::Included(prefix.to_vec()),
        };
        self.storage
            .range((lower, Bound::Unbounded))
            .next()
            .map(|(k, _)| k)
            .filter(|k| k.starts_with(prefix))
            .cloned()
    }

    fn emit(&mut self, event: &serde_json::Value) {
        self.events.push(event.clone());
    }

    fn caller(&self) -> [u8; 32] {
        self.caller
    }

    fn block_height(&self) -> u64 {
        self.height
    }

    fn block_timestamp(&self) -> u64 {
        self.timestamp
    }
}
