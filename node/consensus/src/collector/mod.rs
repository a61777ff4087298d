//! The collector-based core shared by Linear BFT (the report's §3.3.3) and SBFT (Gueta et
//! al., "SBFT: a Scalable and Decentralized Trust Infrastructure", DSN 2019; the report's
//! §3.3.4). SBFT is this core with its fast path switched on.
//!
//! **Normal case, one height at a time.** The leader of view v (`validators.leader(v)`) is
//! also the collector. It proposes the block of the next height (an ed25519-signed
//! [`SignedProposal`]); each replica checks the block with the node and sends its threshold
//! share(s) *to the collector only*. The collector combines a quorum of slow-path prepare
//! shares into a [`PrepareCertificate`] (one BLS signature) and broadcasts it; replicas lock
//! on it and send a commit share to the collector, which combines a quorum of them into the
//! finality [`Certificate`] (`Proof::Threshold { fast: false }`) and broadcasts it. Each
//! phase is n - 1 messages to the collector and one broadcast from it: O(n) messages per
//! height instead of PBFT's O(n²) (the report's §3.3.3). The leader proposes height h + 1
//! only once h is committed: heights are agreed one at a time (no pipelining), which keeps
//! one lock and one share record per replica.
//!
//! **SBFT fast path** (Gueta et al. §IV): a replica sends, in one message, a fast-path
//! share over the commit message (fast key, t = n - c) and a slow-path prepare share. If the
//! collector gets n - c valid fast shares before its `FastPath` timer fires, their
//! combination is the finality certificate (`fast: true`): commit in one collector round
//! trip. Otherwise (the timer fired, or invalid shares leave fewer than n - c possible) it
//! falls back to the slow path for the same block in the same view: the prepare shares it
//! already has (or waits for) make the prepare certificate, and the protocol continues
//! exactly as Linear BFT. Silent, slow or byzantine replicas therefore cost the fast path, never
//! progress.
//!
//! **View change** (on a `Round` timeout): see [`view_change`] for the messages, the new
//! leader's rule and the safety argument.
//!
//! **Persistence.** Before it sends a share, a proposal, a new-view or a view change, a
//! replica persists its view (and whether a view change is under way), its lock, the block
//! it last signed at (height, view) and its last commit certificate ([`persist`]); after a
//! restart it never signs another block at that (height, view), keeps its lock, and stays in
//! its view (a leader re-proposes the same block).
//!
//! Files: [`messages`] (wire format, tags 32..47), [`normal`] (proposals, shares,
//! certificates), [`shares`] (the collector's optimistic combination), [`view_change`],
//! [`persist`].

mod messages;
mod normal;
mod persist;
#[cfg(test)]
pub(crate) mod pump;
mod shares;
mod view_change;

use std::collections::{BTreeMap, BTreeSet};

use v2v_crypto::{BlsKeypair, ThresholdPublic};
use v2v_primitives::Hash;

use crate::{
    Certificate, ConfigError, EngineConfig, Input, Output, Proposal, TimerId, ValidatorIndex,
};
use messages::{Message, PrepareCertificate, SignedProposal, ViewChange};
use persist::{Persisted, Signed};
use shares::Collector;

/// What a replica knows about the round at (next height, current view).
#[derive(Debug, Default)]
struct Round {
    /// The leader's proposal, and whom the node should fetch the block from.
    proposal: Option<(Hash, ValidatorIndex)>,
    /// Prepare (and fast) shares sent for it.
    voted: bool,
    /// Commit share sent for the lock of this view.
    commit_voted: bool,
}

/// The shared engine. [`crate::LinearEngine`] and [`crate::SbftEngine`] wrap it.
#[derive(Debug)]
pub(crate) struct Core {
    name: &'static str,
    cfg: EngineConfig,
    /// Slow-path public parameters (t = quorum) and this validator's share.
    slow_public: ThresholdPublic,
    slow_share: BlsKeypair,
    /// SBFT only: fast-path public parameters (t = n - c) and this validator's share.
    fast: Option<(ThresholdPublic, BlsKeypair)>,
    fast_quorum: usize,
    /// View changes a new-view needs (see [`view_change`]).
    view_change_quorum: usize,
    /// SBFT: reports of one fast-signed value that force the new leader to re-propose it.
    fast_report_threshold: usize,

