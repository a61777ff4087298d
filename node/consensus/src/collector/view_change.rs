//! Linear view change (PBFT §4.4 with the new leader as collector; SBFT §V for the fast
//! path).
//!
//! **Messages.** On a `Round` timeout a replica moves to view v + 1 and sends one
//! [`ViewChange`] to the new leader only (O(n) messages): its next height h (with the commit
//! certificate of h - 1, so the claim can be checked), its highest lock at h (a prepare
//! certificate, one BLS signature) and, in SBFT, the highest-view fast-path share it signed at
//! h (inside the ed25519-signed view change; the share itself is not needed). From then on
//! it takes no part in views below v + 1. If the view change does not complete in time it
//! moves on to v + 2, with the timeout doubled; if blocks were finalized meanwhile (it saw
//! their certificates) it only repeats its request. The new leader, with view changes from
//! a quorum Q (all for view v + 1, none claiming a height above its own next height H), broadcasts
//! a [`NewView`]: Q as justification and the proposal for H that [`choose`] dictates, built
//! fresh if [`choose`] leaves it free. Replicas recompute [`choose`] from Q and accept only
//! that; a replica that receives a valid new-view, or a valid certificate, of a later view
//! jumps to it (in the linear design replicas do not see each other's view changes; the
//! leader joins a view when f + 1 others asked for it, PBFT §4.5.2).
//!
//! **Catching up.** In the linear design only the leader sends a replica anything, so a
//! byzantine leader can starve one correct replica while a quorum carries on without it;
//! that replica times out alone and its view changes go nowhere. Whoever receives a view
//! change from a replica behind it answers with its latest commit certificate (O(1) per view
//! change): verifiable evidence, on which the replica syncs. While blocks keep being
//! finalized it repeats its view change instead of moving to ever higher views, so it keeps
//! catching up, one view-change timeout behind.
//!
//! **The rule** ([`choose`], at height H, over the view changes of Q at H):
//! 1. L = the highest-view lock (prepare certificate) in Q, verified.
//! 2. SBFT: scanning views above L's from the top, the first value reported as fast-signed,
//!    at that view or above, by at least T = f + (n - F) + 1 senders (F = the fast quorum;
//!    T = f + c + 1 when F = n - c) is re-proposed.
//! 3. Otherwise L's block; otherwise anything (a fresh block).
//!
//! A replica also refuses a new-view whose block differs from its own lock at H when its
//! lock is from a higher view than the one that decided the rule. The rule alone is safe
//! (below); this check is defence in depth, at a liveness cost: a replica whose lock the
//! leader's Q missed refuses that view, and the next view change (with another Q) follows.
//!
//! **Why this is safe.** Say block X was finalized at height H in view v0 and Q justifies
//! view w > v0. By induction on w, every honest prepare and fast-path share at H in views
//! v0 + 1..w was for X, and every prepare certificate at H of a view >= v0 is X's (at v0
//! itself because two quorums of one view share an honest replica, which signs once).
//! - *Height.* The finality certificate needed a quorum C of shares. |Q ∩ C| >= 2q - n >=
//!   f + 1 (`ValidatorSet::quorum`), so an honest member of Q signed for X before its view
//!   change; its claimed next height is H (then it reports its lock at H) or above H. The
//!   new-view is invalid if any claim exceeds its height, so the new leader proposes at H
//!   or above, and above H nothing was finalized in a view before w (the same argument
//!   for any finalized height). Replicas never vote in view w below the new-view's height.
//! - *Slow path.* C signed commit shares, each after locking on X's prepare certificate of
//!   v0. The honest member of Q ∩ C reports a lock of view >= v0, so L has view >= v0 and is
//!   X's; a fast-path value beats L only from a view above L's, where (point 2) only X can
//!   reach T. The new leader re-proposes X.
//! - *Fast path* (no lock needed: nobody may have locked). At least F validators fast-signed
//!   X, so at least F - f honest ones, and at most n - F honest ones signed anything else at
//!   H in a view >= v0 (only at v0 itself, under an equivocating leader). Each honest
//!   reporter's highest fast share at H is X's or from a view below v0. So at views >= v0,
//!   a value Y != X has at most f + (n - F) reports < T, while X has at least
//!   |Q ∩ fast signers| - f >= |Q| + F - n - f reports. This is >= T when
//!   |Q| >= 2n + 2f + 1 - 2F (the new-view quorum here):
//!   - n = 3f + 2c + 1, F = n - c: |Q| >= 2f + 2c + 1 = n - f; |Q ∩ signers| >= 2f + c + 1,
//!     of which >= f + c + 1 = T honest; Y has <= f + c.
//!   - n = 3f + 1, c = 0, F = n: |Q| >= 2f + 1 = the quorum; all of Q signed X, >= f + 1 = T
//!     honest; Y has <= f.
//!
//!   Scanning from the top, X reaches T at the latest at v0 and Y never does, so the rule
//!   picks X whenever X's reports are above L's view; when they are not, L's view is >= v0 and
//!   L is X's. Either way the new leader re-proposes X, and replicas, recomputing the rule,
//!   accept nothing else.
//!
//! With c > 0 the new-view needs n - f view changes: every honest replica (SBFT §V). The
//! engine refuses (`ConfigError`) a c for which n < 3f + 2c + 1.

