//! `pbft`: Practical Byzantine Fault Tolerance (Castro and Liskov, OSDI 1999), the report's
//! "BFT" (section 3.3.2), over hash-linked blocks.
//!
//! Normal case (§4.2). The leader of view v (`validators.leader(v)`) signs a pre-prepare
//! (v, height, digest); the other replicas check the block (`VerifyProposal`) and broadcast a
//! prepare vote. A replica has *prepared* a height once it holds the pre-prepare and
//! `quorum - 1` matching prepares from replicas other than the leader (PBFT's "2f prepares
//! plus the pre-prepare": the pre-prepare stands for the leader's prepare, and the leader
//! sends none), *and* the height below is prepared in the same view or committed (see "Gaps"
//! below). It then broadcasts a commit vote; `quorum` commit votes of one view for a block the
//! node has make the height committed-local, and heights are handed to the node (`Commit`) in
//! order, with those commit votes, sorted by validator index, as the certificate.
//!
//! Window. The leader keeps up to `window` heights pre-prepared above its last commit,
//! asking for the next block as soon as it has sent the previous pre-prepare. A follower
//! accepts pre-prepares and votes from its next height up to twice the window (it may be a
//! few commits behind the leader) and below the high water mark; anything further is dropped
//! (a valid pre-prepare beyond that shows the leader is ahead: `Sync`).
//!
//! Checkpoints (§4.3). After committing a height that is a multiple of `checkpoint_interval`
//! a replica broadcasts a checkpoint vote (view 0, the block's digest); a quorum of matching
//! votes is a stable checkpoint, and the log at and below it is dropped. The high water mark
//! is the low one plus L = `2 * checkpoint_interval + window`, so the log stays bounded. A
//! stable checkpoint, f + 1 matching checkpoint votes (at least one from a correct replica),
//! or a commit quorum for a block we do not have, at or above our next height means the
//! others are ahead: `Sync`, once per target; `Synced` heights are not committed again.
//!
//! Timeouts. When the Round timer of the next height expires, a replica broadcasts a signed
//! timeout complaint (the view v+1 it asks for, the height it waits for) and stays in view
//! v, repeating the complaint each round timeout. A complaint promises nothing, unlike a view
//! change: a replica whose timer fires alone (it started before the leader, say) keeps
//! taking part in view v instead of leaving it for a view change nobody joins. Once f+1
//! replicas complained for v+1 at heights it has not committed (its own complaint and view
//! changes for v+1 count), an honest replica's timer expired, and it moves to v+1.
//!
//! Catching up. A commit quorum of a view below ours (we are in a view, or a view change,
//! that the others have not joined) for a height we have not committed shows they finalized
//! without us: `Sync` to it, so that even a replica out of the others' view follows the
//! chain until the next view change brings it back.
//!
//! View change (§4.4). After the complaints above, a replica moves to
//! view v+1 and broadcasts a signed view change carrying its stable checkpoint proof and the
//! prepared certificate of every height above it. The leader of v+1, with a quorum of them,
//! broadcasts a new view with those messages and, for each height from the highest checkpoint
//! up, a fresh pre-prepare for the block prepared in the highest view. Replicas recompute that
//! set before entering the view and vote for the re-proposals as for new blocks (a replica
//! that already committed a re-proposed height votes for the block it committed, so that
//! replicas behind it can commit it too). A replica that sees f+1 view changes for higher
//! views joins the smallest (§4.5.2). The ViewChange timer (the view-change timeout, doubled
//! for each view change since the last commit) only repeats our view change until a quorum
//! asks for the view; from then on its expiry moves to the next view (PBFT starts that timer
//! at the quorum, so a lone replica does not race through views and the new leader gets the
//! whole timeout). The leader resends its new view to a replica still asking for its view.
//! A replica enters a view only through a new view (never from a synced certificate's view).
//!
//! Gaps. PBFT fills a height no view change reports with a null request. Our blocks are
//! hash-linked, so the new view stops at the first height nobody reports prepared and drops
//! the later ones. That is safe because of the in-order prepared rule above: a height with a
//! commit quorum was prepared, in order, by f+1 honest replicas, and at least one of them is
//! in any view-change quorum and reports every height from its checkpoint up to it; so a
//! height beyond a gap never had a commit quorum, and nothing was committed there.
//!
//! Persistence. Before any vote leaves, the engine hands out (`Persist`) its view, whether it
//! is in a view change, its stable checkpoint, per height the pre-prepare it voted for (or
//! issued), the commit it sent and its prepared certificate, and the digests it committed
//! above the checkpoint. After a restart it never votes for a different block at a height in
//! a view, resends its votes of the current view (asking the node to check the blocks again),
//! reports its prepared certificates in view changes, and stays in its view or view change.
//! A persisted state it cannot read stops it from voting at all.

