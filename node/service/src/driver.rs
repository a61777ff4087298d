//! Drives the consensus engine: feeds it inputs and carries out its outputs, in order.
//! This is the only place where engine outputs touch the world.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;
use tracing::{debug, error, info, warn};
use v2v_consensus::{Engine, Input, Output, Proposal, TimerId};
use v2v_executor::{BlockLimits, ExecutedBlock, Mode, Skipped};
use v2v_primitives::{Hash, Header};
use v2v_storage::Store;

use crate::Shared;

/// What reaches the driver loop.
pub(crate) enum Event {
    Input(Input),
    Built(Box<ExecutedBlock>),
    BuildFailed {
        height: u64,
        view: u64,
        reason: String,
    },
}

pub(crate) async fn run(
    shared: Arc<Shared>,
    mut engine: Box<dyn Engine>,
    mut stop: watch::Receiver<bool>,
    next_height: u64,
) {
    let (events_tx, mut events_rx) = mpsc::unbounded_channel::<Event>();
    let mut driver = Driver {
        shared,
        events_tx,
        stop: stop.clone(),
        timers: BTreeMap::new(),
        candidates: BTreeMap::new(),
        builder: None,
    };
    info!(
        engine = engine.name(),
        next_height, "consensus driver started"
    );
    let persisted = match driver.shared.store.engine_state() {
        Ok(state) => state,
        Err(e) => {
            error!("reading the persisted consensus state failed: {e}; not producing blocks");
            return;
        }
    };
    let mut pending: VecDeque<Output> = engine
        .handle(Input::Start {
            next_height,
            persisted,
        })
        .into();
    loop {
        while let Some(out) = pending.pop_front() {
            if let Err(e) = driver.carry_out(out) {
                error!("stopping block production: {e}");
                driver.abort_all();
                return;
            }
        }
        tokio::select! {
            _ = stop.changed() => break,
            event = events_rx.recv() => match event {
                None => break,
                Some(Event::Input(input)) => pending.extend(engine.handle(input)),
                Some(Event::Built(executed)) => {
                    let proposal = Proposal {
                        height: executed.block.header.height,
                        view: executed.block.header.view,
                        block_hash: executed.block.hash(),
                    };
                    driver.candidates.insert(proposal.block_hash, *executed);
                    pending.extend(engine.handle(Input::ProposalReady(proposal)));
                }
                Some(Event::BuildFailed { height, view, reason }) => {
                    // Execution of our own proposal failed (a storage error, say): try again
                    // after a pause rather than stall or crash.
                    warn!(height, view, "building a block failed: {reason}; retrying");
                    pending.push_back(Output::RequestProposal { height, view });
                }
            }
        }
    }
    driver.abort_all();
    info!("consensus driver stopped");
}

struct Driver {
    shared: Arc<Shared>,
    events_tx: mpsc::UnboundedSender<Event>,
    stop: watch::Receiver<bool>,
    timers: BTreeMap<TimerId, AbortHandle>,
    /// Blocks built and executed, awaiting a commit decision.
    candidates: BTreeMap<Hash, ExecutedBlock>,
    builder: Option<AbortHandle>,
}

impl Driver {
    fn abort_all(&mut self) {
        for (_, t) in std::mem::take(&mut self.timers) {
            t.abort();
        }
        if let Some(b) = self.builder.take() {
            b.abort();
        }
    }

