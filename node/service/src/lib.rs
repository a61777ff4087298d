//! The node service: wires storage, execution, the mempool, the consensus engine, the
//! validator network and the RPC server, and drives the engine. The one place where engine
//! outputs are carried out is [`driver`].
#![forbid(unsafe_code)]

mod backend;
mod chain;
mod driver;
mod mempool;
mod metrics;
mod net;
mod wire;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use thiserror::Error;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use v2v_chain_spec::ChainSpec;
use v2v_consensus::{Engine, EngineConfig, ValidatorSet, new_engine};
use v2v_crypto::ValidatorSecrets;
use v2v_executor::{ContractStatus, Executor, runtime_for};
use v2v_network::{Multiaddr, NetworkConfig, PeerEntry, PeerId};
use v2v_primitives::{Hash, Header, Keypair, PublicKey, SignedTransaction, TxError};
use v2v_rpc::{FinalizedBlock, RpcConfig, SubmitError};
use v2v_storage::{RocksStore, Store};

use crate::metrics::Stage;

pub use mempool::{Mempool, MempoolLimits};

#[derive(Debug, Error)]
pub enum ServiceError {
    #[error(transparent)]
    Spec(#[from] v2v_chain_spec::SpecError),
    #[error(transparent)]
    Executor(#[from] v2v_executor::ExecutorError),
    #[error("storage at {path}: {source}")]
    Store {
        path: String,
        source: v2v_storage::StoreError,
    },
    #[error("RPC server on {addr}: {source}")]
    Rpc {
        addr: String,
        source: v2v_rpc::StartError,
    },
    #[error("the key {0} is not a validator of this chain")]
    NotAValidator(String),
    #[error("the key {0} is neither a validator nor a full node of this chain (spec fullNodes)")]
    NotAFullNode(String),
    #[error("consensus engine: {0}")]
    Engine(#[from] v2v_consensus::ConfigError),
    #[error("validator network: {0}")]
    Network(#[from] v2v_network::NetworkError),
    #[error("{0}")]
    Other(String),
}

/// How to run a node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub spec: ChainSpec,
    /// Where the RocksDB database lives (`<base>/db`).
    pub base_path: PathBuf,
    /// A validator (its keys) or a full node (its network key).
    pub role: Role,
    pub rpc: RpcConfig,
    pub mempool: MempoolLimits,
    /// Where the validator network listens; default: this validator's address in the spec.
    /// Unused on a chain of one validator.
    pub listen: Option<Multiaddr>,
    /// A node more than this many blocks behind installs a peer's state snapshot instead of
    /// replaying every block.
    pub snapshot_after: u64,
}

/// What a node does on its chain.
#[derive(Debug, Clone)]
pub enum Role {
    /// Votes and proposes: ed25519, BLS, and the threshold shares for Linear BFT / SBFT.
    Validator(ValidatorSecrets),
    /// Follows the chain by fetching finalized blocks and checking their certificates, and
    /// serves RPC. The key is its network identity, listed in the spec's `fullNodes`.
    Full(Keypair),
}

impl Role {
    /// The node's ed25519 key: its network identity (and, for a validator, its vote key).
    pub fn key(&self) -> &Keypair {
        match self {
            Role::Validator(v) => &v.ed25519,
            Role::Full(k) => k,
        }
    }
}

/// Finalized blocks a subscription may fall behind by before it is dropped (with a final
/// `dropped` event).
pub const SUBSCRIPTION_BUFFER_BLOCKS: usize = 256;

/// The node's copy of its chain spec, in the base path.
pub const SPEC_FILE: &str = "chain-spec.json";

/// State shared by the driver, the block builder and the RPC backend.
pub(crate) struct Shared {
    /// The chain spec without its genesis storage (empty here: see `spec_file`).
    pub spec: ChainSpec,
    /// The whole spec, as this node wrote it at start (`<base>/chain-spec.json`).
    pub spec_file: PathBuf,
    /// The largest spec `system_chainSpec` reads back: the RPC server's response limit.
    pub spec_response_limit: u64,
    pub genesis_hash: Hash,
    pub validators: ValidatorSet,
    pub key: Keypair,
    pub store: Arc<RocksStore>,
    pub executor: Mutex<Executor>,
    pub mempool: Mutex<Mempool>,
    pub heads: broadcast::Sender<Header>,
    /// Every block finalized by execution, with its receipts (for subscriptions).
    pub blocks: broadcast::Sender<Arc<FinalizedBlock>>,
    pub finalized_height: AtomicU64,
    /// The contract in force, the upgrade waiting and the history (refreshed when a
    /// finalized block touches them).
    pub contract: Mutex<ContractStatus>,
    /// The validator network (absent on a chain of one validator).
    pub net: Option<net::Net>,
    /// The peers connected now.
    pub connected: Mutex<BTreeSet<PeerId>>,
    /// The height of the last finalized block each proposer proposed (since start).
    pub last_proposed: Mutex<BTreeMap<PublicKey, u64>>,
    pub snapshot_after: u64,
    /// Counters for `system_metrics`.
    pub metrics: Arc<metrics::Metrics>,
}

impl Shared {
    pub fn executor(&self) -> MutexGuard<'_, Executor> {
        // Execution never leaves the executor half-updated across a panic (it is not
        // expected to panic at all); recover the guard rather than cascade.
        self.executor.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn connected(&self) -> MutexGuard<'_, BTreeSet<PeerId>> {
        self.connected.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn last_proposed(&self) -> MutexGuard<'_, BTreeMap<PublicKey, u64>> {
        self.last_proposed.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn mempool(&self) -> MutexGuard<'_, Mempool> {
        self.mempool.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn contract(&self) -> MutexGuard<'_, ContractStatus> {
        self.contract.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn finalized(&self) -> u64 {
        self.finalized_height.load(Ordering::Acquire)
    }

    /// Checks a transaction (size, encoding, chain, signature, replay, nonce) and adds it to
    /// the mempool. Transactions from clients and from peers' gossip come in here.
    pub fn admit(&self, bytes: &[u8]) -> Result<SignedTransaction, SubmitError> {
        let tx = self.metrics.time(Stage::TxCheck, 1, || {
            SignedTransaction::check(bytes, self.spec.max_decode_len(), self.genesis_hash)
        })?;
        self.metrics
            .time(Stage::Mempool, 1, || self.admit_checked(tx, bytes.len()))
    }

    /// The stateful half of [`Shared::admit`], for a transaction already decoded and
    /// signature-checked.
    fn admit_checked(
        &self,
        tx: SignedTransaction,
        len: usize,
    ) -> Result<SignedTransaction, SubmitError> {
        // Only a contract deployment may exceed maxTxBytes.
        let max = self.spec.max_tx_len(&tx.tx.method);
        if len > max {
            return Err(TxError::TooLarge { len, max }.into());
        }
        let hash = tx.hash();
        // A transaction already finalized is a replay, whatever its nonce says.
        if let Ok(Some(_)) = self.store.tx_location(&hash) {
            return Err(SubmitError::Duplicate(hash));
        }
        let next = self
            .store
            .nonce(&tx.tx.signer)
            .map_err(|e| SubmitError::MempoolFull(format!("storage error: {e}")))?;
        // A deployment is checked as its execution would check it (signer, code, version,
        // migration), so that a bad upgrade is refused here with its reason.
        if tx.tx.method == v2v_abi::DEPLOY_METHOD {
            let height = self.finalized() + 1;
            self.executor()
                .validate_deploy(&tx, height)
                .map_err(SubmitError::Rejected)?;
        }
        self.mempool().insert(tx.clone(), next)?;
        Ok(tx)
    }
}

/// A running node. Dropping it does not stop it: call [`RunningNode::shutdown`].
pub struct RunningNode {
    pub rpc_addr: std::net::SocketAddr,
    pub genesis_hash: Hash,
    pub head_height: u64,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    driver: JoinHandle<()>,
    rpc: v2v_rpc::jsonrpsee::server::ServerHandle,
}

impl std::fmt::Debug for RunningNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningNode")
            .field("rpc_addr", &self.rpc_addr)
            .field("genesis_hash", &self.genesis_hash)
            .finish()
    }
}

impl RunningNode {
    /// The last finalized height.
    pub fn finalized_height(&self) -> u64 {
        self.shared.finalized()
    }

