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
async fn many_direct_messages_arrive_in_a_burst() {
    bounded(async {
        let mut a = start_node(1, vec![entry(2, None)]).await;
        let mut b = start_node(2, vec![entry(1, Some(a.addr()))]).await;
        wait_connected(&mut a, &[b.id()]).await;
        wait_connected(&mut b, &[a.id()]).await;

        // Consensus broadcasts bursts of small messages: each is a stream; none may be lost.
        const COUNT: u32 = 2000;
        for i in 0..COUNT {
            a.handle.send(b.id(), i.to_be_bytes().to_vec());
        }
        let mut seen = vec![false; COUNT as usize];
        for _ in 0..COUNT {
            let event = expect_event(&mut b.events, Duration::from_secs(10), "message", |e| {
                matches!(e, NetworkEvent::Message { .. })
            })
            .await;
            let NetworkEvent::Message { payload, .. } = event else {
                unreachable!()
            };
            let i = u32::from_be_bytes(payload.try_into().expect("4 bytes"));
            seen[i as usize] = true;
        }
        assert!(seen.iter().all(|s| *s));
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

        // Once B catches up, traffic flows again; the overflow was dropped, not delayed.
        let mut drained = 0;
        while let Ok(event) = b.events.try_recv() {
            assert!(matches!(event, NetworkEvent::Message { .. }), "{event:?}");
            drained += 1;
        }
        // (Stragglers of the burst may still land after the queue was full.)
        assert!((QUEUE..QUEUE + 1000).contains(&drained), "{drained}");
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