mod checkpoint;
mod log;
mod messages;
mod normal;
#[cfg(test)]
mod tests;
mod view_change;

use std::collections::{BTreeMap, BTreeSet};

use v2v_primitives::Hash;

use crate::{
    ConfigError, Engine, EngineConfig, Input, Output, Phase, TimerId, ValidatorIndex, Vote,
    VoteSignature,
};
use log::{PersistedState, Slot};
use messages::{CheckpointProof, Message, NewView, ViewChange};

/// The PBFT engine of one validator.
#[derive(Debug)]
pub struct PbftEngine {
    config: EngineConfig,
    quorum: usize,
    /// PBFT's log size L (§4.3): twice the checkpoint interval plus the window.
    log_size: u64,
    started: bool,
    /// The persisted state could not be read: the engine refuses to vote rather than risk
    /// contradicting a vote it cannot see.
    halted: bool,
    view: u64,
    /// False while a view change to `view` is under way: only checkpoint, view-change and
    /// new-view messages are processed then (§4.4).
    active: bool,
    /// The lowest height not yet committed (by us, or synced).
    next_height: u64,
    /// The height up to which this replica holds no log by construction (where it started,
    /// or what it synced); the high water mark counts from here or the stable checkpoint.
    log_floor: u64,
    stable: Option<CheckpointProof>,
    slots: BTreeMap<u64, Slot>,
    /// The digests committed (or synced) at the heights below `next_height` still in the
    /// log: a new view may re-propose them, and we vote for them again. Persisted.
    decided: BTreeMap<u64, Hash>,
    /// Checkpoint votes above the stable checkpoint, by height and voter.
    checkpoint_votes: BTreeMap<u64, BTreeMap<u32, Vote>>,
    /// Leader: the height a proposal was requested for, in `view`.
    requested: Option<u64>,
    /// The highest height a `Sync` was asked for.
    sync_target: u64,
    round_timer: Option<TimerId>,
    /// The latest valid view change of each replica (including ours).
    view_changes: BTreeMap<u32, ViewChange>,
    /// The latest timeout complaint of each replica (including ours): (view asked for,
    /// height it was waiting for).
    complaints: BTreeMap<u32, (u64, u64)>,
    /// Commit votes of views below ours, at most one per voter and height (its highest
    /// view): a quorum of them shows that the others finalized without us (catching up).
    old_commits: BTreeMap<u64, BTreeMap<u32, Vote>>,
    view_change_timer: Option<TimerId>,
    /// A quorum asked for the view we are moving to: the view-change timer now moves on.
    view_change_quorum: bool,
    /// View changes since the last commit: the view-change timeout doubles with each.
    failed_views: u32,
    /// Leader: the new-view message that started the current view, resent to replicas that
    /// are still asking for this view.
    new_view: Option<NewView>,
    new_view_resent: BTreeSet<u32>,
    out: Vec<Output>,
    /// The persisted part of the state changed: a `Persist` goes before this input's outputs.
    dirty: bool,
}

