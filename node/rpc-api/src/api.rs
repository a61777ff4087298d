//! The API traits, one per namespace. `#[rpc(server, client)]` generates from each a server
//! trait (`XxxApiServer`, implemented by the node in `v2v-rpc`) and a typed client trait
//! (`XxxApiClient`, implemented for jsonrpsee's HTTP and WebSocket clients).

use jsonrpsee::core::{RpcResult, SubscriptionResult};
use jsonrpsee::proc_macros::rpc;
use serde_json::Value;
use v2v_primitives::Hash;

use crate::types::{
    BlockId, BlockJson, ChainInfo, ContractInfo, ExplorerStats, FinalityProofJson, HeaderJson,
    Health, HistoryPage, NodeMetrics, PeerInfo, TradeEvent, TxJson, TxLookup, TxStatus,
    ValidatorInfo,
};

#[rpc(server, client, namespace = "system")]
pub trait SystemApi {
    /// `{ peers, isSyncing, bestHeight, finalizedHeight }`.
    #[method(name = "health")]
    async fn health(&self) -> RpcResult<Health>;
    /// `{ name, id, genesisHash, engine, validators, contractVersion }`.
    #[method(name = "chain")]
    async fn chain(&self) -> RpcResult<ChainInfo>;
    /// The node software's version.
    #[method(name = "version")]
    async fn version(&self) -> RpcResult<String>;
    /// The peers this node is connected to, with their role and name from the chain spec.
    #[method(name = "peers")]
    async fn peers(&self) -> RpcResult<Vec<PeerInfo>>;
    /// The validator set: index, name, keys, address, connected, last seen height.
    #[method(name = "validators")]
    async fn validators(&self) -> RpcResult<Vec<ValidatorInfo>>;
    /// The chain spec this node runs (`docs/chain-spec.md`), genesis contract included:
    /// enough to rebuild genesis and replay the chain (`v2v contract dry-run`).
    #[method(name = "chainSpec")]
    async fn chain_spec(&self) -> RpcResult<Box<serde_json::value::RawValue>>;
    /// Counters since the node started: what it finalized, the consensus traffic it sent,
    /// and the CPU time of each stage of a transaction's path (`docs/benchmarks.md`).
    #[method(name = "metrics")]
    async fn metrics(&self) -> RpcResult<NodeMetrics>;
}

#[rpc(server, client, namespace = "chain")]
pub trait ChainApi {
    #[method(name = "getFinalizedHead")]
    async fn get_finalized_head(&self) -> RpcResult<Hash>;
    #[method(name = "getBlockHash")]
    async fn get_block_hash(&self, height: u64) -> RpcResult<Hash>;
    /// The header of a block (by height or hash), or of the finalized head.
    #[method(name = "getHeader")]
    async fn get_header(&self, at: Option<BlockId>) -> RpcResult<HeaderJson>;
    /// Header, transactions (decoded and raw) and receipts.
    #[method(name = "getBlock")]
    async fn get_block(&self, at: Option<BlockId>) -> RpcResult<BlockJson>;
    /// The certificate that finalized a block (by height or hash; default the head),
    /// verifiable with the validator set of the chain spec alone.
    #[method(name = "getFinalityProof")]
    async fn get_finality_proof(&self, at: Option<BlockId>) -> RpcResult<FinalityProofJson>;
    /// Every finalized header, in order. A subscriber that falls behind is closed (the close
    /// notification says why): heads are never skipped silently.
    #[subscription(name = "subscribeFinalizedHeads" => "finalizedHead", unsubscribe = "unsubscribeFinalizedHeads", item = HeaderJson)]
    async fn subscribe_finalized_heads(&self) -> SubscriptionResult;
}

#[rpc(server, client, namespace = "author")]
pub trait AuthorApi {
    /// Submits a signed transaction (hex); returns its hash once it passed the checks.
    #[method(name = "submitTransaction")]
    async fn submit_transaction(&self, tx_hex: String) -> RpcResult<Hash>;
    /// The nonce the account's next transaction must carry (finalized state).
    #[method(name = "nextNonce")]
    async fn next_nonce(&self, account: String) -> RpcResult<u64>;
    /// Submits a signed transaction and reports its lifecycle: `accepted`, then
    /// `included` and `finalized` (with the receipt), or `invalid` / `dropped`; the
    /// subscription ends after the last event.
    #[subscription(name = "submitAndWatchTransaction" => "transactionStatus", unsubscribe = "unwatchTransaction", item = TxStatus)]
    async fn submit_and_watch_transaction(&self, tx_hex: String) -> SubscriptionResult;
    /// The transactions waiting in this node's mempool, in proposal order (at most 1000).
    #[method(name = "pendingTransactions")]
    async fn pending_transactions(&self) -> RpcResult<Vec<TxJson>>;
}

