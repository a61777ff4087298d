//! Direct messages and request/response between allowed peers.

use std::time::{Duration, Instant};

use v2v_network::{NetworkError, NetworkEvent};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_connect_message_and_request() {
    bounded(async {
        // Later nodes dial earlier ones; everyone is on everyone's allow-list.
        let mut a = start_node(1, vec![entry(2, None), entry(3, None)]).await;
        let mut b = start_node(2, vec![entry(1, Some(a.addr())), entry(3, None)]).await;
        let mut c = start_node(3, vec![entry(1, Some(a.addr())), entry(2, Some(b.addr()))]).await;
        wait_connected(&mut a, &[b.id(), c.id()]).await;
        wait_connected(&mut b, &[a.id(), c.id()]).await;
        wait_connected(&mut c, &[a.id(), b.id()]).await;
        let mut peers = a.handle.connected_peers().await;
        peers.sort();
        let mut expected = vec![b.id(), c.id()];
        expected.sort();
        assert_eq!(peers, expected);

        // One-way message, with the right sender.
        a.handle.send(b.id(), b"hello".to_vec());
        let event = expect_event(&mut b.events, Duration::from_secs(5), "message", |e| {
            matches!(e, NetworkEvent::Message { .. })
        })
        .await;
        let NetworkEvent::Message { from, payload } = event else {
            unreachable!()
        };
        assert_eq!(from, a.id());
        assert_eq!(payload, b"hello");

        // Request answered by B.
        let requester = a.handle.clone();
        let b_id = b.id();
        let call = tokio::spawn(async move { requester.request(b_id, b"ping".to_vec()).await });
        let event = expect_event(&mut b.events, Duration::from_secs(5), "request", |e| {
            matches!(e, NetworkEvent::Request { .. })
        })
        .await;
        let NetworkEvent::Request {
            from,
            payload,
            respond,
        } = event
        else {
            unreachable!()
        };
        assert_eq!(from, a.id());
        assert_eq!(payload, b"ping");
        respond.send(b"pong".to_vec()).expect("requester waiting");
        let answer = call.await.expect("task").expect("answered");
        assert_eq!(answer, b"pong");

        // A request C drops fails at once, not at the 10 s timeout.
        let requester = a.handle.clone();
        let c_id = c.id();
        let started = Instant::now();
        let call = tokio::spawn(async move { requester.request(c_id, b"ignored".to_vec()).await });
        let event = expect_event(&mut c.events, Duration::from_secs(5), "request", |e| {
            matches!(e, NetworkEvent::Request { .. })
        })
        .await;
        drop(event);
        let error = call
            .await
            .expect("task")
            .expect_err("dropped respond fails the call");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "failed only after {:?}: {error}",
            started.elapsed()
        );

        // A peer we are not connected to: an immediate NotConnected.
        let started = Instant::now();
        let error = a
            .handle
            .request(peer(99), b"anyone?".to_vec())
            .await
            .expect_err("not connected");
        assert!(
            matches!(error, NetworkError::NotConnected(p) if p == peer(99)),
            "{error}"
        );
        assert!(started.elapsed() < Duration::from_secs(1));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_direct_messages_arrive_in_a_burst_and_in_order() {
    bounded(async {
        let mut a = start_node(1, vec![entry(2, None)]).await;
        let mut b = start_node(2, vec![entry(1, Some(a.addr()))]).await;
        wait_connected(&mut a, &[b.id()]).await;
        wait_connected(&mut b, &[a.id()]).await;

        // Consensus broadcasts bursts of small messages: none may be lost, and they arrive in
        // the order sent (one stream per peer).
        const COUNT: u32 = 2000;
        for i in 0..COUNT {
            a.handle.send(b.id(), i.to_be_bytes().to_vec());
        }
        for expected in 0..COUNT {
            let event = expect_event(&mut b.events, Duration::from_secs(10), "message", |e| {
                matches!(e, NetworkEvent::Message { .. })
            })
            .await;
            let NetworkEvent::Message { payload, .. } = event else {
                unreachable!()
            };
            let i = u32::from_be_bytes(payload.try_into().expect("4 bytes"));
            assert_eq!(i, expected, "out of order");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_stops_reading_events_does_not_stall_the_network() {
    bounded(async {
        let mut a = start_node(1, vec![entry(2, None)]).await;
        let mut b = start_node(2, vec![entry(1, Some(a.addr()))]).await;
        wait_connected(&mut a, &[b.id()]).await;
        wait_connected(&mut b, &[a.id()]).await;

        // More messages than B's event queue holds, while B reads nothing.
        const QUEUE: usize = 8192;
        for i in 0..(QUEUE as u32 + 1000) {
            a.handle.send(b.id(), i.to_be_bytes().to_vec());
        }
        while b.events.len() < QUEUE {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        // B's swarm still serves: a request it cannot deliver fails at once instead of
        // hanging until the timeout.
        let started = Instant::now();
        let error = a
            .handle
            .request(b.id(), b"hello?".to_vec())
            .await
            .expect_err("B's queue is full");
        assert!(!matches!(error, NetworkError::Timeout), "{error}");
        assert!(started.elapsed() < Duration::from_secs(5));

        // Once B catches up, traffic flows again. Direct messages beyond the queue waited in
        // their stream (the reader holds back rather than drop them), so all arrive, in order.
        let mut next = 0u32;
        while next < QUEUE as u32 + 1000 {
            let event = expect_event(&mut b.events, Duration::from_secs(5), "message", |e| {
                matches!(e, NetworkEvent::Message { .. })
            })
            .await;
            let NetworkEvent::Message { payload, .. } = event else {
                unreachable!()
            };
            assert_eq!(payload, next.to_be_bytes(), "lost or out of order");
            next += 1;
        }
        a.handle.send(b.id(), b"after".to_vec());
        expect_event(
            &mut b.events,
            Duration::from_secs(5),
            "message",
            |e| matches!(e, NetworkEvent::Message { payload, .. } if payload == b"after"),
        )
        .await;
    })
    .await;
}
