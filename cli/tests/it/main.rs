//! Integration tests of the `v2v` binary: real processes, real RocksDB, real JSON-RPC over
//! loopback sockets.
#![allow(clippy::unwrap_used)]

mod commands;
mod dev_chain;
mod market_flow;
mod rpc_api;
mod support;
mod testnet;
mod upgrade;
