//! The state root: a lattice hash (LtHash, Bellare-Micciancio; as used by Facebook's
//! "Securing update propagation with homomorphic hashing") over every (key, value) pair of
//! the chain state.
//!
//! Each pair hashes (blake3 in XOF mode) to 1024 lanes of 16 bits; the accumulator is their
//! lane-wise sum modulo 2^16. Adding or removing a pair is one hash and one vector addition,
//! so a block updates the commitment in time proportional to what it changed, while the
//! root still commits to the whole state, not just to the block's writes. The root in the
//! header is blake3 of the accumulator. See `docs/adr/001-state-root.md`.

use v2v_primitives::Hash;

const LANES: usize = 1024;
const ROOT_DOMAIN: &[u8] = b"v2v/state-root/v1";

/// What kind of state entry a pair is (so a nonce can never collide with a contract key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum EntryKind {
    Contract = 1,
    Nonce = 2,
}

#[derive(Clone, PartialEq, Eq)]
pub struct Accumulator {
    lanes: Box<[u16; LANES]>,
}

impl std::fmt::Debug for Accumulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Accumulator({})", self.root())
    }
}

impl Default for Accumulator {
    fn default() -> Self {
        Self {
            lanes: Box::new([0u16; LANES]),
        }
    }
}

fn element(kind: EntryKind, key: &[u8], value: &[u8]) -> [u8; LANES * 2] {
    let mut h = blake3::Hasher::new();
    h.update(b"v2v/state-entry/v1");
    h.update(&[kind as u8]);
    h.update(&(key.len() as u64).to_le_bytes());
    h.update(key);
    h.update(&(value.len() as u64).to_le_bytes());
    h.update(value);
    let mut out = [0u8; LANES * 2];
    h.finalize_xof().fill(&mut out);
    out
}

impl Accumulator {
    pub fn insert(&mut self, kind: EntryKind, key: &[u8], value: &[u8]) {
        let e = element(kind, key, value);
        for (lane, chunk) in self.lanes.iter_mut().zip(e.chunks_exact(2)) {
            *lane = lane.wrapping_add(u16::from_le_bytes([chunk[0], chunk[1]]));
        }
    }

    pub fn remove(&mut self, kind: EntryKind, key: &[u8], value: &[u8]) {
        let e = element(kind, key, value);
        for (lane, chunk) in self.lanes.iter_mut().zip(e.chunks_exact(2)) {
            *lane = lane.wrapping_sub(u16::from_le_bytes([chunk[0], chunk[1]]));
        }
    }

    /// Replaces `old` (if any) by `new` (if any) under `key`.
    pub fn update(&mut self, kind: EntryKind, key: &[u8], old: Option<&[u8]>, new: Option<&[u8]>) {
        if let Some(o) = old {
            self.remove(kind, key, o);
        }
        if let Some(n) = new {
            self.insert(kind, key, n);
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.lanes.iter().flat_map(|l| l.to_le_bytes()).collect()
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != LANES * 2 {
            return None;
        }
        let mut acc = Self::default();
        for (lane, chunk) in acc.lanes.iter_mut().zip(bytes.chunks_exact(2)) {
            *lane = u16::from_le_bytes([chunk[0], chunk[1]]);
        }
        Some(acc)
    }

    pub fn root(&self) -> Hash {
        Hash::digest(ROOT_DOMAIN, &self.to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_independent_and_removable() {
        let mut a = Accumulator::default();
        a.insert(EntryKind::Contract, b"x", b"1");
        a.insert(EntryKind::Contract, b"y", b"2");
        let mut b = Accumulator::default();
        b.insert(EntryKind::Contract, b"y", b"2");
        b.insert(EntryKind::Contract, b"x", b"1");
        assert_eq!(a.root(), b.root());
        b.update(EntryKind::Contract, b"x", Some(b"1"), Some(b"3"));
        assert_ne!(a.root(), b.root());
        b.update(EntryKind::Contract, b"x", Some(b"3"), Some(b"1"));
        assert_eq!(a.root(), b.root());
        let mut n = Accumulator::default();
        n.insert(EntryKind::Nonce, b"x", b"1");
        n.insert(EntryKind::Contract, b"y", b"2");
        assert_ne!(a.root(), n.root(), "kinds are separated");
        a.remove(EntryKind::Contract, b"x", b"1");
        a.remove(EntryKind::Contract, b"y", b"2");
        assert_eq!(a, Accumulator::default());
        assert_eq!(Accumulator::from_bytes(&b.to_bytes()), Some(b));
    }
}