use std::collections::BTreeMap;

use v2v_primitives::Hash;

use super::Core;
use super::Round;
use super::messages::{FastReport, Message, NewView, SignedProposal, ViewChange};
use super::shares::Collector;
use crate::{Output, TimerId, ValidatorIndex};

/// The view-change timeout doubles with each consecutive failed view change, up to
/// 2^8 times the configured one (about 17 minutes with the 4 s default).
const MAX_DOUBLINGS: u32 = 8;

/// What [`choose`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Choice {
    /// The block the new leader must propose, with the view that decided it; `None`: free.
    pub value: Option<(Hash, u64)>,
    /// The view change holding the highest lock, whose certificate must verify.
    pub lock_index: Option<usize>,
    /// The view that decided the value: a replica locked on another block in a higher view
    /// refuses the new-view.
    pub decisive_view: Option<u64>,
}

/// The new leader's rule (module docs), over a justification for height `height`.
/// `fast_threshold` is T for SBFT, `None` for Linear BFT.
pub(crate) fn choose(
    view_changes: &[ViewChange],
    height: u64,
    fast_threshold: Option<usize>,
) -> Choice {
    let mut lock_index: Option<usize> = None;
    let mut lock_view: Option<u64> = None;
    for (i, vc) in view_changes.iter().enumerate() {
        if vc.height != height {
            continue;
        }
        if let Some(l) = &vc.lock
            && lock_view.is_none_or(|v| l.view > v)
        {
            lock_index = Some(i);
            lock_view = Some(l.view);
        }
    }
    if let Some(t) = fast_threshold {
        let mut reports: Vec<(u64, Hash)> = view_changes
            .iter()
            .filter(|vc| vc.height == height)
            .filter_map(|vc| vc.fast)
            .filter(|f| lock_view.is_none_or(|lv| f.view > lv))
            .map(|f| (f.view, f.block_hash))
            .collect();
        reports.sort_by_key(|r| std::cmp::Reverse(r.0));
        let mut counts: BTreeMap<Hash, usize> = BTreeMap::new();
        let mut i = 0;
        while i < reports.len() {
            let view = reports[i].0;
            while i < reports.len() && reports[i].0 == view {
                *counts.entry(reports[i].1).or_default() += 1;
                i += 1;
            }
            // Most reports, then the smallest hash: deterministic. Only a value that may
            // have been fast-committed can reach T (module docs), so ties do not matter.
            if let Some((hash, _)) = counts
                .iter()
                .filter(|(_, c)| **c >= t)
                .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            {
                return Choice {
                    value: Some((*hash, view)),
                    lock_index,
                    decisive_view: Some(view),
                };
            }
        }
    }
    match lock_index.and_then(|i| view_changes[i].lock.as_ref()) {
        Some(l) => Choice {
            value: Some((l.block_hash, l.view)),
            lock_index,
            decisive_view: Some(l.view),
        },
        None => Choice {
            value: None,
            lock_index: None,
            decisive_view: None,
        },
    }
}

impl Core {
    fn fast_threshold(&self) -> Option<usize> {
        self.fast.as_ref().map(|_| self.fast_report_threshold)
    }

    fn view_change_timeout(&self) -> u64 {
        self.cfg
            .timing
            .view_change_timeout_ms
            .saturating_mul(1u64 << self.failed_view_changes.min(MAX_DOUBLINGS))
    }

