//! Block execution: the chain state (contract storage, account nonces and the state-root
//! accumulator), genesis from a chain spec, executing a block's transactions in the market
//! contract, and read-only queries.
//!
//! Execution is a deterministic function of the state and the block: ordered maps only, the
//! block's own timestamp and height as the only context, the contract metered by fuel.
#![forbid(unsafe_code)]

mod accumulator;
pub mod upgrade;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use thiserror::Error;
use v2v_abi::{DEPLOY_METHOD, DeployContract};
use v2v_chain_spec::ChainSpec;
use v2v_primitives::{Block, Hash, Header, PublicKey, Receipt, SignedTransaction, tx_root};
use v2v_runtime::{CallContext, Contract, ContractStorage, Entry, Limits, Runtime};
use v2v_storage::{BlockCommit, Store};

pub use accumulator::{Accumulator, EntryKind};
pub use upgrade::{ActiveContract, ContractStatus, PendingUpgrade, UpgradeOutcome, UpgradeRecord};

#[derive(Debug, Error)]
pub enum ExecutorError {
    #[error(transparent)]
    Spec(#[from] v2v_chain_spec::SpecError),
    #[error("market contract: {0}")]
    Load(#[from] v2v_runtime::LoadError),
    #[error("genesis failed: {0}")]
    Genesis(String),
    #[error(transparent)]
    Store(#[from] v2v_storage::StoreError),
    #[error("stored chain does not match the spec: {0}")]
    Mismatch(String),
    #[error("query failed: {0}")]
    Query(String),
    #[error("invalid block: {0}")]
    InvalidBlock(String),
}

/// The chain state every replica holds identically.
#[derive(Debug, Default, Clone)]
pub struct ChainState {
    pub contract: ContractStorage,
    pub nonces: BTreeMap<PublicKey, u64>,
    pub accumulator: Accumulator,
}

impl ChainState {
    pub fn next_nonce(&self, who: &PublicKey) -> u64 {
        self.nonces.get(who).copied().unwrap_or(0)
    }

    pub fn root(&self) -> Hash {
        self.accumulator.root()
    }

    /// Recomputes the accumulator from scratch (used to check a stored state on start).
    pub fn recompute_accumulator(&self) -> Accumulator {
        let mut acc = Accumulator::default();
        for (k, v) in &self.contract {
            acc.insert(EntryKind::Contract, k, v);
        }
        for (k, n) in &self.nonces {
            acc.insert(EntryKind::Nonce, &k.0, &n.to_le_bytes());
        }
        acc
    }
}

/// How to treat a transaction whose nonce is not the signer's next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Building a proposal: leave such transactions out (they are reported back).
    Build,
    /// Checking someone else's block: such a transaction makes the block invalid.
    Verify,
}

/// A transaction left out of a block being built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skipped {
    /// Its nonce was already used: it can never execute.
    Stale(Hash),
    /// Its nonce is ahead of the signer's next nonce: it may execute later.
    Future(Hash),
    /// The block is full.
    NoRoom(Hash),
}

/// A block executed against the state, not yet finalized: [`Executor::commit_record`] turns
/// it into the store's atomic write, [`Executor::revert`] undoes it.
#[derive(Debug, Clone)]
pub struct ExecutedBlock {
    pub block: Block,
    pub receipts: Vec<Receipt>,
    pub skipped: Vec<Skipped>,
    undo_contract: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    undo_nonces: Vec<(PublicKey, Option<u64>)>,
    undo_accumulator: Accumulator,
}

/// Block limits applied while building.
#[derive(Debug, Clone, Copy)]
pub struct BlockLimits {
    pub max_txs: usize,
    pub max_bytes: usize,
}

/// The executor: the state, the runtime and the loaded market contract. A clone is an
/// independent copy of the state (sharing the compiled code).
#[derive(Debug, Clone)]
pub struct Executor {
    runtime: Runtime,
    /// The spec's code, in force until an upgrade activates.
    genesis_contract: Arc<Contract>,
    /// The code in force in `state` (see [`Executor::sync_contract`]).
    contract: Arc<Contract>,
    /// Who may deploy contract code: the spec's operators.
    operators: BTreeSet<PublicKey>,
    state: ChainState,
}

/// Contract writes of a block being executed, with what they replaced (for the undo).
type Undo = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// The spec's hash, committed to by the genesis header's `parent_hash`: two specs that differ
/// in anything but presentation give different genesis hashes.
///
/// The Wasm is covered by its code hash (checked by `validate`); full nodes are network
/// configuration, not chain state. The JSON streams into the hasher: no copy of the spec.
pub fn spec_hash(spec: &ChainSpec) -> Hash {
    let mut h = blake3::Hasher::new();
    h.update(b"v2v/spec/v1");
    // Serializing plain data into a hasher (whose writes never fail) cannot fail.
    let _ = serde_json::to_writer(&mut h, &spec.hashed());
    Hash(*h.finalize().as_bytes())
}

pub fn runtime_for(spec: &ChainSpec) -> Result<Runtime, ExecutorError> {
    Ok(Runtime::new(Limits {
        fuel_per_call: spec.execution.fuel_per_tx,
        memory_bytes: usize::try_from(spec.execution.memory_limit_bytes).unwrap_or(usize::MAX),
        max_code_bytes: spec.execution.max_code_bytes() as usize,
    })?)
}

impl Executor {
    /// Builds the genesis state from a spec: runs the contract's `v2v_init` with the genesis
    /// market, writes the spec's raw storage over it. Returns the executor and the genesis
    /// header (its hash is the chain id). [`Executor::open`] stores it.
    pub fn genesis(spec: &ChainSpec, runtime: Runtime) -> Result<(Self, Header), ExecutorError> {
        spec.validate()?;
        let contract = runtime.load(&spec.wasm()?)?;
        if contract.version() != spec.contract.version {
            return Err(ExecutorError::Genesis(format!(
                "contract declares version {}, the spec says {}",
                contract.version(),
                spec.contract.version
            )));
        }
        let input = serde_json::to_vec(&spec.genesis_market())
            .map_err(|e| ExecutorError::Genesis(e.to_string()))?;
        let ctx = CallContext {
            caller: [0u8; 32],
            height: 0,
            timestamp: spec.genesis.timestamp,
        };
        let (_, outcome) = runtime.run(&contract, ContractStorage::new(), ctx, Entry::Init, input);
        outcome
            .result
            .map_err(|e| ExecutorError::Genesis(format!("contract init: {e}")))?;
        // The spec's raw storage goes over what init wrote: start from the raw storage (a
        // clone shares its bytes) and add what init wrote to keys it lacks.
        let mut storage = spec.genesis.storage.clone();
        for (k, v) in outcome.writes {
            if let Some(v) = v
                && !storage.contains_key(&k)
            {
                storage.insert(k, v);
            }
        }
        let mut state = ChainState {
            contract: storage,
            ..ChainState::default()
        };
        for (k, v) in &state.contract {
            state.accumulator.insert(EntryKind::Contract, k, v);
        }
        let header = Header {
            height: 0,
            parent_hash: spec_hash(spec),
            state_root: state.root(),
            tx_root: Hash::ZERO,
            proposer: PublicKey::default(),
            view: 0,
            timestamp: spec.genesis.timestamp,
        };
        Ok((
            Self {
                runtime,
                genesis_contract: contract.clone(),
                contract,
                operators: spec.operators.iter().copied().collect(),
                state,
            },
            header,
        ))
    }

