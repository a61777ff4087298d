//! The allow-list and hostile input: strangers and garbage are cut off, peers carry on.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use v2v_network::{Multiaddr, NetworkEvent, PeerId};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_off_the_allow_list_cannot_connect() {
    bounded(async {
        let mut a = start_node(1, vec![entry(2, None)]).await;
        let b = start_node(2, vec![entry(1, Some(a.addr()))]).await;
        wait_connected(&mut a, &[b.id()]).await;
        // The intruder allows A and knows its address; A does not allow the intruder.
        let intruder = start_node(66, vec![entry(1, Some(a.addr()))]).await;
        let intruder_id = intruder.id();

        // For 2.5 s the intruder keeps dialing (every second) and sending.
        let sender = intruder.handle.clone();
        let a_id = a.id();
        let spam = tokio::spawn(async move {
            for _ in 0..25 {
                sender.send(a_id, b"let me in".to_vec());
                let _ = sender.request(a_id, b"please".to_vec()).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        expect_no_event(&mut a.events, Duration::from_millis(2500), "event from the intruder", |e| {
            matches!(e,
                NetworkEvent::Connected(p) if *p == intruder_id)
                || matches!(e, NetworkEvent::Message { from, .. } | NetworkEvent::Request { from, .. } if *from == intruder_id)
        })
        .await;
        spam.await.expect("spam task");
        assert_eq!(a.handle.connected_peers().await, vec![b.id()]);

        // A's allowed peer is unaffected.
        b.handle.send(a.id(), b"still here".to_vec());
        expect_event(&mut a.events, Duration::from_secs(5), "message from B", is_message_from(b.id()))
            .await;
    })
    .await;
}

fn tcp_port(addr: &Multiaddr) -> u16 {
    addr.iter()
        .find_map(|p| match p {
            libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
            _ => None,
        })
        .expect("tcp address")
}

/// xorshift64: deterministic "random" bytes without a dependency.
fn noise_bytes(len: usize, mut state: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_connection_is_dropped_and_peers_carry_on() {
    bounded(async {
        let mut a = start_node(1, vec![entry(2, None)]).await;
        let mut b = start_node(2, vec![entry(1, Some(a.addr()))]).await;
        wait_connected(&mut a, &[b.id()]).await;
        wait_connected(&mut b, &[a.id()]).await;

        for seed in [0x9e37_79b9_7f4a_7c15u64, 42] {
            let port = tcp_port(&a.addr());
            let mut raw = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .expect("tcp connect");
            // A may hang up mid-write: that is the point, not an error.
            let _ = raw.write_all(&noise_bytes(64 * 1024, seed)).await;
            let mut buf = vec![0u8; 4096];
            let closed = tokio::time::timeout(Duration::from_secs(12), async {
                loop {
                    match raw.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        // Negotiation bytes A sent before giving up.
                        Ok(_) => {}
                    }
                }
            })
            .await;
            assert!(closed.is_ok(), "garbage connection not closed");
        }

        // A and B still talk, both ways.
        a.handle.send(b.id(), b"after garbage".to_vec());
        expect_event(
            &mut b.events,
            Duration::from_secs(5),
            "message from A",
            is_message_from(a.id()),
        )
        .await;
        let requester = b.handle.clone();
        let a_id: PeerId = a.id();
        let call = tokio::spawn(async move { requester.request(a_id, b"ping".to_vec()).await });
        let event = expect_event(&mut a.events, Duration::from_secs(5), "request", |e| {
            matches!(e, NetworkEvent::Request { .. })
        })
        .await;
        let NetworkEvent::Request { respond, .. } = event else {
            unreachable!()
        };
        respond.send(b"pong".to_vec()).expect("requester waiting");
        assert_eq!(call.await.expect("task").expect("answer"), b"pong");
        assert_eq!(a.handle.connected_peers().await, vec![b.id()]);
    })
    .await;
}
