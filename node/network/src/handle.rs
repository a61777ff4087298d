//! The node's side of the network: a cheap, cloneable handle that queues commands to the
//! swarm task.

use std::{
    fmt,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use libp2p::{Multiaddr, PeerId};
use tokio::sync::{mpsc, oneshot};

use crate::{GossipId, NetworkError, direct::Senders};

/// Extra wait on top of the request timeout: libp2p's own timer answers first; this bound only
/// guards a caller against a wedged swarm task.
const REQUEST_GRACE: Duration = Duration::from_secs(2);

pub(crate) type Reply<T> = oneshot::Sender<T>;

pub(crate) enum Command {
    Request {
        to: PeerId,
        payload: Vec<u8>,
        reply: Reply<Result<Vec<u8>, NetworkError>>,
    },
    Gossip(Vec<u8>),
    ReportGossip {
        id: GossipId,
        accept: bool,
    },
    ConnectedPeers(Reply<Vec<PeerId>>),
    Shutdown,
}

/// State shared by the handles and the swarm task.
pub(crate) struct Shared {
    pub(crate) local_peer_id: PeerId,
    pub(crate) listen_addrs: Mutex<Vec<Multiaddr>>,
    /// Set by `shutdown` and by the task when it ends, so later calls fail fast.
    pub(crate) stopped: AtomicBool,
    pub(crate) max_message_bytes: usize,
    pub(crate) max_gossip_bytes: usize,
    pub(crate) request_timeout: Duration,
    /// The direct-message writers.
    pub(crate) direct: Senders,
}

impl Shared {
    pub(crate) fn listen_addrs(&self) -> std::sync::MutexGuard<'_, Vec<Multiaddr>> {
        // A poisoned lock only means a panic elsewhere mid-update; the list is still usable.
        self.listen_addrs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }
}

/// Handle to a running network. Cloning is cheap; the swarm task stops on [`shutdown`] or
/// when every handle is dropped.
///
/// [`shutdown`]: NetworkHandle::shutdown
#[derive(Clone)]
pub struct NetworkHandle {
    commands: mpsc::UnboundedSender<Command>,
    shared: Arc<Shared>,
}

impl fmt::Debug for NetworkHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetworkHandle")
            .field("local_peer_id", &self.shared.local_peer_id)
            .field("listen_addrs", &*self.shared.listen_addrs())
            .field("stopped", &self.shared.is_stopped())
            .finish()
    }
}

impl NetworkHandle {
    pub(crate) fn new(commands: mpsc::UnboundedSender<Command>, shared: Arc<Shared>) -> Self {
        NetworkHandle { commands, shared }
    }

    pub fn local_peer_id(&self) -> PeerId {
        self.shared.local_peer_id
    }

    /// The addresses actually listened on (with the real port when tcp/0 was asked).
    pub fn listen_addrs(&self) -> Vec<Multiaddr> {
        self.shared.listen_addrs().clone()
    }

    /// Best effort, never blocks: queued to the peer's stream writer, in order; dropped (with
    /// a debug log) if the peer cannot be reached, the queue is full or the payload is too
    /// large.
    pub fn send(&self, to: PeerId, payload: Vec<u8>) {
        let max = self.shared.max_message_bytes;
        if payload.len() > max {
            tracing::debug!(peer = %to, size = payload.len(), max, "direct message too large; dropped");
            return;
        }
        if self.shared.is_stopped() {
            tracing::debug!("network stopped; direct message dropped");
            return;
        }
        self.shared.direct.send(to, payload);
    }

    /// Publish on the transactions topic. Best effort (no peers yet => dropped with a debug
    /// log).
    pub fn gossip(&self, data: Vec<u8>) {
        let max = self.shared.max_gossip_bytes;
        if data.len() > max {
            tracing::debug!(size = data.len(), max, "gossip message too large; dropped");
            return;
        }
        self.command(Command::Gossip(data));
    }

    /// The node's verdict on a received gossip message: accept => forwarded, reject =>
    /// dropped and the source penalised.
    pub fn report_gossip(&self, id: GossipId, accept: bool) {
        self.command(Command::ReportGossip { id, accept });
    }

    /// Request/response to one peer; errors on timeout, disconnect, too large, or the network
    /// stopped.
    pub async fn request(&self, to: PeerId, payload: Vec<u8>) -> Result<Vec<u8>, NetworkError> {
        let max = self.shared.max_message_bytes;
        if payload.len() > max {
            return Err(NetworkError::TooLarge {
                size: payload.len(),
                max,
            });
        }
        let (reply, answer) = oneshot::channel();
        if !self.command(Command::Request { to, payload, reply }) {
            return Err(NetworkError::Stopped);
        }
        let bound = self.shared.request_timeout.saturating_add(REQUEST_GRACE);
        match tokio::time::timeout(bound, answer).await {
            Ok(Ok(result)) => result,
            // The task dropped the reply: it stopped.
            Ok(Err(_)) => Err(NetworkError::Stopped),
            Err(_) => Err(NetworkError::Timeout),
        }
    }

    /// The peers with at least one open connection (empty once stopped).
    pub async fn connected_peers(&self) -> Vec<PeerId> {
        let (reply, answer) = oneshot::channel();
        if !self.command(Command::ConnectedPeers(reply)) {
            return Vec::new();
        }
        answer.await.unwrap_or_default()
    }

    /// Stops the swarm task (idempotent); later calls are no-ops / errors. The listener and
    /// all connections close as the task exits (asynchronously, within milliseconds).
    pub fn shutdown(&self) {
        if !self.shared.stopped.swap(true, Ordering::AcqRel) {
            self.shared.direct.close();
            // Sent directly: `command` refuses once stopped is set.
            let _ = self.commands.send(Command::Shutdown);
        }
    }

    /// Queues a command; false if the network is stopped.
    fn command(&self, command: Command) -> bool {
        if self.shared.is_stopped() {
            tracing::debug!("network stopped; command dropped");
            return false;
        }
        self.commands.send(command).is_ok()
    }
}