    /// This replica's view-change message for the current view.
    fn own_view_change(&self) -> ViewChange {
        let (h, v) = (self.next_height, self.view);
        let lock = self.lock.clone().filter(|l| l.height == h && l.view < v);
        let fast = match (&self.fast, self.signed) {
            (Some(_), Some(s)) if s.height == h && s.view < v => Some(FastReport {
                view: s.view,
                block_hash: s.block_hash,
            }),
            _ => None,
        };
        let committed = self
            .last_certificate
            .clone()
            .filter(|c| c.height.checked_add(1) == Some(h));
        ViewChange::sign(v, self.index(), h, committed, lock, fast, &self.cfg.key)
    }

    /// Leaves the current view for `view` (PBFT §4.4): no part in lower views from now on.
    pub(super) fn start_view_change(&mut self, view: u64) {
        self.cancel_round_timer();
        if !self.active {
            self.out.push(Output::CancelTimer {
                id: TimerId::ViewChange { view: self.view },
            });
        }
        self.view = view;
        self.active = false;
        self.round = Round::default();
        self.collector = None;
        self.awaiting_fresh = None;
        self.future_proposal = None;
        self.view_changes.retain(|_, vc| vc.view >= view);
        self.send_view_change();
    }

    /// Persists the view change (it is a promise), sends it to the new leader and sets the
    /// view-change timer.
    pub(super) fn send_view_change(&mut self) {
        self.progress_since_view_change = false;
        self.persist();
        self.out.push(Output::SetTimer {
            id: TimerId::ViewChange { view: self.view },
            after_ms: self.view_change_timeout(),
        });
        if self.is_leader() {
            self.try_new_view();
        } else {
            let vc = self.own_view_change();
            let leader = self.leader();
            self.send(leader, Message::ViewChange(vc));
        }
    }

    pub(super) fn on_view_change(&mut self, from: ValidatorIndex, vc: ViewChange) {
        let me = self.index();
        if vc.sender != from || self.leader_of(vc.view) != me {
            return;
        }
        let known = self
            .view_changes
            .get(&from)
            .is_some_and(|old| (old.view, old.height) >= (vc.view, vc.height));
        if !known && !vc.verify_signature(&self.cfg.validators) {
            return;
        }
        // The sender is behind (a leader that starves it, or it left the view alone): our
        // latest certificate is verifiable evidence that lets it sync. O(1) per view change.
        if vc.height < self.next_height
            && let Some(c) = self.last_certificate.clone()
        {
            self.send(from, Message::CommitCertificate(c));
        }
        if known || vc.view < self.view || (vc.view == self.view && self.active) {
            return;
        }
        if let Err(reason) = vc.check_contents(&self.cfg.validators) {
            self.out.push(Output::Faulty {
                validator: from,
                reason: reason.to_string(),
            });
            return;
        }
        // The sender finalized blocks this leader lacks: catch up before proposing.
        if let Some(c) = &vc.committed
            && c.height >= self.next_height
        {
            if c.height == self.next_height {
                if self.pending_commit.is_none() {
                    self.commit_when_verified(c.clone(), from);
                }
            } else {
                self.request_sync(from, c.height);
            }
        }
        let view = vc.view;
        self.view_changes.insert(from, vc);
        let others = self
            .view_changes
            .values()
            .filter(|v| v.view == view && v.sender != me)
            .count();
        if view > self.view && others > self.cfg.validators.max_faulty() {
            // f + 1 replicas asked for `view`: at least one honest one timed out (PBFT
            // §4.5.2). Join, which also tries to form the new view.
            self.start_view_change(view);
        } else {
            self.try_new_view();
        }
    }

    /// New leader: with a quorum of view changes, decide the proposal and send the new-view
    /// (or ask the node for a fresh block first).
    pub(super) fn try_new_view(&mut self) {
        if self.active || !self.is_leader() || self.awaiting_fresh.is_some() {
            return;
        }
        let own = self.own_view_change();
        self.view_changes.insert(self.index(), own);
        let (view, height) = (self.view, self.next_height);
        let justification: Vec<ViewChange> = self
            .view_changes
            .values()
            .filter(|vc| vc.view == view && vc.height <= height)
            .cloned()
            .collect();
        if justification.len() < self.view_change_quorum {
            return;
        }
        match choose(&justification, height, self.fast_threshold()).value {
            Some((hash, origin_view)) => {
                let origin = self.leader_of(origin_view);
                self.send_new_view(justification, hash, origin);
            }
            None => {
                self.awaiting_fresh = Some(justification);
                self.out.push(Output::RequestProposal { height, view });
            }
        }
    }

