//! What the RPC server needs from the node.

use std::sync::Arc;

use thiserror::Error;
use tokio::sync::broadcast;
use v2v_primitives::{Block, Hash, Header, PublicKey, Receipt, SignedTransaction, TxError};
use v2v_rpc_api::{ChainInfo, ContractInfo, Health, PeerInfo, ValidatorInfo};

/// A finalized block with its receipts, as the node announces it.
#[derive(Debug, Clone)]
pub struct FinalizedBlock {
    pub block: Block,
    pub receipts: Vec<Receipt>,
}

/// Why a submitted transaction was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SubmitError {
    #[error(transparent)]
    Invalid(#[from] TxError),
    #[error("nonce {got} was already used: the signer's next nonce is {next}")]
    StaleNonce { next: u64, got: u64 },
    #[error(
        "nonce {got} is too far ahead of the signer's next nonce {next} (at most {max_ahead} ahead)"
    )]
    NonceTooFar { next: u64, got: u64, max_ahead: u64 },
    #[error("transaction {0} is already known")]
    Duplicate(Hash),
    #[error("the mempool is full ({0}); try again later")]
    MempoolFull(String),
    #[error("the node is shutting down")]
    ShuttingDown,
    /// A stateful check failed (a contract deployment that its execution would refuse).
    #[error("{0}")]
    Rejected(String),
}

/// A failure while answering a read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BackendError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("query failed: {0}")]
    Query(String),
    #[error("state at height {0} is not retained; only the finalized head's state is")]
    StateUnavailable(u64),
    #[error("{0}")]
    TooLarge(String),
    #[error("internal error: {0}")]
    Internal(String),
}

/// The node, as the RPC server sees it. Implementations must be cheap to call concurrently.
pub trait Backend: Send + Sync + 'static {
    fn health(&self) -> Health;
    fn chain_info(&self) -> ChainInfo;
    /// Height and hash of the last finalized block.
    fn finalized_head(&self) -> Result<(u64, Hash), BackendError>;
    fn hash_at(&self, height: u64) -> Result<Option<Hash>, BackendError>;
    fn block_by_hash(&self, hash: &Hash) -> Result<Option<(Block, Vec<Receipt>)>, BackendError>;
    /// The encoded finality certificate of a stored block (empty for genesis).
    fn certificate(&self, hash: &Hash) -> Result<Option<Vec<u8>>, BackendError>;
    /// Stateless checks, nonce checks, then into the mempool.
    fn submit(&self, bytes: Vec<u8>) -> Result<Hash, SubmitError>;
    fn next_nonce(&self, who: &PublicKey) -> u64;
    /// A finalized transaction: (height, index, tx, receipt).
    fn transaction(
        &self,
        hash: &Hash,
    ) -> Result<Option<(u64, u32, SignedTransaction, Receipt)>, BackendError>;
    /// Runs the contract's read-only entry point against finalized state.
    fn query(
        &self,
        method: &str,
        args_json: &str,
        at_height: Option<u64>,
    ) -> Result<serde_json::Value, BackendError>;
    /// A receiver of every finalized header, in order.
    fn subscribe_heads(&self) -> broadcast::Receiver<Header>;
    /// The market contract in force, the upgrade waiting and the history of upgrades.
    fn contract(&self) -> ContractInfo;
    /// The chain spec, as JSON.
    /// The chain spec as the node holds it on disk (the JSON text, not re-serialized).
    fn chain_spec(&self) -> Result<Box<serde_json::value::RawValue>, BackendError>;
    /// The node's counters (`system_metrics`); a backend that counts nothing reports zeros.
    fn metrics(&self) -> crate::NodeMetrics {
        crate::NodeMetrics::default()
    }
    /// A receiver of every block this node finalizes by execution, with its receipts, in
    /// order (a state snapshot install skips blocks: subscribers see the gap in heights).
    fn subscribe_blocks(&self) -> broadcast::Receiver<Arc<FinalizedBlock>>;
    /// Whether a transaction is in this node's mempool.
    fn is_pending(&self, hash: &Hash) -> bool;
    /// The mempool's transactions in proposal order, at most `limit`.
    fn pending(&self, limit: usize) -> Vec<SignedTransaction>;
    fn peers(&self) -> Vec<PeerInfo>;
    fn validators(&self) -> Vec<ValidatorInfo>;
    /// Where the transactions signed by `who` are, newest first, strictly before `before`.
    fn history(
        &self,
        who: &PublicKey,
        before: Option<(u64, u32)>,
        limit: usize,
    ) -> Result<Vec<(u64, u32)>, BackendError>;
    /// Transactions in the blocks this node stored.
    fn tx_count(&self) -> Result<u64, BackendError>;
}
