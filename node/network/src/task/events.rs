//! Swarm events: connections, listeners, and what each protocol delivers, turned into node
//! events (and answers to the peer) without ever waiting on the node.

use futures::FutureExt;
use libp2p::{
    PeerId,
    gossipsub::{self, MessageAcceptance},
    request_response::{self, OutboundFailure, ResponseChannel},
    swarm::SwarmEvent,
};
use tokio::sync::oneshot;

use super::{RawEvent, SwarmTask};
use crate::{GossipId, NetworkError, NetworkEvent, behaviour::BehaviourEvent};

impl SwarmTask {
    pub(super) fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Allow(never)) => match never {},
            // The stream behaviour reports nothing: its streams are served by `crate::direct`.
            SwarmEvent::Behaviour(BehaviourEvent::Stream(())) => {}
            SwarmEvent::Behaviour(BehaviourEvent::Request(event)) => self.on_request(event),
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(event)) => self.on_gossip(event),
            SwarmEvent::ConnectionEstablished {
                peer_id,
                num_established,
                endpoint,
                ..
            } => {
                tracing::debug!(peer = %peer_id, address = %endpoint.get_remote_address(), "connection established");
                if num_established.get() == 1 {
                    self.emit(NetworkEvent::Connected(peer_id));
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                cause,
                ..
            } => {
                tracing::debug!(peer = %peer_id, cause = ?cause, "connection closed");
                if num_established == 0 {
                    self.drop_queued(peer_id);
                    self.emit(NetworkEvent::Disconnected(peer_id));
                }
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                let mut addrs = self.shared.listen_addrs();
                if !addrs.contains(&address) {
                    addrs.push(address);
                }
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.shared.listen_addrs().retain(|a| a != &address);
            }
            SwarmEvent::ListenerClosed { reason, .. } => {
                tracing::warn!(reason = ?reason, "listener closed");
            }
            SwarmEvent::ListenerError { error, .. } => {
                tracing::warn!(error = %error, "listener error");
            }
            SwarmEvent::IncomingConnectionError {
                send_back_addr,
                error,
                ..
            } => {
                // Peers off the allow-list and garbage senders end up here.
                tracing::debug!(from = %send_back_addr, error = %error, "incoming connection refused");
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                tracing::debug!(peer = ?peer_id, error = %error, "dial failed");
            }
            other => tracing::trace!(event = ?other, "swarm event"),
        }
    }

    fn on_request(&mut self, event: RawEvent) {
        match event {
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                let (respond, answer) = oneshot::channel();
                let delivered = self.emit(NetworkEvent::Request {
                    from: peer,
                    payload: request,
                    respond,
                });
                if delivered {
                    // Bounded so that a node that forgets a request does not leak its channel.
                    let timeout = self.shared.request_timeout;
                    self.pending_responses.push(
                        async move {
                            let answer = tokio::time::timeout(timeout, answer).await;
                            (channel, answer.ok().and_then(Result::ok))
                        }
                        .boxed(),
                    );
                }
                // Otherwise the channel drops here and the requester's call fails at once.
            }
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if let Some(reply) = self.pending_requests.remove(&request_id) {
                    let _ = reply.send(Ok(response));
                }
                self.finished(peer, request_id);
            }
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                tracing::debug!(peer = %peer, error = %error, "request failed");
                if let Some(reply) = self.pending_requests.remove(&request_id) {
                    let _ = reply.send(Err(request_error(peer, error)));
                }
                self.finished(peer, request_id);
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(peer = %peer, error = %error, "inbound request failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    pub(super) fn on_answer(&mut self, channel: ResponseChannel<Vec<u8>>, answer: Option<Vec<u8>>) {
        let Some(answer) = answer else {
            // Dropping the channel closes the stream: the requester fails now, not at its
            // timeout.
            return;
        };
        let max = self.shared.max_message_bytes;
        if answer.len() > max {
            tracing::warn!(size = answer.len(), max, "response too large; not sent");
            return;
        }
        if self
            .swarm
            .behaviour_mut()
            .request
            .send_response(channel, answer)
            .is_err()
        {
            tracing::debug!("response not sent: the request stream is gone");
        }
    }

    fn on_gossip(&mut self, event: gossipsub::Event) {
        match event {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => {
                let gossipsub = &mut self.swarm.behaviour_mut().gossipsub;
                if message.data.len() > self.shared.max_gossip_bytes {
                    // Fits gossipsub's frame (which has room for the envelope) but not our limit.
                    gossipsub.report_message_validation_result(
                        &message_id,
                        &propagation_source,
                        MessageAcceptance::Reject,
                    );
                    return;
                }
                let id = GossipId {
                    message_id: message_id.clone(),
                    source: propagation_source,
                };
                let delivered = self.emit(NetworkEvent::Gossip {
                    from: propagation_source,
                    id,
                    data: message.data,
                });
                if !delivered {
                    // The node will never judge it: release it without penalising anyone.
                    self.swarm
                        .behaviour_mut()
                        .gossipsub
                        .report_message_validation_result(
                            &message_id,
                            &propagation_source,
                            MessageAcceptance::Ignore,
                        );
                }
            }
            gossipsub::Event::Subscribed { peer_id, topic } => {
                tracing::debug!(peer = %peer_id, topic = %topic, "peer subscribed");
            }
            gossipsub::Event::GossipsubNotSupported { peer_id } => {
                tracing::debug!(peer = %peer_id, "peer does not speak gossipsub");
            }
            other => tracing::trace!(event = ?other, "gossipsub event"),
        }
    }
}

fn request_error(peer: PeerId, error: OutboundFailure) -> NetworkError {
    match error {
        OutboundFailure::Timeout => NetworkError::Timeout,
        OutboundFailure::ConnectionClosed => NetworkError::ConnectionClosed,
        OutboundFailure::DialFailure => NetworkError::NotConnected(peer),
        OutboundFailure::UnsupportedProtocols => {
            NetworkError::RequestFailed("peer does not support the request protocol".into())
        }
        // Includes the responder dropping the request (stream closed without an answer) and
        // frames refused by either side's size limit.
        OutboundFailure::Io(e) => NetworkError::RequestFailed(e.to_string()),
    }
}
