//! Integration tests of the `v2v` binary: real processes, real RocksDB, real JSON-RPC over
//! loopback sockets.

mod commands;
mod dev_chain;
mod support;
