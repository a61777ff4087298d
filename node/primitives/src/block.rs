//! Block headers and blocks, hash-linked by `parent_hash`.

use serde::{Deserialize, Serialize};
use v2v_abi::{Reader, Writer};
use v2v_crypto::PublicKey;

use crate::{Hash, SignedTransaction, TxError};

const HEADER_DOMAIN: &[u8] = b"v2v/header/v1";
const MERKLE_NODE_DOMAIN: &[u8] = b"v2v/merkle/v1";

/// A block header. Its hash (blake3 over the canonical encoding) names the block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Header {
    pub height: u64,
    pub parent_hash: Hash,
    /// Commitment to the whole chain state after this block's transactions.
    pub state_root: Hash,
    /// Merkle root over the block's transaction hashes.
    pub tx_root: Hash,
    /// ed25519 key of the validator that proposed the block.
    pub proposer: PublicKey,
    /// Consensus view (round) in which the block was proposed.
    pub view: u64,
    /// Proposer's clock, milliseconds since the Unix epoch; never read by execution except
    /// through the header itself, so every replica sees the same value.
    pub timestamp: u64,
}

impl Header {
    pub const ENCODED_LEN: usize = 8 + 32 * 4 + 8 + 8;

    pub fn encode_into(&self, w: &mut Writer) {
        w.u64(self.height)
            .fixed(&self.parent_hash.0)
            .fixed(&self.state_root.0)
            .fixed(&self.tx_root.0)
            .fixed(&self.proposer.0)
            .u64(self.view)
            .u64(self.timestamp);
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(Self::ENCODED_LEN);
        self.encode_into(&mut w);
        w.finish()
    }

    pub fn decode_from(r: &mut Reader<'_>) -> Result<Self, TxError> {
        Ok(Header {
            height: r.u64("height")?,
            parent_hash: Hash(r.array("parentHash")?),
            state_root: Hash(r.array("stateRoot")?),
            tx_root: Hash(r.array("txRoot")?),
            proposer: PublicKey(r.array("proposer")?),
            view: r.u64("view")?,
            timestamp: r.u64("timestamp")?,
        })
    }

    pub fn hash(&self) -> Hash {
        Hash::digest(HEADER_DOMAIN, &self.encode())
    }
}

/// A header and its transactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub header: Header,
    pub txs: Vec<SignedTransaction>,
}

impl Block {
    pub fn hash(&self) -> Hash {
        self.header.hash()
    }

    pub fn encode(&self) -> Vec<u8> {
        let body: usize = self.txs.iter().map(|t| t.encoded().len() + 4).sum();
        let mut w = Writer::with_capacity(Header::ENCODED_LEN + 4 + body);
        self.header.encode_into(&mut w);
        w.u32(self.txs.len() as u32);
        for tx in &self.txs {
            w.bytes(tx.encoded());
        }
        w.finish()
    }

    /// Decodes a stored or received block; every transaction must decode (signatures are
    /// checked separately, where the block enters the node).
    pub fn decode(bytes: &[u8], max_tx_len: usize) -> Result<Self, TxError> {
        let mut r = Reader::new(bytes);
        let header = Header::decode_from(&mut r)?;
        let n = r.u32("txCount")? as usize;
        let mut txs = Vec::with_capacity(n.min(r.remaining() / 150 + 1));
        for _ in 0..n {
            let raw = r.bytes("tx", max_tx_len)?;
            txs.push(SignedTransaction::decode(raw, max_tx_len)?);
        }
        r.finish()?;
        Ok(Block { header, txs })
    }

    /// Whether `tx_root` matches the transactions.
    pub fn tx_root_matches(&self) -> bool {
        tx_root(self.txs.iter().map(SignedTransaction::hash)) == self.header.tx_root
    }
}

/// Binary Merkle root over transaction hashes (an odd node is carried up unchanged); the
/// zero hash for no transactions.
pub fn tx_root(hashes: impl IntoIterator<Item = Hash>) -> Hash {
    let mut level: Vec<Hash> = hashes.into_iter().collect();
    if level.is_empty() {
        return Hash::ZERO;
    }
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [l, r] => {
                    let mut buf = [0u8; 64];
                    buf[..32].copy_from_slice(&l.0);
                    buf[32..].copy_from_slice(&r.0);
                    Hash::digest(MERKLE_NODE_DOMAIN, &buf)
                }
                [single] => *single,
                _ => unreachable!("chunks(2) yields one or two"),
            })
            .collect();
    }
    level[0]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::UnsignedTransaction;
    use v2v_crypto::Keypair;

    #[test]
    fn block_round_trip_and_links() {
        let key = Keypair::from_name("v");
        let tx = UnsignedTransaction {
            chain_id: Hash([1; 32]),
            signer: key.public(),
            nonce: 0,
            method: "deposit".into(),
            args: vec![1, 0, 0, 0, 0, 0, 0, 0],
            memo: vec![],
        }
        .sign(&key);
        let header = Header {
            height: 3,
            parent_hash: Hash([9; 32]),
            state_root: Hash([8; 32]),
            tx_root: tx_root([tx.hash()]),
            proposer: key.public(),
            view: 1,
            timestamp: 1_700_000_000_000,
        };
        let block = Block {
            header,
            txs: vec![tx],
        };
        let back = Block::decode(&block.encode(), 1 << 16).unwrap();
        assert_eq!(back, block);
        assert!(back.tx_root_matches());
        assert_ne!(
            tx_root([Hash([1; 32]), Hash([2; 32])]),
            tx_root([Hash([2; 32]), Hash([1; 32])])
        );
        assert!(Block::decode(&block.encode()[..100], 1 << 16).is_err());
    }
}
