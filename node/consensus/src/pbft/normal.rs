//! PBFT's normal case (Castro and Liskov, OSDI 1999, §4.2): pre-prepare, prepare, commit,
//! and the leader's window of heights in flight.

use v2v_primitives::Hash;

use super::PbftEngine;
use super::messages::PrePrepare;
use crate::{Certificate, Output, Phase, Proof, Proposal, ValidatorIndex, Vote};

impl PbftEngine {
    pub(super) fn on_pre_prepare(&mut self, from: ValidatorIndex, pp: PrePrepare) {
        // Only the leader of the current view proposes (§4.2); relays are not needed.
        if from != self.leader(pp.view) || !self.active || pp.view != self.view {
            return;
        }
        let h = pp.height;
        if h < self.next_height || h <= self.stable_height() {
            return;
        }
        if !self.in_log(h) {
            // Beyond our window: a valid one shows that the leader committed at least
            // h - window, which we have not.
            if pp.verify(&self.config.validators).is_ok() {
                let target = h.saturating_sub(self.config.window);
                self.request_sync(from, target);
            }
            return;
        }
        if let Some(existing) = self.slots.get(&h).and_then(|s| s.pre_prepare_in(pp.view)) {
            if existing.block_hash == pp.block_hash {
                return;
            }
            let first = existing.block_hash;
            // The first one stands; a second, validly signed one is proof of equivocation.
            if pp.verify(&self.config.validators).is_ok() {
                self.faulty(
                    from,
                    format!(
                        "two pre-prepares for height {h} in view {}: {first} and {}",
                        pp.view, pp.block_hash
                    ),
                );
            }
            return;
        }
        if let Err(e) = pp.verify(&self.config.validators) {
            self.faulty(from, e);
            return;
        }
        let (view, hash) = (pp.view, pp.block_hash);
        let slot = self.slots.entry(h).or_default();
        slot.pre_prepare = Some(pp);
        slot.voted = false;
        if slot.is_verified(&hash) {
            self.send_prepare(h);
        } else if slot.verifying != Some((view, hash)) {
            slot.verifying = Some((view, hash));
            self.out.push(Output::VerifyProposal {
                height: h,
                view,
                block_hash: hash,
                proposer: from,
            });
        }
    }

    /// Broadcasts our prepare for the current view's pre-prepare at `height` (followers only,
    /// once; the vote is persisted with the rest of the state before it leaves).
    pub(super) fn send_prepare(&mut self, height: u64) {
        let (view, me) = (self.view, self.me());
        if !self.active || self.leader(view) == me {
            return;
        }
        let Some(slot) = self.slots.get(&height) else {
            return;
        };
        let Some(pp) = slot.pre_prepare_in(view) else {
            return;
        };
        if slot.voted || !slot.is_verified(&pp.block_hash) {
            return;
        }
        let vote = self.sign_vote(Phase::Prepare, height, view, pp.block_hash);
        if let Some(slot) = self.slots.get_mut(&height) {
            slot.voted = true;
            slot.prepares.insert((view, me), vote.clone());
        }
        self.dirty = true;
        self.broadcast(vote.encode());
    }

    pub(super) fn on_proposal_ready(&mut self, p: Proposal) {
        if !self.active
            || !self.is_leader()
            || p.view != self.view
            || self.requested != Some(p.height)
        {
            return;
        }
        self.requested = None;
        let h = p.height;
        if self
            .slots
            .get(&h)
            .is_some_and(|s| s.pre_prepare_in(self.view).is_some())
        {
            return;
        }
        let pp = PrePrepare::sign(self.view, h, p.block_hash, &self.config.key);
        let slot = self.slots.entry(h).or_default();
        slot.pre_prepare = Some(pp.clone());
        slot.voted = true;
        slot.mark_verified(p.block_hash);
        self.dirty = true;
        self.broadcast(pp.encode());
    }

