//! What the network tells the node.

use libp2p::{PeerId, gossipsub::MessageId};
use tokio::sync::oneshot;

/// Opaque id of a received gossip message awaiting the node's validation verdict.
#[derive(Debug, Clone)]
pub struct GossipId {
    pub(crate) message_id: MessageId,
    /// The peer that relayed it to us: the one penalised if the node rejects it.
    pub(crate) source: PeerId,
}

#[derive(Debug)]
pub enum NetworkEvent {
    /// A one-way direct message from an allowed peer.
    Message { from: PeerId, payload: Vec<u8> },
    /// A request; send the answer on `respond` (dropping it makes the requester's call fail).
    Request {
        from: PeerId,
        payload: Vec<u8>,
        respond: oneshot::Sender<Vec<u8>>,
    },
    /// A gossiped transaction; it is forwarded to others only after `report_gossip(id, true)`.
    /// `from` is the peer that relayed it to us, not necessarily its author.
    Gossip {
        from: PeerId,
        id: GossipId,
        data: Vec<u8>,
    },
    /// The first connection to this peer was established.
    Connected(PeerId),
    /// The last connection to this peer closed.
    Disconnected(PeerId),
}
