//! PBFT's view change (Castro and Liskov, OSDI 1999, §4.4) and its liveness rules (§4.5.2).

use std::collections::{BTreeMap, BTreeSet};

use v2v_primitives::Hash;

use super::PbftEngine;
use super::messages::{CheckpointProof, NewView, PrePrepare, ViewChange};
use crate::{Output, Phase, TimerId, ValidatorIndex, Vote};

/// What a quorum of view changes determines for the new view: the highest stable checkpoint
/// among them, and for each height above it, up to the first height nobody reports, the block
/// prepared in the highest view (with that view, to find who proposed it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Plan {
    pub checkpoint: Option<CheckpointProof>,
    pub reproposals: Vec<(u64, Hash, u64)>,
}

/// PBFT's computation of the new view's pre-prepares (§4.4), with "stop at the first gap"
/// in place of null requests (see the module header of `pbft`).
pub(super) fn plan(view_changes: &[ViewChange], max_entries: usize) -> Plan {
    let mut checkpoint: Option<&CheckpointProof> = None;
    for cp in view_changes.iter().filter_map(|vc| vc.checkpoint.as_ref()) {
        if checkpoint.is_none_or(|c| cp.height > c.height) {
            checkpoint = Some(cp);
        }
    }
    let low = checkpoint.map_or(0, |c| c.height);
    // Highest (view, digest) per height; two valid prepared certificates of one view agree
    // (their prepare quorums share an honest replica), so the tie-break never matters.
    let mut best: BTreeMap<u64, (u64, Hash)> = BTreeMap::new();
    for p in view_changes.iter().flat_map(|vc| &vc.prepared) {
        if p.height() <= low {
            continue;
        }
        let candidate = (p.view(), p.block_hash());
        let entry = best.entry(p.height()).or_insert(candidate);
        if candidate > *entry {
            *entry = candidate;
        }
    }
    let mut reproposals = Vec::new();
    let mut h = low.saturating_add(1);
    while let Some((view, hash)) = best.get(&h) {
        if reproposals.len() >= max_entries || h == u64::MAX {
            break;
        }
        reproposals.push((h, *hash, *view));
        h += 1;
    }
    Plan {
        checkpoint: checkpoint.cloned(),
        reproposals,
    }
}

impl PbftEngine {
    /// Our view change for the current (target) view: the stable checkpoint and every
    /// prepared certificate above it.
    fn own_view_change(&self) -> ViewChange {
        let low = self.stable_height();
        let prepared = self
            .slots
            .range(low.saturating_add(1)..)
            .filter_map(|(_, s)| s.prepared.clone())
            .take(self.max_entries())
            .collect();
        ViewChange::sign(
            self.view,
            self.me(),
            self.stable.clone(),
            prepared,
            &self.config.key,
        )
    }

    /// Signs, records and broadcasts our view change for `self.view`, and arms the
    /// view-change timer: until a quorum asks for the view its expiry only repeats the
    /// message (PBFT retransmits; a replica alone in its view change must not race through
    /// views), after that it moves on to the next view.
    pub(super) fn send_view_change(&mut self) {
        let vc = self.own_view_change();
        self.broadcast(vc.encode());
        self.view_changes.insert(self.me(), vc);
        self.arm_view_change_timer();
        self.check_view_change_quorum();
    }

    /// (Re)starts the view-change timer of `self.view`: the base timeout, doubled for each
    /// view change since the last commit beyond the first.
    fn arm_view_change_timer(&mut self) {
        let id = TimerId::ViewChange { view: self.view };
        if let Some(old) = self.view_change_timer.replace(id)
            && old != id
        {
            self.out.push(Output::CancelTimer { id: old });
        }
        let shift = self.failed_views.saturating_sub(1).min(16);
        let after_ms = self
            .config
            .timing
            .view_change_timeout_ms
            .saturating_mul(1 << shift);
        self.out.push(Output::SetTimer { id, after_ms });
    }

    /// Our Round timer expired: complain, and re-arm the timer to complain again while the
    /// height stays stuck.
    pub(super) fn complain(&mut self) {
        let (target, height) = (self.view.saturating_add(1), self.next_height);
        let vote = self.sign_vote(Phase::Timeout, height, target, Hash::ZERO);
        self.broadcast(vote.encode());
        self.complaints.insert(self.me(), (target, height));
        self.arm_round_timer();
        self.check_complaints();
    }

    pub(super) fn on_complaint(&mut self, from: ValidatorIndex, vote: Vote) {
        // Only complaints about our view count; one from a replica behind us is stale.
        if vote.view != self.view.saturating_add(1)
            || vote.height < self.next_height
            || vote.block_hash != Hash::ZERO
            || self.complaints.get(&from) == Some(&(vote.view, vote.height))
        {
            return;
        }
        if vote.verify(&self.config.validators).is_err() {
            return self.bad_signature(from, &vote);
        }
        self.complaints.insert(from, (vote.view, vote.height));
        self.check_complaints();
    }

