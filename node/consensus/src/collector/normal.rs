//! The normal case (report §3.3.3; SBFT §IV): proposals, shares, the collector's
//! combination, prepare and commit certificates.

use v2v_primitives::Hash;

use super::Core;
use super::messages::{Message, PrepareCertificate, SignedProposal};
use super::persist::Signed;
use super::shares::Collector;
use crate::{
    Certificate, Output, Phase, Proof, TimerId, ValidatorIndex, Vote, VoteSignature,
    commit_message, vote_message,
};

impl Core {
    // ---- normal case: replica side ----

    pub(super) fn on_proposal(&mut self, from: ValidatorIndex, p: SignedProposal) {
        if from != self.leader_of(p.view) || !self.active || p.view != self.view {
            return;
        }
        if p.height < self.next_height.max(self.view_start_height) {
            return;
        }
        if !p.verify(&self.cfg.validators) {
            return;
        }
        if p.height > self.next_height {
            self.future_proposal = Some(p);
            return;
        }
        self.accept_proposal(p.block_hash, from);
    }

    /// The leader's (signed) proposal for (next height, view).
    pub(super) fn accept_proposal(&mut self, block_hash: Hash, source: ValidatorIndex) {
        match self.round.proposal {
            Some((known, _)) if known != block_hash => {
                self.out.push(Output::Faulty {
                    validator: self.leader(),
                    reason: format!(
                        "signed two proposals at height {} in view {}",
                        self.next_height, self.view
                    ),
                });
                return;
            }
            Some(_) => {}
            None => self.round.proposal = Some((block_hash, source)),
        }
        if self.verified.contains(&block_hash) {
            self.try_vote();
        } else {
            self.request_verify(block_hash, source);
        }
    }

    /// Sends the prepare (and fast) share once the proposal is verified.
    pub(super) fn try_vote(&mut self) {
        let Some((hash, _)) = self.round.proposal else {
            return;
        };
        if !self.active
            || self.round.voted
            || !self.verified.contains(&hash)
            || self.next_height < self.view_start_height
        {
            return;
        }
        if !self.record_signature(hash) {
            return;
        }
        self.cast_shares(hash);
        if self.is_leader() {
            self.collect();
        }
    }

    /// Records (and persists) that this replica signs `hash` at (next height, view), unless
    /// it signed or locked another block there.
    pub(super) fn record_signature(&mut self, block_hash: Hash) -> bool {
        let (h, v) = (self.next_height, self.view);
        if self
            .signed
            .is_some_and(|s| s.height == h && s.view == v && s.block_hash != block_hash)
        {
            return false;
        }
        if self
            .lock
            .as_ref()
            .is_some_and(|l| l.height == h && l.view >= v && l.block_hash != block_hash)
        {
            return false;
        }
        self.signed = Some(Signed {
            height: h,
            view: v,
            block_hash,
        });
        self.round.voted = true;
        self.persist();
        true
    }

    /// The prepare share (slow key), and in SBFT the fast-path share (fast key, over the
    /// commit message), to the collector; the collector keeps its own.
    pub(super) fn cast_shares(&mut self, block_hash: Hash) {
        let (h, v, me) = (self.next_height, self.view, self.index());
        let prepare = Vote::sign_share(
            Phase::Prepare,
            h,
            v,
            block_hash,
            me,
            &self.slow_share,
            false,
        );
        let fast = self
            .fast
            .as_ref()
            .map(|(_, share)| Vote::sign_share(Phase::Commit, h, v, block_hash, me, share, true));
        if self.is_leader() {
            if let Some(c) = self.collector.as_mut()
                && c.is_for(h, v, &block_hash)
            {
                if let VoteSignature::SlowShare(s) = prepare.signature {
                    c.prepare.add(me, s);
                }
                if let Some(VoteSignature::FastShare(s)) = fast.map(|f| f.signature) {
                    c.fast.add(me, s);
                }
            }
        } else {
            let message = match fast {
                Some(fast) => Message::Shares(vec![fast, prepare]),
                None => Message::Vote(prepare),
            };
            let leader = self.leader();
            self.send(leader, message);
        }
    }