#[rpc(server, client, namespace = "tx")]
pub trait TxApi {
    /// A finalized transaction with its location and receipt.
    #[method(name = "getByHash")]
    async fn get_by_hash(&self, hash: Hash) -> RpcResult<TxLookup>;
}

#[rpc(server, client, namespace = "state")]
pub trait StateApi {
    /// Runs the market contract's read-only entry point on finalized state.
    #[method(name = "query")]
    async fn query(
        &self,
        method: String,
        args: Option<Value>,
        at_height: Option<u64>,
    ) -> RpcResult<Value>;
    /// The state root of a block (by height or hash), or of the finalized head.
    #[method(name = "getRoot")]
    async fn get_root(&self, at: Option<BlockId>) -> RpcResult<Hash>;
    /// The market contract in force: `{ codeHash, version, deployedAt, deployTx?, pending?,
    /// history }` (the upgrade waiting for its height, and every upgrade so far).
    #[method(name = "getContract")]
    async fn get_contract(&self) -> RpcResult<ContractInfo>;
}

/// Typed reads for wallets: thin wrappers over the contract's queries (`docs/market.md`),
/// run against the finalized head's state.
#[rpc(server, client, namespace = "market")]
pub trait MarketApi {
    /// A client account: `{ clientId, publicKey, balance, escrow }` (money in µcr strings).
    #[method(name = "getAccount")]
    async fn get_account(&self, client_id: String) -> RpcResult<Value>;
    /// A client's vehicle: `{ clientId, vehicleId, capacityWh, chargeWh, x, y,
    /// efficiencyWhPerKm, energyPrice, committedWh }`.
    #[method(name = "getVehicle")]
    async fn get_vehicle(&self, client_id: String) -> RpcResult<Value>;
    /// Resting orders, ascending id: `filter` is an object `{ side?, owner?, cursor?, limit? }`
    /// (or omitted); returns `{ orders, nextCursor }`.
    #[method(name = "getOrders")]
    async fn get_orders(&self, filter: Option<Value>) -> RpcResult<Value>;
    /// One resting order by id.
    #[method(name = "getOrder")]
    async fn get_order(&self, id: u64) -> RpcResult<Value>;
    /// Trades, ascending id: `filter` is an object `{ owner?, cursor?, limit? }` (owner =
    /// consumer or provider), or omitted; returns `{ trades, nextCursor }`.
    #[method(name = "getTrades")]
    async fn get_trades(&self, filter: Option<Value>) -> RpcResult<Value>;
    /// One trade by id.
    #[method(name = "getTrade")]
    async fn get_trade(&self, id: u64) -> RpcResult<Value>;
    /// Every meeting point: `[{ id, x, y }]`, ascending id.
    #[method(name = "getMeetingPoints")]
    async fn get_meeting_points(&self) -> RpcResult<Value>;
    /// `{ feeRate, treasury, treasuryBalance, nextOrderId, nextTradeId, tradedWh }`.
    #[method(name = "getParams")]
    async fn get_params(&self) -> RpcResult<Value>;
    /// Trade lifecycle events (matched, confirmed, disputed, settled, refunded) from
    /// finalized blocks; `filter` is `{ owner? }` (consumer or provider). A subscriber that
    /// falls behind gets a final `dropped` event.
    #[subscription(name = "subscribeTrades" => "trade", unsubscribe = "unsubscribeTrades", item = TradeEvent)]
    async fn subscribe_trades(&self, filter: Option<Value>) -> SubscriptionResult;
}

/// Largest page of `explorer_latestBlocks` and `explorer_accountHistory`.
pub const MAX_PAGE: u32 = 100;

#[rpc(server, client, namespace = "explorer")]
pub trait ExplorerApi {
    /// What a string names: a height, a block hash, a transaction hash, contract code (by
    /// its hash) or a client id.
    /// Returns `{ kind: "block", header }`, `{ kind: "transaction", tx }` or
    /// `{ kind: "account", account }`.
    #[method(name = "search")]
    async fn search(&self, query: String) -> RpcResult<Value>;
    /// The newest finalized headers, newest first (default 10, at most 100).
    #[method(name = "latestBlocks")]
    async fn latest_blocks(&self, limit: Option<u32>) -> RpcResult<Vec<HeaderJson>>;
    /// A client's transactions (those its key signed), newest first, with receipts
    /// (default 20 per page, at most 100).
    #[method(name = "accountHistory")]
    async fn account_history(
        &self,
        client_id: String,
        cursor: Option<String>,
        limit: Option<u32>,
    ) -> RpcResult<HistoryPage>;
    /// `{ blocks, txs, trades, volumeWh, txPerSecLastMinute }`.
    #[method(name = "stats")]
    async fn stats(&self) -> RpcResult<ExplorerStats>;
}
