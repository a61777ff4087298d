//! Durable chain storage: hash-linked finalized blocks with their certificates, a height
//! index, a transaction index, receipts, the contract state, account nonces and the head
//! pointer. Everything one block changes is written in one atomic batch.
//!
//! [`RocksStore`] is the real store; [`MemStore`] is its in-memory twin for tests.
#![forbid(unsafe_code)]

mod memory;
mod rocks;

use std::collections::BTreeMap;

use thiserror::Error;
use v2v_primitives::{Block, Hash, PublicKey, Receipt};

pub use memory::MemStore;
pub use rocks::RocksStore;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(String),
    #[error("corrupt database: {0}")]
    Corrupt(String),
    #[error("the store already holds a chain (head {0}): its state cannot be preloaded")]
    NotEmpty(u64),
    #[error("block {height} does not extend the head {head_height} ({head})")]
    NotNext {
        height: u64,
        head_height: u64,
        head: Hash,
    },
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A contract-storage entry read from a store: key and value.
pub type StateEntry = (Box<[u8]>, Box<[u8]>);

/// Everything one finalized block writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockCommit {
    pub block: Block,
    /// The encoded finality certificate (empty for genesis).
    pub certificate: Vec<u8>,
    /// One per transaction, in block order.
    pub receipts: Vec<Receipt>,
    /// Contract storage writes (`None` = removed).
    pub contract_writes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// New nonces (the next nonce each signer must use).
    pub nonce_writes: Vec<(PublicKey, u64)>,
    /// The state root's accumulator after this block (see `v2v-executor`).
    pub accumulator: Vec<u8>,
}

/// Where a transaction is: block height and index in the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxLocation {
    pub height: u64,
    pub index: u32,
}

/// The chain store. Reads may run concurrently with a commit and see either the state before
/// or after it, never a part of it.
pub trait Store: Send + Sync {
    /// The last finalized block: (height, hash).
    fn head(&self) -> Result<Option<(u64, Hash)>>;
    fn block(&self, hash: &Hash) -> Result<Option<Block>>;
    fn hash_at(&self, height: u64) -> Result<Option<Hash>>;
    fn certificate(&self, hash: &Hash) -> Result<Option<Vec<u8>>>;
    fn tx_location(&self, tx: &Hash) -> Result<Option<TxLocation>>;
    fn receipt(&self, at: TxLocation) -> Result<Option<Receipt>>;
    /// The whole contract state, one entry at a time in key order (a large state is never
    /// copied whole: the reader keeps it in its own form).
    fn contract_entries(&self) -> Box<dyn Iterator<Item = Result<StateEntry>> + '_>;
    /// Every account's next nonce.
    fn nonces(&self) -> Result<BTreeMap<PublicKey, u64>>;
    fn accumulator(&self) -> Result<Option<Vec<u8>>>;
    /// One account's next nonce (0 if it never transacted).
    fn nonce(&self, who: &PublicKey) -> Result<u64>;
    /// Durably stores the consensus engine's safety-critical state (`Output::Persist`).
    fn save_engine_state(&self, state: &[u8]) -> Result<()>;
    fn engine_state(&self) -> Result<Option<Vec<u8>>>;
    /// Writes a block atomically. It must be the genesis block of an empty store or extend
    /// the head by one height and link to it.
    fn commit(&self, c: &BlockCommit) -> Result<()>;
    /// Writes the contract state of an empty store (a large genesis state) in batches, so
    /// that it is never copied whole into one write: the genesis block, committed after it
    /// without contract writes, is what makes it part of a chain. Whatever state an earlier
    /// attempt left (a crash before the genesis commit) is cleared first.
    fn preload_state(&self, entries: &mut dyn Iterator<Item = (&[u8], &[u8])>) -> Result<()>;
    /// Writes a certified block *above* the head without its ancestors (a state snapshot,
    /// PBFT's state transfer): `c.contract_writes` and `c.nonce_writes` must turn the
    /// stored state into the block's (values for every key it has, `None` for stored keys it
    /// lacks). History below it stays missing: [`Store::history_base`] becomes its height.
    fn install_snapshot(&self, c: &BlockCommit) -> Result<()>;
    /// The lowest height from which every block up to the head is stored (0, or the height
    /// of the last installed snapshot).
    fn history_base(&self) -> Result<u64>;
    /// Where the transactions signed by `who` are, newest first, strictly before `before`
    /// (a cursor: the last location of the previous page), at most `limit`.
    fn history(
        &self,
        who: &PublicKey,
        before: Option<TxLocation>,
        limit: usize,
    ) -> Result<Vec<TxLocation>>;
    /// The number of transactions in the blocks this store committed.
    fn tx_count(&self) -> Result<u64>;

    fn block_at(&self, height: u64) -> Result<Option<Block>> {
        match self.hash_at(height)? {
            Some(h) => self.block(&h),
            None => Ok(None),
        }
    }
}

/// The check every store makes before installing a snapshot: it lies above the head.
fn check_above(head: Option<(u64, Hash)>, block: &Block) -> Result<()> {
    match head {
        Some((height, _)) if block.header.height > height => Ok(()),
        other => {
            let (head_height, head) = other.unwrap_or((0, Hash::ZERO));
            Err(StoreError::NotNext {
                height: block.header.height,
                head_height,
                head,
            })
        }
    }
}

/// The check every store makes before a commit.
fn check_extends(head: Option<(u64, Hash)>, block: &Block) -> Result<()> {
    let h = &block.header;
    let ok = match head {
        None => h.height == 0,
        Some((height, hash)) => h.height == height + 1 && h.parent_hash == hash,
    };
    if ok {
        Ok(())
    } else {
        let (head_height, head) = head.unwrap_or((0, Hash::ZERO));
        Err(StoreError::NotNext {
            height: h.height,
            head_height,
            head,
        })
    }
}

fn decode_block(bytes: &[u8]) -> Result<Block> {
    Block::decode(bytes, usize::MAX).map_err(|e| StoreError::Corrupt(format!("block: {e}")))
}

fn decode_receipt(bytes: &[u8]) -> Result<Receipt> {
    Receipt::decode(bytes).map_err(|e| StoreError::Corrupt(format!("receipt: {e}")))
}

#[cfg(test)]
mod tests;
