//! The node's JSON-RPC API as both sides share it (`../shared/RPC.md`, `docs/rpc.md`): the API
//! traits, one per namespace, from which jsonrpsee generates the server traits (`*ApiServer`,
//! implemented in `v2v-rpc`) and the typed clients (`*ApiClient`, re-exported by
//! `v2v-rpc-client`); the JSON types; and the error codes.
#![forbid(unsafe_code)]

mod api;
pub mod codes;
mod types;

pub use api::{
    AuthorApiClient, AuthorApiServer, ChainApiClient, ChainApiServer, ExplorerApiClient,
    ExplorerApiServer, MAX_PAGE, MarketApiClient, MarketApiServer, StateApiClient, StateApiServer,
    SystemApiClient, SystemApiServer, TxApiClient, TxApiServer,
};
pub use types::{
    BlockId, BlockJson, ChainInfo, ContractInfo, ExplorerStats, FinalityProofJson, HeaderJson,
    Health, HistoryPage, NodeMetrics, PeerInfo, PendingUpgradeInfo, ReceiptJson, StageMetrics,
    TradeEvent, TxJson, TxLookup, TxStatus, UpgradeInfo, ValidatorInfo, decode_call_json,
};

/// The jsonrpsee this crate's traits are generated with.
pub use jsonrpsee;
