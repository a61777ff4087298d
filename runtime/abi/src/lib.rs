//! The interface shared by the market contract and the node: the canonical binary codec,
//! the typed market calls carried by transactions, and the host ABI (the functions the node
//! provides to Wasm and the entry points a contract exports).
//!
//! This crate builds for the host and for `wasm32-unknown-unknown`.
#![forbid(unsafe_code)]

extern crate alloc;

pub mod call;
pub mod codec;
pub mod genesis;
pub mod host;
pub mod upgrade;

pub use call::{MarketCall, Resolution, Side};
pub use codec::{DecodeError, Reader, Writer};
pub use upgrade::{DEPLOY_METHOD, DeployContract, MEMO_METHOD};
