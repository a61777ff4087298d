//! The server implementation of the API traits of `v2v-rpc-api`, over a [`Backend`].

use std::sync::Arc;
use std::time::Duration;

use jsonrpsee::PendingSubscriptionSink;
use jsonrpsee::core::{RpcResult, SubscriptionResult, async_trait};
use jsonrpsee::types::ErrorObjectOwned;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use v2v_consensus::{Certificate, Proof};
use v2v_primitives::{Hash, PublicKey};
use v2v_rpc_api::{
    AuthorApiServer, BlockId, BlockJson, ChainApiServer, ChainInfo, ContractInfo,
    FinalityProofJson, HeaderJson, Health, MarketApiServer, NodeMetrics, PeerInfo, ReceiptJson,
    StateApiServer, SystemApiServer, TxApiServer, TxJson, TxLookup, ValidatorInfo,
};

use crate::backend::{Backend, BackendError};
use crate::errors::{codes, error};
use crate::watch;

/// The server side of every namespace.
#[derive(Clone)]
pub struct Api {
    pub(crate) backend: Arc<dyn Backend>,
    /// How long a subscription's send may wait for room in the connection's buffer.
    send_timeout: Duration,
}

impl Api {
    pub fn new(backend: Arc<dyn Backend>, send_timeout: Duration) -> Self {
        Self {
            backend,
            send_timeout,
        }
    }

    fn resolve(&self, at: Option<BlockId>) -> RpcResult<Hash> {
        match at {
            None => Ok(self.backend.finalized_head()?.1),
            Some(BlockId::Hash(h)) => Ok(h),
            Some(BlockId::Height(n)) => self.hash_at(n),
        }
    }

    fn hash_at(&self, height: u64) -> RpcResult<Hash> {
        match self.backend.hash_at(height)? {
            Some(h) => Ok(h),
            None => {
                let (head, _) = self.backend.finalized_head()?;
                Err(error(
                    codes::NOT_FOUND,
                    format!("no block at height {height}: the finalized head is at {head}"),
                ))
            }
        }
    }

    /// Runs a contract query on a blocking thread (the contract is CPU work: keep it off the
    /// I/O threads).
    async fn run_query(
        &self,
        method: String,
        args_json: String,
        at_height: Option<u64>,
    ) -> RpcResult<Value> {
        let backend = self.backend.clone();
        tokio::task::spawn_blocking(move || backend.query(&method, &args_json, at_height))
            .await
            .map_err(|e| error(codes::INTERNAL, e.to_string()))?
            .map_err(ErrorObjectOwned::from)
    }

    /// A `market_*` read: the contract query `method` with `args` on the finalized head.
    pub(crate) async fn market_query(&self, method: &str, args: Value) -> RpcResult<Value> {
        self.run_query(method.to_string(), args_json(Some(args)), None)
            .await
    }

    pub(crate) fn block(&self, at: Option<BlockId>) -> RpcResult<BlockJson> {
        let hash = self.resolve(at)?;
        match self.backend.block_by_hash(&hash)? {
            Some((b, r)) => Ok(BlockJson::new(&b, &r)),
            None => Err(BackendError::NotFound(format!("block {hash}")).into()),
        }
    }
}

#[async_trait]
impl SystemApiServer for Api {
    async fn health(&self) -> RpcResult<Health> {
        Ok(self.backend.health())
    }

    async fn chain(&self) -> RpcResult<ChainInfo> {
        Ok(self.backend.chain_info())
    }

    async fn version(&self) -> RpcResult<String> {
        Ok(concat!("v2v/", env!("CARGO_PKG_VERSION")).to_string())
    }

    async fn peers(&self) -> RpcResult<Vec<PeerInfo>> {
        Ok(self.backend.peers())
    }

    async fn validators(&self) -> RpcResult<Vec<ValidatorInfo>> {
        Ok(self.backend.validators())
    }

    async fn chain_spec(&self) -> RpcResult<Box<RawValue>> {
        Ok(self.backend.chain_spec()?)
    }

    async fn metrics(&self) -> RpcResult<NodeMetrics> {
        Ok(self.backend.metrics())
    }
}

#[async_trait]
impl ChainApiServer for Api {
    async fn get_finalized_head(&self) -> RpcResult<Hash> {
        Ok(self.backend.finalized_head()?.1)
    }

    async fn get_block_hash(&self, height: u64) -> RpcResult<Hash> {
        self.hash_at(height)
    }

    async fn get_header(&self, at: Option<BlockId>) -> RpcResult<HeaderJson> {
        Ok(self.block(at)?.header)
    }

    async fn get_block(&self, at: Option<BlockId>) -> RpcResult<BlockJson> {
        self.block(at)
    }

    async fn get_finality_proof(&self, at: Option<BlockId>) -> RpcResult<FinalityProofJson> {
        let hash = self.resolve(at)?;
        let bytes = match self.backend.certificate(&hash)? {
            Some(b) if !b.is_empty() => b,
            Some(_) => {
                return Err(error(
                    codes::NOT_FOUND,
                    "the genesis block is fixed by the chain spec and has no certificate",
                ));
            }
            None => return Err(BackendError::NotFound(format!("block {hash}")).into()),
        };
        let cert = Certificate::decode(&bytes)
            .map_err(|e| error(codes::INTERNAL, format!("stored certificate: {e}")))?;
        let (kind, signers) = match &cert.proof {
            Proof::Signatures(sigs) => {
                ("ed25519-signatures", sigs.iter().map(|(i, _)| *i).collect())
            }
            Proof::Threshold { fast: false, .. } => ("bls-threshold-slow", vec![]),
            Proof::Threshold { fast: true, .. } => ("bls-threshold-fast", vec![]),
        };
        Ok(FinalityProofJson {
            height: cert.height,
            block_hash: cert.block_hash,
            view: cert.view,
            kind: kind.into(),
            signers,
            certificate: format!("0x{}", hex::encode(&bytes)),
        })
    }