    /// The genesis block's store record, without contract writes: the state goes into the
    /// store first, in batches ([`Store::preload_state`]), never as a second copy of it.
    fn genesis_commit(&self, header: Header) -> BlockCommit {
        BlockCommit {
            block: Block {
                header,
                txs: vec![],
            },
            certificate: vec![],
            receipts: vec![],
            contract_writes: vec![],
            nonce_writes: vec![],
            accumulator: self.state.accumulator.to_bytes(),
        }
    }

    /// Opens the executor on a store: writes genesis into an empty store, or loads the stored
    /// state after checking that it belongs to this spec, that the head's links and the last
    /// blocks' links hold, and that the state matches the head's state root.
    pub fn open(
        spec: &ChainSpec,
        runtime: Runtime,
        store: &dyn Store,
    ) -> Result<Self, ExecutorError> {
        let (mut exec, genesis) = Self::genesis(spec, runtime)?;
        let genesis_hash = genesis.hash();
        let Some((head_height, head_hash)) = store.head()? else {
            let contract = &exec.state.contract;
            store.preload_state(&mut contract.iter())?;
            store.commit(&exec.genesis_commit(genesis))?;
            return Ok(exec);
        };
        // The stored state replaces the genesis state: do not hold both.
        exec.state = ChainState::default();
        let mismatch = |m: String| Err(ExecutorError::Mismatch(m));
        match store.hash_at(0)? {
            Some(h) if h == genesis_hash => {}
            Some(h) => {
                return mismatch(format!(
                    "the database holds chain {h}, the spec's genesis is {genesis_hash}"
                ));
            }
            None => return mismatch("no genesis block in the database".into()),
        }
        // Walk back from the head over the last blocks: hashes and parent links must agree.
        let head = store
            .block(&head_hash)?
            .ok_or_else(|| ExecutorError::Mismatch(format!("head block {head_hash} missing")))?;
        if head.hash() != head_hash || head.header.height != head_height {
            return mismatch(format!("head pointer does not match block {head_hash}"));
        }
        let mut child = head.clone();
        // History below an installed snapshot is not stored.
        let base = store.history_base()?;
        for _ in 0..64 {
            if child.header.height == 0 || child.header.height <= base {
                break;
            }
            let parent = store.block_at(child.header.height - 1)?.ok_or_else(|| {
                ExecutorError::Mismatch(format!("block {} missing", child.header.height - 1))
            })?;
            if parent.hash() != child.header.parent_hash {
                return mismatch(format!(
                    "block {} does not link to block {}",
                    child.header.height, parent.header.height
                ));
            }
            child = parent;
        }
        let state = ChainState {
            contract: store.contract_entries().collect::<Result<_, _>>()?,
            nonces: store.nonces()?,
            accumulator: Accumulator::default(),
        };
        let acc = state.recompute_accumulator();
        if acc.root() != head.header.state_root {
            return mismatch(format!(
                "stored state hashes to {}, the head's state root is {}",
                acc.root(),
                head.header.state_root
            ));
        }
        exec.state = ChainState {
            accumulator: acc,
            ..state
        };
        exec.sync_contract()?;
        Ok(exec)
    }

