//! The subscriptions that follow finalized blocks: a transaction's lifecycle
//! (`author_submitAndWatchTransaction`) and trade events (`market_subscribeTrades`).
//!
//! Each subscription reads the node's broadcast of finalized blocks. That channel is the
//! bounded buffer: a subscriber that does not read its messages stalls its task, the channel
//! overflows for it, and it gets a final `dropped` event instead of a silent gap.

use std::sync::Arc;

use jsonrpsee::core::SubscriptionResult;
use jsonrpsee::types::ErrorObjectOwned;
use jsonrpsee::{PendingSubscriptionSink, SubscriptionMessage, SubscriptionSink};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;
use v2v_primitives::Hash;
use v2v_rpc_api::{ReceiptJson, TradeEvent, TxStatus};

use crate::backend::Backend;
use crate::errors::{codes, error};

/// Sends one item; `false` when the subscriber is gone.
async fn send(sink: &SubscriptionSink, item: &impl Serialize) -> bool {
    match serde_json::value::to_raw_value(item) {
        Ok(raw) => sink.send(SubscriptionMessage::from(raw)).await.is_ok(),
        Err(_) => false,
    }
}

/// Decodes a transaction given as hex.
pub(crate) fn tx_bytes(tx_hex: &str) -> Result<Vec<u8>, ErrorObjectOwned> {
    hex::decode(tx_hex.strip_prefix("0x").unwrap_or(tx_hex)).map_err(|e| {
        error(
            codes::TX_UNDECODABLE,
            format!("transaction is not hex: {e}"),
        )
    })
}

/// `included` then `finalized` for a transaction found in a finalized block.
async fn send_final(
    sink: &SubscriptionSink,
    height: u64,
    index: u32,
    receipt: ReceiptJson,
) -> SubscriptionResult {
    if send(sink, &TxStatus::Included { height, index }).await {
        send(
            sink,
            &TxStatus::Finalized {
                height,
                index,
                receipt,
            },
        )
        .await;
    }
    Ok(())
}

/// Submits a transaction and reports its lifecycle until it is finalized or dropped.
pub(crate) async fn submit_and_watch(
    backend: Arc<dyn Backend>,
    pending: PendingSubscriptionSink,
    tx_hex: String,
) -> SubscriptionResult {
    let bytes = match tx_bytes(&tx_hex) {
        Ok(b) => b,
        Err(e) => {
            pending.reject(e).await;
            return Ok(());
        }
    };
    // Listen before submitting, so that no block can slip between the two.
    let mut blocks = backend.subscribe_blocks();
    let sink = pending.accept().await?;
    let submit = {
        let backend = backend.clone();
        tokio::task::spawn_blocking(move || backend.submit(bytes)).await
    };
    let hash: Hash = match submit {
        Ok(Ok(hash)) => hash,
        Ok(Err(e)) => {
            let e = ErrorObjectOwned::from(e);
            let reason = e.message().to_string();
            send(
                &sink,
                &TxStatus::Invalid {
                    reason,
                    code: e.code(),
                },
            )
            .await;
            return Ok(());
        }
        Err(e) => {
            let reason = format!("internal error: {e}");
            send(&sink, &TxStatus::Dropped { reason }).await;
            return Ok(());
        }
    };
    if !send(&sink, &TxStatus::Accepted { hash }).await {
        return Ok(());
    }
    loop {
        let next = tokio::select! {
            _ = sink.closed() => return Ok(()),
            next = blocks.recv() => next,
        };
        match next {
            Ok(fb) => {
                if let Some(i) = fb.block.txs.iter().position(|t| t.hash() == hash) {
                    let receipt = fb.receipts.get(i).map(ReceiptJson::from);
                    if let Some(receipt) = receipt {
                        return send_final(&sink, fb.block.header.height, i as u32, receipt).await;
                    }
                }
            }
            Err(RecvError::Closed) => {
                let reason = "the node is shutting down".to_string();
                send(&sink, &TxStatus::Dropped { reason }).await;
                return Ok(());
            }
            // Missed blocks do not matter here: the store says whether it was finalized.
            Err(RecvError::Lagged(_)) => {}
        }
        if backend.is_pending(&hash) {
            continue;
        }
        // Out of the mempool: finalized (perhaps in a block this loop did not see), or gone.
        if let Ok(Some((height, index, _, receipt))) = backend.transaction(&hash) {
            return send_final(&sink, height, index, ReceiptJson::from(&receipt)).await;
        }
        let reason = "the transaction left the mempool without being finalized".to_string();
        send(&sink, &TxStatus::Dropped { reason }).await;
        return Ok(());
    }
}

/// The contract events that are part of a trade's lifecycle, by their subscription name.
fn trade_event_name(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "tradeMatched" => "matched",
        "tradeConfirmed" => "confirmed",
        "tradeDisputed" => "disputed",
        "tradeSettled" => "settled",
        "tradeRefunded" => "refunded",
        _ => return None,
    })
}

fn dropped(height: u64, reason: String) -> TradeEvent {
    TradeEvent {
        event: "dropped".into(),
        trade_id: None,
        consumer: None,
        provider: None,
        height,
        tx_hash: None,
        data: None,
        reason: Some(reason),
    }
}

/// Trade lifecycle events from finalized blocks, optionally of one client (either side).
pub(crate) async fn subscribe_trades(
    backend: Arc<dyn Backend>,
    pending: PendingSubscriptionSink,
    owner: Option<String>,
) -> SubscriptionResult {
    let mut blocks = backend.subscribe_blocks();
    let sink = pending.accept().await?;
    let mut last: Option<u64> = None;
    loop {
        let next = tokio::select! {
            _ = sink.closed() => return Ok(()),
            next = blocks.recv() => next,
        };
        let fb = match next {
            Ok(fb) => fb,
            Err(RecvError::Closed) => return Ok(()),
            Err(RecvError::Lagged(n)) => {
                let at = last.unwrap_or(0);
                let reason = format!(
                    "subscriber too slow: the events of {n} blocks after height {at} were not delivered; read them with market_getTrades and resubscribe"
                );
                send(&sink, &dropped(at, reason)).await;
                return Ok(());
            }
        };
        let height = fb.block.header.height;
        if let Some(l) = last
            && height != l + 1
        {
            let reason = format!(
                "this node installed a state snapshot and did not execute blocks {} to {}; read their trades with market_getTrades and resubscribe",
                l + 1,
                height - 1
            );
            send(&sink, &dropped(l, reason)).await;
            return Ok(());
        }
        last = Some(height);
        for (tx, receipt) in fb.block.txs.iter().zip(&fb.receipts) {
            for raw in &receipt.events {
                let Ok(data) = serde_json::from_str::<Value>(raw) else {
                    continue;
                };
                let Some(event) = data["type"].as_str().and_then(trade_event_name) else {
                    continue;
                };
                let consumer = data["consumer"].as_str().map(String::from);
                let provider = data["provider"].as_str().map(String::from);
                if let Some(o) = &owner
                    && consumer.as_ref() != Some(o)
                    && provider.as_ref() != Some(o)
                {
                    continue;
                }
                let item = TradeEvent {
                    event: event.into(),
                    trade_id: data["tradeId"].as_u64().or_else(|| data["id"].as_u64()),
                    consumer,
                    provider,
                    height,
                    tx_hash: Some(tx.hash()),
                    data: Some(data),
                    reason: None,
                };
                if !send(&sink, &item).await {
                    return Ok(());
                }
            }
        }
    }
}
