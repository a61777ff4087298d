//! Per-peer flow control of requests.
//!
//! Every request is its own yamux stream, and yamux tears down the *whole connection* when a
//! side exceeds its stream limit, while request-response fails outbound streams beyond its
//! concurrency limit. So this keeps at most [`MAX_IN_FLIGHT`] requests open per peer and
//! queues the rest in order.

use std::collections::{HashMap, HashSet, VecDeque};

use libp2p::{PeerId, request_response::OutboundRequestId};

use crate::{NetworkError, handle::Reply};

/// Streams we keep open to one peer. Both sides use it, so a connection carries at most
/// twice this (plus gossip's few) — well under the yamux limit set in setup.
pub(crate) const MAX_IN_FLIGHT: usize = 256;
/// Requests waiting behind the in-flight ones, per peer; beyond it requests are refused.
pub(crate) const MAX_QUEUED: usize = 65_536;

pub(crate) struct Outbound {
    pub(crate) payload: Vec<u8>,
    pub(crate) reply: Reply<Result<Vec<u8>, NetworkError>>,
}

#[derive(Default)]
struct PeerQueue {
    in_flight: HashSet<OutboundRequestId>,
    queued: VecDeque<Outbound>,
}

pub(crate) struct OutboundQueues {
    peers: HashMap<PeerId, PeerQueue>,
    max_in_flight: usize,
    max_queued: usize,
}

impl OutboundQueues {
    pub(crate) fn new(max_in_flight: usize, max_queued: usize) -> Self {
        OutboundQueues {
            peers: HashMap::new(),
            max_in_flight,
            max_queued,
        }
    }

    /// Queues an item for a connected peer; gives it back if the queue is full.
    pub(crate) fn push(&mut self, peer: PeerId, item: Outbound) -> Result<(), Outbound> {
        let queue = self.peers.entry(peer).or_default();
        if queue.queued.len() >= self.max_queued {
            return Err(item);
        }
        queue.queued.push_back(item);
        Ok(())
    }

    /// The next item to start, if the peer has a free stream slot.
    pub(crate) fn next_ready(&mut self, peer: &PeerId) -> Option<Outbound> {
        let queue = self.peers.get_mut(peer)?;
        if queue.in_flight.len() >= self.max_in_flight {
            return None;
        }
        queue.queued.pop_front()
    }

    pub(crate) fn started(&mut self, peer: PeerId, id: OutboundRequestId) {
        self.peers.entry(peer).or_default().in_flight.insert(id);
    }

    /// A stream finished (answered or failed); frees its slot.
    pub(crate) fn finished(&mut self, peer: &PeerId, id: OutboundRequestId) {
        if let Some(queue) = self.peers.get_mut(peer) {
            queue.in_flight.remove(&id);
            if queue.in_flight.is_empty() && queue.queued.is_empty() {
                self.peers.remove(peer);
            }
        }
    }

    /// The peer's last connection closed: forget it and return what never started. Late
    /// failures of its in-flight streams then find nothing, so a new connection starts clean.
    pub(crate) fn disconnected(&mut self, peer: &PeerId) -> Vec<Outbound> {
        self.peers
            .remove(peer)
            .map(|q| q.queued.into())
            .unwrap_or_default()
    }

    #[cfg(test)]
    fn in_flight(&self, peer: &PeerId) -> usize {
        self.peers.get(peer).map_or(0, |q| q.in_flight.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> OutboundRequestId {
        // OutboundRequestId has no public constructor; take ids from a real behaviour.
        use libp2p::request_response::{self, ProtocolSupport};
        let mut behaviour: request_response::Behaviour<crate::codec::RawCodec> =
            request_response::Behaviour::with_codec(
                crate::codec::RawCodec::new(16),
                [(crate::codec::REQUEST_PROTOCOL, ProtocolSupport::Full)],
                request_response::Config::default(),
            );
        let peer = PeerId::random();
        let mut last = behaviour.send_request(&peer, Vec::new());
        for _ in 1..n {
            last = behaviour.send_request(&peer, Vec::new());
        }
        last
    }

    fn item(byte: u8) -> Outbound {
        Outbound {
            payload: vec![byte],
            reply: tokio::sync::oneshot::channel().0,
        }
    }

    fn next(queues: &mut OutboundQueues, peer: &PeerId) -> Option<Vec<u8>> {
        queues.next_ready(peer).map(|o| o.payload)
    }

    #[test]
    fn limits_in_flight_and_keeps_order() {
        let peer = PeerId::random();
        let mut q = OutboundQueues::new(2, 10);
        for i in 0..4u8 {
            assert!(q.push(peer, item(i)).is_ok());
        }
        assert_eq!(next(&mut q, &peer), Some(vec![0]));
        q.started(peer, id(1));
        assert_eq!(next(&mut q, &peer), Some(vec![1]));
        q.started(peer, id(2));
        assert!(q.next_ready(&peer).is_none(), "two in flight");
        // Finishing an id that is not in flight frees nothing.
        q.finished(&peer, id(3));
        assert!(q.next_ready(&peer).is_none());
        q.finished(&peer, id(1));
        assert_eq!(next(&mut q, &peer), Some(vec![2]));
        assert_eq!(q.in_flight(&peer), 1);
    }

    #[test]
    fn full_queue_gives_the_item_back() {
        let peer = PeerId::random();
        let mut q = OutboundQueues::new(1, 1);
        assert!(q.push(peer, item(1)).is_ok());
        assert!(matches!(q.push(peer, item(2)), Err(o) if o.payload == [2]));
    }

    #[test]
    fn disconnect_returns_unstarted_and_resets() {
        let peer = PeerId::random();
        let mut q = OutboundQueues::new(1, 10);
        assert!(q.push(peer, item(1)).is_ok());
        assert!(q.push(peer, item(2)).is_ok());
        assert!(next(&mut q, &peer).is_some());
        q.started(peer, id(1));
        let left = q.disconnected(&peer);
        assert_eq!(left.len(), 1);
        // The late failure of the old stream does not disturb the new connection's slots.
        q.finished(&peer, id(1));
        assert_eq!(q.in_flight(&peer), 0);
        assert!(q.push(peer, item(3)).is_ok());
        assert_eq!(next(&mut q, &peer), Some(vec![3]));
    }
}
