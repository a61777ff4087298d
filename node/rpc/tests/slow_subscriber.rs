//! Subscribers that fall behind, over a real server on 127.0.0.1 and real WebSocket clients:
//! never a silent gap, and the server does not wait on a client that does not read.
//!
//! The trade subscribers use a client whose transport stops reading its socket while a gate
//! is shut, so that the server's sends back up exactly as for a client that does not read:
//! the connection's queue (4 messages here) fills, then the sockets' buffers (notifications are
//! made 256 KiB large to fill them quickly), then the subscription's task waits in its send
//! while the backend's broadcast (8 blocks here) overflows for it.
//!
//! Every test runs on one thread (tokio's current-thread runtime: server, clients and test
//! take turns at each await) and is bounded by a timeout.

mod common;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonrpsee::client_transport::ws::{Url, WsTransportClientBuilder};
use jsonrpsee::core::client::{ReceivedMessage, Subscription, TransportReceiverT};
use jsonrpsee::server::ServerHandle;
use jsonrpsee::ws_client::{WsClient, WsClientBuilder};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use v2v_rpc::{Backend, RpcConfig, start};
use v2v_rpc_client::{ChainApiClient, MarketApiClient, SystemApiClient, TradeEvent};

use common::TestBackend;

/// The backend's broadcast of finalized blocks and heads.
const BUFFER: usize = 8;
/// Extra bytes in each trade event, so that a few dozen notifications fill the sockets.
const PADDING: usize = 256 * 1024;
/// The bound on each test.
const TEST_TIMEOUT: Duration = Duration::from_secs(60);

async fn bounded(test: impl Future<Output = ()>) {
    tokio::time::timeout(TEST_TIMEOUT, test)
        .await
        .expect("the test finished within its time bound");
}

async fn server(backend: &Arc<TestBackend>, send_timeout: Duration) -> (SocketAddr, ServerHandle) {
    let mut config = RpcConfig::local(0);
    config.message_buffer_capacity = 4;
    config.subscription_send_timeout = send_timeout;
    let backend: Arc<dyn Backend> = backend.clone();
    start(&config, backend).await.expect("the server starts")
}

/// A transport receiver that reads nothing while its gate is shut.
struct Gated<R> {
    inner: R,
    open: watch::Receiver<bool>,
}

impl<R: TransportReceiverT + Send> TransportReceiverT for Gated<R> {
    type Error = R::Error;

    async fn receive(&mut self) -> Result<ReceivedMessage, Self::Error> {
        // A gate dropped counts as open.
        let _ = self.open.wait_for(|open| *open).await;
        self.inner.receive().await
    }
}

/// A WebSocket client whose reading stops while the returned gate is set to `false`.
async fn gated_client(addr: SocketAddr) -> (WsClient, watch::Sender<bool>) {
    let url = Url::parse(&format!("ws://{addr}")).expect("a ws URL");
    let (sender, receiver) = WsTransportClientBuilder::default()
        .max_response_size(16 * 1024 * 1024)
        .build(url)
        .await
        .expect("connected");
    let (gate, open) = watch::channel(true);
    let client = WsClientBuilder::default()
        .request_timeout(Duration::from_secs(10))
        .build_with_transport(
            sender,
            Gated {
                inner: receiver,
                open,
            },
        );
    (client, gate)
}

/// Every item until the subscription ends; panics if it neither sends nor ends for 10 s.
async fn read_to_end<T: DeserializeOwned>(sub: &mut Subscription<T>) -> Vec<T> {
    let mut out = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), sub.next()).await {
            Err(_) => panic!(
                "the subscription neither sent nor ended within 10 s (after {} items)",
                out.len()
            ),
            Ok(None) => return out,
            Ok(Some(item)) => out.push(item.expect("a well-formed item")),
        }
    }
}

/// The trade ids of `matched` events, which must be 1, 2, 3, ...: in order, without a gap.
fn assert_in_order(events: &[TradeEvent]) {
    for (i, e) in events.iter().enumerate() {
        let n = i as u64 + 1;
        assert_eq!(
            (e.event.as_str(), e.trade_id, e.height),
            ("matched", Some(n), n),
            "event {i} of {}",
            events.len()
        );
    }
}