    /// f+1 replicas asking to leave our view (by a complaint at a height we have not
    /// committed, or by a view change) include an honest one whose timer expired: move on.
    pub(super) fn check_complaints(&mut self) {
        if !self.active {
            return;
        }
        let target = self.view.saturating_add(1);
        let mut askers: BTreeSet<ValidatorIndex> = self
            .complaints
            .iter()
            .filter(|(_, (v, h))| *v == target && *h >= self.next_height)
            .map(|(r, _)| *r)
            .collect();
        askers.extend(
            self.view_changes
                .values()
                .filter(|vc| vc.new_view == target)
                .map(|vc| vc.replica),
        );
        if askers.len() > self.config.validators.max_faulty() {
            self.start_view_change(target);
        }
    }

    /// The view-change timer expired.
    pub(super) fn on_view_change_timeout(&mut self, view: u64) {
        if self.active || view != self.view {
            return;
        }
        if self.view_change_quorum {
            self.start_view_change(self.view.saturating_add(1));
        } else {
            self.send_view_change();
        }
    }

    /// Moves to view `target` and asks for it (§4.4): stop accepting normal-case messages,
    /// persist, broadcast the view change.
    pub(super) fn start_view_change(&mut self, target: u64) {
        if target <= self.view {
            return;
        }
        self.disarm_round_timer();
        if let Some(id) = self.view_change_timer.take() {
            self.out.push(Output::CancelTimer { id });
        }
        self.view = target;
        self.active = false;
        self.view_change_quorum = false;
        self.requested = None;
        self.new_view = None;
        self.new_view_resent.clear();
        self.failed_views = self.failed_views.saturating_add(1);
        self.dirty = true;
        for slot in self.slots.values_mut() {
            slot.forget_views_before(target);
        }
        self.view_changes.retain(|_, vc| vc.new_view >= target);
        self.send_view_change();
    }

    /// With a quorum of view changes for the view we are moving to: restart the view-change
    /// timer, now to move on when it expires (PBFT starts it only at this point, so that the
    /// new leader gets the whole timeout), and if we lead the view, send the new view.
    fn check_view_change_quorum(&mut self) {
        if self.active || self.view_change_quorum {
            return;
        }
        let target = self.view;
        let count = self
            .view_changes
            .values()
            .filter(|vc| vc.new_view == target)
            .count();
        if count < self.quorum {
            return;
        }
        self.view_change_quorum = true;
        self.arm_view_change_timer();
        if self.leader(target) == self.me() {
            self.send_new_view();
        }
    }

    fn send_new_view(&mut self) {
        let target = self.view;
        let me = self.me();
        // Ours first, then the lowest-indexed others: exactly a quorum.
        let mut chosen: Vec<ViewChange> = self
            .view_changes
            .get(&me)
            .filter(|vc| vc.new_view == target)
            .cloned()
            .into_iter()
            .collect();
        chosen.extend(
            self.view_changes
                .values()
                .filter(|vc| vc.new_view == target && vc.replica != me)
                .take(self.quorum.saturating_sub(chosen.len()))
                .cloned(),
        );
        if chosen.len() < self.quorum {
            return;
        }
        let plan = plan(&chosen, self.max_entries());
        let pre_prepares = plan
            .reproposals
            .iter()
            .map(|(h, hash, _)| PrePrepare::sign(target, *h, *hash, &self.config.key))
            .collect();
        let nv = NewView {
            view: target,
            view_changes: chosen,
            pre_prepares,
        };
        self.broadcast(nv.encode());
        self.enter_view(nv, plan);
    }

    pub(super) fn on_view_change(&mut self, from: ValidatorIndex, vc: ViewChange) {
        if vc.replica != from {
            return;
        }
        // A replica asking for a view we are already in missed the new view: the leader
        // sends it again, once per replica and view.
        if vc.new_view < self.view || (vc.new_view == self.view && self.active) {
            if self.active
                && self.is_leader()
                && let Some(payload) = self.new_view.as_ref().map(NewView::encode)
                && self.new_view_resent.insert(from)
            {
                self.out.push(Output::Send { to: from, payload });
            }
            return;
        }
        // One view change per replica: its latest. Older or repeated ones are dropped
        // before any signature is checked.
        if self
            .view_changes
            .get(&from)
            .is_some_and(|old| old.new_view >= vc.new_view)
        {
            return;
        }
        if let Err(e) = vc.verify(&self.config.validators, self.max_entries()) {
            self.faulty(from, format!("invalid view change: {e}"));
            return;
        }
        self.view_changes.insert(from, vc);
        // §4.5.2: f+1 replicas asking for higher views include an honest one, so our view is
        // lost: join the smallest of them without waiting for our timer.
        let me = self.me();
        let higher: Vec<u64> = self
            .view_changes
            .values()
            .filter(|v| v.replica != me && v.new_view > self.view)
            .map(|v| v.new_view)
            .collect();
        if higher.len() > self.config.validators.max_faulty()
            && let Some(&target) = higher.iter().min()
        {
            self.start_view_change(target);
            return;
        }
        self.check_complaints();
        self.check_view_change_quorum();
    }