    pub fn state(&self) -> &ChainState {
        &self.state
    }

    /// Executes `txs` on top of the current state, in order, and returns the block with its
    /// receipts. The state is left *after* the block; undo it with [`Executor::revert`].
    pub fn execute(
        &mut self,
        mut header: Header,
        txs: Vec<SignedTransaction>,
        mode: Mode,
        limits: BlockLimits,
    ) -> Result<ExecutedBlock, ExecutorError> {
        let undo_accumulator = self.state.accumulator.clone();
        let mut undo_contract: Undo = BTreeMap::new();
        let mut undo_nonces: BTreeMap<PublicKey, Option<u64>> = BTreeMap::new();
        let mut included = Vec::with_capacity(txs.len());
        let mut receipts = Vec::with_capacity(txs.len());
        let mut skipped = Vec::new();
        let mut bytes = 0usize;
        let ctx_base = CallContext {
            caller: [0u8; 32],
            height: header.height,
            timestamp: header.timestamp,
        };
        // An upgrade due at this height takes over before the block's first transaction.
        if let Err(e) = self
            .activate_due(ctx_base, &mut undo_contract)
            .and_then(|()| self.sync_contract())
        {
            self.undo(&undo_contract, &undo_nonces, undo_accumulator);
            return Err(e);
        }
        for tx in txs {
            let signer = tx.tx.signer;
            let expected = self.state.next_nonce(&signer);
            if tx.tx.nonce != expected {
                if mode == Mode::Verify {
                    self.undo(&undo_contract, &undo_nonces, undo_accumulator);
                    return Err(ExecutorError::InvalidBlock(format!(
                        "transaction {} has nonce {}, the signer's next nonce is {expected}",
                        tx.hash(),
                        tx.tx.nonce
                    )));
                }
                skipped.push(if tx.tx.nonce < expected {
                    Skipped::Stale(tx.hash())
                } else {
                    Skipped::Future(tx.hash())
                });
                continue;
            }
            if mode == Mode::Build
                && (included.len() >= limits.max_txs
                    || bytes + tx.encoded().len() > limits.max_bytes)
            {
                skipped.push(Skipped::NoRoom(tx.hash()));
                continue;
            }
            bytes += tx.encoded().len();
            let ctx = CallContext {
                caller: signer.0,
                ..ctx_base
            };
            let receipt = if v2v_abi::upgrade::is_system_method(&tx.tx.method) {
                self.system_call(&tx, ctx, &mut undo_contract)
            } else {
                self.contract_call(&tx, ctx, &mut undo_contract)
            };
            // The nonce advances whether or not the call succeeded: the signer paid for a slot.
            let old_nonce = self.state.nonces.insert(signer, expected + 1);
            self.state.accumulator.update(
                EntryKind::Nonce,
                &signer.0,
                old_nonce.map(u64::to_le_bytes).as_ref().map(|b| &b[..]),
                Some(&(expected + 1).to_le_bytes()),
            );
            undo_nonces.entry(signer).or_insert(old_nonce);
            receipts.push(receipt);
            included.push(tx);
        }
        let root = tx_root(included.iter().map(SignedTransaction::hash));
        let state_root = self.state.root();
        if mode == Mode::Verify && (header.tx_root != root || header.state_root != state_root) {
            self.undo(&undo_contract, &undo_nonces, undo_accumulator);
            return Err(ExecutorError::InvalidBlock(format!(
                "roots differ: header has tx root {} and state root {}, execution gives {root} and {state_root}",
                header.tx_root, header.state_root
            )));
        }
        header.tx_root = root;
        header.state_root = state_root;
        Ok(ExecutedBlock {
            block: Block {
                header,
                txs: included,
            },
            receipts,
            skipped,
            undo_contract: undo_contract.into_iter().collect(),
            undo_nonces: undo_nonces.into_iter().collect(),
            undo_accumulator,
        })
    }