    /// New leader: enter the view and broadcast the new-view proposing `block_hash` at the
    /// next height; `source` is where the node can fetch a re-proposed block.
    pub(super) fn send_new_view(
        &mut self,
        view_changes: Vec<ViewChange>,
        block_hash: Hash,
        source: ValidatorIndex,
    ) {
        let (h, v) = (self.next_height, self.view);
        self.out.push(Output::CancelTimer {
            id: TimerId::ViewChange { view: v },
        });
        self.active = true;
        self.view_start_height = h;
        self.awaiting_fresh = None;
        self.view_changes.retain(|_, vc| vc.view > v);
        self.round = Round {
            proposal: Some((block_hash, source)),
            ..Round::default()
        };
        self.collector = Some(Collector::new(h, v, block_hash, self.fast.is_none()));
        self.restart_round_timer();
        let verified = self.verified.contains(&block_hash);
        if verified {
            if !self.record_signature(block_hash) {
                return;
            }
        } else {
            // The leader signs its shares once its node has checked the re-proposed block;
            // the view itself is persisted now.
            self.persist();
        }
        let parent = self
            .last_certificate
            .clone()
            .filter(|c| c.height.checked_add(1) == Some(h));
        self.broadcast(Message::NewView(NewView {
            proposal: SignedProposal::sign(h, v, block_hash, &self.cfg.key),
            parent,
            view_changes,
        }));
        self.start_fast_timer();
        if verified {
            self.cast_shares(block_hash);
            self.collect();
        } else {
            self.request_verify(block_hash, source);
        }
    }

    /// Checks a new-view's justification; returns the rule's decision.
    fn check_justification(&self, nv: &NewView) -> Option<Choice> {
        let (h, w) = (nv.proposal.height, nv.proposal.view);
        let mut previous: Option<ValidatorIndex> = None;
        for vc in &nv.view_changes {
            if previous.is_some_and(|p| vc.sender <= p)
                || vc.view != w
                || vc.height > h
                || vc.well_formed().is_err()
                || !vc.verify_signature(&self.cfg.validators)
            {
                return None;
            }
            previous = Some(vc.sender);
        }
        if nv.view_changes.len() < self.view_change_quorum {
            return None;
        }
        let choice = choose(&nv.view_changes, h, self.fast_threshold());
        if let Some(i) = choice.lock_index
            && !nv.view_changes[i]
                .lock
                .as_ref()
                .is_some_and(|l| l.verify(&self.cfg.validators))
        {
            return None;
        }
        Some(choice)
    }