    pub(super) fn on_prepare_certificate(&mut self, from: ValidatorIndex, pc: PrepareCertificate) {
        if pc.height > self.next_height {
            // Honest replicas share only at their next height: a quorum's prepare shares at
            // h prove that h - 1 is final.
            if pc.height - 1 > self.sync_requested && pc.verify(&self.cfg.validators) {
                self.request_sync(from, pc.height - 1);
                if pc.view > self.view {
                    self.enter_view(pc.view, pc.height);
                    self.begin_height();
                }
            }
            return;
        }
        if pc.height != self.next_height || pc.view < self.view {
            return;
        }
        if self.active && pc.view == self.view && self.lock.as_ref() == Some(&pc) {
            return;
        }
        if !pc.verify(&self.cfg.validators) {
            return;
        }
        if pc.view > self.view || !self.active {
            // A quorum signed in that view, so its new-view was valid: join it.
            self.enter_view(pc.view, pc.height);
            self.begin_height();
        }
        let (hash, source) = (pc.block_hash, self.leader_of(pc.view));
        self.lock_on(pc);
        if !self.verified.contains(&hash) {
            self.request_verify(hash, source);
        }
    }

    /// Locks on a prepare certificate of the current view (persisted before the commit share
    /// goes out) and sends the commit share if the block is verified.
    pub(super) fn lock_on(&mut self, pc: PrepareCertificate) {
        let higher = self
            .lock
            .as_ref()
            .is_none_or(|l| l.height != pc.height || l.view < pc.view);
        if higher {
            self.lock = Some(pc);
            self.persist();
        }
        self.try_commit_vote();
    }

    pub(super) fn try_commit_vote(&mut self) {
        let Some(lock) = &self.lock else {
            return;
        };
        let (h, v, hash) = (lock.height, lock.view, lock.block_hash);
        if !self.active
            || h != self.next_height
            || v != self.view
            || self.round.commit_voted
            || !self.verified.contains(&hash)
        {
            return;
        }
        self.round.commit_voted = true;
        let me = self.index();
        let vote = Vote::sign_share(Phase::Commit, h, v, hash, me, &self.slow_share, false);
        if self.is_leader() {
            if let (Some(c), VoteSignature::SlowShare(s)) =
                (self.collector.as_mut(), vote.signature)
                && c.is_for(h, v, &hash)
            {
                c.commit.add(me, s);
            }
        } else {
            let leader = self.leader();
            self.send(leader, Message::Vote(vote));
        }
    }

    pub(super) fn on_commit_certificate(&mut self, from: ValidatorIndex, c: Certificate) {
        if c.height < self.next_height {
            return;
        }
        if c.height == self.next_height {
            if self.pending_commit.is_some() {
                return;
            }
            if c.verify(&self.cfg.validators, c.height, &c.block_hash)
                .is_err()
            {
                return;
            }
            self.commit_when_verified(c, from);
            return;
        }
        if c.height <= self.sync_requested
            || c.verify(&self.cfg.validators, c.height, &c.block_hash)
                .is_err()
        {
            return;
        }
        self.request_sync(from, c.height);
        if c.view > self.view {
            self.enter_view(c.view, c.height.saturating_add(1));
            self.begin_height();
        }
    }

    // ---- normal case: collector side ----

    /// The leader's own proposal at (next height, view).
    pub(super) fn propose(&mut self, block_hash: Hash) {
        let (h, v) = (self.next_height, self.view);
        self.round.proposal = Some((block_hash, self.index()));
        self.collector = Some(Collector::new(h, v, block_hash, self.fast.is_none()));
        if !self.record_signature(block_hash) {
            return;
        }
        let proposal = SignedProposal::sign(h, v, block_hash, &self.cfg.key);
        self.broadcast(Message::Proposal(proposal));
        self.start_fast_timer();
        self.cast_shares(block_hash);
        self.collect();
    }

    pub(super) fn start_fast_timer(&mut self) {
        if self.fast.is_some() {
            self.out.push(Output::SetTimer {
                id: TimerId::FastPath {
                    height: self.next_height,
                    view: self.view,
                },
                after_ms: self.cfg.timing.fast_path_timeout_ms,
            });
        }
    }

