//! The libp2p transport of validator and full nodes.
//!
//! This crate owns everything between the node and the wire: the TCP + noise + yamux
//! transport, the node's network identity (the same ed25519 seed it signs consensus votes
//! with, so a peer's `PeerId` is derived from its validator public key), the permissioned
//! allow-list (only configured peers can hold a connection), redialing of configured peers,
//! one-way direct messages (`/v2v/direct/2`: one long-lived stream per peer carrying
//! length-prefixed frames), request/response (`/v2v/request/1`, one length-prefixed frame
//! each way), and transaction gossip (gossipsub topic `v2v/txs/2`, forwarded
//! only after the node's verdict).
//!
//! It knows nothing about what the bytes mean: encoding, consensus and the mempool live in
//! the node. [`start`] spawns one swarm task and returns a cheap [`NetworkHandle`] plus the
//! receiver of [`NetworkEvent`]s.
//!
//! Delivery semantics the node can rely on:
//! - Direct messages are best effort and arrive in the order sent to that peer; a per-peer
//!   queue holds up to 65 536; a failed stream drops what it was writing, and the next
//!   message opens a new stream. The receiver waits for the node rather than drop them.
//! - Requests: at most 256 open per peer, the rest wait in a per-peer queue and fail on
//!   disconnect.
//! - Gossip published before a peer's subscription has arrived (a few ms after connecting)
//!   does not reach that peer directly; republishing the same bytes is a no-op (ids are
//!   content hashes). A received message must be judged within a few seconds (gossipsub's
//!   message cache) or the verdict comes too late to forward it. Rejections count against
//!   the relaying peer: about nine in quick succession and its gossip is ignored for a
//!   second or two.
//! - The event queue is bounded: if the node falls behind, events are dropped (requests
//!   then fail at the requester, gossip is released unjudged), never buffered without limit.
#![forbid(unsafe_code)]

mod behaviour;
mod codec;
mod config;
mod direct;
mod error;
mod event;
mod handle;
mod outbound;
mod setup;
mod task;

pub use config::{NetworkConfig, PeerEntry};
pub use error::NetworkError;
pub use event::{GossipId, NetworkEvent};
pub use handle::NetworkHandle;
pub use libp2p::{Multiaddr, PeerId};

/// The `PeerId` of the node whose ed25519 public key is `ed25519_public`.
pub fn peer_id_of(ed25519_public: &[u8; 32]) -> Result<PeerId, NetworkError> {
    let key = libp2p::identity::ed25519::PublicKey::try_from_bytes(ed25519_public)
        .map_err(|_| NetworkError::InvalidPublicKey)?;
    Ok(libp2p::identity::PublicKey::from(key).to_peer_id())
}

/// Binds the listen address (returns an error if it cannot), spawns the swarm task on the
/// current tokio runtime, starts dialing allowed peers with addresses, and returns the handle
/// and the event receiver.
pub async fn start(
    config: NetworkConfig,
) -> Result<(NetworkHandle, tokio::sync::mpsc::Receiver<NetworkEvent>), NetworkError> {
    setup::start(config).await
}
