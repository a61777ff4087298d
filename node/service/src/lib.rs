//! The node service: wires storage, execution, the mempool, the consensus engine and the
//! RPC server, and drives the engine. The one place where engine outputs are carried out is
//! [`driver`].
#![forbid(unsafe_code)]

mod backend;
mod driver;
mod mempool;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use thiserror::Error;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use v2v_chain_spec::ChainSpec;
use v2v_consensus::{Engine, EngineConfig, ValidatorSet, new_engine};
use v2v_crypto::ValidatorSecrets;
use v2v_executor::{Executor, runtime_for};
use v2v_primitives::{Hash, Header, Keypair};
use v2v_rpc::RpcConfig;
use v2v_storage::{RocksStore, Store};

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
        source: std::io::Error,
    },
    #[error("the key {0} is not a validator of this chain")]
    NotAValidator(String),
    #[error("consensus engine: {0}")]
    Engine(#[from] v2v_consensus::ConfigError),
    #[error(
        "engine '{0}' with {1} validators needs the validator network, which this node does \
         not have yet: run it with one validator"
    )]
    NeedsNetwork(&'static str, usize),
    #[error("{0}")]
    Other(String),
}

/// How to run a node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub spec: ChainSpec,
    /// Where the RocksDB database lives (`<base>/db`).
    pub base_path: PathBuf,
    /// The validator's keys (ed25519, BLS, and its threshold shares for Linear BFT / SBFT).
    pub validator: ValidatorSecrets,
    pub rpc: RpcConfig,
    pub mempool: MempoolLimits,
}

/// State shared by the driver, the block builder and the RPC backend.
pub(crate) struct Shared {
    pub spec: ChainSpec,
    pub genesis_hash: Hash,
    pub validators: ValidatorSet,
    pub key: Keypair,
    pub store: Arc<RocksStore>,
    pub executor: Mutex<Executor>,
    pub mempool: Mutex<Mempool>,
    pub heads: broadcast::Sender<Header>,
    pub finalized_height: AtomicU64,
    pub contract: ([u8; 32], u32),
}

impl Shared {
    pub fn executor(&self) -> MutexGuard<'_, Executor> {
        // Execution never leaves the executor half-updated across a panic (it is not
        // expected to panic at all); recover the guard rather than cascade.
        self.executor.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn mempool(&self) -> MutexGuard<'_, Mempool> {
        self.mempool.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn finalized(&self) -> u64 {
        self.finalized_height.load(Ordering::Acquire)
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
    if validators.len() > 1 {
        return Err(ServiceError::NeedsNetwork(
            spec.consensus.engine.as_str(),
            validators.len(),
        ));
    }
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

/// Opens the database, resumes (or writes genesis), starts the RPC server and the driver.
pub async fn start(config: NodeConfig) -> Result<RunningNode, ServiceError> {
    let NodeConfig {
        spec,
        base_path,
        validator,
        rpc,
        mempool,
    } = config;
    spec.validate()?;
    let validators = spec.validator_set()?;
    let engine = make_engine(&spec, &validators, &validator)?;
    let db_path = base_path.join("db");
    let store = Arc::new(RocksStore::open(&db_path).map_err(|e| ServiceError::Store {
        path: db_path.display().to_string(),
        source: e,
    })?);
    let runtime = runtime_for(&spec)?;
    let executor = Executor::open(&spec, runtime, store.as_ref())?;
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
    let contract = (
        executor.contract().code_hash(),
        executor.contract().version(),
    );
    let (heads, _) = broadcast::channel(1024);
    let shared = Arc::new(Shared {
        spec,
        genesis_hash,
        validators,
        key: validator.ed25519,
        store,
        executor: Mutex::new(executor),
        mempool: Mutex::new(Mempool::new(mempool)),
        heads,
        finalized_height: AtomicU64::new(head_height),
        contract,
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
    let driver = tokio::spawn(driver::run(
        shared.clone(),
        engine,
        stop_rx,
        head_height + 1,
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
