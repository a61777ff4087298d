//! Transaction gossip: delivery, forwarding only after the node's verdict, penalties.

use std::time::{Duration, Instant};

use v2v_network::{GossipId, NetworkEvent, PeerId};

use crate::common::*;

/// Publishes distinct throwaway messages from `from` until each of `to` has received one, so
/// `from` knows their subscriptions (exchanged just after connecting; until then gossip to
/// them is dropped, as documented). Nobody judges the throwaways, so nobody forwards them.
async fn warm_up(from: &Node, to: &mut [&mut Node]) {
    let mut done = vec![false; to.len()];
    for i in 0..50 {
        from.handle.gossip(format!("warm-up-{i}").into_bytes());
        tokio::time::sleep(Duration::from_millis(100)).await;
        for (node, done) in to.iter_mut().zip(done.iter_mut()) {
            while let Ok(event) = node.events.try_recv() {
                *done |= is_gossip(&event);
            }
        }
        if done.iter().all(|d| *d) {
            return;
        }
    }
    panic!("subscriptions never propagated");
}

fn is_tx(data: &'static [u8]) -> impl FnMut(&NetworkEvent) -> bool {
    move |e| matches!(e, NetworkEvent::Gossip { data: d, .. } if d == data)
}

/// Test transactions, as opposed to late warm-up throwaways.
fn is_any_tx(e: &NetworkEvent) -> bool {
    matches!(e, NetworkEvent::Gossip { data, .. } if data.starts_with(b"tx-"))
}