    fn undo(
        &mut self,
        contract: &Undo,
        nonces: &BTreeMap<PublicKey, Option<u64>>,
        acc: Accumulator,
    ) {
        for (k, old) in contract {
            match old {
                Some(v) => self.state.contract.insert(k.clone(), v.clone()),
                None => self.state.contract.remove(k),
            };
        }
        for (k, old) in nonces {
            match old {
                Some(n) => self.state.nonces.insert(*k, *n),
                None => self.state.nonces.remove(k),
            };
        }
        self.state.accumulator = acc;
    }

    /// Writes one contract-storage entry, keeping the accumulator and the undo log.
    fn put(&mut self, key: Vec<u8>, value: Option<Vec<u8>>, undo: &mut Undo) {
        let old = match &value {
            Some(v) => self.state.contract.insert(key.clone(), v.clone()),
            None => self.state.contract.remove(&key),
        };
        self.state
            .accumulator
            .update(EntryKind::Contract, &key, old.as_deref(), value.as_deref());
        undo.entry(key).or_insert(old);
    }

    /// Runs `entry` of `contract` against the state; on success installs its writes.
    fn run_entry(
        &mut self,
        contract: &Contract,
        ctx: CallContext,
        entry: Entry,
        input: Vec<u8>,
        undo: &mut Undo,
    ) -> v2v_runtime::Outcome {
        let storage = std::mem::take(&mut self.state.contract);
        let (storage, mut outcome) = self.runtime.run(contract, storage, ctx, entry, input);
        self.state.contract = storage;
        for (k, v) in std::mem::take(&mut outcome.writes) {
            self.put(k, v, undo);
        }
        outcome
    }