impl PbftEngine {
    pub fn new(config: EngineConfig) -> Result<Self, ConfigError> {
        config.check()?;
        let quorum = config.validators.quorum();
        let log_size = config
            .checkpoint_interval
            .saturating_mul(2)
            .saturating_add(config.window);
        Ok(Self {
            config,
            quorum,
            log_size,
            started: false,
            halted: false,
            view: 0,
            active: true,
            next_height: 1,
            log_floor: 0,
            stable: None,
            slots: BTreeMap::new(),
            decided: BTreeMap::new(),
            checkpoint_votes: BTreeMap::new(),
            requested: None,
            sync_target: 0,
            round_timer: None,
            view_changes: BTreeMap::new(),
            complaints: BTreeMap::new(),
            old_commits: BTreeMap::new(),
            view_change_timer: None,
            view_change_quorum: false,
            failed_views: 0,
            new_view: None,
            new_view_resent: BTreeSet::new(),
            out: Vec::new(),
            dirty: false,
        })
    }

    fn me(&self) -> ValidatorIndex {
        self.config.index
    }

    fn leader(&self, view: u64) -> ValidatorIndex {
        self.config.validators.leader(view)
    }

    fn is_leader(&self) -> bool {
        self.leader(self.view) == self.me()
    }

    fn n(&self) -> usize {
        self.config.validators.len()
    }

    fn stable_height(&self) -> u64 {
        self.stable.as_ref().map_or(0, |c| c.height)
    }

    /// PBFT's high water mark H = h + L (§4.3).
    fn high_water(&self) -> u64 {
        self.stable_height()
            .max(self.log_floor)
            .saturating_add(self.log_size)
    }

    /// One past the highest height a replica accepts new pre-prepares and votes for. The
    /// leader keeps `window` heights in flight above *its* last commit; a follower may be a
    /// few commits behind it, so it looks twice as far ahead.
    fn accept_end(&self) -> u64 {
        self.next_height
            .saturating_add(self.config.window.saturating_mul(2))
            .min(self.high_water().saturating_add(1))
    }

    /// The most prepared certificates a view change may carry.
    fn max_entries(&self) -> usize {
        usize::try_from(self.log_size.saturating_mul(2)).unwrap_or(usize::MAX)
    }

    fn broadcast(&mut self, payload: Vec<u8>) {
        if self.n() > 1 {
            self.out.push(Output::Broadcast { payload });
        }
    }

    fn faulty(&mut self, validator: ValidatorIndex, reason: String) {
        self.out.push(Output::Faulty { validator, reason });
    }

    /// A vote whose signature does not check: its sender's fault.
    fn bad_signature(&mut self, from: ValidatorIndex, vote: &Vote) {
        self.faulty(
            from,
            format!(
                "bad signature on its {:?} vote for height {} in view {}",
                vote.phase, vote.height, vote.view
            ),
        );
    }

    fn sign_vote(&self, phase: Phase, height: u64, view: u64, block_hash: Hash) -> Vote {
        Vote::sign_ed25519(phase, height, view, block_hash, self.me(), &self.config.key)
    }

    fn request_sync(&mut self, peer: ValidatorIndex, up_to_height: u64) {
        if up_to_height >= self.next_height && up_to_height > self.sync_target {
            self.sync_target = up_to_height;
            self.out.push(Output::Sync { peer, up_to_height });
        }
    }

    /// (Re)arms the Round timer of the next height in the current view.
    fn arm_round_timer(&mut self) {
        let id = TimerId::Round {
            height: self.next_height,
            view: self.view,
        };
        if self.round_timer == Some(id) {
            return;
        }
        self.disarm_round_timer();
        self.round_timer = Some(id);
        self.out.push(Output::SetTimer {
            id,
            after_ms: self.config.timing.round_timeout_ms,
        });
    }

    fn disarm_round_timer(&mut self) {
        if let Some(id) = self.round_timer.take() {
            self.out.push(Output::CancelTimer { id });
        }
    }

    // ----- start and restart -------------------------------------------------------------

