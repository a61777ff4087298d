//! The chain's data types and their canonical encodings: hashes, transactions, block
//! headers, blocks, receipts, the Merkle root over a block's transactions, and the
//! contract storage a chain's state and genesis are made of.
#![forbid(unsafe_code)]

mod block;
mod hash;
mod receipt;
mod storage;
mod transaction;

pub use block::{Block, Header, tx_root};
pub use hash::Hash;
pub use receipt::Receipt;
pub use storage::{ContractStorage, Iter as StorageIter};
pub use transaction::{SignedTransaction, TX_VERSION, TxError, UnsignedTransaction};

pub use v2v_crypto::{Keypair, PublicKey, Signature};