    /// A market transaction: the contract in force runs it.
    fn contract_call(
        &mut self,
        tx: &SignedTransaction,
        ctx: CallContext,
        undo: &mut Undo,
    ) -> Receipt {
        let input = v2v_abi::host::encode_entry_input(&tx.tx.method, &tx.tx.args);
        let contract = self.contract.clone();
        let outcome = self.run_entry(&contract, ctx, Entry::Call, input, undo);
        match outcome.result {
            Ok(_) => Receipt {
                success: true,
                error: None,
                events: outcome.events,
                fuel_used: outcome.fuel_used,
            },
            Err(e) => Receipt {
                success: false,
                error: Some(e.to_string()),
                events: vec![],
                fuel_used: outcome.fuel_used,
            },
        }
    }

    /// A call the node executes itself (`system.*`).
    fn system_call(
        &mut self,
        tx: &SignedTransaction,
        ctx: CallContext,
        undo: &mut Undo,
    ) -> Receipt {
        let result = if tx.tx.method == DEPLOY_METHOD {
            self.deploy(tx, ctx, undo)
        } else if tx.tx.method == v2v_abi::MEMO_METHOD {
            if tx.tx.args.is_empty() {
                return Receipt {
                    success: true,
                    error: None,
                    events: vec![],
                    fuel_used: 0,
                };
            }
            Err((
                "system.memo takes no arguments: the payload goes in the memo".into(),
                0,
            ))
        } else {
            Err((format!("unknown system method '{}'", tx.tx.method), 0))
        };
        match result {
            Ok((event, fuel_used)) => Receipt {
                success: true,
                error: None,
                events: vec![event],
                fuel_used,
            },
            Err((error, fuel_used)) => Receipt {
                success: false,
                error: Some(error),
                events: vec![],
                fuel_used,
            },
        }
    }

    /// Checks a deployment against the current state: the signer, the code (as genesis code
    /// is checked), the version and the activation height, and that the new code's migration
    /// runs on the current state. Returns the code and the pending record; changes nothing.
    /// The fuel of the trial migration comes back with either outcome.
    fn check_deploy(
        &mut self,
        tx: &SignedTransaction,
        ctx: CallContext,
    ) -> Result<(Vec<u8>, PendingUpgrade, u64), (String, u64)> {
        let refuse = |m: String| Err((m, 0));
        if !self.operators.contains(&tx.tx.signer) {
            return refuse(format!(
                "only an operator may deploy contract code; {} is not one",
                tx.tx.signer
            ));
        }
        let args = match DeployContract::decode(&tx.tx.args) {
            Ok(a) => a,
            Err(e) => return refuse(format!("malformed deployment: {e}")),
        };
        let new = match self.runtime.load(&args.wasm) {
            Ok(c) => c,
            Err(e) => return refuse(format!("invalid contract code: {e}")),
        };
        if let Err(e) = self.sync_contract() {
            return refuse(e.to_string());
        }
        let current = self.contract.version();
        if new.version() <= current {
            return refuse(format!(
                "the new code declares version {}, which is not greater than the version in force ({current})",
                new.version()
            ));
        }
        if let Some(p) = self.pending() {
            return refuse(format!(
                "version {} is already waiting to activate at height {}; deploy again after it has",
                p.version, p.activate_at
            ));
        }
        let activate_at = args.activate_at.unwrap_or(ctx.height + 1);
        if activate_at <= ctx.height {
            return refuse(format!(
                "activation height {activate_at} is not above the deploying block ({})",
                ctx.height
            ));
        }
        let mut fuel = 0;
        if new.has_migrate() {
            let storage = std::mem::take(&mut self.state.contract);
            let (storage, outcome) = self.runtime.run(
                &new,
                storage,
                ctx,
                Entry::Migrate,
                current.to_le_bytes().to_vec(),
            );
            self.state.contract = storage;
            fuel = outcome.fuel_used;
            if let Err(e) = outcome.result {
                return Err((
                    format!("the new code's migration fails on the current state: {e}"),
                    fuel,
                ));
            }
        }
        let pending = PendingUpgrade {
            version: new.version(),
            code_hash: Hash(new.code_hash()),
            code_bytes: args.wasm.len() as u64,
            deployed_at: ctx.height,
            activate_at,
            deploy_tx: tx.hash(),
            deployer: tx.tx.signer,
        };
        Ok((args.wasm, pending, fuel))
    }

