//! Drives the consensus engine: feeds it inputs (network messages, timers, blocks built,
//! checked and synced) and carries out its outputs, in order. This is the only place where
//! engine outputs touch the world: a `Persist` is written before the next output (a vote
//! to send, say) is carried out.
//!
//! Blocks travel beside the engine's messages: the leader pushes the body of its proposal
//! to every validator, and a replica asked to check a digest whose body has not come asks
//! the proposer, then the others. A finalized height whose body is missing is fetched the
//! same way; a replica that is behind (the engine says `Sync`) fetches finalized blocks with
//! their certificates, checks and re-executes them.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;
use tracing::{debug, error, info, warn};
use v2v_consensus::{Certificate, Engine, Input, Output, Proposal, TimerId};
use v2v_network::{NetworkEvent, PeerId};
use v2v_primitives::{Block, Hash};
use v2v_storage::Store;

use crate::Shared;
use crate::chain::{self, Candidate};
use crate::metrics::Stage;
use crate::wire::{Direct, Request, Snapshot, decode_blocks, decode_tx_batch, encode_blocks};

/// How long a replica waits for a proposal's pushed body before asking for it.
const FETCH_AFTER: Duration = Duration::from_millis(200);
/// Between rounds of asking every validator for a body nobody had.
const FETCH_RETRY: Duration = Duration::from_millis(1000);
/// Finalized blocks asked for per sync request.
const SYNC_BATCH: u32 = 64;
/// Bodies kept for heights this far above the head at most.
const BODY_HORIZON: u64 = 64;
/// Most proposal bodies kept.
const MAX_BODIES: usize = 256;
/// A response to a block request stays under this many bytes (one block may exceed it).
const RESPONSE_BUDGET: usize = 8 << 20;

/// What reaches the driver loop.
pub(crate) enum Event {
    Input(Input),
    Built {
        height: u64,
        view: u64,
        result: Result<Candidate, String>,
    },
    Verified {
        hash: Hash,
        result: Result<Candidate, String>,
    },
    Network(NetworkEvent),
    /// A body we wait for has not come: ask for it.
    FetchProposal(Hash),
    /// A body we asked for.
    Fetched(Block),
    /// Finalized blocks from a peer, in height order, certificates decoded.
    SyncBatch(Vec<(Block, Certificate)>),
    /// A peer's state snapshot, for a node far behind.
    Snapshot(Snapshot),
    SyncDone,
}

pub(crate) async fn run(
    shared: Arc<Shared>,
    mut engine: Option<Box<dyn Engine>>,
    mut stop: watch::Receiver<bool>,
    next_height: u64,
    mut network: Option<mpsc::Receiver<NetworkEvent>>,
) {
    let (events_tx, mut events_rx) = mpsc::unbounded_channel::<Event>();
    let mut driver = Driver {
        shared,
        events_tx,
        stop: stop.clone(),
        timers: BTreeMap::new(),
        builder: None,
        candidates: BTreeMap::new(),
        bodies: BTreeMap::new(),
        proposers: BTreeMap::new(),
        waiting: BTreeMap::new(),
        verifying: BTreeSet::new(),
        fetching: BTreeSet::new(),
        decided: BTreeMap::new(),
        sync: None,
        sync_target: Arc::new(AtomicU64::new(0)),
        inputs: VecDeque::new(),
    };
    match &engine {
        Some(engine) => {
            info!(
                engine = engine.name(),
                next_height, "consensus driver started"
            );
            let persisted = match driver.shared.store.engine_state() {
                Ok(state) => state,
                Err(e) => {
                    error!(
                        "reading the persisted consensus state failed: {e}; not producing blocks"
                    );
                    return;
                }
            };
            driver.inputs.push_back(Input::Start {
                next_height,
                persisted,
            });
        }
        None => {
            // A full node: fetch and check finalized blocks for as long as it runs.
            info!(next_height, "full node: following the validators");
            driver.start_sync(None, u64::MAX);
        }
    }
    loop {
        // Carry out everything the engine asked for, feeding it what that produces, until
        // both queues are empty.
        while let Some(input) = driver.inputs.pop_front() {
            let Some(engine) = engine.as_mut() else {
                continue;
            };
            let outputs = driver
                .shared
                .metrics
                .time(Stage::Consensus, 0, || engine.handle(input));
            for out in outputs {
                if let Err(e) = driver.carry_out(out) {
                    error!("stopping block production: {e}");
                    driver.abort_all();
                    return;
                }
            }
        }
        let event = tokio::select! {
            _ = stop.changed() => break,
            event = events_rx.recv() => match event {
                None => break,
                Some(e) => e,
            },
            event = next_network_event(&mut network) => match event {
                None => {
                    warn!("the network stopped");
                    network = None;
                    continue;
                }
                Some(e) => Event::Network(e),
            },
        };
        if let Err(e) = driver.on_event(event) {
            error!("stopping block production: {e}");
            break;
        }
    }
    driver.abort_all();
    info!("consensus driver stopped");
}