    async fn subscribe_finalized_heads(
        &self,
        pending: PendingSubscriptionSink,
    ) -> SubscriptionResult {
        watch::finalized_heads(self.backend.clone(), pending, self.send_timeout).await
    }
}

#[async_trait]
impl AuthorApiServer for Api {
    async fn submit_transaction(&self, tx_hex: String) -> RpcResult<Hash> {
        let bytes = watch::tx_bytes(&tx_hex)?;
        let backend = self.backend.clone();
        // Signature checks are CPU work: keep them off the I/O threads.
        tokio::task::spawn_blocking(move || backend.submit(bytes))
            .await
            .map_err(|e| error(codes::INTERNAL, e.to_string()))?
            .map_err(ErrorObjectOwned::from)
    }

    async fn next_nonce(&self, account: String) -> RpcResult<u64> {
        let pk = PublicKey::from_hex(&account)
            .map_err(|e| error(codes::INVALID_PARAMS, format!("account: {e}")))?;
        Ok(self.backend.next_nonce(&pk))
    }

    async fn submit_and_watch_transaction(
        &self,
        pending: PendingSubscriptionSink,
        tx_hex: String,
    ) -> SubscriptionResult {
        watch::submit_and_watch(self.backend.clone(), pending, tx_hex, self.send_timeout).await
    }

    async fn pending_transactions(&self) -> RpcResult<Vec<TxJson>> {
        Ok(self
            .backend
            .pending(1000)
            .iter()
            .map(TxJson::from)
            .collect())
    }
}

#[async_trait]
impl TxApiServer for Api {
    async fn get_by_hash(&self, hash: Hash) -> RpcResult<TxLookup> {
        let Some((height, index, tx, receipt)) = self.backend.transaction(&hash)? else {
            return Err(error(
                codes::NOT_FOUND,
                format!("transaction {hash} is not in a finalized block"),
            ));
        };
        let block_hash = self.hash_at(height)?;
        Ok(TxLookup {
            height,
            index,
            block_hash,
            tx: TxJson::from(&tx),
            receipt: ReceiptJson::from(&receipt),
        })
    }
}

fn args_json(args: Option<Value>) -> String {
    match args {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s,
        Some(v) => v.to_string(),
    }
}

#[async_trait]
impl StateApiServer for Api {
    async fn query(
        &self,
        method: String,
        args: Option<Value>,
        at_height: Option<u64>,
    ) -> RpcResult<Value> {
        self.run_query(method, args_json(args), at_height).await
    }

    async fn get_root(&self, at: Option<BlockId>) -> RpcResult<Hash> {
        Ok(self.block(at)?.header.state_root)
    }

    async fn get_contract(&self) -> RpcResult<ContractInfo> {
        Ok(self.backend.contract())
    }
}

/// A list filter: an object (passed on as the query's arguments) or nothing.
fn filter_object(filter: Option<Value>, fields: &str) -> RpcResult<Value> {
    match filter {
        None | Some(Value::Null) => Ok(Value::Object(Default::default())),
        Some(v @ Value::Object(_)) => Ok(v),
        Some(other) => Err(error(
            codes::INVALID_PARAMS,
            format!("the filter must be a JSON object {{ {fields} }}, got {other}"),
        )),
    }
}

#[async_trait]
impl MarketApiServer for Api {
    async fn get_account(&self, client_id: String) -> RpcResult<Value> {
        self.market_query("account", json!({ "clientId": client_id }))
            .await
    }

    async fn get_vehicle(&self, client_id: String) -> RpcResult<Value> {
        self.market_query("vehicle", json!({ "clientId": client_id }))
            .await
    }

    async fn get_orders(&self, filter: Option<Value>) -> RpcResult<Value> {
        let args = filter_object(filter, "side?, owner?, cursor?, limit?")?;
        self.market_query("orders", args).await
    }

    async fn get_order(&self, id: u64) -> RpcResult<Value> {
        self.market_query("order", json!({ "id": id })).await
    }

    async fn get_trades(&self, filter: Option<Value>) -> RpcResult<Value> {
        let args = filter_object(filter, "owner?, cursor?, limit?")?;
        self.market_query("trades", args).await
    }

    async fn get_trade(&self, id: u64) -> RpcResult<Value> {
        self.market_query("trade", json!({ "id": id })).await
    }

    async fn get_meeting_points(&self) -> RpcResult<Value> {
        self.market_query("meetingPoints", Value::Null).await
    }

    async fn get_params(&self) -> RpcResult<Value> {
        self.market_query("params", Value::Null).await
    }

    async fn subscribe_trades(
        &self,
        pending: PendingSubscriptionSink,
        filter: Option<Value>,
    ) -> SubscriptionResult {
        let owner = match filter_object(filter, "owner?") {
            Ok(f) => match &f["owner"] {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                other => {
                    let e = error(
                        codes::INVALID_PARAMS,
                        format!("owner must be a client id, got {other}"),
                    );
                    pending.reject(e).await;
                    return Ok(());
                }
            },
            Err(e) => {
                pending.reject(e).await;
                return Ok(());
            }
        };
        watch::subscribe_trades(self.backend.clone(), pending, owner, self.send_timeout).await
    }
}
