//! Starting the network: identity, allow-list, swarm, listener, then the swarm task.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex, atomic::AtomicBool},
    time::Duration,
};

use futures::StreamExt;
use libp2p::{
    Multiaddr, Swarm, SwarmBuilder, core::transport::ListenerId, identity::Keypair,
    multiaddr::Protocol, noise, swarm::SwarmEvent, tcp, yamux,
};
use tokio::sync::mpsc;

use crate::{
    NetworkConfig, NetworkError, NetworkEvent, NetworkHandle,
    behaviour::{Behaviour, BehaviourEvent, Limits},
    direct::Senders,
    handle::Shared,
    outbound::MAX_IN_FLIGHT,
    peer_id_of,
    task::SwarmTask,
};

/// Capacity of the event queue to the node; when full, events are dropped (with a warning)
/// rather than stalling the swarm.
const EVENT_QUEUE: usize = 8192;

/// Validators talk all the time, but a quiet chain must not drop its links either.
const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(3600);

/// Per-connection yamux stream limit: both peers' in-flight streams plus gossip, with margin.
const YAMUX_MAX_STREAMS: usize = 8 * MAX_IN_FLIGHT;

/// How long binding may take to be reported; TCP binds synchronously, so this is generous.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) async fn start(
    config: NetworkConfig,
) -> Result<(NetworkHandle, mpsc::Receiver<NetworkEvent>), NetworkError> {
    let keypair = Keypair::ed25519_from_bytes(config.identity_seed)
        .map_err(|e| NetworkError::InvalidIdentity(e.to_string()))?;
    let local_peer_id = keypair.public().to_peer_id();

    // Allowed peers (ourselves excluded), and which of them we dial.
    let mut dial_targets = HashMap::new();
    let mut allowed = Vec::new();
    for entry in &config.peers {
        let peer = peer_id_of(&entry.public_key)?;
        if peer == local_peer_id || allowed.contains(&peer) {
            continue;
        }
        allowed.push(peer);
        if let Some(address) = &entry.address {
            dial_targets.insert(peer, address.clone());
        }
    }

    let limits = Limits {
        max_message_bytes: config.max_message_bytes,
        max_gossip_bytes: config.max_gossip_bytes,
        request_timeout: config.request_timeout,
    };
    let behaviour = Behaviour::new(&keypair, &allowed, &limits)?;
    // `with_behaviour` cannot fail for an already-built behaviour (its error is Infallible).
    let Ok(builder) = SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(tcp::Config::default(), noise::Config::new, yamux_config)
        .map_err(|e| NetworkError::Setup(format!("transport: {e}")))?
        .with_behaviour(|_| behaviour);
    let mut swarm = builder
        .with_swarm_config(|c| {
            c.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT)
                // Above the default (128): a peer may legitimately have MAX_IN_FLIGHT
                // requests opening at once; streams beyond the limit would wait, not fail.
                .with_max_negotiating_inbound_streams(2 * MAX_IN_FLIGHT)
        })
        .build();

    ensure_port_free(&config.listen)?;
    let listener = swarm
        .listen_on(config.listen.clone())
        .map_err(|e| NetworkError::Listen {
            addr: config.listen.clone(),
            reason: e.to_string(),
        })?;
    let (first, early_events) = wait_for_listen_addr(&mut swarm, listener, &config.listen).await?;
    tracing::info!(peer = %local_peer_id, address = %first, allowed = allowed.len(), "network listening");

    let shared = Arc::new(Shared {
        local_peer_id,
        listen_addrs: Mutex::new(vec![first]),
        stopped: AtomicBool::new(false),
        max_message_bytes: config.max_message_bytes,
        max_gossip_bytes: config.max_gossip_bytes,
        request_timeout: config.request_timeout,
        direct: Senders::new(
            swarm.behaviour().stream.new_control(),
            tokio::runtime::Handle::current(),
            config.max_message_bytes,
        ),
    });
    let (event_tx, event_rx) = mpsc::channel(EVENT_QUEUE);

    let (command_tx, command_rx) = mpsc::unbounded_channel();
    let task = SwarmTask::new(
        swarm,
        command_rx,
        event_tx,
        shared.clone(),
        dial_targets,
        config.redial_interval,
        early_events,
    );
    tokio::spawn(task.run());
    Ok((NetworkHandle::new(command_tx, shared), event_rx))
}

/// libp2p binds its listener with SO_REUSEPORT, so a second node started on a port already in
/// use would "succeed" and silently share that port's incoming connections with the first. A
/// plain bind (no SO_REUSEPORT) first turns that misconfiguration into an error.
fn ensure_port_free(listen: &Multiaddr) -> Result<(), NetworkError> {
    let (mut ip, mut port) = (None, None);
    for protocol in listen.iter() {
        match protocol {
            Protocol::Ip4(a) => ip = Some(IpAddr::V4(a)),
            Protocol::Ip6(a) => ip = Some(IpAddr::V6(a)),
            Protocol::Tcp(p) => port = Some(p),
            _ => {}
        }
    }
    match (ip, port) {
        (Some(ip), Some(port)) if port != 0 => std::net::TcpListener::bind((ip, port))
            .map(drop)
            .map_err(|e| NetworkError::Listen {
                addr: listen.clone(),
                reason: e.to_string(),
            }),
        // tcp/0 cannot collide; anything else libp2p reports itself.
        _ => Ok(()),
    }
}

/// Yamux closes the whole connection when a side exceeds the stream limit (default 512);
/// the outbound flow control keeps both sides' streams far below this.
fn yamux_config() -> yamux::Config {
    let mut config = yamux::Config::default();
    config.set_max_num_streams(YAMUX_MAX_STREAMS);
    config
}

/// Drives the swarm until the listener reports its first address (the real port for tcp/0);
/// further addresses (e.g. one per interface for 0.0.0.0) are recorded by the task. Any other
/// event seen meanwhile is returned for the task to handle, so none is lost.
async fn wait_for_listen_addr(
    swarm: &mut Swarm<Behaviour>,
    listener: ListenerId,
    requested: &Multiaddr,
) -> Result<(Multiaddr, Vec<SwarmEvent<BehaviourEvent>>), NetworkError> {
    let failed = |reason: String| NetworkError::Listen {
        addr: requested.clone(),
        reason,
    };
    let mut early = Vec::new();
    let wait = async {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::NewListenAddr {
                    listener_id,
                    address,
                } if listener_id == listener => return Ok(address),
                SwarmEvent::ListenerClosed {
                    listener_id,
                    reason,
                    ..
                } if listener_id == listener => {
                    return Err(failed(format!("listener closed: {reason:?}")));
                }
                SwarmEvent::ListenerError { listener_id, error } if listener_id == listener => {
                    return Err(failed(error.to_string()));
                }
                other => early.push(other),
            }
        }
    };
    let first = tokio::time::timeout(LISTEN_TIMEOUT, wait)
        .await
        .map_err(|_| failed("no listen address reported".into()))??;
    Ok((first, early))
}
