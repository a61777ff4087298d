//! The node's JSON-RPC server (`../shared/RPC.md`, `docs/rpc.md`), served by jsonrpsee over HTTP
//! and WebSocket on one port. The API traits, the JSON types and the error codes live in
//! `v2v-rpc-api`, shared with the typed client `v2v-rpc-client`; this crate implements the
//! server side of those traits over [`Backend`], through which the node plugs in, and starts
//! the server ([`start`], with the limits of [`RpcConfig`]). Subscriptions never leave a
//! subscriber with a silent gap and never wait on it for more than
//! [`RpcConfig::subscription_send_timeout`] (`watch.rs`). `rpc_discover` serves
//! `docs/openrpc.json`, which `tests/openrpc.rs` keeps in step with the server. Wallets and
//! tools use `v2v-rpc-client`, not this crate.
#![forbid(unsafe_code)]

mod api;
mod backend;
mod errors;
mod explorer;
mod server;
mod watch;

pub use backend::{Backend, BackendError, FinalizedBlock, SubmitError};
pub use server::{
    ModuleError, OPENRPC_JSON, RpcConfig, SUBSCRIPTION_SEND_TIMEOUT, StartError, module, start,
};
/// The shared definitions, re-exported for the node (`v2v-service`) so that it needs only this
/// crate.
pub use v2v_rpc_api::{
    BlockId, BlockJson, ChainInfo, ContractInfo, ExplorerStats, FinalityProofJson, HeaderJson,
    Health, HistoryPage, MAX_PAGE, NodeMetrics, PeerInfo, PendingUpgradeInfo, ReceiptJson,
    StageMetrics, TradeEvent, TxJson, TxLookup, TxStatus, UpgradeInfo, ValidatorInfo, codes,
    decode_call_json,
};

/// Re-exported for the server handle ([`jsonrpsee::server::ServerHandle`]).
pub use jsonrpsee;
