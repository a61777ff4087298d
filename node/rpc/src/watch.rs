//! The subscriptions: finalized heads (`chain_subscribeFinalizedHeads`), a transaction's
//! lifecycle (`author_submitAndWatchTransaction`) and trade events (`market_subscribeTrades`).
//!
//! Each reads one of the node's broadcast channels (finalized heads, finalized blocks), and
//! that channel is the bounded buffer. A subscriber that does not keep up is never left with a
//! silent gap:
//! - its task waited on a slow client while the channel overflowed for it (`Lagged`): it gets a
//!   final `dropped` event, then the subscription is closed;
//! - a send waited longer than the send timeout (`RpcConfig::subscription_send_timeout`) for
//!   room in the connection's buffer (the client does not read its socket): the task makes a
//!   last, short try at the `dropped` event, closes the subscription and ends, which releases
//!   its place in the channel.
//!
//! Whenever the server ends a subscription it closes it with jsonrpsee's close notification
//! (`params.error` says why) after the last event, so that clients see the end (jsonrpsee's
//! `Subscription::next` returns `None`). Heads have no `dropped` item: the close notification
//! alone says that the subscriber was too slow.

use std::sync::Arc;
use std::time::Duration;

use jsonrpsee::core::SubscriptionResult;
use jsonrpsee::types::ErrorObjectOwned;
use jsonrpsee::{PendingSubscriptionSink, SendTimeoutError, SubscriptionMessage, SubscriptionSink};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;
use v2v_primitives::Hash;
use v2v_rpc_api::{HeaderJson, ReceiptJson, TradeEvent, TxStatus};

use crate::backend::Backend;
use crate::errors::{codes, error};

/// How long the final `dropped` event may wait after a send timed out (the client is not
/// reading: this is a last try, not a wait).
const LAST_TRY: Duration = Duration::from_millis(100);

/// Why a send did not go out.
enum Stop {
    /// The subscriber unsubscribed or the connection closed: nobody to tell.
    Gone,
    /// No room in the connection's buffer within the send timeout.
    TooSlow,
    /// The item could not be serialized.
    Internal(String),
}

/// An accepted subscription with the server's send timeout.
struct Sink {
    inner: SubscriptionSink,
    timeout: Duration,
}

impl Sink {
    async fn accept(pending: PendingSubscriptionSink, timeout: Duration) -> Option<Self> {
        let inner = pending.accept().await.ok()?;
        Some(Sink { inner, timeout })
    }

    async fn send(&self, item: &impl Serialize) -> Result<(), Stop> {
        self.send_within(item, self.timeout).await
    }

    async fn send_within(&self, item: &impl Serialize, timeout: Duration) -> Result<(), Stop> {
        let raw =
            serde_json::value::to_raw_value(item).map_err(|e| Stop::Internal(e.to_string()))?;
        match self
            .inner
            .send_timeout(SubscriptionMessage::from(raw), timeout)
            .await
        {
            Ok(()) => Ok(()),
            Err(SendTimeoutError::Timeout(_)) => Err(Stop::TooSlow),
            Err(SendTimeoutError::Closed(_)) => Err(Stop::Gone),
        }
    }

    /// Sends the subscription's last event, then closes it with `reason`.
    async fn finish(&self, last: &impl Serialize, reason: String) -> SubscriptionResult {
        match self.send(last).await {
            Ok(()) => Err(reason.into()),
            Err(stop) => self.stopped(stop, None::<&()>).await,
        }
    }

    /// Ends the subscription after a send failed: after a timeout, a last short try at
    /// `dropped` (the connection's buffer is full: it usually fails, and the close notification
    /// waits in jsonrpsee until the client reads or disconnects), then the close.
    async fn stopped(&self, stop: Stop, dropped: Option<&impl Serialize>) -> SubscriptionResult {
        match stop {
            Stop::Gone => Ok(()),
            Stop::Internal(e) => Err(format!("internal error: {e}").into()),
            Stop::TooSlow => {
                if let Some(item) = dropped {
                    // Best effort: whatever happens, the subscription ends here.
                    let _ = self.send_within(item, LAST_TRY).await;
                }
                Err(self.too_slow().into())
            }
        }
    }

    fn too_slow(&self) -> String {
        format!(
            "subscriber too slow: a message could not be sent within {} ms; resubscribe",
            self.timeout.as_millis()
        )
    }
}