    fn carry_out(&mut self, out: Output) -> Result<(), String> {
        match out {
            Output::Send { to, payload } => {
                debug!(
                    to,
                    bytes = payload.len(),
                    "no network transport yet: message not sent"
                );
            }
            Output::Broadcast { payload } => {
                debug!(
                    bytes = payload.len(),
                    "no network transport yet: broadcast not sent"
                );
            }
            Output::SetTimer { id, after_ms } => {
                let tx = self.events_tx.clone();
                let handle = tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(after_ms)).await;
                    let _ = tx.send(Event::Input(Input::Timeout(id)));
                });
                if let Some(old) = self.timers.insert(id, handle.abort_handle()) {
                    old.abort();
                }
            }
            Output::CancelTimer { id } => {
                if let Some(t) = self.timers.remove(&id) {
                    t.abort();
                }
            }
            Output::Persist { state } => {
                self.shared
                    .store
                    .save_engine_state(&state)
                    .map_err(|e| format!("persisting consensus state: {e}"))?;
            }
            Output::RequestProposal { height, view } => {
                let task = tokio::spawn(build_when_ready(
                    self.shared.clone(),
                    height,
                    view,
                    self.events_tx.clone(),
                    self.stop.clone(),
                ));
                if let Some(old) = self.builder.replace(task.abort_handle()) {
                    old.abort();
                }
            }
            Output::Faulty { validator, reason } => {
                warn!(validator, "validator misbehaved: {reason}");
            }
            // Only multi-validator engines ask for these, and the node runs them once it has a
            // network (block transfer and sync come with it).
            Output::VerifyProposal { height, .. }
            | Output::Sync {
                up_to_height: height,
                ..
            } => {
                return Err(format!(
                    "the engine asked for block transfer at height {height}, which needs the \
                     validator network"
                ));
            }
            Output::Commit {
                height,
                block_hash,
                certificate,
            } => {
                let executed = self
                    .candidates
                    .remove(&block_hash)
                    .ok_or_else(|| format!("commit of unknown block {block_hash} at {height}"))?;
                certificate
                    .verify(&self.shared.validators, height, &block_hash)
                    .map_err(|e| format!("engine produced an invalid certificate: {e}"))?;
                self.commit(executed, certificate.encode())?;
                // Other candidates at this height lost; none exist with one validator.
                self.candidates
                    .retain(|_, c| c.block.header.height > height);
            }
        }
        Ok(())
    }

    /// Writes a finalized block in one batch, then updates the mempool and notifies.
    fn commit(&mut self, executed: ExecutedBlock, certificate: Vec<u8>) -> Result<(), String> {
        let record = self.shared.executor().commit_record(&executed, certificate);
        self.shared
            .store
            .commit(&record)
            .map_err(|e| format!("writing block {}: {e}", executed.block.header.height))?;
        {
            let mut pool = self.shared.mempool();
            for tx in &executed.block.txs {
                pool.remove(&tx.hash());
            }
            for s in &executed.skipped {
                if let Skipped::Stale(h) = s {
                    pool.remove(h);
                }
            }
        }
        let header = executed.block.header.clone();
        self.shared
            .finalized_height
            .store(header.height, Ordering::Release);
        if executed.block.txs.is_empty() {
            debug!(height = header.height, hash = %header.hash(), "finalized empty block");
        } else {
            info!(
                height = header.height,
                txs = executed.block.txs.len(),
                hash = %header.hash(),
                "finalized"
            );
        }
        let _ = self.shared.heads.send(header);
        Ok(())
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Waits until there is something to propose (or an empty block is due), then builds and
/// executes the block off the async threads.
async fn build_when_ready(
    shared: Arc<Shared>,
    height: u64,
    view: u64,
    events: mpsc::UnboundedSender<Event>,
    stop: watch::Receiver<bool>,
) {
    let c = &shared.spec.consensus;
    let interval = Duration::from_millis(c.block_interval_ms);
    let empty_after = Duration::from_millis(c.empty_block_interval_ms);
    let started = Instant::now();
    loop {
        tokio::time::sleep(interval).await;
        if *stop.borrow() {
            return;
        }
        if !shared.mempool().is_empty() {
            break;
        }
        if !empty_after.is_zero() && started.elapsed() >= empty_after {
            break;
        }
    }
    let s = shared.clone();
    let built = tokio::task::spawn_blocking(move || build_block(&s, height, view)).await;
    let event = match built {
        Ok(Ok(executed)) => Event::Built(Box::new(executed)),
        Ok(Err(reason)) => Event::BuildFailed {
            height,
            view,
            reason,
        },
        Err(e) => Event::BuildFailed {
            height,
            view,
            reason: e.to_string(),
        },
    };
    let _ = events.send(event);
}

fn build_block(shared: &Shared, height: u64, view: u64) -> Result<ExecutedBlock, String> {
    let c = &shared.spec.consensus;
    let (head_height, head_hash) = shared
        .store
        .head()
        .map_err(|e| e.to_string())?
        .ok_or("no head")?;
    if head_height + 1 != height {
        return Err(format!(
            "asked for height {height} but the head is {head_height}"
        ));
    }
    let parent = shared
        .store
        .block(&head_hash)
        .map_err(|e| e.to_string())?
        .ok_or("head block missing")?;
    let txs = shared.mempool().candidates(c.max_block_txs as usize * 2);
    let header = Header {
        height,
        parent_hash: head_hash,
        state_root: Hash::ZERO,
        tx_root: Hash::ZERO,
        proposer: shared.key.public(),
        view,
        // Never before the parent: block times are monotonic whatever the local clock does.
        timestamp: now_ms().max(parent.header.timestamp),
    };
    let limits = BlockLimits {
        max_txs: c.max_block_txs as usize,
        max_bytes: c.max_block_bytes as usize,
    };
    shared
        .executor()
        .execute(header, txs, Mode::Build, limits)
        .map_err(|e| e.to_string())
}