#[tokio::test]
async fn a_trade_subscriber_that_stops_reading_gets_its_events_in_order_then_dropped_then_the_end()
{
    bounded(async {
        let backend = TestBackend::new(BUFFER);
        // Long enough not to be the reason the subscription ends here.
        let (addr, _server) = server(&backend, Duration::from_secs(30)).await;
        let (client, gate) = gated_client(addr).await;
        let mut sub: Subscription<TradeEvent> =
            client.subscribe_trades(None).await.expect("subscribed");
        assert_eq!(backend.block_listeners(), 1);

        // The client stops reading while far more blocks are finalized than the buffers hold.
        gate.send_replace(false);
        let blocks = 200;
        for _ in 0..blocks {
            backend.finalize_trade_block(PADDING);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        gate.send_replace(true);

        let mut events = read_to_end(&mut sub).await;
        let last = events.pop().expect("at least the dropped event");
        assert_eq!(last.event, "dropped", "{last:?}");
        let reason = last.reason.as_deref().unwrap_or_default();
        assert!(reason.contains("too slow"), "{reason}");
        assert_in_order(&events);
        let delivered = events.len() as u64;
        assert!(delivered >= 1, "some events went out before the stall");
        assert!(
            delivered < blocks,
            "the subscriber fell behind: {delivered} of {blocks}"
        );
        assert_eq!(
            last.height, delivered,
            "dropped names the last height delivered"
        );

        // The subscription's task is gone, and the connection still serves calls.
        assert_eq!(backend.block_listeners(), 0);
        client.version().await.expect("the connection still works");
    })
    .await;
}

#[tokio::test]
async fn a_trade_subscriber_that_never_reads_is_given_up_after_the_send_timeout() {
    bounded(async {
        let backend = TestBackend::new(BUFFER);
        let send_timeout = Duration::from_millis(500);
        let (addr, _server) = server(&backend, send_timeout).await;
        let (client, gate) = gated_client(addr).await;
        let mut sub: Subscription<TradeEvent> =
            client.subscribe_trades(None).await.expect("subscribed");

        // The client reads nothing, and blocks keep coming, until the server gives the
        // subscriber up: its task ends and stops listening to the blocks.
        gate.send_replace(false);
        let start = Instant::now();
        let mut blocks = 0;
        while backend.block_listeners() > 0 {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the subscription's task still waits after {blocks} blocks"
            );
            backend.finalize_trade_block(PADDING);
            blocks += 1;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(start.elapsed() >= send_timeout);

        // What was queued before still arrives, in order, at most followed by `dropped` (the
        // last try usually finds the queue still full), then the subscription ends.
        gate.send_replace(true);
        let mut events = read_to_end(&mut sub).await;
        if events.last().is_some_and(|e| e.event == "dropped") {
            let last = events.pop().expect("a last event");
            let reason = last.reason.as_deref().unwrap_or_default();
            assert!(reason.contains("too slow"), "{reason}");
        }
        assert_in_order(&events);
        assert!(
            (events.len() as u64) < blocks,
            "{} of {blocks}",
            events.len()
        );
        client.version().await.expect("the connection still works");
    })
    .await;
}

#[tokio::test]
async fn a_heads_subscriber_that_falls_behind_gets_its_heads_in_order_then_the_end() {
    bounded(async {
        let backend = TestBackend::new(BUFFER);
        let (addr, _server) = server(&backend, Duration::from_secs(30)).await;
        let client = v2v_rpc_client::connect_ws(&format!("ws://{addr}"))
            .await
            .expect("connected");
        let mut sub = client
            .subscribe_finalized_heads()
            .await
            .expect("subscribed");
        for height in 1..=2 {
            backend.finalize_trade_block(0);
            let head = tokio::time::timeout(Duration::from_secs(10), sub.next())
                .await
                .expect("a head within 10 s")
                .expect("open")
                .expect("a header");
            assert_eq!(head.height, height);
        }
        // More blocks than the buffer holds, with no await between them: the subscription's
        // task cannot run meanwhile, so it falls behind.
        for _ in 0..3 * BUFFER {
            backend.finalize_trade_block(0);
        }
        let rest = read_to_end(&mut sub).await;
        assert!(rest.is_empty(), "no head after a gap: {rest:?}");
        assert_eq!(backend.head_listeners(), 0);
    })
    .await;
}
