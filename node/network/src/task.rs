//! The swarm task: the only owner of the libp2p swarm. It serves handle commands, turns swarm
//! events into node events, answers requests when the node responds, and redials peers.
//!
//! Nothing in here awaits the node: events go out with `try_send`, responses are awaited as
//! futures polled alongside the swarm, so a slow node never stalls the network.

use std::{
    collections::HashMap,
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use futures::{StreamExt, future::BoxFuture, stream::FuturesUnordered};
use libp2p::{
    Multiaddr, PeerId, Swarm,
    gossipsub::{IdentTopic, MessageAcceptance},
    request_response::{self, OutboundRequestId, ResponseChannel},
    swarm::{
        DialError, SwarmEvent,
        dial_opts::{DialOpts, PeerCondition},
    },
};
use tokio::{sync::mpsc, time::MissedTickBehavior};

use crate::{
    NetworkError, NetworkEvent,
    behaviour::{Behaviour, BehaviourEvent, TX_TOPIC},
    direct::{self, DIRECT_PROTOCOL},
    handle::{Command, Reply, Shared},
    outbound::{MAX_IN_FLIGHT, MAX_QUEUED, Outbound, OutboundQueues},
};

mod events;

/// Allowed peers with a known address: the ones we (re)dial.
pub(crate) type DialTargets = HashMap<PeerId, Multiaddr>;

/// A zero interval would make tokio panic and spin; redialing faster than this is pointless.
const MIN_REDIAL_INTERVAL: Duration = Duration::from_millis(50);

type RawEvent = request_response::Event<Vec<u8>, Vec<u8>>;
/// A request the node is answering: the libp2p channel and, once ready, the node's answer
/// (None if it dropped `respond` or took longer than the request timeout).
type PendingResponse = BoxFuture<'static, (ResponseChannel<Vec<u8>>, Option<Vec<u8>>)>;

pub(crate) struct SwarmTask {
    swarm: Swarm<Behaviour>,
    commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::Sender<NetworkEvent>,
    shared: Arc<Shared>,
    dial_targets: DialTargets,
    redial_interval: Duration,
    topic: IdentTopic,
    outbound: OutboundQueues,
    pending_requests: HashMap<OutboundRequestId, Reply<Result<Vec<u8>, NetworkError>>>,
    pending_responses: FuturesUnordered<PendingResponse>,
    dropped_events: DropLog,
    /// Swarm events seen while `start` waited for the listener; handled first.
    early_events: Vec<SwarmEvent<BehaviourEvent>>,
}

/// Counts events dropped because the node is not keeping up, and warns at most once a
/// second: an overloaded node must not also drown in its own logs.
#[derive(Default)]
struct DropLog {
    since_warning: u64,
    last_warning: Option<Instant>,
}

impl DropLog {
    const EVERY: Duration = Duration::from_secs(1);

    fn record(&mut self, kind: &'static str) {
        self.since_warning += 1;
        let due = self
            .last_warning
            .is_none_or(|at| at.elapsed() >= Self::EVERY);
        if due {
            tracing::warn!(
                dropped = self.since_warning,
                last = kind,
                "network event queue full; events dropped"
            );
            self.since_warning = 0;
            self.last_warning = Some(Instant::now());
        }
    }
}

impl SwarmTask {
    pub(crate) fn new(
        swarm: Swarm<Behaviour>,
        commands: mpsc::UnboundedReceiver<Command>,
        events: mpsc::Sender<NetworkEvent>,
        shared: Arc<Shared>,
        dial_targets: DialTargets,
        redial_interval: Duration,
        early_events: Vec<SwarmEvent<BehaviourEvent>>,
    ) -> Self {
        SwarmTask {
            swarm,
            commands,
            events,
            shared,
            dial_targets,
            redial_interval,
            topic: IdentTopic::new(TX_TOPIC),
            outbound: OutboundQueues::new(MAX_IN_FLIGHT, MAX_QUEUED),
            pending_requests: HashMap::new(),
            pending_responses: FuturesUnordered::new(),
            dropped_events: DropLog::default(),
            early_events,
        }
    }

    pub(crate) async fn run(mut self) {
        // Registered before the swarm is first polled, so no inbound stream finds the
        // protocol missing. It cannot be registered twice: this is its only registration.
        let acceptor = match self
            .swarm
            .behaviour()
            .stream
            .new_control()
            .accept(DIRECT_PROTOCOL)
        {
            Ok(incoming) => Some(
                tokio::spawn(direct::accept_loop(
                    incoming,
                    self.events.clone(),
                    self.shared.max_message_bytes,
                ))
                .abort_handle(),
            ),
            Err(e) => {
                tracing::error!(error = %e, "direct messages cannot be received");
                None
            }
        };
        for event in std::mem::take(&mut self.early_events) {
            self.on_swarm_event(event);
        }
        // The first tick fires at once: dialing starts immediately.
        let mut redial = tokio::time::interval(self.redial_interval.max(MIN_REDIAL_INTERVAL));
        redial.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                command = self.commands.recv() => match command {
                    // No command can arrive any more once every handle is gone.
                    Some(Command::Shutdown) | None => break,
                    Some(command) => self.on_command(command),
                },
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                Some((channel, answer)) = self.pending_responses.next() => {
                    self.on_answer(channel, answer);
                }
                _ = redial.tick() => self.redial(),
            }
        }
        self.shared.stopped.store(true, Ordering::Release);
        self.shared.direct.close();
        if let Some(acceptor) = acceptor {
            acceptor.abort();
        }
        self.shared.listen_addrs().clear();
        // Dropping the swarm closes the listener and every connection; pending request
        // replies are dropped, which their callers see as `Stopped`.
        tracing::info!(peer = %self.shared.local_peer_id, "network stopped");
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Request { to, payload, reply } => {
                if !self.swarm.is_connected(&to) {
                    // Fail fast rather than let libp2p queue it behind a dial until timeout.
                    let _ = reply.send(Err(NetworkError::NotConnected(to)));
                    self.dial(to);
                    return;
                }
                self.enqueue(to, Outbound { payload, reply });
            }
            Command::Gossip(data) => {
                let topic = self.topic.clone();
                if let Err(e) = self.swarm.behaviour_mut().gossipsub.publish(topic, data) {
                    tracing::debug!(error = %e, "gossip not published; dropped");
                }
            }
            Command::ReportGossip { id, accept } => {
                let verdict = if accept {
                    MessageAcceptance::Accept
                } else {
                    MessageAcceptance::Reject
                };
                let known = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&id.message_id, &id.source, verdict);
                if !known {
                    // Validated too late: the message left the cache (a few heartbeats).
                    tracing::debug!(message = %id.message_id, accept, "gossip verdict for an unknown message");
                }
            }
            Command::ConnectedPeers(reply) => {
                let _ = reply.send(self.swarm.connected_peers().copied().collect());
            }
            // Handled by the loop.
            Command::Shutdown => {}
        }
    }

    /// Queues a request to a connected peer and starts what fits.
    fn enqueue(&mut self, peer: PeerId, item: Outbound) {
        match self.outbound.push(peer, item) {
            Ok(()) => self.pump(peer),
            Err(Outbound { reply, .. }) => {
                tracing::warn!(peer = %peer, "send queue to peer full; request refused");
                let _ = reply.send(Err(NetworkError::RequestFailed(
                    "send queue to peer full".into(),
                )));
            }
        }
    }

    /// Opens streams for queued requests while the peer has free slots.
    fn pump(&mut self, peer: PeerId) {
        while let Some(Outbound { payload, reply }) = self.outbound.next_ready(&peer) {
            let id = self
                .swarm
                .behaviour_mut()
                .request
                .send_request(&peer, payload);
            self.pending_requests.insert(id, reply);
            self.outbound.started(peer, id);
        }
    }

    fn finished(&mut self, peer: PeerId, id: OutboundRequestId) {
        self.outbound.finished(&peer, id);
        self.pump(peer);
    }

    /// The peer is gone: requests that never left fail now.
    fn drop_queued(&mut self, peer: PeerId) {
        for Outbound { reply, .. } in self.outbound.disconnected(&peer) {
            let _ = reply.send(Err(NetworkError::ConnectionClosed));
        }
    }

    /// Dials every allowed peer with an address that has no connection. The swarm skips peers
    /// already connected or being dialed, so ticks never pile up duplicate connections.
    fn redial(&mut self) {
        let targets: Vec<(PeerId, Multiaddr)> = self
            .dial_targets
            .iter()
            .filter(|(peer, _)| !self.swarm.is_connected(peer))
            .map(|(peer, addr)| (*peer, addr.clone()))
            .collect();
        for (peer, address) in targets {
            dial(&mut self.swarm, peer, address);
        }
    }

    fn dial(&mut self, peer: PeerId) {
        if let Some(address) = self.dial_targets.get(&peer).cloned() {
            dial(&mut self.swarm, peer, address);
        }
    }

    /// Hands an event to the node without waiting; false if it was dropped.
    fn emit(&mut self, event: NetworkEvent) -> bool {
        match self.events.try_send(event) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(event)) => {
                self.dropped_events.record(event_kind(&event));
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::debug!("network event receiver dropped; event discarded");
                false
            }
        }
    }
}

fn dial(swarm: &mut Swarm<Behaviour>, peer: PeerId, address: Multiaddr) {
    let opts = DialOpts::peer_id(peer)
        .addresses(vec![address])
        .condition(PeerCondition::DisconnectedAndNotDialing)
        .build();
    match swarm.dial(opts) {
        Ok(()) | Err(DialError::DialPeerConditionFalse(_)) => {}
        Err(e) => tracing::debug!(peer = %peer, error = %e, "dial not started"),
    }
}

fn event_kind(event: &NetworkEvent) -> &'static str {
    match event {
        NetworkEvent::Message { .. } => "message",
        NetworkEvent::Request { .. } => "request",
        NetworkEvent::Gossip { .. } => "gossip",
        NetworkEvent::Connected(_) => "connected",
        NetworkEvent::Disconnected(_) => "disconnected",
    }
}