    /// Stops block production and the RPC server, lets the block in progress finish, and
    /// flushes the database. Returns the final height.
    pub async fn shutdown(self) -> Result<u64, ServiceError> {
        let _ = self.stop.send(true);
        let _ = self.rpc.stop();
        self.rpc.stopped().await;
        let _ = self.driver.await;
        if let Some(net) = &self.shared.net {
            net.handle.shutdown();
        }
        self.shared.store.flush().map_err(|e| ServiceError::Store {
            path: "database".into(),
            source: e,
        })?;
        Ok(self.shared.finalized())
    }
}

/// The engine the chain spec names, configured for this validator.
fn make_engine(
    spec: &ChainSpec,
    validators: &ValidatorSet,
    secrets: &ValidatorSecrets,
) -> Result<Box<dyn Engine>, ServiceError> {
    let index = validators
        .index_of(&secrets.ed25519.public())
        .ok_or_else(|| ServiceError::NotAValidator(secrets.ed25519.public().to_hex()))?;
    let c = &spec.consensus;
    let config = EngineConfig {
        index,
        validators: validators.clone(),
        key: secrets.ed25519.clone(),
        slow_share: secrets.slow_share.clone(),
        fast_share: secrets.fast_share.clone(),
        timing: spec.timing(),
        window: c.window.unwrap_or(1),
        checkpoint_interval: c.checkpoint_interval.unwrap_or(64),
        sbft_c: c.sbft_c.unwrap_or(0) as usize,
    };
    Ok(new_engine(c.engine.as_str(), config)?)
}

/// Starts the libp2p transport with this validator's identity, listening on `listen` or the
/// validator's address in the spec, with every validator on the allow-list.
async fn start_network(
    spec: &ChainSpec,
    key: &Keypair,
    listen: Option<Multiaddr>,
    metrics: Arc<metrics::Metrics>,
) -> Result<
    (
        net::Net,
        tokio::sync::mpsc::Receiver<v2v_network::NetworkEvent>,
    ),
    ServiceError,
> {
    let me = key.public();
    let parse = |name: &str, a: &str| {
        a.parse::<Multiaddr>()
            .map_err(|e| ServiceError::Other(format!("{name}: address {a}: {e}")))
    };
    let mut peers = Vec::with_capacity(spec.validators.len() + spec.full_nodes.len());
    let mut own_address = None;
    for v in &spec.validators {
        let address = parse(&v.name, &v.address)?;
        if v.ed25519 == me {
            own_address = Some(address.clone());
        }
        peers.push(PeerEntry {
            public_key: v.ed25519.0,
            address: Some(address),
        });
    }
    let validator_peers = peers
        .iter()
        .map(|p| v2v_network::peer_id_of(&p.public_key))
        .collect::<Result<Vec<_>, _>>()?;
    for f in &spec.full_nodes {
        let address = f
            .address
            .as_deref()
            .map(|a| parse(&f.name, a))
            .transpose()?;
        if f.ed25519 == me {
            own_address = address.clone();
        }
        peers.push(PeerEntry {
            public_key: f.ed25519.0,
            address,
        });
    }
    // A node without an address of its own (a full node that only dials out) listens on a
    // free loopback port.
    let listen = match listen.or(own_address) {
        Some(a) => a,
        None => parse("this node", "/ip4/127.0.0.1/tcp/0")?,
    };
    let mut config = NetworkConfig::new(key.seed(), listen, peers);
    // A response carries up to a few blocks; a gossip message is a batch of transactions (or
    // one transaction larger than a batch).
    config.max_message_bytes = (spec.consensus.max_block_bytes as usize)
        .saturating_mul(4)
        .max(16 << 20);
    config.max_gossip_bytes = spec.max_decode_len().max(net::GOSSIP_BATCH_BYTES)
        + 4 * wire::MAX_GOSSIP_BATCH as usize
        + 1024;
    let (handle, events) = v2v_network::start(config).await?;
    Ok((
        net::Net {
            handle,
            validators: validator_peers,
            metrics,
            outbox: std::sync::Mutex::new(Vec::new()),
            outbox_filled: tokio::sync::Notify::new(),
        },
        events,
    ))
}

/// Opens the database, resumes (or writes genesis), starts the RPC server and the driver.
pub async fn start(config: NodeConfig) -> Result<RunningNode, ServiceError> {
    let NodeConfig {
        spec,
        base_path,
        role,
        rpc,
        mempool,
        listen,
        snapshot_after,
    } = config;
    spec.validate()?;
    let validators = spec.validator_set()?;
    let engine = match &role {
        Role::Validator(secrets) => Some(make_engine(&spec, &validators, secrets)?),
        Role::Full(key) => {
            if !spec.full_nodes.iter().any(|f| f.ed25519 == key.public()) {
                return Err(ServiceError::NotAFullNode(key.public().to_hex()));
            }
            None
        }
    };
    // A chain of one validator and no full nodes needs no network.
    let metrics = Arc::new(metrics::Metrics::default());
    let (net, net_events) = if validators.len() > 1 || !spec.full_nodes.is_empty() {
        let (net, events) = start_network(&spec, role.key(), listen, metrics.clone()).await?;
        (Some(net), Some(events))
    } else {
        (None, None)
    };
    let db_path = base_path.join("db");
    let store = Arc::new(RocksStore::open(&db_path).map_err(|e| ServiceError::Store {
        path: db_path.display().to_string(),
        source: e,
    })?);
    let runtime = runtime_for(&spec)?;
    let executor = Executor::open(&spec, runtime, store.as_ref())?;
    // `system_chainSpec` serves the spec from a copy next to the database; in memory the node
    // keeps it without the genesis storage, which only genesis needed (the state holds it
    // now, and a large one would otherwise live twice).
    let spec_file = base_path.join(SPEC_FILE);
    spec.save(&spec_file)?;
    let mut spec = spec;
    spec.genesis.storage = Default::default();
    let store_err = |e| ServiceError::Store {
        path: db_path.display().to_string(),
        source: e,
    };
    let genesis_hash = store
        .hash_at(0)
        .map_err(store_err)?
        .ok_or_else(|| ServiceError::Other("genesis missing after open".into()))?;
    let (head_height, _) = store
        .head()
        .map_err(store_err)?
        .ok_or_else(|| ServiceError::Other("head missing after open".into()))?;
    let contract = Mutex::new(executor.contract_status());
    let (heads, _) = broadcast::channel(1024);
    let (blocks, _) = broadcast::channel(SUBSCRIPTION_BUFFER_BLOCKS);
    let shared = Arc::new(Shared {
        spec,
        spec_file,
        spec_response_limit: u64::from(rpc.max_response_bytes),
        genesis_hash,
        validators,
        key: role.key().clone(),
        store,
        executor: Mutex::new(executor),
        mempool: Mutex::new(Mempool::new(mempool)),
        heads,
        blocks,
        finalized_height: AtomicU64::new(head_height),
        contract,
        net,
        connected: Mutex::new(BTreeSet::new()),
        last_proposed: Mutex::new(BTreeMap::new()),
        snapshot_after,
        metrics,
    });
    let backend: Arc<dyn v2v_rpc::Backend> = Arc::new(backend::NodeBackend(shared.clone()));
    let (rpc_addr, rpc_handle) =
        v2v_rpc::start(&rpc, backend)
            .await
            .map_err(|e| ServiceError::Rpc {
                addr: rpc.addr.to_string(),
                source: e,
            })?;
    let (stop, stop_rx) = watch::channel(false);
    if shared.net.is_some() {
        tokio::spawn(flush_gossip(shared.clone(), stop_rx.clone()));
    }
    let driver = tokio::spawn(driver::run(
        shared.clone(),
        engine,
        stop_rx,
        head_height + 1,
        net_events,
    ));
    Ok(RunningNode {
        rpc_addr,
        genesis_hash,
        head_height,
        shared,
        stop,
        driver,
        rpc: rpc_handle,
    })
}

/// Publishes the transactions our clients sent until the node stops: once one is queued,
/// what arrives in the next [`net::GOSSIP_FLUSH`] goes with it in one batch. An idle node
/// does not wake.
async fn flush_gossip(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let Some(net) = &shared.net else {
        return;
    };
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = net.outbox_filled.notified() => {}
        }
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(net::GOSSIP_FLUSH) => net.flush_gossip(),
        }
    }
}
