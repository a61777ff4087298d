//! The V2V energy market contract (`../shared/MARKET.md`, `docs/market.md`).
//!
//! The market logic is written once, against the [`Host`] trait, and builds two ways: natively
//! (tests, benchmarks, the [`MemoryHost`]) and as the `wasm32-unknown-unknown` contract that
//! every node executes with wasmtime (the `wasm` module binds [`Host`] to the node's imports).
//! Everything here is integer arithmetic over ordered storage: no floats, no hash maps, no
//! clock, no randomness.
#![cfg_attr(not(target_arch = "wasm32"), forbid(unsafe_code))]

mod book;
mod error;
mod host;
mod ledger;
mod market;
pub mod matching;
mod memory_host;
mod migrate;
mod state;
mod views;
#[cfg(target_arch = "wasm32")]
mod wasm;

pub use error::MarketError;
pub use host::Host;
pub use market::{execute, execute_raw, init, query_raw};
pub use memory_host::MemoryHost;
pub use migrate::migrate;
pub use state::{Account, Params, Trade, TradeStatus, Vehicle};
pub use views::query;

/// The contract version. Every deployed upgrade must declare a greater one.
#[cfg(not(any(feature = "next-version", feature = "failing-migration")))]
pub const VERSION: u32 = 1;
/// The upgrade fixtures (`contracts/market/fixtures/`) declare the next version.
#[cfg(any(feature = "next-version", feature = "failing-migration"))]
pub const VERSION: u32 = 2;

#[cfg(test)]
mod tests;