    pub(super) fn on_new_view(&mut self, from: ValidatorIndex, nv: NewView) {
        if nv.view < self.view || (nv.view == self.view && self.active) {
            return;
        }
        match self.check_new_view(&nv) {
            Ok(plan) => self.enter_view(nv, plan),
            Err(e) => self.faulty(from, format!("invalid new view for view {}: {e}", nv.view)),
        }
    }

    /// PBFT §4.4: a new view is valid if it holds a quorum of valid view changes for its view
    /// from distinct replicas, and its pre-prepares are exactly those they determine, signed
    /// by the view's leader.
    fn check_new_view(&self, nv: &NewView) -> Result<Plan, String> {
        let mut senders = BTreeSet::new();
        for vc in &nv.view_changes {
            if vc.new_view != nv.view {
                return Err(format!("a view change for view {}", vc.new_view));
            }
            if !senders.insert(vc.replica) {
                return Err(format!("two view changes of replica {}", vc.replica));
            }
            // One we already checked need not be checked again.
            if self.view_changes.get(&vc.replica) != Some(vc) {
                vc.verify(&self.config.validators, self.max_entries())?;
            }
        }
        if senders.len() < self.quorum {
            return Err(format!(
                "{} view changes, a quorum is {}",
                senders.len(),
                self.quorum
            ));
        }
        let plan = plan(&nv.view_changes, self.max_entries());
        if plan.reproposals.len() != nv.pre_prepares.len() {
            return Err(format!(
                "{} pre-prepares, the view changes determine {}",
                nv.pre_prepares.len(),
                plan.reproposals.len()
            ));
        }
        for ((h, hash, _), pp) in plan.reproposals.iter().zip(&nv.pre_prepares) {
            if pp.view != nv.view || pp.height != *h || pp.block_hash != *hash {
                return Err(format!(
                    "the pre-prepare for height {h} is not for block {hash} in view {}",
                    nv.view
                ));
            }
            pp.verify(&self.config.validators)?;
        }
        Ok(plan)
    }

    /// Enters the view of a valid new-view message (§4.4).
    fn enter_view(&mut self, nv: NewView, plan: Plan) {
        self.disarm_round_timer();
        if let Some(id) = self.view_change_timer.take() {
            self.out.push(Output::CancelTimer { id });
        }
        let view = nv.view;
        self.view = view;
        self.active = true;
        self.view_change_quorum = false;
        self.requested = None;
        self.dirty = true;
        self.view_changes.retain(|_, vc| vc.new_view > view);
        self.new_view_resent.clear();
        self.new_view = None;
        if let Some(cp) = plan.checkpoint.clone() {
            self.adopt_stable(cp);
        }
        let low = self.stable_height();
        let leader = self.leader(view);
        let me = self.me();
        let reproposed: BTreeMap<u64, Hash> = plan
            .reproposals
            .iter()
            .map(|(h, hash, _)| (*h, *hash))
            .collect();
        // Heights the new view does not carry over had no commit quorum anywhere (see
        // "Gaps"): forget what was prepared or committed-local there in older views.
        for (h, slot) in self.slots.iter_mut() {
            slot.forget_views_before(view);
            let keep = reproposed.get(h);
            if keep.is_none() {
                slot.prepared = None;
            }
            if slot.committed.as_ref().map(|c| c.block_hash).as_ref() != keep {
                slot.committed = None;
            }
        }
        for ((h, hash, proposed_in), pp) in plan.reproposals.iter().zip(nv.pre_prepares.iter()) {
            if *h <= low {
                continue;
            }
            // Below our next height we vote again only for the block we committed there (it
            // needs no verification): PBFT redoes the protocol for re-proposals, and the
            // replicas that have not committed the height need our votes.
            if *h < self.next_height {
                match self.decided.get(h) {
                    Some(d) if d == hash => {}
                    _ => continue,
                }
            }
            let decided = self.decided.get(h) == Some(hash);
            let slot = self.slots.entry(*h).or_default();
            slot.pre_prepare = Some(pp.clone());
            slot.voted = leader == me;
            if decided {
                slot.mark_verified(*hash);
            }
            if slot.is_verified(hash) {
                if leader != me {
                    self.send_prepare(*h);
                }
            } else if *h >= self.next_height {
                slot.verifying = Some((view, *hash));
                self.out.push(Output::VerifyProposal {
                    height: *h,
                    view,
                    block_hash: *hash,
                    proposer: self.config.validators.leader(*proposed_in),
                });
            }
        }
        if leader == me {
            self.new_view = Some(nv);
        }
        self.arm_round_timer();
    }
}