    pub(super) fn on_share(&mut self, from: ValidatorIndex, vote: Vote) {
        if vote.voter != from {
            return;
        }
        let fast_on = self.fast.is_some();
        let Some(c) = self.collector.as_mut() else {
            return;
        };
        if c.done || !c.is_for(vote.height, vote.view, &vote.block_hash) {
            return;
        }
        match (vote.phase, vote.signature) {
            (Phase::Prepare, VoteSignature::SlowShare(s)) => c.prepare.add(from, s),
            (Phase::Commit, VoteSignature::SlowShare(s)) => c.commit.add(from, s),
            (Phase::Commit, VoteSignature::FastShare(s)) if fast_on => c.fast.add(from, s),
            _ => {}
        }
    }

    pub(super) fn report_bad(&mut self, bad: Vec<u32>, what: &str, height: u64, view: u64) {
        for validator in bad {
            self.out.push(Output::Faulty {
                validator,
                reason: format!("invalid {what} share at height {height} in view {view}"),
            });
        }
    }

    /// Drives the collector as far as its shares allow.
    pub(super) fn collect(&mut self) {
        loop {
            if !self.active {
                return;
            }
            let Some(mut c) = self.collector.take() else {
                return;
            };
            if c.done || c.height != self.next_height || c.view != self.view {
                self.collector = Some(c);
                return;
            }
            let (h, v, hash) = (c.height, c.view, c.block_hash);
            if let Some((fast_public, _)) = &self.fast
                && !c.slow_path
            {
                // SBFT fast path (Gueta et al. §IV).
                let (signature, bad) = c.fast.combine(fast_public, &commit_message(h, v, &hash));
                let reachable = self.cfg.validators.len() - c.fast.bad_count() >= self.fast_quorum;
                if signature.is_none() && reachable {
                    self.collector = Some(c);
                    self.report_bad(bad, "fast-path", h, v);
                    return; // wait for more fast shares, or the FastPath timer
                }
                if signature.is_none() {
                    // Too many invalid shares for n - c: the slow path, at once.
                    c.slow_path = true;
                    self.out.push(Output::CancelTimer {
                        id: TimerId::FastPath { height: h, view: v },
                    });
                }
                self.collector = Some(c);
                self.report_bad(bad, "fast-path", h, v);
                if let Some(signature) = signature {
                    self.finish(Certificate {
                        height: h,
                        view: v,
                        block_hash: hash,
                        proof: Proof::Threshold {
                            fast: true,
                            signature,
                        },
                    });
                    return;
                }
                continue;
            }
            if c.prepared.is_none() {
                let (signature, bad) = c.prepare.combine(
                    &self.slow_public,
                    &vote_message(Phase::Prepare, h, v, &hash),
                );
                let pc = signature.map(|signature| PrepareCertificate {
                    height: h,
                    view: v,
                    block_hash: hash,
                    signature,
                });
                c.prepared = pc.clone();
                self.collector = Some(c);
                self.report_bad(bad, "prepare", h, v);
                let Some(pc) = pc else {
                    return;
                };
                self.broadcast(Message::PrepareCertificate(pc.clone()));
                self.lock_on(pc);
                continue;
            }
            let (signature, bad) = c
                .commit
                .combine(&self.slow_public, &commit_message(h, v, &hash));
            self.collector = Some(c);
            self.report_bad(bad, "commit", h, v);
            if let Some(signature) = signature {
                self.finish(Certificate {
                    height: h,
                    view: v,
                    block_hash: hash,
                    proof: Proof::Threshold {
                        fast: false,
                        signature,
                    },
                });
            }
            return;
        }
    }

    /// The collector made the finality certificate: everybody gets it, and the leader commits
    /// (once its node has the block: a re-proposed one may still be under verification).
    pub(super) fn finish(&mut self, certificate: Certificate) {
        if let Some(c) = self.collector.as_mut() {
            c.done = true;
            if self.fast.is_some() && !c.slow_path {
                self.out.push(Output::CancelTimer {
                    id: TimerId::FastPath {
                        height: c.height,
                        view: c.view,
                    },
                });
            }
        }
        self.broadcast(Message::CommitCertificate(certificate.clone()));
        let me = self.index();
        self.commit_when_verified(certificate, me);
    }
}