    started: bool,
    /// The persisted state could not be read: signing anything could contradict it.
    halted: bool,
    next_height: u64,
    view: u64,
    /// `false` while a view change to `view` is under way.
    active: bool,
    /// The current view proposes from this height on (its new-view's height): a replica
    /// never votes in this view below it.
    view_start_height: u64,
    failed_view_changes: u32,
    /// A block was committed since this replica's last view-change message.
    progress_since_view_change: bool,
    /// The highest prepare certificate at `next_height`.
    lock: Option<PrepareCertificate>,
    signed: Option<Signed>,
    last_certificate: Option<Certificate>,

    /// Blocks at `next_height` that the node found valid.
    verified: BTreeSet<Hash>,
    verify_requested: BTreeSet<Hash>,
    /// A verified commit certificate for `next_height` whose block the node is checking.
    pending_commit: Option<Certificate>,
    /// A proposal of the current view for a height above `next_height`.
    future_proposal: Option<SignedProposal>,
    round: Round,
    /// This validator's collector state, when it leads the current round.
    collector: Option<Collector>,
    round_timer: Option<TimerId>,
    /// The latest view change of each sender for a view this validator leads.
    view_changes: BTreeMap<ValidatorIndex, ViewChange>,
    /// New leader: the justification, while the node builds a fresh block.
    awaiting_fresh: Option<Vec<ViewChange>>,
    /// The highest height a sync was requested up to.
    sync_requested: u64,

    out: Vec<Output>,
}

impl Core {
    /// `fast_path`: SBFT (the fast path on) rather than Linear BFT.
    pub(crate) fn new(
        name: &'static str,
        cfg: EngineConfig,
        fast_path: bool,
    ) -> Result<Self, ConfigError> {
        cfg.check()?;
        let validators = &cfg.validators;
        let (n, f, index) = (
            validators.len(),
            validators.max_faulty(),
            cfg.index as usize,
        );
        let quorum = validators.quorum();
        let keys = validators.threshold.as_ref().ok_or(ConfigError::Missing {
            engine: name,
            what: "threshold keys in the validator set",
        })?;
        let check_key = |public: &ThresholdPublic,
                         share: &Option<BlsKeypair>,
                         t: usize,
                         which: &'static str|
         -> Result<BlsKeypair, ConfigError> {
            if public.threshold as usize != t || public.share_keys.len() != n {
                return Err(ConfigError::Invalid(format!(
                    "the {which} threshold key is {} of {}, {name} needs {t} of {n}",
                    public.threshold,
                    public.share_keys.len()
                )));
            }
            let share = share.clone().ok_or(ConfigError::Missing {
                engine: name,
                what: if which == "fast-path" {
                    "a fast-path threshold key share"
                } else {
                    "a slow-path threshold key share"
                },
            })?;
            if share.public() != public.share_keys[index] {
                return Err(ConfigError::Invalid(format!(
                    "the {which} key share is not validator {index}'s"
                )));
            }
            Ok(share)
        };
        let slow_share = check_key(&keys.slow, &cfg.slow_share, quorum, "slow-path")?;
        let fast_quorum = validators.fast_quorum(cfg.sbft_c);
        let (fast, view_change_quorum, fast_report_threshold) = if fast_path {
            let public = keys.fast.as_ref().ok_or(ConfigError::Missing {
                engine: name,
                what: "a fast-path threshold key in the validator set",
            })?;
            let share = check_key(public, &cfg.fast_share, fast_quorum, "fast-path")?;
            // See `view_change`: a new-view's justification must hold f + (n - F) + 1 honest
            // fast signers of any fast-committed value (F = the fast quorum), which takes
            // 2n + 2f + 1 - 2F view changes; that is n - f when n = 3f + 2c + 1, and must not
            // exceed n - f, or the honest replicas alone could not change views.
            let needed = (2 * n + 2 * f + 1).saturating_sub(2 * fast_quorum);
            if needed > n - f {
                return Err(ConfigError::Invalid(format!(
                    "SBFT with c = {} needs n >= 3f + 2c + 1 validators; n = {n} (f = {f}) \
                     is too small for its fast path",
                    cfg.sbft_c
                )));
            }
            (
                Some((public.clone(), share)),
                needed.max(quorum),
                f + (n - fast_quorum) + 1,
            )
        } else {
            (None, quorum, usize::MAX)
        };
        Ok(Self {
            name,
            slow_public: keys.slow.clone(),
            slow_share,
            fast,
            fast_quorum,
            view_change_quorum,
            fast_report_threshold,
            cfg,
            started: false,
            halted: false,
            next_height: 0,
            view: 0,
            active: true,
            view_start_height: 0,
            failed_view_changes: 0,
            progress_since_view_change: false,
            lock: None,
            signed: None,
            last_certificate: None,
            verified: BTreeSet::new(),
            verify_requested: BTreeSet::new(),
            pending_commit: None,
            future_proposal: None,
            round: Round::default(),
            collector: None,
            round_timer: None,
            view_changes: BTreeMap::new(),
            awaiting_fresh: None,
            sync_requested: 0,
            out: Vec::new(),
        })
    }