/// The next gossip event carrying `data`, as (relayer, id).
async fn expect_tx(node: &mut Node, data: &'static [u8]) -> (PeerId, GossipId) {
    match expect_event(
        &mut node.events,
        Duration::from_secs(5),
        "gossip",
        is_tx(data),
    )
    .await
    {
        NetworkEvent::Gossip { from, id, .. } => (from, id),
        _ => unreachable!(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_reaches_every_peer_once() {
    bounded(async {
        let mut a = start_node(1, vec![entry(2, None), entry(3, None)]).await;
        let mut b = start_node(2, vec![entry(1, Some(a.addr())), entry(3, None)]).await;
        let mut c = start_node(3, vec![entry(1, Some(a.addr())), entry(2, Some(b.addr()))]).await;
        wait_connected(&mut a, &[b.id(), c.id()]).await;
        wait_connected(&mut b, &[a.id(), c.id()]).await;
        wait_connected(&mut c, &[a.id(), b.id()]).await;
        warm_up(&a, &mut [&mut b, &mut c]).await;

        // One publish reaches both peers (explicit peers need no mesh); measure it.
        let (a_id, b_id) = (a.id(), b.id());
        let started = Instant::now();
        a.handle.gossip(b"tx-1".to_vec());
        for node in [&mut b, &mut c] {
            let (from, id) = expect_tx(node, b"tx-1").await;
            // Usually straight from A; under load B's forwarded copy may win the race to C.
            assert!(from == a_id || from == b_id, "from {from}");
            node.handle.report_gossip(id, true);
        }
        let latency = started.elapsed();
        assert!(latency < Duration::from_secs(1), "gossip took {latency:?}");

        // Each node judged the transaction once: the copies B and C forward to each other
        // (and not back to A, its author) are recognised as duplicates.
        for node in [&mut a, &mut b, &mut c] {
            expect_no_event(
                &mut node.events,
                Duration::from_millis(500),
                "duplicate gossip",
                is_tx(b"tx-1"),
            )
            .await;
        }
        // Publishing the same bytes again is a no-op (content-addressed ids).
        a.handle.gossip(b"tx-1".to_vec());
        expect_no_event(
            &mut b.events,
            Duration::from_millis(300),
            "re-published gossip",
            is_tx(b"tx-1"),
        )
        .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_forwards_only_accepted_gossip() {
    bounded(async {
        // Line A - B - C: A and C allow each other but neither knows the other's address, so
        // everything C gets from A went through B.
        let mut b = start_node(2, vec![entry(1, None), entry(3, None)]).await;
        let mut a = start_node(1, vec![entry(2, Some(b.addr())), entry(3, None)]).await;
        let mut c = start_node(3, vec![entry(1, None), entry(2, Some(b.addr()))]).await;
        wait_connected(&mut b, &[a.id(), c.id()]).await;
        wait_connected(&mut a, &[b.id()]).await;
        wait_connected(&mut c, &[b.id()]).await;
        warm_up(&a, &mut [&mut b]).await;
        warm_up(&b, &mut [&mut c]).await;

        // Held by B until it decides.
        a.handle.gossip(b"tx-held".to_vec());
        let (_, held) = expect_tx(&mut b, b"tx-held").await;
        expect_no_event(
            &mut c.events,
            Duration::from_millis(500),
            "unvalidated gossip",
            is_any_tx,
        )
        .await;
        b.handle.report_gossip(held, true);
        let (from, id) = expect_tx(&mut c, b"tx-held").await;
        assert_eq!(from, b.id());
        c.handle.report_gossip(id, true);

        // Rejected by B: C never sees it.
        a.handle.gossip(b"tx-bad".to_vec());
        let (_, bad) = expect_tx(&mut b, b"tx-bad").await;
        b.handle.report_gossip(bad.clone(), false);
        // A verdict repeated (or too late) is harmless.
        b.handle.report_gossip(bad, true);
        expect_no_event(
            &mut c.events,
            Duration::from_secs(1),
            "rejected gossip",
            is_any_tx,
        )
        .await;

        // The line still works, and the next transaction C sees is the good one.
        a.handle.gossip(b"tx-good".to_vec());
        let (_, good) = expect_tx(&mut b, b"tx-good").await;
        b.handle.report_gossip(good, true);
        let event = expect_event(&mut c.events, Duration::from_secs(5), "gossip", is_any_tx).await;
        assert!(is_tx(b"tx-good")(&event), "{event:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejecting_many_messages_penalises_the_relayer_for_a_while() {
    bounded(async {
        let mut a = start_node(1, vec![entry(2, None)]).await;
        let mut b = start_node(2, vec![entry(1, Some(a.addr()))]).await;
        wait_connected(&mut a, &[b.id()]).await;
        wait_connected(&mut b, &[a.id()]).await;
        warm_up(&a, &mut [&mut b]).await;

        // Keep rejecting until B stops hearing A's gossip at all.
        let mut rejected = 0;
        let graylisted = loop {
            a.handle.gossip(format!("tx-spam-{rejected}").into_bytes());
            let got = tokio::time::timeout(Duration::from_millis(500), async {
                loop {
                    if let Some(NetworkEvent::Gossip { id, data, .. }) = b.events.recv().await
                        && data.starts_with(b"tx-")
                    {
                        return id;
                    }
                }
            })
            .await;
            match got {
                Ok(id) => {
                    b.handle.report_gossip(id, false);
                    rejected += 1;
                    if rejected > 40 {
                        break false;
                    }
                }
                Err(_) => break true,
            }
        };
        assert!(
            graylisted,
            "still relayed after {rejected} rejected messages"
        );
        // An occasional disagreement must not cut a peer off.
        assert!(
            rejected >= 5,
            "graylisted after only {rejected} rejected messages"
        );

        // Gossip only: direct messages (consensus) are unaffected.
        a.handle.send(b.id(), b"vote".to_vec());
        expect_event(
            &mut b.events,
            Duration::from_secs(2),
            "direct message",
            is_message_from(a.id()),
        )
        .await;

        // The penalty decays: A's gossip gets through again within seconds.
        let started = Instant::now();
        for n in 0.. {
            a.handle.gossip(format!("tx-probe-{n}").into_bytes());
            let got = tokio::time::timeout(Duration::from_millis(250), async {
                loop {
                    if let Some(event) = b.events.recv().await
                        && is_any_tx(&event)
                    {
                        return;
                    }
                }
            })
            .await;
            if got.is_ok() {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(12),
                "penalty never decayed"
            );
        }
    })
    .await;
}