    fn start(&mut self, next_height: u64, persisted: Option<Vec<u8>>) {
        let fresh = Self::new(self.config.clone());
        let Ok(fresh) = fresh else { return };
        *self = fresh;
        self.started = true;
        self.next_height = next_height.max(1);
        self.log_floor = self.next_height - 1;
        if let Some(bytes) = persisted {
            match PersistedState::decode(&bytes) {
                Ok(state) => self.restore(state),
                Err(e) => {
                    self.halted = true;
                    let me = self.me();
                    self.faulty(
                        me,
                        format!("the persisted PBFT state is unreadable ({e}); not voting"),
                    );
                    return;
                }
            }
        }
        if let Some(cp) = &self.stable {
            let (height, peer) = (cp.height, self.checkpoint_peer(cp));
            self.request_sync(peer, height);
        }
        if self.active {
            self.arm_round_timer();
            self.resend_votes();
        } else {
            // We were in a view change: announce it again (the leader of the view answers
            // with its new view if it already has one).
            self.send_view_change();
        }
    }

    fn restore(&mut self, state: PersistedState) {
        self.view = state.view;
        self.active = state.active;
        self.stable = state.stable;
        let low = self.stable_height();
        self.slots = state
            .slots
            .into_iter()
            .filter(|(h, _)| *h > low)
            .map(|(h, s)| (h, s.into_slot()))
            .collect();
        self.decided = state
            .decided
            .into_iter()
            .filter(|(h, _)| *h > low)
            .collect();
        self.prune_decided();
    }

    /// After a restart: resend our pre-prepares (leader) or prepares, and our commits, of the
    /// current view for heights not yet committed. They are the same votes (ed25519 signing
    /// is deterministic); peers that already have them drop the duplicates. The node may have
    /// lost its candidate blocks, so it is asked to check them again before we commit.
    fn resend_votes(&mut self) {
        let (view, me, leader) = (self.view, self.me(), self.leader(self.view));
        let heights: Vec<u64> = self
            .slots
            .range(self.next_height..)
            .map(|(h, _)| *h)
            .collect();
        for h in heights {
            let Some(slot) = self.slots.get_mut(&h) else {
                continue;
            };
            let voted = slot.pre_prepare_in(view).filter(|_| slot.voted).cloned();
            let commit = slot.commit_sent.filter(|(v, _)| *v == view);
            if let Some(pp) = voted {
                slot.verifying = Some((view, pp.block_hash));
                self.out.push(Output::VerifyProposal {
                    height: h,
                    view,
                    block_hash: pp.block_hash,
                    proposer: leader,
                });
                if me == leader {
                    self.broadcast(pp.encode());
                } else {
                    let vote = self.sign_vote(Phase::Prepare, h, view, pp.block_hash);
                    self.broadcast(vote.encode());
                    if let Some(slot) = self.slots.get_mut(&h) {
                        slot.prepares.insert((view, me), vote);
                    }
                }
            }
            if let Some((_, hash)) = commit {
                let vote = self.sign_vote(Phase::Commit, h, view, hash);
                self.broadcast(vote.encode());
                if let Some(slot) = self.slots.get_mut(&h) {
                    slot.commits.insert((view, me), vote);
                }
            }
        }
    }

    // ----- messages ----------------------------------------------------------------------

    fn on_message(&mut self, from: ValidatorIndex, payload: &[u8]) {
        if from as usize >= self.n() || from == self.me() {
            return;
        }
        // Anything that does not decode is dropped without a word: it may come from a newer
        // version, and the sender is not provably at fault.
        match Message::decode(payload) {
            Some(Message::Vote(vote)) => self.on_vote(from, vote),
            Some(Message::PrePrepare(pp)) => self.on_pre_prepare(from, pp),
            Some(Message::ViewChange(vc)) => self.on_view_change(from, vc),
            Some(Message::NewView(nv)) => self.on_new_view(from, nv),
            None => {}
        }
    }