    pub(crate) fn name(&self) -> &'static str {
        self.name
    }

    pub(crate) fn handle(&mut self, input: Input) -> Vec<Output> {
        match input {
            Input::Start {
                next_height,
                persisted,
            } => self.on_start(next_height, persisted),
            _ if !self.started || self.halted => {}
            Input::Message { from, payload } => self.on_message(from, &payload),
            Input::Timeout(id) => self.on_timeout(id),
            Input::ProposalReady(p) => self.on_proposal_ready(p),
            Input::ProposalVerified {
                height,
                block_hash,
                valid,
                ..
            } => self.on_verified(height, block_hash, valid),
            Input::Synced {
                height,
                certificate,
                ..
            } => {
                // A certified height at or above ours (one by one from block sync, or a
                // jump from a state snapshot): move past it.
                if height >= self.next_height {
                    self.advance(height, certificate);
                }
            }
        }
        std::mem::take(&mut self.out)
    }

    // ---- small helpers ----

    fn index(&self) -> ValidatorIndex {
        self.cfg.index
    }

    fn leader_of(&self, view: u64) -> ValidatorIndex {
        self.cfg.validators.leader(view)
    }

    fn leader(&self) -> ValidatorIndex {
        self.leader_of(self.view)
    }

    fn is_leader(&self) -> bool {
        self.leader() == self.index()
    }

    fn send(&mut self, to: ValidatorIndex, message: Message) {
        self.out.push(Output::Send {
            to,
            payload: message.encode(),
        });
    }

    fn broadcast(&mut self, message: Message) {
        self.out.push(Output::Broadcast {
            payload: message.encode(),
        });
    }

    fn persist(&mut self) {
        let state = Persisted {
            view: self.view,
            active: self.active,
            view_start_height: self.view_start_height,
            failed_view_changes: self.failed_view_changes,
            lock: self.lock.clone(),
            signed: self.signed,
            last_certificate: self.last_certificate.clone(),
        }
        .encode();
        self.out.push(Output::Persist { state });
    }

    fn restart_round_timer(&mut self) {
        if let Some(id) = self.round_timer.take() {
            self.out.push(Output::CancelTimer { id });
        }
        let id = TimerId::Round {
            height: self.next_height,
            view: self.view,
        };
        self.out.push(Output::SetTimer {
            id,
            after_ms: self.cfg.timing.round_timeout_ms,
        });
        self.round_timer = Some(id);
    }

    fn cancel_round_timer(&mut self) {
        if let Some(id) = self.round_timer.take() {
            self.out.push(Output::CancelTimer { id });
        }
    }

    fn request_verify(&mut self, block_hash: Hash, proposer: ValidatorIndex) {
        if self.verify_requested.insert(block_hash) {
            self.out.push(Output::VerifyProposal {
                height: self.next_height,
                view: self.view,
                block_hash,
                proposer,
            });
        }
    }

    fn request_sync(&mut self, peer: ValidatorIndex, up_to_height: u64) {
        if up_to_height > self.sync_requested && up_to_height >= self.next_height {
            self.sync_requested = up_to_height;
            self.out.push(Output::Sync { peer, up_to_height });
        }
    }

    // ---- start, heights and views ----

    fn on_start(&mut self, next_height: u64, persisted: Option<Vec<u8>>) {
        self.next_height = next_height;
        self.view = 0;
        self.active = true;
        self.view_start_height = 0;
        self.failed_view_changes = 0;
        self.progress_since_view_change = false;
        self.lock = None;
        self.signed = None;
        self.last_certificate = None;
        self.verified.clear();
        self.verify_requested.clear();
        self.pending_commit = None;
        self.future_proposal = None;
        self.round = Round::default();
        self.collector = None;
        self.round_timer = None;
        self.view_changes.clear();
        self.awaiting_fresh = None;
        self.sync_requested = 0;
        self.started = true;
        self.halted = false;
        let mut pending = None;
        if let Some(bytes) = persisted {
            match Persisted::decode(&bytes) {
                Ok(p) => {
                    self.view = p.view;
                    self.active = p.active;
                    self.view_start_height = p.view_start_height;
                    self.failed_view_changes = p.failed_view_changes;
                    self.lock = p.lock.filter(|l| l.height == next_height);
                    self.signed = p.signed;
                    match p.last_certificate {
                        Some(c) if c.height.checked_add(1) == Some(next_height) => {
                            self.last_certificate = Some(c);
                        }
                        // Persisted, then stopped before the node stored the block.
                        Some(c) if c.height == next_height => pending = Some(c),
                        _ => {}
                    }
                }
                Err(e) => {
                    // Without its record of what it signed, the replica could contradict
                    // itself: it stays silent rather than risk that.
                    self.halted = true;
                    self.out.push(Output::Faulty {
                        validator: self.index(),
                        reason: format!("own persisted {} state is unreadable: {e}", self.name),
                    });
                    return;
                }
            }
        }
        if self.active {
            self.begin_height();
        } else {
            self.send_view_change();
        }
        if let Some(c) = pending {
            let proposer = self.leader_of(c.view);
            self.commit_when_verified(c, proposer);
        }
    }

    /// Starts the round for `next_height` in the current (active) view: the Round timer, and
    /// the leader's proposal.
    fn begin_height(&mut self) {
        self.round = Round::default();
        self.collector = None;
        self.restart_round_timer();
        let (h, v) = (self.next_height, self.view);
        let locked_here = self
            .lock
            .as_ref()
            .is_some_and(|l| l.height == h && l.view == v);
        if self.is_leader() && h >= self.view_start_height && !locked_here {
            match self.signed {
                // Restarted after proposing: the same block again, never another.
                Some(s) if s.height == h && s.view == v => {
                    self.verified.insert(s.block_hash);
                    self.propose(s.block_hash);
                }
                _ => self
                    .out
                    .push(Output::RequestProposal { height: h, view: v }),
            }
        }
        if let Some(p) = self.future_proposal.take() {
            if p.view == v && p.height == h {
                let from = self.leader();
                self.accept_proposal(p.block_hash, from);
            } else if p.view == v && p.height > h {
                self.future_proposal = Some(p);
            }
        }
    }

    /// Moves to `view` as an active participant (a valid new-view or a certificate from it
    /// was seen). The caller starts the round.
    fn enter_view(&mut self, view: u64, start_height: u64) {
        if !self.active {
            self.out.push(Output::CancelTimer {
                id: TimerId::ViewChange { view: self.view },
            });
        }
        self.view = view;
        self.active = true;
        self.view_start_height = start_height;
        self.awaiting_fresh = None;
        self.round = Round::default();
        self.collector = None;
        if self
            .future_proposal
            .as_ref()
            .is_some_and(|p| p.view != view)
        {
            self.future_proposal = None;
        }
        self.view_changes.retain(|_, vc| vc.view > view);
    }

    /// The block at `height` is final (committed here, or synced by the node).
    fn advance(&mut self, height: u64, certificate: Certificate) {
        self.next_height = height.saturating_add(1);
        self.lock = None;
        self.verified.clear();
        self.verify_requested.clear();
        self.pending_commit = None;
        self.failed_view_changes = 0;
        self.progress_since_view_change = true;
        let cert_view = certificate.view;
        self.last_certificate = Some(certificate);
        if self
            .future_proposal
            .as_ref()
            .is_some_and(|p| p.height < self.next_height)
        {
            self.future_proposal = None;
        }
        if cert_view > self.view {
            // A certificate from a later view proves that view's new-view was accepted.
            self.enter_view(cert_view, self.next_height);
        }
        if self.active {
            self.begin_height();
        } else {
            self.round = Round::default();
            self.collector = None;
            self.awaiting_fresh = None;
            self.try_new_view();
        }
    }

    fn commit(&mut self, certificate: Certificate) {
        let height = certificate.height;
        self.out.push(Output::Commit {
            height,
            block_hash: certificate.block_hash,
            certificate: certificate.clone(),
        });
        self.advance(height, certificate);
    }

    /// A certificate for `next_height` proves finality; the node only needs the block.
    fn commit_when_verified(&mut self, certificate: Certificate, source: ValidatorIndex) {
        if self.verified.contains(&certificate.block_hash) {
            self.commit(certificate);
        } else {
            let hash = certificate.block_hash;
            self.pending_commit = Some(certificate);
            self.request_verify(hash, source);
        }
    }

    // ---- inputs ----

    fn on_message(&mut self, from: ValidatorIndex, payload: &[u8]) {
        let n = self.cfg.validators.len();
        if from as usize >= n || from == self.index() {
            return;
        }
        let Ok(message) = Message::decode(payload, n) else {
            return;
        };
        match message {
            Message::Vote(vote) => {
                self.on_share(from, vote);
                self.collect();
            }
            Message::Shares(votes) => {
                for vote in votes {
                    self.on_share(from, vote);
                }
                self.collect();
            }
            Message::Proposal(p) => self.on_proposal(from, p),
            Message::PrepareCertificate(pc) => self.on_prepare_certificate(from, pc),
            Message::CommitCertificate(c) => self.on_commit_certificate(from, c),
            Message::ViewChange(vc) => self.on_view_change(from, vc),
            Message::NewView(nv) => self.on_new_view(from, nv),
        }
    }

    fn on_timeout(&mut self, id: TimerId) {
        match id {
            TimerId::Round { height, view } => {
                if height == self.next_height && view == self.view && self.active {
                    self.round_timer = None;
                    self.start_view_change(view.saturating_add(1));
                }
            }
            TimerId::ViewChange { view } => {
                if view == self.view && !self.active {
                    if self.progress_since_view_change {
                        // Blocks are being finalized without this replica (it left the
                        // view alone): ask again rather than run further ahead.
                        self.send_view_change();
                    } else {
                        self.failed_view_changes = self.failed_view_changes.saturating_add(1);
                        self.start_view_change(view.saturating_add(1));
                    }
                }
            }
            TimerId::FastPath { height, view } => {
                if let Some(c) = self.collector.as_mut()
                    && c.height == height
                    && c.view == view
                    && !c.done
                    && !c.slow_path
                {
                    c.slow_path = true;
                    self.collect();
                }
            }
        }
    }

    fn on_proposal_ready(&mut self, p: Proposal) {
        let (h, v) = (self.next_height, self.view);
        if p.height != h || p.view != v || !self.is_leader() {
            return;
        }
        if !self.active {
            if let Some(justification) = self.awaiting_fresh.take() {
                self.verified.insert(p.block_hash);
                let me = self.index();
                self.send_new_view(justification, p.block_hash, me);
            }
            return;
        }
        if self.round.proposal.is_some() || h < self.view_start_height {
            return;
        }
        if self
            .signed
            .is_some_and(|s| s.height == h && s.view == v && s.block_hash != p.block_hash)
        {
            return;
        }
        self.verified.insert(p.block_hash);
        self.propose(p.block_hash);
    }

    fn on_verified(&mut self, height: u64, block_hash: Hash, valid: bool) {
        if height != self.next_height || !valid {
            return;
        }
        self.verified.insert(block_hash);
        if self
            .pending_commit
            .as_ref()
            .is_some_and(|c| c.block_hash == block_hash)
            && let Some(c) = self.pending_commit.take()
        {
            self.commit(c);
            return;
        }
        self.try_vote();
        self.try_commit_vote();
        self.collect();
    }
}