    /// `system.deployContract`: records the code as pending. Returns the receipt's event.
    fn deploy(
        &mut self,
        tx: &SignedTransaction,
        ctx: CallContext,
        undo: &mut Undo,
    ) -> Result<(String, u64), (String, u64)> {
        let (wasm, pending, fuel) = self.check_deploy(tx, ctx)?;
        let event = serde_json::json!({
            "type": "contractDeployed",
            "version": pending.version,
            "codeHash": pending.code_hash,
            "activateAt": pending.activate_at,
        })
        .to_string();
        self.put(upgrade::PENDING_CODE_KEY.to_vec(), Some(wasm), undo);
        self.put(
            upgrade::PENDING_KEY.to_vec(),
            Some(json_bytes(&pending)),
            undo,
        );
        Ok((event, fuel))
    }

    /// Stateful checks of a deployment before it enters the mempool: what its execution on
    /// the current state would check, so that a bad upgrade is refused with a clear error.
    pub fn validate_deploy(&mut self, tx: &SignedTransaction, height: u64) -> Result<(), String> {
        let ctx = CallContext {
            caller: tx.tx.signer.0,
            height,
            timestamp: 0,
        };
        self.check_deploy(tx, ctx).map(|_| ()).map_err(|(e, _)| e)
    }

    /// Activates the pending upgrade if it is due at `ctx.height`: runs the new code's
    /// migration once; on success the new code is in force from this block on, on failure the
    /// old code stays. Either way the outcome joins the history.
    fn activate_due(&mut self, ctx: CallContext, undo: &mut Undo) -> Result<(), ExecutorError> {
        let Some(pending) = self.pending() else {
            return Ok(());
        };
        if pending.activate_at > ctx.height {
            return Ok(());
        }
        let wasm = self
            .state
            .contract
            .get(upgrade::PENDING_CODE_KEY)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| ExecutorError::Mismatch("pending upgrade without code".into()))?;
        self.sync_contract()?;
        let previous = self.contract.version();
        let mut error = None;
        match self.runtime.load(&wasm) {
            Err(e) => error = Some(format!("the code no longer loads: {e}")),
            Ok(new) if new.has_migrate() => {
                let ctx = CallContext {
                    caller: pending.deployer.0,
                    ..ctx
                };
                let outcome = self.run_entry(
                    &new,
                    ctx,
                    Entry::Migrate,
                    previous.to_le_bytes().to_vec(),
                    undo,
                );
                if let Err(e) = outcome.result {
                    error = Some(format!("migration failed: {e}"));
                }
            }
            Ok(_) => {}
        }
        if error.is_none() {
            let active = ActiveContract {
                version: pending.version,
                code_hash: pending.code_hash,
                activated_at: ctx.height,
                deploy_tx: Some(pending.deploy_tx),
            };
            self.put(upgrade::CODE_KEY.to_vec(), Some(wasm), undo);
            self.put(
                upgrade::ACTIVE_KEY.to_vec(),
                Some(json_bytes(&active)),
                undo,
            );
        }
        let mut history = self.history();
        history.push(UpgradeRecord {
            version: pending.version,
            code_hash: pending.code_hash,
            deployed_at: pending.deployed_at,
            activate_at: ctx.height,
            deploy_tx: pending.deploy_tx,
            deployer: pending.deployer,
            previous_version: previous,
            outcome: if error.is_none() {
                UpgradeOutcome::Activated
            } else {
                UpgradeOutcome::Failed
            },
            error,
        });
        self.put(
            upgrade::HISTORY_KEY.to_vec(),
            Some(json_bytes(&history)),
            undo,
        );
        self.put(upgrade::PENDING_KEY.to_vec(), None, undo);
        self.put(upgrade::PENDING_CODE_KEY.to_vec(), None, undo);
        Ok(())
    }

    fn record<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> Option<T> {
        // The records are written by this module only; an unreadable one reads as absent.
        serde_json::from_slice(self.state.contract.get(key)?).ok()
    }

    fn pending(&self) -> Option<PendingUpgrade> {
        self.record(upgrade::PENDING_KEY)
    }

    fn history(&self) -> Vec<UpgradeRecord> {
        self.record(upgrade::HISTORY_KEY).unwrap_or_default()
    }