    pub(super) fn on_verified(&mut self, height: u64, view: u64, block_hash: Hash, valid: bool) {
        let Some(slot) = self.slots.get_mut(&height) else {
            return;
        };
        if slot.verifying == Some((view, block_hash)) {
            slot.verifying = None;
        }
        if !valid {
            // Not provable misbehaviour (the block may just be unavailable): no vote.
            return;
        }
        slot.mark_verified(block_hash);
        self.send_prepare(height);
    }

    /// Moves every height as far as it goes: prepared (in height order), commit vote,
    /// committed-local; then hands committed heights to the node in order.
    pub(super) fn progress(&mut self) {
        if !self.active {
            return;
        }
        let (view, me) = (self.view, self.me());
        let leader = self.leader(view);
        let heights: Vec<u64> = self.slots.keys().copied().collect();
        let mut sync = Vec::new();
        for h in heights {
            let below = h.saturating_sub(1);
            let below_ok = below < self.next_height
                || below <= self.stable_height()
                || self
                    .slots
                    .get(&below)
                    .is_some_and(|s| s.prepared_in(view) || s.committed.is_some());
            let quorum = self.quorum;
            let Some(slot) = self.slots.get_mut(&h) else {
                continue;
            };
            // Prepared (§4.2), in order: see "Gaps" in the module header.
            if below_ok && slot.try_prepare(view, leader, quorum) {
                self.dirty = true;
            }
            // Commit vote: once prepared in this view, for a block the node has.
            if let Some(hash) = slot.commit_to_send(view) {
                slot.commit_sent = Some((view, hash));
                self.dirty = true;
                let vote = Vote::sign_ed25519(Phase::Commit, h, view, hash, me, &self.config.key);
                slot.commits.insert((view, me), vote.clone());
                if self.config.validators.len() > 1 {
                    self.out.push(Output::Broadcast {
                        payload: vote.encode(),
                    });
                }
            }
            // Committed-local: a quorum of commit votes of this view, for a block the node
            // has; for one it has not and is not fetching, the others are ahead of us.
            if slot.committed.is_none()
                && let Some((hash, signers)) = slot.commit_quorum(view, quorum)
            {
                if slot.is_verified(&hash) {
                    slot.committed = Some(Certificate {
                        height: h,
                        view,
                        block_hash: hash,
                        proof: Proof::Signatures(signers),
                    });
                } else if slot.verifying.is_none() && h >= self.next_height {
                    let peer = signers.iter().map(|s| s.0).find(|v| *v != me);
                    sync.push((peer.unwrap_or(me), h));
                }
            }
        }
        for (peer, h) in sync {
            self.request_sync(peer, h);
        }
        self.output_commits();
    }

    pub(super) fn output_commits(&mut self) {
        let before = self.next_height;
        while let Some(cert) = self
            .slots
            .get(&self.next_height)
            .and_then(|s| s.committed.clone())
        {
            let (height, block_hash) = (cert.height, cert.block_hash);
            self.out.push(Output::Commit {
                height,
                block_hash,
                certificate: cert,
            });
            self.decide(height, block_hash);
            self.failed_views = 0;
            if height.is_multiple_of(self.config.checkpoint_interval) {
                self.send_checkpoint(height, block_hash);
            }
        }
        if self.next_height != before {
            self.arm_round_timer();
            // Progress: the leader may resend its new view again to replicas still asking.
            self.new_view_resent.clear();
        }
    }

    /// Leader: asks the node for the next block while fewer than `window` heights are in
    /// flight, one request at a time, each height on top of the previous pre-prepare.
    pub(super) fn maybe_propose(&mut self) {
        if !self.active || !self.is_leader() || self.requested.is_some() {
            return;
        }
        let view = self.view;
        let last = self
            .slots
            .range(self.next_height..)
            .filter(|(_, s)| s.pre_prepare_in(view).is_some())
            .map(|(h, _)| *h)
            .next_back();
        let h = last
            .map_or(self.next_height, |l| l.saturating_add(1))
            .max(self.next_height);
        if h <= self.stable_height()
            || h >= self.next_height.saturating_add(self.config.window)
            || h > self.high_water()
        {
            return;
        }
        self.requested = Some(h);
        self.out.push(Output::RequestProposal { height: h, view });
    }
}
