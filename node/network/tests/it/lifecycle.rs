//! Shutdown, dropped handles, and peers restarting with the same identity.

use std::time::Duration;

use v2v_network::{Multiaddr, NetworkError, NetworkEvent};

use crate::common::*;

/// Binds `addr` with a plain socket until it succeeds: proof that the node released it.
async fn wait_port_free(addr: &Multiaddr) {
    let port = addr
        .iter()
        .find_map(|p| match p {
            libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
            _ => None,
        })
        .expect("tcp address");
    for _ in 0..50 {
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("port {port} still bound");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_everything_and_releases_the_port() {
    bounded(async {
        let mut a = start_node(1, vec![entry(2, None), entry(3, None)]).await;
        let mut b = start_node(2, vec![entry(1, Some(a.addr()))]).await;
        wait_connected(&mut a, &[b.id()]).await;
        wait_connected(&mut b, &[a.id()]).await;
        let a_addr = a.addr();

        a.handle.shutdown();
        a.handle.shutdown();
        let error = a
            .handle
            .request(b.id(), b"anyone?".to_vec())
            .await
            .expect_err("stopped");
        assert!(matches!(error, NetworkError::Stopped), "{error}");
        a.handle.send(b.id(), b"ignored".to_vec());
        a.handle.gossip(b"ignored".to_vec());
        assert!(a.handle.connected_peers().await.is_empty());

        expect_event(
            &mut b.events,
            Duration::from_secs(5),
            "disconnect",
            |e| matches!(e, NetworkEvent::Disconnected(p) if *p == a.id()),
        )
        .await;
        wait_port_free(&a_addr).await;
        // The event stream ends with the task.
        let drained = tokio::time::timeout(Duration::from_secs(5), async {
            while a.events.recv().await.is_some() {}
        })
        .await;
        assert!(drained.is_ok(), "event stream not closed");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_every_handle_stops_the_node() {
    bounded(async {
        let mut a = start_node(1, vec![entry(3, None)]).await;
        let mut c = start_node(3, vec![entry(1, Some(a.addr()))]).await;
        wait_connected(&mut a, &[c.id()]).await;
        wait_connected(&mut c, &[a.id()]).await;
        let c_id = c.id();
        let c_addr = c.addr();
        drop(c.handle);
        expect_event(
            &mut a.events,
            Duration::from_secs(5),
            "disconnect",
            |e| matches!(e, NetworkEvent::Disconnected(p) if *p == c_id),
        )
        .await;
        wait_port_free(&c_addr).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_peer_is_redialed() {
    bounded(async {
        // A dials B at a fixed address; B restarts there with the same key.
        let mut b = start_node(2, vec![entry(1, None)]).await;
        let b_addr = b.addr();
        let mut a = start_node(1, vec![entry(2, Some(b_addr.clone()))]).await;
        wait_connected(&mut a, &[b.id()]).await;
        wait_connected(&mut b, &[a.id()]).await;

        b.handle.shutdown();
        expect_event(&mut a.events, Duration::from_secs(5), "disconnect", |e| {
            matches!(e, NetworkEvent::Disconnected(_))
        })
        .await;
        let error = a
            .handle
            .request(b.id(), b"are you there?".to_vec())
            .await
            .expect_err("B is down");
        assert!(matches!(error, NetworkError::NotConnected(_)), "{error}");
        wait_port_free(&b_addr).await;

        let mut restarted = config(2, vec![entry(1, None)]);
        restarted.listen = b_addr;
        let mut b = start(restarted).await;
        // A's redial (every second) finds it.
        wait_connected(&mut a, &[b.id()]).await;
        wait_connected(&mut b, &[a.id()]).await;

        let requester = a.handle.clone();
        let b_id = b.id();
        let call =
            tokio::spawn(async move { requester.request(b_id, b"welcome back".to_vec()).await });
        let event = expect_event(&mut b.events, Duration::from_secs(5), "request", |e| {
            matches!(e, NetworkEvent::Request { .. })
        })
        .await;
        let NetworkEvent::Request { from, respond, .. } = event else {
            unreachable!()
        };
        assert_eq!(from, a.id());
        respond.send(b"thanks".to_vec()).expect("requester waiting");
        assert_eq!(call.await.expect("task").expect("answer"), b"thanks");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_reports_configuration_errors() {
    bounded(async {
        // Our own entry is ignored (no self-dial), and the PeerId is the key's.
        let a = start_node(1, vec![entry(1, Some(loopback()))]).await;
        assert_eq!(a.id(), peer(1));
        assert!(a.addr().to_string().starts_with("/ip4/127.0.0.1/tcp/"));
        assert!(!a.addr().to_string().ends_with("/tcp/0"));

        let mut busy = config(2, Vec::new());
        busy.listen = a.addr();
        let error = v2v_network::start(busy).await.expect_err("port in use");
        assert!(matches!(error, NetworkError::Listen { .. }), "{error}");

        // Not every 32-byte string is an ed25519 point.
        let bad = (0..=255u8)
            .map(|n| [n; 32])
            .find(|k| v2v_network::peer_id_of(k).is_err())
            .expect("some invalid key");
        let mut config = config(3, Vec::new());
        config.peers.push(v2v_network::PeerEntry {
            public_key: bad,
            address: None,
        });
        let error = v2v_network::start(config).await.expect_err("bad key");
        assert!(matches!(error, NetworkError::InvalidPublicKey), "{error}");
        assert!(a.handle.connected_peers().await.is_empty());
    })
    .await;
}