    pub(super) fn on_new_view(&mut self, from: ValidatorIndex, nv: NewView) {
        let (h, w, hash) = (nv.proposal.height, nv.proposal.view, nv.proposal.block_hash);
        if from != self.leader_of(w) || w < self.view || (w == self.view && self.active) {
            return;
        }
        if !nv.proposal.verify(&self.cfg.validators) {
            return;
        }
        let Some(choice) = self.check_justification(&nv) else {
            return;
        };
        if choice.value.is_some_and(|(decided, _)| decided != hash) {
            return;
        }
        if self.lock.as_ref().is_some_and(|l| {
            l.height == h && l.block_hash != hash && choice.decisive_view.is_none_or(|d| l.view > d)
        }) {
            return;
        }
        let parent = nv.parent.filter(|c| {
            c.height.checked_add(1) == Some(h)
                && c.height >= self.next_height
                && c.verify(&self.cfg.validators, c.height, &c.block_hash)
                    .is_ok()
        });
        self.enter_view(w, h);
        self.begin_height();
        let source = choice
            .value
            .map(|(_, origin)| self.leader_of(origin))
            .unwrap_or(from);
        if h == self.next_height {
            self.accept_proposal(hash, source);
        } else if h > self.next_height {
            self.future_proposal = Some(nv.proposal);
            if let Some(c) = parent {
                if c.height == self.next_height {
                    self.commit_when_verified(c, from);
                } else {
                    self.request_sync(from, c.height);
                }
            }
        } else if let Some(c) = self.last_certificate.clone() {
            // The new leader is behind: our latest certificate lets it catch up.
            self.send(from, Message::CommitCertificate(c));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::messages::PrepareCertificate;
    use v2v_crypto::{BlsSignature, Keypair, Signature};

    fn vc(
        sender: u32,
        height: u64,
        lock: Option<(u64, u8)>,
        fast: Option<(u64, u8)>,
    ) -> ViewChange {
        ViewChange {
            view: 9,
            sender,
            height,
            committed: None,
            lock: lock.map(|(view, b)| PrepareCertificate {
                height,
                view,
                block_hash: Hash([b; 32]),
                signature: BlsSignature([0; 96]),
            }),
            fast: fast.map(|(view, b)| FastReport {
                view,
                block_hash: Hash([b; 32]),
            }),
            signature: Signature([0; 64]),
        }
    }

    #[test]
    fn rule_prefers_the_highest_lock_then_nothing() {
        let q = [
            vc(0, 5, Some((3, 1)), None),
            vc(1, 5, Some((6, 2)), None),
            vc(2, 5, None, None),
        ];
        let c = choose(&q, 5, None);
        assert_eq!(c.value, Some((Hash([2; 32]), 6)));
        assert_eq!(c.lock_index, Some(1));
        // Locks at another height do not count.
        assert_eq!(choose(&q, 6, None).value, None);
        let _ = Keypair::from_name("unused");
    }

    #[test]
    fn rule_re_proposes_a_possibly_fast_committed_value() {
        // n = 4, f = 1, c = 0: T = 2.
        let q = [
            vc(0, 5, Some((2, 1)), Some((4, 7))),
            vc(1, 5, None, Some((4, 7))),
            vc(2, 5, None, Some((5, 8))),
        ];
        let c = choose(&q, 5, Some(2));
        assert_eq!(c.value, Some((Hash([7; 32]), 4)));
        assert_eq!(c.decisive_view, Some(4));
        // Reports spread over views count together from the top: 8 at 5 and 7 at 4 cannot
        // reach 2 alone, but a view-6 report of 7 plus the view-4 one does (at view 4).
        let q2 = [
            vc(0, 5, None, Some((6, 7))),
            vc(1, 5, None, Some((4, 7))),
            vc(2, 5, None, Some((5, 8))),
        ];
        assert_eq!(choose(&q2, 5, Some(2)).value, Some((Hash([7; 32]), 4)));
        // Fast reports from views at or below the highest lock do not beat it.
        let q3 = [
            vc(0, 5, Some((4, 1)), Some((4, 7))),
            vc(1, 5, None, Some((4, 7))),
            vc(2, 5, None, None),
        ];
        assert_eq!(choose(&q3, 5, Some(2)).value, Some((Hash([1; 32]), 4)));
        // One report is not enough: the lock.
        let q4 = [
            vc(0, 5, Some((2, 1)), Some((4, 7))),
            vc(1, 5, None, None),
            vc(2, 5, None, None),
        ];
        assert_eq!(choose(&q4, 5, Some(2)).value, Some((Hash([1; 32]), 2)));
    }

    mod new_view {
        #![allow(clippy::unwrap_used)]

        use super::*;
        use crate::collector::Core;
        use crate::{Input, Phase, Timing, test_committee, vote_message};

        const A: Hash = Hash([0xa; 32]);
        const B: Hash = Hash([0xb; 32]);

        struct Setup {
            configs: Vec<crate::EngineConfig>,
            validators: crate::ValidatorSet,
        }

        fn setup() -> Setup {
            let c = test_committee(4, 0, 3, Timing::default());
            Setup {
                configs: c.configs,
                validators: c.validators,
            }
        }

        impl Setup {
            /// A real prepare certificate for `hash` at (1, `view`).
            fn lock(&self, view: u64, hash: Hash) -> PrepareCertificate {
                let msg = vote_message(Phase::Prepare, 1, view, &hash);
                let shares: Vec<_> = self.configs[..3]
                    .iter()
                    .map(|c| (c.index, c.slow_share.as_ref().unwrap().sign(&msg)))
                    .collect();
                let keys = self.validators.threshold.as_ref().unwrap();
                PrepareCertificate {
                    height: 1,
                    view,
                    block_hash: hash,
                    signature: keys.slow.combine(&msg, &shares).unwrap().signature,
                }
            }

            fn vc(
                &self,
                sender: u32,
                lock: Option<PrepareCertificate>,
                fast: Option<(u64, Hash)>,
            ) -> ViewChange {
                ViewChange::sign(
                    1,
                    sender,
                    1,
                    None,
                    lock,
                    fast.map(|(view, block_hash)| FastReport { view, block_hash }),
                    &self.configs[sender as usize].key,
                )
            }

            /// Replica 2's reaction to a new-view for view 1 (leader 1) proposing `hash`.
            fn offer(&self, fast: bool, view_changes: Vec<ViewChange>, hash: Hash) -> bool {
                self.offer_locked(fast, None, view_changes, hash)
            }

            /// The same, replica 2 being locked on `lock` first.
            fn offer_locked(
                &self,
                fast: bool,
                lock: Option<PrepareCertificate>,
                view_changes: Vec<ViewChange>,
                hash: Hash,
            ) -> bool {
                let mut core = Core::new("test", self.configs[2].clone(), fast).unwrap();
                core.handle(Input::Start {
                    next_height: 1,
                    persisted: None,
                });
                if let Some(pc) = lock {
                    core.handle(Input::Message {
                        from: 0,
                        payload: Message::PrepareCertificate(pc).encode(),
                    });
                    assert!(core.lock.is_some());
                }
                let nv = Message::NewView(NewView {
                    proposal: SignedProposal::sign(1, 1, hash, &self.configs[1].key),
                    parent: None,
                    view_changes,
                });
                let outs = core.handle(Input::Message {
                    from: 1,
                    payload: nv.encode(),
                });
                let accepted = core.view == 1
                    && core.active
                    && core.round.proposal.map(|(h, _)| h) == Some(hash);
                if !accepted {
                    assert!(
                        core.view == 0 && core.active,
                        "a refused new-view changes nothing"
                    );
                    assert!(
                        !outs
                            .iter()
                            .any(|o| matches!(o, Output::VerifyProposal { .. }))
                    );
                }
                accepted
            }
        }

        #[test]
        fn linear_new_view_must_re_propose_the_highest_lock() {
            let s = setup();
            let q = |lock: Option<PrepareCertificate>| {
                vec![
                    s.vc(0, None, None),
                    s.vc(2, lock, None),
                    s.vc(3, None, None),
                ]
            };
            assert!(s.offer(false, q(None), B), "no lock: any block");
            assert!(s.offer(false, q(Some(s.lock(0, A))), A));
            assert!(
                !s.offer(false, q(Some(s.lock(0, A))), B),
                "B ignores the lock on A"
            );
            // Too few view changes, duplicates, or a forged highest lock.
            assert!(!s.offer(false, q(None)[..2].to_vec(), B));
            let dup = vec![
                s.vc(0, None, None),
                s.vc(0, None, None),
                s.vc(3, None, None),
            ];
            assert!(!s.offer(false, dup, B));
            let mut forged = s.lock(0, B);
            forged.signature = s.lock(0, A).signature;
            assert!(!s.offer(false, q(Some(forged)), B));
            // A view change altered after signing.
            let mut altered = q(None);
            altered[1].height = 0;
            assert!(!s.offer(false, altered, B));
        }

        #[test]
        fn a_replica_refuses_a_new_view_that_ignores_its_higher_lock() {
            let s = setup();
            let q = |lock: Option<PrepareCertificate>| {
                vec![
                    s.vc(0, lock, None),
                    s.vc(1, None, None),
                    s.vc(3, None, None),
                ]
            };
            let mine = Some(s.lock(0, A));
            // Its lock on A (view 0) is hidden from the justification: B is refused.
            assert!(!s.offer_locked(false, mine.clone(), q(None), B));
            assert!(s.offer_locked(false, mine.clone(), q(None), A));
            // A justification whose highest lock is as high (the same view) decides.
            assert!(s.offer_locked(false, mine, q(Some(s.lock(0, A))), A));
        }

        #[test]
        fn sbft_new_view_must_re_propose_a_possibly_fast_committed_value() {
            let s = setup();
            // n = 4, c = 0: T = 2 reports of a view above the highest lock.
            let q = vec![
                s.vc(0, None, Some((0, A))),
                s.vc(2, None, Some((0, A))),
                s.vc(3, None, None),
            ];
            assert!(s.offer(true, q.clone(), A));
            assert!(!s.offer(true, q, B));
            // One report is not enough.
            let q = vec![
                s.vc(0, None, Some((0, A))),
                s.vc(2, None, None),
                s.vc(3, None, None),
            ];
            assert!(s.offer(true, q, B));
            // Linear BFT ignores fast reports.
            let q = vec![
                s.vc(0, None, Some((0, A))),
                s.vc(2, None, Some((0, A))),
                s.vc(3, None, None),
            ];
            assert!(s.offer(false, q, B));
        }
    }
}
