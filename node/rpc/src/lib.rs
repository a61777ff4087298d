//! The node's JSON-RPC API (`../shared/RPC.md`, `docs/rpc.md`), served by jsonrpsee over HTTP
//! and WebSocket on one port. The API traits generate both the server and a typed client
//! (used by the CLI and the tests). The node plugs in through [`Backend`].
#![forbid(unsafe_code)]

mod api;
mod backend;
mod errors;
mod explorer;
mod server;
mod types;
mod watch;

pub use api::{
    AuthorApiClient, AuthorApiServer, ChainApiClient, ChainApiServer, MarketApiClient,
    MarketApiServer, StateApiClient, StateApiServer, SystemApiClient, SystemApiServer, TxApiClient,
    TxApiServer,
};
pub use backend::{Backend, BackendError, FinalizedBlock, SubmitError};
pub use errors::codes;
pub use explorer::{ExplorerApiClient, ExplorerApiServer, MAX_PAGE};
pub use server::{RpcConfig, start};
pub use types::{
    BlockId, BlockJson, ChainInfo, ContractInfo, ExplorerStats, FinalityProofJson, HeaderJson,
    Health, HistoryPage, PeerInfo, ReceiptJson, TradeEvent, TxJson, TxLookup, TxStatus,
    ValidatorInfo, decode_call_json,
};

/// Re-exported so that clients need not name jsonrpsee themselves.
pub use jsonrpsee;
