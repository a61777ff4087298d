//! Helpers: deterministic identities, starting nodes, waiting for events with deadlines.

use std::{future::Future, time::Duration};

use tokio::sync::mpsc::Receiver;
use v2v_network::{
    Multiaddr, NetworkConfig, NetworkEvent, NetworkHandle, PeerEntry, PeerId, peer_id_of,
};

/// Upper bound of every test.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs a test body under [`TEST_TIMEOUT`].
pub async fn bounded<F: Future<Output = ()>>(body: F) {
    tokio::time::timeout(TEST_TIMEOUT, body)
        .await
        .expect("test exceeded its time bound");
}

/// A deterministic identity: (seed, public key).
pub fn identity(n: u8) -> ([u8; 32], [u8; 32]) {
    let seed = [n; 32];
    let keypair = libp2p::identity::Keypair::ed25519_from_bytes(seed)
        .expect("32-byte seed")
        .try_into_ed25519()
        .expect("ed25519 keypair");
    (seed, keypair.public().to_bytes())
}

pub fn peer(n: u8) -> PeerId {
    peer_id_of(&identity(n).1).expect("valid key")
}

pub fn loopback() -> Multiaddr {
    "/ip4/127.0.0.1/tcp/0".parse().expect("multiaddr")
}

/// A peer entry for identity `n`, dialable at `address` if given.
pub fn entry(n: u8, address: Option<Multiaddr>) -> PeerEntry {
    PeerEntry {
        public_key: identity(n).1,
        address,
    }
}

pub struct Node {
    pub handle: NetworkHandle,
    pub events: Receiver<NetworkEvent>,
}

impl Node {
    pub fn id(&self) -> PeerId {
        self.handle.local_peer_id()
    }

    pub fn addr(&self) -> Multiaddr {
        self.handle
            .listen_addrs()
            .into_iter()
            .next()
            .expect("listening")
    }
}

pub fn config(n: u8, peers: Vec<PeerEntry>) -> NetworkConfig {
    NetworkConfig::new(identity(n).0, loopback(), peers)
}

pub async fn start(config: NetworkConfig) -> Node {
    let (handle, events) = v2v_network::start(config).await.expect("network starts");
    Node { handle, events }
}

pub async fn start_node(n: u8, peers: Vec<PeerEntry>) -> Node {
    start(config(n, peers)).await
}

/// The next event matching `want` within `within`, skipping others; panics on timeout.
pub async fn expect_event(
    events: &mut Receiver<NetworkEvent>,
    within: Duration,
    what: &str,
    mut want: impl FnMut(&NetworkEvent) -> bool,
) -> NetworkEvent {
    let found = tokio::time::timeout(within, async {
        loop {
            let event = events.recv().await.expect("event stream open");
            if want(&event) {
                return event;
            }
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("no {what} within {within:?}"))
}

/// Asserts that no event matching `unwanted` arrives within `within` (others are skipped).
pub async fn expect_no_event(
    events: &mut Receiver<NetworkEvent>,
    within: Duration,
    what: &str,
    mut unwanted: impl FnMut(&NetworkEvent) -> bool,
) {
    let found = tokio::time::timeout(within, async {
        loop {
            match events.recv().await {
                Some(event) if unwanted(&event) => return event,
                Some(_) => {}
                // Stream closed: nothing more can arrive.
                None => std::future::pending::<()>().await,
            }
        }
    })
    .await;
    if let Ok(event) = found {
        panic!("unexpected {what}: {event:?}");
    }
}

/// Waits until `node` reports Connected for each of `peers`.
pub async fn wait_connected(node: &mut Node, peers: &[PeerId]) {
    let mut missing: Vec<PeerId> = peers.to_vec();
    while !missing.is_empty() {
        let event = expect_event(
            &mut node.events,
            Duration::from_secs(10),
            "connection",
            |e| matches!(e, NetworkEvent::Connected(_)),
        )
        .await;
        if let NetworkEvent::Connected(p) = event {
            missing.retain(|m| *m != p);
        }
    }
}

pub fn is_message_from(from: PeerId) -> impl FnMut(&NetworkEvent) -> bool {
    move |e| matches!(e, NetworkEvent::Message { from: f, .. } if *f == from)
}

pub fn is_gossip(e: &NetworkEvent) -> bool {
    matches!(e, NetworkEvent::Gossip { .. })
}
