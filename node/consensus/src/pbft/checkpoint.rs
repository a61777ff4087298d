//! PBFT's checkpoints and garbage collection (Castro and Liskov, OSDI 1999, §4.3), and
//! catching up with the others (`Sync` / `Synced`).

use std::collections::BTreeMap;

use v2v_primitives::Hash;

use super::PbftEngine;
use super::messages::CheckpointProof;
use crate::{Phase, ValidatorIndex, Vote};

impl PbftEngine {
    pub(super) fn on_checkpoint_vote(&mut self, from: ValidatorIndex, vote: Vote) {
        let k = self.config.checkpoint_interval;
        if vote.view != 0 || !vote.height.is_multiple_of(k) || vote.height <= self.stable_height() {
            return;
        }
        let existing = self
            .checkpoint_votes
            .get(&vote.height)
            .and_then(|m| m.get(&from));
        if existing == Some(&vote) {
            return;
        }
        if vote.verify(&self.config.validators).is_err() {
            return self.bad_signature(from, &vote);
        }
        if let Some(first) = existing {
            let reason = format!(
                "two checkpoint votes for height {}: {} and {}",
                vote.height, first.block_hash, vote.block_hash
            );
            self.faulty(from, reason);
            return;
        }
        let height = vote.height;
        self.checkpoint_votes
            .entry(height)
            .or_default()
            .insert(from, vote);
        // Bound what one voter can make us keep: an honest replica has at most L / k + 1
        // unstable checkpoints; beyond that keep its highest (it is ahead, and those are
        // the ones that can tell us to sync).
        let cap = usize::try_from(self.log_size / k + 2).unwrap_or(usize::MAX);
        let mine: Vec<u64> = self
            .checkpoint_votes
            .iter()
            .filter(|(_, m)| m.contains_key(&from))
            .map(|(h, _)| *h)
            .collect();
        if mine.len() > cap {
            for h in &mine[..mine.len() - cap] {
                if let Some(m) = self.checkpoint_votes.get_mut(h) {
                    m.remove(&from);
                    if m.is_empty() {
                        self.checkpoint_votes.remove(h);
                    }
                }
            }
        }
        self.check_stable(height);
    }

    /// A quorum of matching checkpoint votes at `height` makes it stable (§4.3). Short of
    /// a quorum, f + 1 matching votes at or above our next height show that at least one
    /// correct replica committed there: we are behind and sync. This catches a replica up
    /// when the quorum that moves on without it holds only f + 1 correct replicas (the rest
    /// byzantine or silent towards it), so it never sees a quorum of anything.
    pub(super) fn check_stable(&mut self, height: u64) {
        let Some(votes) = self.checkpoint_votes.get(&height) else {
            return;
        };
        let mut by_hash: BTreeMap<Hash, Vec<Vote>> = BTreeMap::new();
        for v in votes.values() {
            by_hash.entry(v.block_hash).or_default().push(v.clone());
        }
        let (block_hash, mut votes) = match by_hash.into_iter().max_by_key(|(_, v)| v.len()) {
            Some((hash, votes)) if votes.len() >= self.quorum => (hash, votes),
            Some((_, votes)) => {
                let f = self.config.validators.max_faulty();
                let me = self.me();
                let others: Vec<ValidatorIndex> =
                    votes.iter().map(|v| v.voter).filter(|v| *v != me).collect();
                if others.len() > f && height >= self.next_height {
                    self.request_sync(others[0], height);
                }
                return;
            }
            None => return,
        };
        votes.sort_by_key(|v| v.voter);
        votes.truncate(self.quorum);
        self.adopt_stable(CheckpointProof {
            height,
            block_hash,
            votes,
        });
    }

    /// Makes `proof` the stable checkpoint and garbage-collects the log at and below it; if
    /// we have not reached it, the others are ahead: sync.
    pub(super) fn adopt_stable(&mut self, proof: CheckpointProof) {
        if proof.height <= self.stable_height() {
            return;
        }
        let (height, peer) = (proof.height, self.checkpoint_peer(&proof));
        self.stable = Some(proof);
        self.dirty = true;
        self.slots = self.slots.split_off(&height.saturating_add(1));
        self.prune_decided();
        self.checkpoint_votes = self.checkpoint_votes.split_off(&height.saturating_add(1));
        self.request_sync(peer, height);
    }

    pub(super) fn send_checkpoint(&mut self, height: u64, block_hash: Hash) {
        if height <= self.stable_height() {
            return;
        }
        let (vote, me) = (
            self.sign_vote(Phase::Checkpoint, height, 0, block_hash),
            self.me(),
        );
        self.checkpoint_votes
            .entry(height)
            .or_default()
            .insert(me, vote.clone());
        self.broadcast(vote.encode());
        self.check_stable(height);
    }

    /// A commit vote of a view below ours (see "Catching up" in the module header).
    pub(super) fn on_old_commit(&mut self, from: ValidatorIndex, vote: Vote) {
        let h = vote.height;
        if h < self.next_height || h <= self.stable_height() || h >= self.accept_end() {
            return;
        }
        let known = self.old_commits.get(&h).and_then(|m| m.get(&from));
        if known.is_some_and(|k| k.view >= vote.view) {
            return;
        }
        if vote.verify(&self.config.validators).is_err() {
            return self.bad_signature(from, &vote);
        }
        let me = self.me();
        let votes = self.old_commits.entry(h).or_default();
        votes.insert(from, vote.clone());
        let signers: Vec<ValidatorIndex> = votes
            .values()
            .filter(|v| v.view == vote.view && v.block_hash == vote.block_hash)
            .map(|v| v.voter)
            .collect();
        if signers.len() >= self.quorum {
            let peer = signers.iter().copied().find(|v| *v != me).unwrap_or(me);
            self.request_sync(peer, h);
        }
    }

    pub(super) fn on_synced(&mut self, height: u64, block_hash: Hash) {
        if height < self.next_height {
            return;
        }
        // The node verified the certificate and the execution; we only move on.
        self.decide(height, block_hash);
        self.log_floor = self.log_floor.max(height);
        if let Some(slot) = self.slots.get_mut(&height) {
            slot.mark_verified(block_hash);
        }
        if self.requested.is_some_and(|r| r < self.next_height) {
            self.requested = None;
        }
        if height.is_multiple_of(self.config.checkpoint_interval) {
            self.send_checkpoint(height, block_hash);
        }
        if self.active {
            self.arm_round_timer();
        }
    }

    /// Records the block finalized at `height` (the next height) and moves on.
    pub(super) fn decide(&mut self, height: u64, block_hash: Hash) {
        self.next_height = height.saturating_add(1);
        self.decided.insert(height, block_hash);
        self.prune_decided();
        self.dirty = true;
    }

    /// Keeps the decided digests above the stable checkpoint and within one log size of the
    /// next height (a new view never re-proposes more than that below us).
    pub(super) fn prune_decided(&mut self) {
        let low = self
            .stable_height()
            .max(self.next_height.saturating_sub(self.log_size));
        self.decided = self.decided.split_off(&low.saturating_add(1));
        self.old_commits = self.old_commits.split_off(&self.next_height);
    }

    pub(super) fn checkpoint_peer(&self, cp: &CheckpointProof) -> ValidatorIndex {
        cp.votes
            .iter()
            .map(|v| v.voter)
            .find(|v| *v != self.me())
            .unwrap_or(self.me())
    }
}