    /// Whether votes and pre-prepares for `height` may be kept: within the window above the
    /// next height and below the high water mark, or a height already in the log (a
    /// re-proposal below the window, or a committed height that a new view re-proposes).
    fn in_log(&self, height: u64) -> bool {
        height > self.stable_height()
            && ((height >= self.next_height && height < self.accept_end())
                || self.slots.contains_key(&height))
    }

    fn on_vote(&mut self, from: ValidatorIndex, vote: Vote) {
        // Votes come straight from their voter (all-to-all); PBFT votes are ed25519.
        if vote.voter != from || !matches!(vote.signature, VoteSignature::Ed25519(_)) {
            return;
        }
        match vote.phase {
            Phase::Checkpoint => return self.on_checkpoint_vote(from, vote),
            Phase::Timeout => return self.on_complaint(from, vote),
            Phase::Commit if vote.view < self.view => return self.on_old_commit(from, vote),
            Phase::Prepare | Phase::Commit => {}
        }
        // The current view, and the next one (votes that overtake the new-view message).
        if vote.view < self.view || vote.view > self.view.saturating_add(1) {
            return;
        }
        // PBFT §4.2: the leader's pre-prepare is its prepare; it sends none.
        if vote.phase == Phase::Prepare && from == self.leader(vote.view) {
            return;
        }
        if !self.in_log(vote.height) {
            return;
        }
        let key = (vote.view, from);
        let existing = self.slots.get(&vote.height).and_then(|s| match vote.phase {
            Phase::Prepare => s.prepares.get(&key),
            _ => s.commits.get(&key),
        });
        if existing == Some(&vote) {
            return;
        }
        if vote.verify(&self.config.validators).is_err() {
            return self.bad_signature(from, &vote);
        }
        if let Some(first) = existing {
            let reason = format!(
                "two {:?} votes for height {} in view {}: {} and {}",
                vote.phase, vote.height, vote.view, first.block_hash, vote.block_hash
            );
            self.faulty(from, reason);
            return;
        }
        let slot = self.slots.entry(vote.height).or_default();
        match vote.phase {
            Phase::Prepare => slot.prepares.insert(key, vote),
            _ => slot.commits.insert(key, vote),
        };
    }

    fn on_timeout(&mut self, id: TimerId) {
        match id {
            TimerId::Round { height, view } => {
                if self.round_timer == Some(id) {
                    self.round_timer = None;
                }
                if self.active && view == self.view && height == self.next_height {
                    self.complain();
                }
            }
            TimerId::ViewChange { view } => {
                if self.view_change_timer == Some(id) {
                    self.view_change_timer = None;
                }
                self.on_view_change_timeout(view);
            }
            TimerId::FastPath { .. } => {}
        }
    }
}

impl Engine for PbftEngine {
    fn name(&self) -> &'static str {
        "pbft"
    }

    fn handle(&mut self, input: Input) -> Vec<Output> {
        if self.halted {
            return Vec::new();
        }
        match input {
            Input::Start {
                next_height,
                persisted,
            } => self.start(next_height, persisted),
            _ if !self.started => {}
            Input::Message { from, payload } => self.on_message(from, &payload),
            Input::Timeout(id) => self.on_timeout(id),
            Input::ProposalReady(p) => self.on_proposal_ready(p),
            Input::ProposalVerified {
                height,
                view,
                block_hash,
                valid,
            } => self.on_verified(height, view, block_hash, valid),
            Input::Synced {
                height, block_hash, ..
            } => self.on_synced(height, block_hash),
        }
        if self.started && !self.halted {
            self.progress();
            self.maybe_propose();
        }
        let mut out = std::mem::take(&mut self.out);
        if std::mem::take(&mut self.dirty) && !self.halted {
            let state = PersistedState::capture(
                self.view,
                self.active,
                self.stable.as_ref(),
                &self.slots,
                &self.decided,
            );
            out.insert(
                0,
                Output::Persist {
                    state: state.encode(),
                },
            );
        }
        out
    }
}
