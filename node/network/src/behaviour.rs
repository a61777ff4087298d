//! The composed libp2p behaviour: allow-list, direct-message streams, requests, transaction
//! gossip.

use std::time::Duration;

use libp2p::{
    PeerId, allow_block_list,
    gossipsub::{self, IdentTopic, MessageAuthenticity, MessageId, ValidationMode},
    identity::Keypair,
    request_response::{self, ProtocolSupport},
    swarm::NetworkBehaviour,
};

use crate::{
    NetworkError,
    codec::{REQUEST_PROTOCOL, RawCodec},
};

/// The one gossip topic: transactions.
pub(crate) const TX_TOPIC: &str = "v2v/txs/2";

/// Room for the gossipsub envelope (author, signature, sequence number, topic, protobuf tags)
/// on top of the payload, so a payload of exactly `max_gossip_bytes` still fits the frame.
pub(crate) const GOSSIP_ENVELOPE_BYTES: usize = 4 * 1024;

/// Requests in flight per peer (block sync asks a few peers at once).
const MAX_CONCURRENT_STREAMS: usize = 1024;

#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    // First, so a connection from a peer off the list is refused before any other protocol
    // sets up state for it.
    pub(crate) allow: allow_block_list::Behaviour<allow_block_list::AllowedPeers>,
    /// Direct messages: long-lived streams driven outside the swarm ([`crate::direct`]).
    pub(crate) stream: libp2p_stream::Behaviour,
    pub(crate) request: request_response::Behaviour<RawCodec>,
    pub(crate) gossipsub: gossipsub::Behaviour,
}

pub(crate) struct Limits {
    pub(crate) max_message_bytes: usize,
    pub(crate) max_gossip_bytes: usize,
    pub(crate) request_timeout: Duration,
}

impl Behaviour {
    pub(crate) fn new(
        keypair: &Keypair,
        allowed: &[PeerId],
        limits: &Limits,
    ) -> Result<Self, NetworkError> {
        let mut allow = allow_block_list::Behaviour::<allow_block_list::AllowedPeers>::default();
        for peer in allowed {
            allow.allow_peer(*peer);
        }

        let codec = RawCodec::new(limits.max_message_bytes);
        let rr_config = request_response::Config::default()
            .with_request_timeout(limits.request_timeout)
            .with_max_concurrent_streams(MAX_CONCURRENT_STREAMS);
        let request = request_response::Behaviour::with_codec(
            codec,
            [(REQUEST_PROTOCOL, ProtocolSupport::Full)],
            rr_config,
        );

        let mut gossipsub = gossipsub::Behaviour::new(
            MessageAuthenticity::Signed(keypair.clone()),
            gossip_config(limits.max_gossip_bytes)?,
        )
        .map_err(|e| NetworkError::Setup(format!("gossipsub: {e}")))?;
        let topic = IdentTopic::new(TX_TOPIC);
        gossipsub
            .with_peer_score(
                score_params(&topic),
                gossipsub::PeerScoreThresholds::default(),
            )
            .map_err(|e| NetworkError::Setup(format!("gossipsub scoring: {e}")))?;
        gossipsub
            .subscribe(&topic)
            .map_err(|e| NetworkError::Setup(format!("gossipsub subscribe: {e}")))?;
        // Every allowed peer is explicit: gossipsub sends published and forwarded messages to
        // explicit peers directly, so in a small permissioned network a transaction reaches
        // everyone at once instead of waiting for a mesh to form (explicit peers are never in
        // the mesh; the mesh simply stays empty).
        for peer in allowed {
            gossipsub.add_explicit_peer(peer);
        }

        Ok(Behaviour {
            allow,
            stream: libp2p_stream::Behaviour::new(),
            request,
            gossipsub,
        })
    }
}

fn gossip_config(max_gossip_bytes: usize) -> Result<gossipsub::Config, NetworkError> {
    gossipsub::ConfigBuilder::default()
        .validation_mode(ValidationMode::Strict)
        // Forward only after the node's verdict (report_message_validation_result).
        .validate_messages()
        .max_transmit_size(max_gossip_bytes.saturating_add(GOSSIP_ENVELOPE_BYTES))
        // Content-addressed ids: the same transaction submitted to two nodes is one message,
        // and a node re-gossiping a transaction it already relayed is a no-op.
        .message_id_fn(|message: &gossipsub::Message| {
            MessageId::from(blake3::hash(&message.data).as_bytes().to_vec())
        })
        .build()
        .map_err(|e| NetworkError::Setup(format!("gossipsub config: {e}")))
}

/// Scoring exists only so that a rejected message penalises whoever relayed it: a peer that
/// keeps relaying invalid transactions is graylisted (its gossip is ignored) until the
/// penalty decays. Everything mesh-related is zero because the mesh stays empty, and
/// IP colocation is off because validators may share an address (NAT, one host in tests).
fn score_params(topic: &IdentTopic) -> gossipsub::PeerScoreParams {
    let topic_params = gossipsub::TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.0,
        // Positive credit for first deliveries would let a busy relayer bank immunity
        // against later invalid ones.
        first_message_deliveries_weight: 0.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        // Penalty = -count^2; the count halves every second. With the default graylist
        // threshold (-80) a peer is ignored after ~9 rejected messages in quick succession
        // (or a sustained ~5/s), and recovers a few seconds after it stops.
        invalid_message_deliveries_weight: -1.0,
        invalid_message_deliveries_decay: 0.5,
        ..Default::default()
    };
    let mut params = gossipsub::PeerScoreParams {
        app_specific_weight: 0.0,
        ip_colocation_factor_weight: 0.0,
        slow_peer_weight: 0.0,
        ..Default::default()
    };
    params.topics.insert(topic.hash(), topic_params);
    params
}
