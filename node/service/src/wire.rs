//! What nodes say to each other over the network, on top of the engine's own messages:
//! direct messages (an engine message, or the body of a block the leader proposes) and
//! block requests (the proposal behind a digest; finalized blocks with their certificates,
//! for sync). Everything a peer sends is decoded with bounds; anything else is dropped.

use std::collections::BTreeMap;

use v2v_abi::{Reader, Writer};
use v2v_primitives::{Hash, PublicKey};
use v2v_runtime::ContractStorage;

const DIRECT_ENGINE: u8 = 1;
const DIRECT_BLOCK: u8 = 2;
const REQUEST_BLOCKS: u8 = 16;
const REQUEST_PROPOSAL: u8 = 17;
const REQUEST_SNAPSHOT: u8 = 18;

/// The most finalized blocks one sync request may ask for.
pub const MAX_BLOCKS_PER_REQUEST: u32 = 256;

/// A one-way message between nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Direct {
    /// A consensus engine message, handed to the engine as `Input::Message`.
    Engine(Vec<u8>),
    /// An encoded block the sender proposes: replicas need its body to check it.
    Block(Vec<u8>),
}

impl Direct {
    pub fn encode(&self) -> Vec<u8> {
        let (tag, body) = match self {
            Direct::Engine(b) => (DIRECT_ENGINE, b),
            Direct::Block(b) => (DIRECT_BLOCK, b),
        };
        let mut out = Vec::with_capacity(1 + body.len());
        out.push(tag);
        out.extend_from_slice(body);
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let (&tag, body) = bytes.split_first()?;
        match tag {
            DIRECT_ENGINE => Some(Direct::Engine(body.to_vec())),
            DIRECT_BLOCK => Some(Direct::Block(body.to_vec())),
            _ => None,
        }
    }
}

/// A request to a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Finalized blocks from `from` up, at most `max` of them (and at most what fits in one
    /// response), each with its certificate.
    Blocks { from: u64, max: u32 },
    /// The block with this digest, finalized or only proposed.
    Proposal(Hash),
    /// The whole state at the peer's finalized head, with that block and its certificate.
    Snapshot,
}

impl Request {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match self {
            Request::Blocks { from, max } => {
                w.u8(REQUEST_BLOCKS).u64(*from).u32(*max);
            }
            Request::Proposal(hash) => {
                w.u8(REQUEST_PROPOSAL).fixed(&hash.0);
            }
            Request::Snapshot => {
                w.u8(REQUEST_SNAPSHOT);
            }
        }
        w.finish()
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader::new(bytes);
        let request = match r.u8("tag").ok()? {
            REQUEST_BLOCKS => Request::Blocks {
                from: r.u64("from").ok()?,
                max: r.u32("max").ok()?.min(MAX_BLOCKS_PER_REQUEST),
            },
            REQUEST_PROPOSAL => Request::Proposal(Hash(r.array("hash").ok()?)),
            REQUEST_SNAPSHOT => Request::Snapshot,
            _ => return None,
        };
        r.finish().ok()?;
        Some(request)
    }
}

/// Finalized blocks with their certificates, in height order (the answer to
/// [`Request::Blocks`]); encoded blocks and certificates, decoded by the receiver.
pub fn encode_blocks(blocks: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut w = Writer::new();
    w.u32(blocks.len() as u32);
    for (block, certificate) in blocks {
        w.bytes(block).bytes(certificate);
    }
    w.finish()
}

pub fn decode_blocks(bytes: &[u8], max_len: usize) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut r = Reader::new(bytes);
    let n = r.u32("count").ok()?;
    if n > MAX_BLOCKS_PER_REQUEST {
        return None;
    }
    let mut out = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let block = r.bytes("block", max_len).ok()?.to_vec();
        let certificate = r.bytes("certificate", max_len).ok()?.to_vec();
        out.push((block, certificate));
    }
    r.finish().ok()?;
    Some(out)
}

/// Transactions per gossip message at most.
pub const MAX_GOSSIP_BATCH: u32 = 4096;

/// Transactions gossiped together: one gossip message carries every transaction a node took
/// from its clients in a few milliseconds, so that the gossip layer's per-message costs (its
/// signature, its message id, framing) are paid once per batch.
pub fn encode_tx_batch(txs: &[Vec<u8>]) -> Vec<u8> {
    let mut w = Writer::new();
    w.u32(txs.len() as u32);
    for tx in txs {
        w.bytes(tx);
    }
    w.finish()
}

/// The transactions of a gossip batch (still undecoded), or None for anything malformed.
pub fn decode_tx_batch(bytes: &[u8], max_tx: usize) -> Option<Vec<Vec<u8>>> {
    let mut r = Reader::new(bytes);
    let n = r.u32("count").ok()?;
    if n == 0 || n > MAX_GOSSIP_BATCH {
        return None;
    }
    let mut out = Vec::with_capacity(n as usize);
    for _ in 0..n {
        out.push(r.bytes("tx", max_tx).ok()?.to_vec());
    }
    r.finish().ok()?;
    Some(out)
}