    /// The code in force, the upgrade waiting and the history of upgrades.
    pub fn contract_status(&self) -> ContractStatus {
        let active = self
            .record(upgrade::ACTIVE_KEY)
            .unwrap_or_else(|| ActiveContract {
                version: self.genesis_contract.version(),
                code_hash: Hash(self.genesis_contract.code_hash()),
                activated_at: 0,
                deploy_tx: None,
            });
        ContractStatus {
            active,
            pending: self.pending(),
            history: self.history(),
        }
    }

    /// Makes `self.contract` the code the state says is in force (compiled once: the runtime
    /// caches modules by hash).
    fn sync_contract(&mut self) -> Result<(), ExecutorError> {
        let Some(active) = self.record::<ActiveContract>(upgrade::ACTIVE_KEY) else {
            self.contract = self.genesis_contract.clone();
            return Ok(());
        };
        if self.contract.code_hash() == active.code_hash.0 {
            return Ok(());
        }
        let wasm = self.state.contract.get(upgrade::CODE_KEY).ok_or_else(|| {
            ExecutorError::Mismatch("the state names contract code it lacks".into())
        })?;
        let contract = self.runtime.load(wasm)?;
        if contract.code_hash() != active.code_hash.0 {
            return Err(ExecutorError::Mismatch(format!(
                "the stored contract code does not hash to {}",
                active.code_hash
            )));
        }
        self.contract = contract;
        Ok(())
    }

    /// Stages `wasm` to take over at `activate_at` as if an operator had deployed it, without
    /// the deployment's checks of signer and version: for `v2v contract dry-run`, which
    /// replays finalized blocks against new code. The migration runs at activation.
    pub fn stage_upgrade(&mut self, wasm: Vec<u8>, activate_at: u64) -> Result<u32, ExecutorError> {
        let new = self.runtime.load(&wasm)?;
        let pending = PendingUpgrade {
            version: new.version(),
            code_hash: Hash(new.code_hash()),
            code_bytes: wasm.len() as u64,
            deployed_at: activate_at.saturating_sub(1),
            activate_at,
            deploy_tx: Hash::ZERO,
            deployer: PublicKey::default(),
        };
        let mut undo = Undo::new();
        self.put(upgrade::PENDING_CODE_KEY.to_vec(), Some(wasm), &mut undo);
        self.put(
            upgrade::PENDING_KEY.to_vec(),
            Some(json_bytes(&pending)),
            &mut undo,
        );
        Ok(new.version())
    }

    /// Undoes an executed block that will not be finalized.
    pub fn revert(&mut self, executed: ExecutedBlock) {
        let contract = executed.undo_contract.into_iter().collect();
        let nonces = executed.undo_nonces.into_iter().collect();
        self.undo(&contract, &nonces, executed.undo_accumulator);
    }

    /// The store record of an executed block: its final writes, read from the current state
    /// (which must still be the state right after the block).
    pub fn commit_record(&self, executed: &ExecutedBlock, certificate: Vec<u8>) -> BlockCommit {
        BlockCommit {
            block: executed.block.clone(),
            certificate,
            receipts: executed.receipts.clone(),
            contract_writes: executed
                .undo_contract
                .iter()
                .map(|(k, _)| (k.clone(), self.state.contract.get(k).map(<[u8]>::to_vec)))
                .collect(),
            nonce_writes: executed
                .undo_nonces
                .iter()
                .map(|(k, _)| (*k, self.state.next_nonce(k)))
                .collect(),
            accumulator: self.state.accumulator.to_bytes(),
        }
    }

    /// Executes a block on top of the current state and returns its store record (without a
    /// certificate), leaving the state unchanged: what a node does with a proposal before it
    /// is final. [`Executor::apply`] installs the record once it is.
    pub fn dry_run(
        &mut self,
        header: Header,
        txs: Vec<SignedTransaction>,
        mode: Mode,
        limits: BlockLimits,
    ) -> Result<(BlockCommit, Vec<Skipped>), ExecutorError> {
        let mut executed = self.execute(header, txs, mode, limits)?;
        let record = self.commit_record(&executed, Vec::new());
        let skipped = std::mem::take(&mut executed.skipped);
        self.revert(executed);
        Ok((record, skipped))
    }

