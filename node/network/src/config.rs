//! What the node tells the network at start: identity, listen address, allowed peers, limits.

use std::time::Duration;

use libp2p::Multiaddr;

/// One peer allowed to connect to us.
#[derive(Debug, Clone)]
pub struct PeerEntry {
    /// The peer's ed25519 public key (32 bytes): its PeerId.
    pub public_key: [u8; 32],
    /// Where to dial it; None for peers that only dial us (e.g. full nodes without a fixed
    /// address).
    pub address: Option<Multiaddr>,
}

/// Configuration of [`crate::start`].
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// This node's ed25519 secret seed.
    pub identity_seed: [u8; 32],
    /// Where to listen, e.g. /ip4/127.0.0.1/tcp/30333 (tcp/0 picks a free port).
    pub listen: Multiaddr,
    /// Every peer allowed to connect: validators and full nodes. An entry for ourselves is
    /// ignored.
    pub peers: Vec<PeerEntry>,
    /// Largest direct message, request or response payload (bytes); larger ones are refused on
    /// send and on receive.
    pub max_message_bytes: usize,
    /// Largest gossip message payload (bytes). Gossipsub's frame limit is this plus a small
    /// envelope allowance (signature, author, topic).
    pub max_gossip_bytes: usize,
    /// How often to redial allowed peers with an address that are not connected.
    pub redial_interval: Duration,
    /// How long a request waits for its response.
    pub request_timeout: Duration,
}

impl NetworkConfig {
    /// Default direct message / request / response limit: 16 MiB (blocks and sync batches).
    pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;
    /// Default gossip payload limit: 1 MiB (one transaction).
    pub const DEFAULT_MAX_GOSSIP_BYTES: usize = 1024 * 1024;
    /// Default redial interval.
    pub const DEFAULT_REDIAL_INTERVAL: Duration = Duration::from_secs(1);
    /// Default request timeout.
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

    /// A configuration with the default limits and timings.
    pub fn new(identity_seed: [u8; 32], listen: Multiaddr, peers: Vec<PeerEntry>) -> Self {
        NetworkConfig {
            identity_seed,
            listen,
            peers,
            max_message_bytes: Self::DEFAULT_MAX_MESSAGE_BYTES,
            max_gossip_bytes: Self::DEFAULT_MAX_GOSSIP_BYTES,
            redial_interval: Self::DEFAULT_REDIAL_INTERVAL,
            request_timeout: Self::DEFAULT_REQUEST_TIMEOUT,
        }
    }
}