/// Every finalized header, in order, until the subscriber falls behind.
pub(crate) async fn finalized_heads(
    backend: Arc<dyn Backend>,
    pending: PendingSubscriptionSink,
    timeout: Duration,
) -> SubscriptionResult {
    let mut heads = backend.subscribe_heads();
    let Some(sink) = Sink::accept(pending, timeout).await else {
        return Ok(());
    };
    loop {
        let next = tokio::select! {
            _ = sink.inner.closed() => return Ok(()),
            next = heads.recv() => next,
        };
        match next {
            Ok(h) => {
                if let Err(stop) = sink.send(&HeaderJson::from(&h)).await {
                    return sink.stopped(stop, None::<&()>).await;
                }
            }
            // The subscriber fell behind the node's buffer: say so and close rather than skip
            // heads silently.
            Err(RecvError::Lagged(n)) => {
                return Err(format!("subscriber too slow: {n} heads dropped; resubscribe").into());
            }
            Err(RecvError::Closed) => return Err("the node is shutting down".into()),
        }
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

/// `included` then `finalized` for a transaction found in a finalized block; then the close.
async fn send_final(
    sink: &Sink,
    height: u64,
    index: u32,
    receipt: ReceiptJson,
) -> SubscriptionResult {
    if let Err(stop) = sink.send(&TxStatus::Included { height, index }).await {
        return sink.stopped(stop, None::<&()>).await;
    }
    let finalized = TxStatus::Finalized {
        height,
        index,
        receipt,
    };
    sink.finish(&finalized, format!("finalized in block {height}"))
        .await
}

/// Submits a transaction and reports its lifecycle until it is finalized or dropped.
pub(crate) async fn submit_and_watch(
    backend: Arc<dyn Backend>,
    pending: PendingSubscriptionSink,
    tx_hex: String,
    timeout: Duration,
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
    let Some(sink) = Sink::accept(pending, timeout).await else {
        return Ok(());
    };
    let submit = {
        let backend = backend.clone();
        tokio::task::spawn_blocking(move || backend.submit(bytes)).await
    };
    let hash: Hash = match submit {
        Ok(Ok(hash)) => hash,
        Ok(Err(e)) => {
            let e = ErrorObjectOwned::from(e);
            let reason = e.message().to_string();
            let invalid = TxStatus::Invalid {
                reason: reason.clone(),
                code: e.code(),
            };
            return sink.finish(&invalid, format!("invalid: {reason}")).await;
        }
        Err(e) => {
            let reason = format!("internal error: {e}");
            let dropped = TxStatus::Dropped {
                reason: reason.clone(),
            };
            return sink.finish(&dropped, reason).await;
        }
    };
    if let Err(stop) = sink.send(&TxStatus::Accepted { hash }).await {
        return sink.stopped(stop, None::<&()>).await;
    }
    loop {
        let next = tokio::select! {
            _ = sink.inner.closed() => return Ok(()),
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
                let dropped = TxStatus::Dropped {
                    reason: reason.clone(),
                };
                return sink.finish(&dropped, reason).await;
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
        let dropped = TxStatus::Dropped {
            reason: reason.clone(),
        };
        return sink.finish(&dropped, reason).await;
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
    timeout: Duration,
) -> SubscriptionResult {
    let mut blocks = backend.subscribe_blocks();
    let Some(sink) = Sink::accept(pending, timeout).await else {
        return Ok(());
    };
    // The last height whose events were all sent.
    let mut last: Option<u64> = None;
    loop {
        let next = tokio::select! {
            _ = sink.inner.closed() => return Ok(()),
            next = blocks.recv() => next,
        };
        let fb = match next {
            Ok(fb) => fb,
            Err(RecvError::Closed) => {
                let reason = "the node is shutting down".to_string();
                return sink
                    .finish(&dropped(last.unwrap_or(0), reason.clone()), reason)
                    .await;
            }
            Err(RecvError::Lagged(n)) => {
                let at = last.unwrap_or(0);
                let reason = format!(
                    "subscriber too slow: the events of {n} blocks after height {at} were not delivered; read them with market_getTrades and resubscribe"
                );
                return sink.finish(&dropped(at, reason.clone()), reason).await;
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
            return sink.finish(&dropped(l, reason.clone()), reason).await;
        }
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
                if let Err(stop) = sink.send(&item).await {
                    let at = last.unwrap_or(0);
                    let reason = format!(
                        "subscriber too slow: not all the events from height {height} on were delivered; read them with market_getTrades and resubscribe"
                    );
                    return sink.stopped(stop, Some(&dropped(at, reason))).await;
                }
            }
        }
        last = Some(height);
    }
}