    /// Installs the writes of a finalized block's record, made by [`Executor::dry_run`] or
    /// [`Executor::commit_record`] on the current state (the block's parent). The record's
    /// accumulator must hash to the block's state root.
    pub fn apply(&mut self, record: &BlockCommit) -> Result<(), ExecutorError> {
        let acc = Accumulator::from_bytes(&record.accumulator)
            .ok_or_else(|| ExecutorError::InvalidBlock("unreadable accumulator".into()))?;
        if acc.root() != record.block.header.state_root {
            return Err(ExecutorError::InvalidBlock(format!(
                "the record's state hashes to {}, block {} says {}",
                acc.root(),
                record.block.header.height,
                record.block.header.state_root
            )));
        }
        for (k, v) in &record.contract_writes {
            match v {
                Some(v) => self.state.contract.insert(k.clone(), v.clone()),
                None => self.state.contract.remove(k),
            };
        }
        for (k, n) in &record.nonce_writes {
            self.state.nonces.insert(*k, *n);
        }
        self.state.accumulator = acc;
        Ok(())
    }

    /// The store record that replaces the current state by a snapshot's (PBFT's state
    /// transfer): `block` is the certified block the snapshot was taken at, `contract` and
    /// `nonces` the whole state after it. The state must hash to the block's state root.
    /// Install it with the store's `install_snapshot`, then [`Executor::apply`].
    pub fn snapshot_record(
        &self,
        block: Block,
        certificate: Vec<u8>,
        contract: ContractStorage,
        nonces: BTreeMap<PublicKey, u64>,
    ) -> Result<BlockCommit, ExecutorError> {
        let state = ChainState {
            contract,
            nonces,
            accumulator: Accumulator::default(),
        };
        let acc = state.recompute_accumulator();
        if acc.root() != block.header.state_root {
            return Err(ExecutorError::InvalidBlock(format!(
                "the snapshot's state hashes to {}, block {} says {}",
                acc.root(),
                block.header.height,
                block.header.state_root
            )));
        }
        // Nonces only ever appear and grow: one we know that the snapshot lacks means the
        // snapshot is not of our chain.
        if let Some(k) = self
            .state
            .nonces
            .keys()
            .find(|k| !state.nonces.contains_key(*k))
        {
            return Err(ExecutorError::InvalidBlock(format!(
                "the snapshot lacks the nonce of {k}"
            )));
        }
        let mut contract_writes: Vec<(Vec<u8>, Option<Vec<u8>>)> = self
            .state
            .contract
            .keys()
            .filter(|k| !state.contract.contains_key(k))
            .map(|k| (k.to_vec(), None))
            .collect();
        contract_writes.extend(
            state
                .contract
                .iter()
                .map(|(k, v)| (k.to_vec(), Some(v.to_vec()))),
        );
        Ok(BlockCommit {
            block,
            certificate,
            receipts: Vec::new(),
            contract_writes,
            nonce_writes: state.nonces.into_iter().collect(),
            accumulator: acc.to_bytes(),
        })
    }

    /// Runs the contract's read-only entry point against the current state.
    pub fn query(
        &mut self,
        method: &str,
        args_json: &str,
        height: u64,
    ) -> Result<serde_json::Value, ExecutorError> {
        self.sync_contract()?;
        let input = v2v_abi::host::encode_entry_input(method, args_json.as_bytes());
        let ctx = CallContext {
            caller: [0u8; 32],
            height,
            timestamp: 0,
        };
        let storage = std::mem::take(&mut self.state.contract);
        let (storage, outcome) =
            self.runtime
                .run(&self.contract, storage, ctx, Entry::Query, input);
        self.state.contract = storage;
        let out = outcome
            .result
            .map_err(|e| ExecutorError::Query(e.to_string()))?;
        serde_json::from_slice(&out)
            .map_err(|e| ExecutorError::Query(format!("contract returned invalid JSON: {e}")))
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod upgrade_tests;

/// The JSON of an upgrade record (serialising these plain structs cannot fail).
fn json_bytes(v: &impl serde::Serialize) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}
