//! The chain's data types and their canonical encodings: hashes, transactions, block
//! headers, blocks, receipts, and the Merkle root over a block's transactions.
#![forbid(unsafe_code)]

mod block;
mod hash;
mod receipt;
mod transaction;

pub use block::{Block, Header, tx_root};
pub use hash::Hash;
pub use receipt::Receipt;
pub use transaction::{SignedTransaction, TX_VERSION, TxError, UnsignedTransaction};

pub use v2v_crypto::{Keypair, PublicKey, Signature};
