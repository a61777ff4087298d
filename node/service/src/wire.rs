//! What nodes say to each other over the network, on top of the engine's own messages:
//! direct messages (an engine message, or the body of a block the leader proposes) and
//! block requests (the proposal behind a digest; finalized blocks with their certificates,
//! for sync). Everything a peer sends is decoded with bounds; anything else is dropped.

use v2v_abi::{Reader, Writer};
use v2v_primitives::Hash;

const DIRECT_ENGINE: u8 = 1;
const DIRECT_BLOCK: u8 = 2;
const REQUEST_BLOCKS: u8 = 16;
const REQUEST_PROPOSAL: u8 = 17;

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

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