/// A state snapshot: the certified block it was taken at (encoded block and certificate),
/// the contract state and every nonce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub block: Vec<u8>,
    pub certificate: Vec<u8>,
    pub contract: ContractStorage,
    pub nonces: BTreeMap<PublicKey, u64>,
}

impl Snapshot {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.bytes(&self.block).bytes(&self.certificate);
        w.u32(self.contract.len() as u32);
        for (k, v) in &self.contract {
            w.bytes(k).bytes(v);
        }
        w.u32(self.nonces.len() as u32);
        for (k, n) in &self.nonces {
            w.fixed(&k.0).u64(*n);
        }
        w.finish()
    }

    /// Decodes a snapshot; entries must be in strictly increasing key order (the canonical
    /// encoding), so a duplicate cannot hide.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader::new(bytes);
        let block = r.bytes("block", bytes.len()).ok()?.to_vec();
        let certificate = r.bytes("certificate", bytes.len()).ok()?.to_vec();
        let mut entries: Vec<(&[u8], &[u8])> = Vec::new();
        for _ in 0..r.u32("entries").ok()? {
            let k = r.bytes("key", bytes.len()).ok()?;
            let v = r.bytes("value", bytes.len()).ok()?;
            if entries.last().is_some_and(|(last, _)| *last >= k) {
                return None;
            }
            entries.push((k, v));
        }
        let contract = entries.into_iter().collect();
        let mut nonces = BTreeMap::new();
        for _ in 0..r.u32("nonces").ok()? {
            let k = PublicKey(r.array("signer").ok()?);
            let n = r.u64("nonce").ok()?;
            if nonces.last_key_value().is_some_and(|(last, _)| *last >= k) {
                return None;
            }
            nonces.insert(k, n);
        }
        r.finish().ok()?;
        Some(Snapshot {
            block,
            certificate,
            contract,
            nonces,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tx_batches_round_trip_and_refuse_garbage() {
        let txs = vec![vec![1u8, 2, 3], vec![], vec![9u8; 300]];
        let bytes = encode_tx_batch(&txs);
        assert_eq!(decode_tx_batch(&bytes, 300), Some(txs.clone()));
        // A transaction over the limit, a truncation, trailing bytes, an empty batch and a
        // count over the limit are refused.
        assert_eq!(decode_tx_batch(&bytes, 299), None);
        assert_eq!(decode_tx_batch(&bytes[..bytes.len() - 1], 300), None);
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode_tx_batch(&longer, 300), None);
        assert_eq!(decode_tx_batch(&encode_tx_batch(&[]), 300), None);
        let mut huge = Writer::new();
        huge.u32(MAX_GOSSIP_BATCH + 1);
        assert_eq!(decode_tx_batch(&huge.finish(), 300), None);
        assert_eq!(decode_tx_batch(&[], 300), None);
    }

    #[test]
    fn round_trips_and_garbage() {
        for d in [Direct::Engine(vec![1, 2, 3]), Direct::Block(vec![])] {
            assert_eq!(Direct::decode(&d.encode()), Some(d));
        }
        for q in [
            Request::Blocks { from: 7, max: 100 },
            Request::Proposal(Hash([9; 32])),
        ] {
            assert_eq!(Request::decode(&q.encode()), Some(q));
        }
        // A request for too many blocks is capped, not refused.
        let big = Request::Blocks {
            from: 1,
            max: u32::MAX,
        };
        assert_eq!(
            Request::decode(&big.encode()),
            Some(Request::Blocks {
                from: 1,
                max: MAX_BLOCKS_PER_REQUEST
            })
        );
        let blocks = vec![(vec![1u8; 10], vec![2u8; 3]), (vec![], vec![4])];
        assert_eq!(
            decode_blocks(&encode_blocks(&blocks), 1 << 20),
            Some(blocks.clone())
        );
        assert_eq!(Direct::decode(&[]), None);
        assert_eq!(Direct::decode(&[99, 1]), None);
        for garbage in [&[][..], &[0], &[99, 1, 2], &[REQUEST_BLOCKS, 1]] {
            assert_eq!(Request::decode(garbage), None);
        }
        let mut cut = encode_blocks(&blocks);
        cut.pop();
        assert_eq!(decode_blocks(&cut, 1 << 20), None);
        assert_eq!(
            decode_blocks(&encode_blocks(&blocks), 5),
            None,
            "over the length bound"
        );
        assert_eq!(decode_blocks(&[255, 255, 255, 255], 10), None);

        let snap = Snapshot {
            block: vec![1, 2],
            certificate: vec![3],
            contract: [(vec![1], vec![2]), (vec![3], vec![])]
                .into_iter()
                .collect(),
            nonces: [(PublicKey([7; 32]), 4)].into_iter().collect(),
        };
        assert_eq!(
            Request::decode(&Request::Snapshot.encode()),
            Some(Request::Snapshot)
        );
        let bytes = snap.encode();
        assert_eq!(Snapshot::decode(&bytes), Some(snap));
        for cut in 0..bytes.len() {
            assert_eq!(Snapshot::decode(&bytes[..cut]), None, "cut at {cut}");
        }
    }
}
