//! `explorer_*` served: what a block explorer needs, served from the node's own indexes (blocks by
//! height and hash, transactions by hash, transactions by signer) and the contract's reads.

use jsonrpsee::core::{RpcResult, async_trait};
use serde_json::{Value, json};
use v2v_primitives::{Hash, PublicKey};
use v2v_rpc_api::{
    BlockId, ExplorerApiServer, ExplorerStats, HeaderJson, HistoryPage, MAX_PAGE, TxApiServer,
};

use crate::api::Api;
use crate::errors::{codes, error};

fn page(limit: Option<u32>, default: u32) -> RpcResult<usize> {
    match limit.unwrap_or(default) {
        0 => Err(error(codes::INVALID_PARAMS, "limit must be at least 1")),
        n if n > MAX_PAGE => Err(error(
            codes::INVALID_PARAMS,
            format!("limit {n} is above the maximum {MAX_PAGE}"),
        )),
        n => Ok(n as usize),
    }
}

/// A history cursor: `height:index` of the last item of the previous page.
fn parse_cursor(c: &str) -> RpcResult<(u64, u32)> {
    let bad = || {
        error(
            codes::INVALID_PARAMS,
            format!("cursor {c:?} is not of the form height:index"),
        )
    };
    let (h, i) = c.split_once(':').ok_or_else(bad)?;
    Ok((h.parse().map_err(|_| bad())?, i.parse().map_err(|_| bad())?))
}

impl Api {
    async fn account(&self, client_id: &str) -> RpcResult<Value> {
        self.market_query("account", json!({ "clientId": client_id }))
            .await
    }
}

#[async_trait]
impl ExplorerApiServer for Api {
    async fn search(&self, query: String) -> RpcResult<Value> {
        let q = query.trim();
        if !q.is_empty() && q.bytes().all(|b| b.is_ascii_digit()) {
            let height: u64 = q
                .parse()
                .map_err(|_| error(codes::INVALID_PARAMS, format!("height {q} is too large")))?;
            let header = self.block(Some(BlockId::Height(height)))?.header;
            return Ok(json!({ "kind": "block", "header": header }));
        }
        if let Some(hash) = Hash::from_hex(q) {
            if let Ok(block) = self.block(Some(BlockId::Hash(hash))) {
                return Ok(json!({ "kind": "block", "header": block.header }));
            }
            if let Ok(tx) = self.get_by_hash(hash).await {
                return Ok(json!({ "kind": "transaction", "tx": tx }));
            }
            let contract = self.backend.contract();
            let upgrades: Vec<_> = contract
                .history
                .iter()
                .filter(|u| u.code_hash == hash)
                .collect();
            let pending = contract.pending.as_ref().filter(|p| p.code_hash == hash);
            if contract.code_hash == hash || !upgrades.is_empty() || pending.is_some() {
                return Ok(json!({
                    "kind": "contract",
                    "codeHash": hash,
                    "inForce": contract.code_hash == hash,
                    "pending": pending,
                    "upgrades": upgrades,
                }));
            }
        }
        match self.account(q).await {
            Ok(account) => Ok(json!({ "kind": "account", "account": account })),
            Err(_) => Err(error(
                codes::NOT_FOUND,
                format!("{q:?} is not a height, a block or transaction hash, or a client id"),
            )),
        }
    }

    async fn latest_blocks(&self, limit: Option<u32>) -> RpcResult<Vec<HeaderJson>> {
        let n = page(limit, 10)?;
        let (head, _) = self.backend.finalized_head()?;
        let mut out = Vec::with_capacity(n);
        for height in (0..=head).rev().take(n) {
            match self.block(Some(BlockId::Height(height))) {
                Ok(b) => out.push(b.header),
                // Below a snapshot's base the node has no blocks.
                Err(_) => break,
            }
        }
        Ok(out)
    }

    async fn account_history(
        &self,
        client_id: String,
        cursor: Option<String>,
        limit: Option<u32>,
    ) -> RpcResult<HistoryPage> {
        let n = page(limit, 20)?;
        let before = cursor.as_deref().map(parse_cursor).transpose()?;
        let account = self.account(&client_id).await?;
        let key_hex = account["publicKey"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let key = PublicKey::from_hex(&key_hex)
            .map_err(|e| error(codes::INTERNAL, format!("account key: {e}")))?;
        // One more than asked: whether there is a next page.
        let mut at = self.backend.history(&key, before, n + 1)?;
        let more = at.len() > n;
        at.truncate(n);
        let mut items = Vec::with_capacity(at.len());
        for &(height, index) in &at {
            let block = self.block(Some(BlockId::Height(height)))?;
            let hash = block
                .transactions
                .get(index as usize)
                .map(|t| t.hash)
                .ok_or_else(|| error(codes::INTERNAL, "history points past a block"))?;
            items.push(self.get_by_hash(hash).await?);
        }
        let next_cursor = more
            .then(|| at.last().map(|(h, i)| format!("{h}:{i}")))
            .flatten();
        Ok(HistoryPage {
            client_id,
            public_key: key_hex,
            items,
            next_cursor,
        })
    }

    async fn stats(&self) -> RpcResult<ExplorerStats> {
        let (head, _) = self.backend.finalized_head()?;
        let params = self.market_query("params", Value::Null).await?;
        let trades = params["nextTradeId"]
            .as_u64()
            .unwrap_or(1)
            .saturating_sub(1);
        let volume_wh = params["tradedWh"].as_str().unwrap_or("0").to_string();
        // Transactions in the blocks stamped within a minute of the head's timestamp (at
        // most the last 1200 blocks).
        let mut txs = 0u64;
        let mut end = None;
        for height in (1..=head).rev().take(1200) {
            let Ok(b) = self.block(Some(BlockId::Height(height))) else {
                break;
            };
            let t = b.header.timestamp;
            let end = *end.get_or_insert(t);
            if end.saturating_sub(t) > 60_000 {
                break;
            }
            txs += b.transactions.len() as u64;
        }
        Ok(ExplorerStats {
            blocks: head,
            txs: self.backend.tx_count()?,
            trades,
            volume_wh,
            tx_per_sec_last_minute: txs as f64 / 60.0,
        })
    }
}