async fn next_network_event(
    network: &mut Option<mpsc::Receiver<NetworkEvent>>,
) -> Option<NetworkEvent> {
    match network {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

struct Driver {
    shared: Arc<Shared>,
    events_tx: mpsc::UnboundedSender<Event>,
    stop: watch::Receiver<bool>,
    timers: BTreeMap<TimerId, AbortHandle>,
    builder: Option<AbortHandle>,
    /// Blocks executed on the head (ours or checked), by digest, awaiting finality.
    candidates: BTreeMap<Hash, Candidate>,
    /// Bodies of proposed blocks not executed yet.
    bodies: BTreeMap<Hash, Block>,
    /// Who proposed a digest the engine asked us to check (asked first for its body).
    proposers: BTreeMap<Hash, u32>,
    /// The engine's open `VerifyProposal` requests: digest -> (height, view).
    waiting: BTreeMap<Hash, BTreeSet<(u64, u64)>>,
    verifying: BTreeSet<Hash>,
    fetching: BTreeSet<Hash>,
    /// Heights the engine finalized that are not stored yet (body missing, or an earlier
    /// height first), with their certificates.
    decided: BTreeMap<u64, (Hash, Certificate)>,
    sync: Option<AbortHandle>,
    sync_target: Arc<AtomicU64>,
    /// Inputs for the engine produced while carrying out its outputs or handling events.
    inputs: VecDeque<Input>,
}

impl Driver {
    fn abort_all(&mut self) {
        for (_, t) in std::mem::take(&mut self.timers) {
            t.abort();
        }
        for h in [self.builder.take(), self.sync.take()]
            .into_iter()
            .flatten()
        {
            h.abort();
        }
    }

    fn head(&self) -> Result<(u64, Hash), String> {
        chain::head(&self.shared)
    }

    /// The digest finalized at `height`, if any.
    fn stored_hash(&self, height: u64) -> Result<Option<Hash>, String> {
        self.shared.store.hash_at(height).map_err(|e| e.to_string())
    }

    /// The largest transaction of any kind (a contract deployment may exceed `maxTxBytes`).
    fn max_tx_len(&self) -> usize {
        self.shared.spec.max_decode_len()
    }

    fn spawn_event_after(&self, after: Duration, event: Event) {
        let tx = self.events_tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let _ = tx.send(event);
        });
    }

    // ----- engine outputs ------------------------------------------------------------------

    fn carry_out(&mut self, out: Output) -> Result<(), String> {
        match out {
            Output::Send { to, payload } => match &self.shared.net {
                Some(net) => net.send(to, Direct::Engine(payload)),
                None => debug!(to, "one validator: nobody to send to"),
            },
            Output::Broadcast { payload } => {
                if let Some(net) = &self.shared.net {
                    net.broadcast(Direct::Engine(payload));
                }
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
            Output::VerifyProposal {
                height,
                view,
                block_hash,
                proposer,
            } => {
                self.proposers.insert(block_hash, proposer);
                self.waiting
                    .entry(block_hash)
                    .or_default()
                    .insert((height, view));
                self.try_verify(block_hash)?;
            }
            Output::Sync { peer, up_to_height } => self.start_sync(Some(peer), up_to_height),
            Output::Faulty { validator, reason } => {
                warn!(validator, "validator misbehaved: {reason}");
            }
            Output::Commit {
                height,
                block_hash,
                certificate,
            } => {
                self.shared
                    .metrics
                    .time(Stage::Consensus, 0, || {
                        certificate.verify(&self.shared.validators, height, &block_hash)
                    })
                    .map_err(|e| format!("engine produced an invalid certificate: {e}"))?;
                self.decided.insert(height, (block_hash, certificate));
                self.advance()?;
            }
        }
        Ok(())
    }

    // ----- events --------------------------------------------------------------------------

    fn on_event(&mut self, event: Event) -> Result<(), String> {
        match event {
            Event::Input(input) => self.inputs.push_back(input),
            Event::Built {
                height,
                view,
                result,
            } => match result {
                Ok(candidate) => {
                    let block_hash = candidate.block.hash();
                    if let Some(net) = &self.shared.net {
                        net.broadcast(Direct::Block(candidate.block.encode()));
                    }
                    self.candidates.insert(block_hash, candidate);
                    self.inputs.push_back(Input::ProposalReady(Proposal {
                        height,
                        view,
                        block_hash,
                    }));
                }
                Err(reason) => {
                    let (head, _) = self.head()?;
                    if height > head {
                        // A storage error, say: try again after a pause rather than stall.
                        warn!(height, view, "building a block failed: {reason}; retrying");
                        self.carry_out(Output::RequestProposal { height, view })?;
                    }
                }
            },
            Event::Verified { hash, result } => {
                self.verifying.remove(&hash);
                let (head, _) = self.head()?;
                match result {
                    Ok(candidate) if candidate.block.header.height == head + 1 => {
                        self.candidates.insert(hash, candidate);
                        self.answer(hash, true);
                        self.advance()?;
                    }
                    Ok(candidate) => {
                        // Its height was finalized (synced) while it ran.
                        let height = candidate.block.header.height;
                        let stored = self.stored_hash(height)?;
                        self.answer(hash, stored == Some(hash));
                    }
                    Err(reason) => {
                        let height = self.bodies.get(&hash).map(|b| b.header.height);
                        if height.is_some_and(|h| h != head + 1) {
                            // The head moved while it ran: judge it again.
                            self.try_verify(hash)?;
                        } else {
                            warn!(%hash, "proposal rejected: {reason}");
                            self.answer(hash, false);
                        }
                    }
                }
            }
            Event::Network(e) => self.on_network(e)?,
            Event::FetchProposal(hash) => self.fetch(hash),
            Event::Fetched(block) => {
                let hash = block.hash();
                self.fetching.remove(&hash);
                self.keep_body(block)?;
                if self.waiting.contains_key(&hash) {
                    self.try_verify(hash)?;
                }
                self.advance()?;
            }
            Event::SyncBatch(blocks) => self.apply_synced(blocks)?,
            Event::Snapshot(snapshot) => match chain::install_snapshot(&self.shared, snapshot) {
                Ok((height, block_hash, certificate)) => {
                    self.decided.retain(|h, _| *h > height);
                    self.after_head_moved()?;
                    self.inputs.push_back(Input::Synced {
                        height,
                        block_hash,
                        certificate,
                    });
                    self.advance()?;
                }
                Err(chain::SnapshotError::Refused(e)) => warn!("snapshot refused: {e}"),
                Err(chain::SnapshotError::Fatal(e)) => return Err(e),
            },
            Event::SyncDone => {
                self.sync = None;
                // More may have been decided meanwhile.
                let (head, _) = self.head()?;
                if self.sync_target.load(Ordering::Acquire) > head {
                    self.start_sync(None, self.sync_target.load(Ordering::Acquire));
                }
            }
        }
        Ok(())
    }

    fn on_network(&mut self, event: NetworkEvent) -> Result<(), String> {
        let Some(net) = &self.shared.net else {
            return Ok(());
        };
        match event {
            NetworkEvent::Message { from, payload } => match Direct::decode(&payload) {
                Some(Direct::Engine(payload)) => {
                    if let Some(from) = net.index_of(&from) {
                        self.inputs.push_back(Input::Message { from, payload });
                    }
                }
                Some(Direct::Block(bytes)) => self.on_pushed_block(&from, &bytes)?,
                None => debug!(%from, "undecodable message dropped"),
            },
            NetworkEvent::Request {
                from,
                payload,
                respond,
            } => match Request::decode(&payload) {
                Some(request) => {
                    let answer = self.serve(request)?;
                    let _ = respond.send(answer);
                }
                None => debug!(%from, "undecodable request dropped"),
            },
            NetworkEvent::Gossip { from, id, data } => {
                let Some(txs) = decode_tx_batch(&data, self.shared.spec.max_decode_len()) else {
                    debug!(%from, "undecodable gossip batch");
                    net.handle.report_gossip(id, false);
                    return Ok(());
                };
                // Signature checks run off the driver, a batch at a time. Only a transaction
                // that can never be valid (bad encoding, signature or chain) rejects the
                // batch: a reject penalises the relayer, and a stale nonce or a full mempool
                // here says nothing about the peer's honesty.
                let shared = self.shared.clone();
                tokio::task::spawn_blocking(move || {
                    let mut accept = true;
                    for tx in &txs {
                        match shared.admit(tx) {
                            Ok(_) => {}
                            Err(v2v_rpc::SubmitError::Invalid(e)) => {
                                debug!(%from, "gossiped transaction invalid: {e}");
                                accept = false;
                            }
                            Err(e) => debug!(%from, "gossiped transaction not added: {e}"),
                        }
                    }
                    if let Some(net) = &shared.net {
                        net.handle.report_gossip(id, accept);
                    }
                });
            }
            NetworkEvent::Connected(peer) => {
                self.shared.connected().insert(peer);
                debug!(%peer, "peer connected");
            }
            NetworkEvent::Disconnected(peer) => {
                self.shared.connected().remove(&peer);
                debug!(%peer, "peer disconnected");
            }
        }
        Ok(())
    }

    /// A proposal body pushed by its proposer (only the validator named in the header may
    /// push it).
    fn on_pushed_block(&mut self, from: &PeerId, bytes: &[u8]) -> Result<(), String> {
        let Some(net) = &self.shared.net else {
            return Ok(());
        };
        let block = match Block::decode(bytes, self.max_tx_len()) {
            Ok(b) => b,
            Err(e) => {
                debug!(%from, "undecodable block dropped: {e}");
                return Ok(());
            }
        };
        let sender = net.index_of(from);
        let proposer = self.shared.validators.index_of(&block.header.proposer);
        if sender.is_none() || sender != proposer {
            debug!(%from, "a block pushed by someone other than its proposer dropped");
            return Ok(());
        }
        let hash = block.hash();
        self.keep_body(block)?;
        if self.waiting.contains_key(&hash) {
            self.try_verify(hash)?;
        }
        Ok(())
    }

    fn keep_body(&mut self, block: Block) -> Result<(), String> {
        let (head, _) = self.head()?;
        let h = block.header.height;
        if h <= head || h > head + BODY_HORIZON {
            return Ok(());
        }
        self.bodies.insert(block.hash(), block);
        while self.bodies.len() > MAX_BODIES {
            // Drop the body furthest ahead: the nearest ones are needed first.
            let far = self
                .bodies
                .iter()
                .max_by_key(|(hash, b)| (b.header.height, **hash))
                .map(|(hash, _)| *hash);
            if let Some(far) = far {
                self.bodies.remove(&far);
            }
        }
        Ok(())
    }

    fn serve(&self, request: Request) -> Result<Vec<u8>, String> {
        let store = &self.shared.store;
        let e = |e: v2v_storage::StoreError| e.to_string();
        Ok(match request {
            Request::Blocks { from, max } => {
                let mut out = Vec::new();
                let mut bytes = 0usize;
                for height in from.max(1)..from.max(1).saturating_add(u64::from(max)) {
                    let Some(hash) = store.hash_at(height).map_err(e)? else {
                        break;
                    };
                    let (Some(block), Some(cert)) = (
                        store.block(&hash).map_err(e)?,
                        store.certificate(&hash).map_err(e)?,
                    ) else {
                        break;
                    };
                    let block = block.encode();
                    bytes += block.len() + cert.len();
                    if bytes > RESPONSE_BUDGET && !out.is_empty() {
                        break;
                    }
                    out.push((block, cert));
                }
                encode_blocks(&out)
            }
            Request::Snapshot => {
                // The driver is the only writer, so these reads see one consistent state.
                let (_, hash) = self.head()?;
                let (Some(block), Some(certificate)) = (
                    store.block(&hash).map_err(e)?,
                    store.certificate(&hash).map_err(e)?,
                ) else {
                    return Ok(Vec::new());
                };
                Snapshot {
                    block: block.encode(),
                    certificate,
                    contract: store
                        .contract_entries()
                        .collect::<Result<_, _>>()
                        .map_err(e)?,
                    nonces: store.nonces().map_err(e)?,
                }
                .encode()
            }
            Request::Proposal(hash) => {
                if let Some(b) = self.bodies.get(&hash) {
                    b.encode()
                } else if let Some(c) = self.candidates.get(&hash) {
                    c.block.encode()
                } else if let Some(b) = store.block(&hash).map_err(e)? {
                    b.encode()
                } else {
                    Vec::new()
                }
            }
        })
    }

    // ----- checking proposals ----------------------------------------------------------------

    /// Answers the engine's open requests to check `hash`.
    fn answer(&mut self, hash: Hash, valid: bool) {
        for (height, view) in self.waiting.remove(&hash).unwrap_or_default() {
            self.inputs.push_back(Input::ProposalVerified {
                height,
                view,
                block_hash: hash,
                valid,
            });
        }
    }

    fn try_verify(&mut self, hash: Hash) -> Result<(), String> {
        if self.candidates.contains_key(&hash) {
            self.answer(hash, true);
            return Ok(());
        }
        if self.verifying.contains(&hash) || !self.waiting.contains_key(&hash) {
            return Ok(());
        }
        let Some(body) = self.bodies.get(&hash) else {
            if self.fetching.insert(hash) {
                self.spawn_event_after(FETCH_AFTER, Event::FetchProposal(hash));
            }
            return Ok(());
        };
        let height = body.header.height;
        // A request that names another height for this digest is wrong on its face.
        if let Some(asked) = self.waiting.get_mut(&hash) {
            let wrong: Vec<(u64, u64)> = asked
                .iter()
                .filter(|(h, _)| *h != height)
                .copied()
                .collect();
            for (h, v) in wrong {
                asked.remove(&(h, v));
                self.inputs.push_back(Input::ProposalVerified {
                    height: h,
                    view: v,
                    block_hash: hash,
                    valid: false,
                });
            }
        }
        let (head, _) = self.head()?;
        if height <= head {
            let stored = self.stored_hash(height)?;
            self.answer(hash, stored == Some(hash));
            return Ok(());
        }
        if height > head + 1 {
            // Checked once its parent is final.
            return Ok(());
        }
        self.verifying.insert(hash);
        let (shared, block, tx) = (self.shared.clone(), body.clone(), self.events_tx.clone());
        tokio::task::spawn_blocking(move || {
            let result = chain::verify(&shared, block);
            let _ = tx.send(Event::Verified { hash, result });
        });
        Ok(())
    }

    /// Asks the proposer, then the other validators, for a body we need.
    fn fetch(&mut self, hash: Hash) {
        let needed =
            self.waiting.contains_key(&hash) || self.decided.values().any(|(h, _)| *h == hash);
        if self.bodies.contains_key(&hash) || self.candidates.contains_key(&hash) || !needed {
            self.fetching.remove(&hash);
            return;
        }
        let Some(net) = &self.shared.net else {
            return;
        };
        let sources = net.sources(self.proposers.get(&hash).copied());
        let (handle, tx, max_tx) = (
            net.handle.clone(),
            self.events_tx.clone(),
            self.max_tx_len(),
        );
        tokio::spawn(async move {
            for peer in sources {
                let Ok(bytes) = handle.request(peer, Request::Proposal(hash).encode()).await else {
                    continue;
                };
                if let Ok(block) = Block::decode(&bytes, max_tx)
                    && block.hash() == hash
                {
                    let _ = tx.send(Event::Fetched(block));
                    return;
                }
            }
            tokio::time::sleep(FETCH_RETRY).await;
            let _ = tx.send(Event::FetchProposal(hash));
        });
    }

    // ----- finality ----------------------------------------------------------------------------

    /// Stores the decided heights that can be stored, in order.
    fn advance(&mut self) -> Result<(), String> {
        while let Some((&height, (hash, _))) = self.decided.first_key_value() {
            let hash = *hash;
            let (head, _) = self.head()?;
            if height <= head {
                let stored = self.stored_hash(height)?;
                if stored != Some(hash) {
                    return Err(format!(
                        "height {height} was finalized as {hash}, but {stored:?} is stored"
                    ));
                }
                self.decided.remove(&height);
                continue;
            }
            if height > head + 1 {
                // Something below was never decided here: fetch the finalized blocks.
                self.start_sync(None, height - 1);
                break;
            }
            let candidate = match self.candidates.remove(&hash) {
                Some(c) => c,
                None => match self.bodies.get(&hash) {
                    Some(body) => chain::verify(&self.shared, body.clone()).map_err(|e| {
                        format!("finalized block {height} ({hash}) does not execute here: {e}")
                    })?,
                    None => {
                        if self.fetching.insert(hash) {
                            self.fetch(hash);
                        }
                        break;
                    }
                },
            };
            let Some((_, certificate)) = self.decided.remove(&height) else {
                break;
            };
            chain::finalize(&self.shared, candidate, certificate.encode())?;
            self.after_head_moved()?;
        }
        Ok(())
    }

    /// Forgets what the new head made useless and checks what it made checkable.
    fn after_head_moved(&mut self) -> Result<(), String> {
        let (head, _) = self.head()?;
        self.candidates.retain(|_, c| c.block.header.height > head);
        self.bodies.retain(|_, b| b.header.height > head);
        let next: Vec<Hash> = self
            .bodies
            .iter()
            .filter(|(h, b)| b.header.height == head + 1 && self.waiting.contains_key(*h))
            .map(|(h, _)| *h)
            .collect();
        for hash in next {
            self.try_verify(hash)?;
        }
        // Requests for digests at heights now final are answered from the store.
        let stale: Vec<Hash> = self
            .waiting
            .iter()
            .filter(|(_, asked)| asked.iter().all(|(h, _)| *h <= head))
            .map(|(h, _)| *h)
            .collect();
        for hash in stale {
            let height = self.waiting[&hash]
                .iter()
                .map(|(h, _)| *h)
                .max()
                .unwrap_or(0);
            let stored = self.stored_hash(height)?;
            self.answer(hash, stored == Some(hash));
        }
        self.proposers
            .retain(|h, _| self.waiting.contains_key(h) || self.fetching.contains(h));
        Ok(())
    }

    // ----- sync ------------------------------------------------------------------------------

    /// Fetches finalized blocks up to `up_to` from `peer` first, then the others.
    fn start_sync(&mut self, peer: Option<u32>, up_to: u64) {
        self.sync_target.fetch_max(up_to, Ordering::AcqRel);
        if self.sync.is_some() {
            return;
        }
        let Some(net) = &self.shared.net else {
            warn!(up_to, "asked to sync without a network");
            return;
        };
        if up_to != u64::MAX {
            info!(up_to, "behind the others: syncing finalized blocks");
        }
        let sources = net.sources(peer);
        let (handle, tx, shared, target) = (
            net.handle.clone(),
            self.events_tx.clone(),
            self.shared.clone(),
            self.sync_target.clone(),
        );
        let max_tx = self.max_tx_len();
        let snapshot_after = self.shared.snapshot_after;
        let task = tokio::spawn(async move {
            let target_now = target.load(Ordering::Acquire);
            if target_now != u64::MAX
                && target_now.saturating_sub(shared.finalized()) > snapshot_after
            {
                // Far behind: install the state at a certified height instead of replaying
                // every block (PBFT's state transfer), then fetch the rest block by block.
                for peer in &sources {
                    let Ok(bytes) = handle.request(*peer, Request::Snapshot.encode()).await else {
                        continue;
                    };
                    let Some(snapshot) = Snapshot::decode(&bytes) else {
                        debug!(%peer, "undecodable snapshot");
                        continue;
                    };
                    let before = shared.finalized();
                    let _ = tx.send(Event::Snapshot(snapshot));
                    let started = Instant::now();
                    while shared.finalized() == before
                        && started.elapsed() < Duration::from_secs(10)
                    {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    if shared.finalized() > before {
                        break;
                    }
                }
            }
            let mut idle_rounds = 0;
            while shared.finalized() < target.load(Ordering::Acquire) && idle_rounds < 10 {
                let mut got = false;
                for peer in &sources {
                    let from = shared.finalized() + 1;
                    let request = Request::Blocks {
                        from,
                        max: SYNC_BATCH,
                    };
                    let Ok(bytes) = handle.request(*peer, request.encode()).await else {
                        continue;
                    };
                    let Some(blocks) = decode_sync_batch(&bytes, max_tx) else {
                        debug!(%peer, "undecodable sync response");
                        continue;
                    };
                    let Some(last) = blocks.last().map(|(b, _)| b.header.height) else {
                        continue;
                    };
                    got = true;
                    let _ = tx.send(Event::SyncBatch(blocks));
                    // Let the driver store them before asking for more.
                    let started = Instant::now();
                    while shared.finalized() < last && started.elapsed() < Duration::from_secs(10) {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    break;
                }
                if got {
                    idle_rounds = 0;
                } else {
                    idle_rounds += 1;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
            let _ = tx.send(Event::SyncDone);
        });
        self.sync = Some(task.abort_handle());
    }

    /// Stores synced blocks that extend the head and carry a valid certificate, after
    /// checking and executing them, and tells the engine.
    fn apply_synced(&mut self, blocks: Vec<(Block, Certificate)>) -> Result<(), String> {
        for (block, certificate) in blocks {
            let (head, _) = self.head()?;
            let (height, hash) = (block.header.height, block.hash());
            if height <= head {
                continue;
            }
            if height > head + 1 {
                break;
            }
            if let Err(e) = certificate.verify(&self.shared.validators, height, &hash) {
                warn!(
                    height,
                    "synced block with an invalid certificate dropped: {e}"
                );
                break;
            }
            let candidate = match self.candidates.remove(&hash) {
                Some(c) => c,
                None => match chain::verify(&self.shared, block) {
                    Ok(c) => c,
                    Err(e) => {
                        // A certified block that does not execute here: our state or code
                        // differs from the others'. Stop rather than diverge.
                        return Err(format!("certified block {height} ({hash}) fails here: {e}"));
                    }
                },
            };
            chain::finalize(&self.shared, candidate, certificate.encode())?;
            self.decided.remove(&height);
            self.after_head_moved()?;
            self.inputs.push_back(Input::Synced {
                height,
                block_hash: hash,
                certificate,
            });
        }
        self.advance()
    }
}

fn decode_sync_batch(bytes: &[u8], max_tx: usize) -> Option<Vec<(Block, Certificate)>> {
    let raw = decode_blocks(bytes, usize::MAX)?;
    let mut out = Vec::with_capacity(raw.len());
    for (block, cert) in raw {
        out.push((
            Block::decode(&block, max_tx).ok()?,
            Certificate::decode(&cert).ok()?,
        ));
    }
    Some(out)
}

/// Waits until there is something to propose (or an empty block is due) and the parent is
/// final, then builds and dry-runs the block off the async threads.
async fn build_when_ready(
    shared: Arc<Shared>,
    height: u64,
    view: u64,
    events: mpsc::UnboundedSender<Event>,
    stop: watch::Receiver<bool>,
) {
    let c = &shared.spec.consensus;
    let interval = Duration::from_millis(c.block_interval_ms.max(1));
    let empty_after = Duration::from_millis(c.empty_block_interval_ms);
    let started = Instant::now();
    loop {
        tokio::time::sleep(interval).await;
        if *stop.borrow() {
            return;
        }
        if shared.finalized() >= height {
            // Finalized meanwhile (synced from the others): nothing to build.
            return;
        }
        if shared.finalized() + 1 < height {
            continue;
        }
        if !shared.mempool().is_empty() {
            break;
        }
        if !empty_after.is_zero() && started.elapsed() >= empty_after {
            break;
        }
    }
    let s = shared.clone();
    let built = tokio::task::spawn_blocking(move || chain::build(&s, height, view)).await;
    let result = built.unwrap_or_else(|e| Err(e.to_string()));
    let _ = events.send(Event::Built {
        height,
        view,
        result,
    });
}
