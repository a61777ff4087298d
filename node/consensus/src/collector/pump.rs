//! A small deterministic pump for the collector engines' unit tests, and the scenarios both
//! engines run (Linear BFT and SBFT call them from their own test modules).
//!
//! Messages are delivered FIFO and instantly; `RequestProposal` is answered with a fresh
//! block hash and `VerifyProposal` with `valid: true`, both through the same queue; timers
//! run on a virtual clock that only advances when nothing else is queued. Every commit is
//! checked on arrival: heights in order, a certificate that verifies, and the same block as
//! every other replica at that height.
#![allow(clippy::unwrap_used, clippy::type_complexity)]

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::rc::Rc;

use v2v_primitives::Hash;

use super::messages::{Message, SignedProposal, TAG_COMMIT_CERTIFICATE, TAG_PREPARE_CERTIFICATE};
use crate::{
    Certificate, Engine, EngineConfig, Input, Output, Phase, Proof, Proposal, TimerId, Timing,
    ValidatorSet, Vote, VoteSignature, test_committee,
};

/// Random scheduling: queued inputs are delivered in random order, messages are dropped
/// with probability `drop_percent`%, a random pending timer fires early with probability
/// `timer_percent`%, and a random replica crashes and restarts from its persisted state with
/// probability `restart_per_mille`‰ per step.
#[derive(Debug, Clone)]
pub(crate) struct Chaos {
    pub rng: u64,
    pub drop_percent: u64,
    pub timer_percent: u64,
    pub restart_per_mille: u64,
}

impl Chaos {
    fn next(&mut self) -> u64 {
        // xorshift64
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }
}

/// Rewrites (or drops, with `None`) a message from `from` to `to`.
pub(crate) type Tamper = Box<dyn FnMut(u32, u32, &[u8]) -> Option<Vec<u8>>>;
pub(crate) type Make = fn(EngineConfig) -> Box<dyn Engine>;

pub(crate) struct Pump {
    pub validators: ValidatorSet,
    pub configs: Vec<EngineConfig>,
    make: Make,
    engines: Vec<Box<dyn Engine>>,
    queue: VecDeque<(u32, Input)>,
    timers: BTreeMap<(u32, TimerId), u64>,
    pub now: u64,
    pub timeouts: Vec<(u32, TimerId)>,
    /// Per replica, the committed (hash, certificate) of heights 1, 2, ...
    pub committed: Vec<Vec<(Hash, Certificate)>>,
    pub persisted: Vec<Option<Vec<u8>>>,
    /// (reporter, validator, reason)
    pub faulty: Vec<(u32, u32, String)>,
    /// Replicas that neither receive nor send anything.
    pub down: BTreeSet<u32>,
    pub tamper: Option<Tamper>,
    /// Asynchrony and crashes: see [`Chaos`].
    pub chaos: Option<Chaos>,
    /// Virtual milliseconds each delivery takes (0: time only moves when the pump is idle).
    pub step_ms: u64,
    pub sends: Vec<usize>,
    pub broadcasts: Vec<usize>,
    /// Blocks built at each replica's request.
    pub built: Vec<(u32, Proposal)>,
    blocks: u64,
}

impl Pump {
    pub fn new(n: usize, c: usize, make: Make) -> Self {
        let committee = test_committee(n, c, 1, Timing::default());
        let engines = committee.configs.iter().cloned().map(make).collect();
        Self {
            validators: committee.validators,
            configs: committee.configs,
            make,
            engines,
            queue: VecDeque::new(),
            timers: BTreeMap::new(),
            now: 0,
            timeouts: Vec::new(),
            committed: vec![Vec::new(); n],
            persisted: vec![None; n],
            faulty: Vec::new(),
            down: BTreeSet::new(),
            tamper: None,
            chaos: None,
            step_ms: 0,
            sends: vec![0; n],
            broadcasts: vec![0; n],
            built: Vec::new(),
            blocks: 0,
        }
    }

    pub fn n(&self) -> usize {
        self.engines.len()
    }

    pub fn start(&mut self) {
        for i in 0..self.n() as u32 {
            self.queue.push_back((
                i,
                Input::Start {
                    next_height: 1,
                    persisted: None,
                },
            ));
        }
    }

    /// Replaces replica `i` by a fresh engine started from what it persisted.
    pub fn restart(&mut self, i: u32) {
        self.engines[i as usize] = (self.make)(self.configs[i as usize].clone());
        self.timers.retain(|(node, _), _| *node != i);
        self.queue.retain(|(node, _)| *node != i);
        self.queue.push_back((
            i,
            Input::Start {
                next_height: self.committed[i as usize].len() as u64 + 1,
                persisted: self.persisted[i as usize].clone(),
            },
        ));
    }

    fn route(&mut self, from: u32, to: u32, payload: Vec<u8>) {
        if self.down.contains(&to) {
            return;
        }
        let payload = match self.tamper.as_mut() {
            Some(t) => match t(from, to, &payload) {
                Some(p) => p,
                None => return,
            },
            None => payload,
        };
        self.queue.push_back((to, Input::Message { from, payload }));
    }

    fn deliver(&mut self, i: u32, input: Input) {
        if self.down.contains(&i) {
            return;
        }
        let iu = i as usize;
        if let Input::Synced {
            height,
            block_hash,
            certificate,
        } = &input
        {
            if *height != self.committed[iu].len() as u64 + 1 {
                return;
            }
            self.committed[iu].push((*block_hash, certificate.clone()));
        }
        let outputs = self.engines[iu].handle(input);
        for out in outputs {
            match out {
                Output::Send { to, payload } => {
                    self.sends[iu] += 1;
                    assert_ne!(to, i, "replica {i} sent to itself");
                    self.route(i, to, payload);
                }
                Output::Broadcast { payload } => {
                    self.broadcasts[iu] += 1;
                    for to in 0..self.n() as u32 {
                        if to != i {
                            self.route(i, to, payload.clone());
                        }
                    }
                }
                Output::SetTimer { id, after_ms } => {
                    self.timers.insert((i, id), self.now + after_ms);
                }
                Output::CancelTimer { id } => {
                    self.timers.remove(&(i, id));
                }
                Output::Persist { state } => self.persisted[iu] = Some(state),
                Output::RequestProposal { height, view } => {
                    self.blocks += 1;
                    let p = Proposal {
                        height,
                        view,
                        block_hash: Hash::digest(b"pump block", &self.blocks.to_le_bytes()),
                    };
                    self.built.push((i, p.clone()));
                    self.queue.push_back((i, Input::ProposalReady(p)));
                }
                Output::VerifyProposal {
                    height,
                    view,
                    block_hash,
                    ..
                } => self.queue.push_back((
                    i,
                    Input::ProposalVerified {
                        height,
                        view,
                        block_hash,
                        valid: true,
                    },
                )),
                Output::Sync { up_to_height, .. } => {
                    let from = self.committed[iu].len() + 1;
                    for h in from..=up_to_height as usize {
                        let Some((hash, cert)) =
                            self.committed.iter().find_map(|c| c.get(h - 1).cloned())
                        else {
                            break;
                        };
                        self.queue.push_back((
                            i,
                            Input::Synced {
                                height: h as u64,
                                block_hash: hash,
                                certificate: cert,
                            },
                        ));
                    }
                }
                Output::Faulty { validator, reason } => self.faulty.push((i, validator, reason)),
                Output::Commit {
                    height,
                    block_hash,
                    certificate,
                } => {
                    assert_eq!(
                        height,
                        self.committed[iu].len() as u64 + 1,
                        "replica {i} committed out of order"
                    );
                    certificate
                        .verify(&self.validators, height, &block_hash)
                        .unwrap();
                    for (j, other) in self.committed.iter().enumerate() {
                        if let Some((h, _)) = other.get(height as usize - 1) {
                            assert_eq!(
                                *h, block_hash,
                                "replicas {i} and {j} disagree at height {height}"
                            );
                        }
                    }
                    self.committed[iu].push((block_hash, certificate));
                }
            }
        }
    }

    /// Delivers one queued input, or fires the earliest timer; `false` when nothing is left.
    pub fn step(&mut self) -> bool {
        if let Some(mut chaos) = self.chaos.take() {
            let stepped = self.chaos_step(&mut chaos);
            self.chaos = Some(chaos);
            if stepped {
                return true;
            }
        }
        let due = self
            .timers
            .iter()
            .any(|(_, at)| self.step_ms > 0 && *at <= self.now);
        if !due && let Some((i, input)) = self.queue.pop_front() {
            self.now += self.step_ms;
            self.deliver(i, input);
            return true;
        }
        let Some((&(i, id), &at)) = self
            .timers
            .iter()
            .min_by_key(|((i, id), at)| (**at, *i, *id))
        else {
            return false;
        };
        self.timers.remove(&(i, id));
        self.now = self.now.max(at);
        if !self.down.contains(&i) {
            self.timeouts.push((i, id));
        }
        self.deliver(i, Input::Timeout(id));
        true
    }

    fn chaos_step(&mut self, chaos: &mut Chaos) -> bool {
        if chaos.next() % 1000 < chaos.restart_per_mille {
            let i = (chaos.next() % self.n() as u64) as u32;
            self.restart(i);
            return true;
        }
        if !self.timers.is_empty() && chaos.next() % 100 < chaos.timer_percent {
            let k = (chaos.next() % self.timers.len() as u64) as usize;
            if let Some((&(i, id), _)) = self.timers.iter().nth(k) {
                self.timers.remove(&(i, id));
                if !self.down.contains(&i) {
                    self.timeouts.push((i, id));
                }
                self.deliver(i, Input::Timeout(id));
                return true;
            }
        }
        if self.queue.is_empty() {
            return false;
        }
        let k = (chaos.next() % self.queue.len() as u64) as usize;
        let Some((i, input)) = self.queue.remove(k) else {
            return false;
        };
        if matches!(input, Input::Message { .. }) && chaos.next() % 100 < chaos.drop_percent {
            return true;
        }
        self.deliver(i, input);
        true
    }

    /// Runs until `done` holds; panics after `max_steps`.
    pub fn run_until(&mut self, max_steps: usize, done: impl Fn(&Pump) -> bool) {
        for _ in 0..max_steps {
            if done(self) {
                return;
            }
            if !self.step() {
                break;
            }
        }
        assert!(
            done(self),
            "not done after the run: heights {:?}, now {}",
            self.committed.iter().map(Vec::len).collect::<Vec<_>>(),
            self.now
        );
    }

    /// Every replica not in `except` committed at least `heights` blocks.
    pub fn all_committed(&self, heights: usize, except: &[u32]) -> bool {
        (0..self.n())
            .filter(|i| !except.contains(&(*i as u32)))
            .all(|i| self.committed[i].len() >= heights)
    }

    pub fn fast_certificates(&self, i: usize) -> Vec<bool> {
        self.committed[i]
            .iter()
            .map(|(_, c)| matches!(c.proof, Proof::Threshold { fast: true, .. }))
            .collect()
    }
}

/// The height a prepare or commit certificate message is for, if it is one.
fn certificate_message(payload: &[u8]) -> Option<(u8, u64)> {
    match Message::decode(payload, 64).ok()? {
        Message::PrepareCertificate(pc) => Some((TAG_PREPARE_CERTIFICATE, pc.height)),
        Message::CommitCertificate(c) => Some((TAG_COMMIT_CERTIFICATE, c.height)),
        _ => None,
    }
}

/// The shares in a message, if it carries any.
pub(crate) fn shares_in(payload: &[u8]) -> Vec<Vote> {
    match Message::decode(payload, 64) {
        Ok(Message::Vote(v)) => vec![v],
        Ok(Message::Shares(v)) => v,
        _ => Vec::new(),
    }
}

/// The proposal's bytes as the leader of `view` would send them.
pub(crate) fn proposal_payload(
    leader: &EngineConfig,
    height: u64,
    view: u64,
    hash: Hash,
) -> Vec<u8> {
    Message::Proposal(SignedProposal::sign(height, view, hash, &leader.key)).encode()
}

/// Replica `cfg.index` signs its shares over the wrong message (height + 1000), keeping the
/// votes' fields: only the collector's combination can tell.
pub(crate) fn corrupt_shares(cfg: &EngineConfig) -> Tamper {
    let (me, slow, fast) = (
        cfg.index,
        cfg.slow_share.clone().unwrap(),
        cfg.fast_share.clone().unwrap(),
    );
    Box::new(move |from, _to, payload| {
        if from != me {
            return Some(payload.to_vec());
        }
        let corrupt = |v: &Vote| {
            let wrong = crate::vote_message(v.phase, v.height + 1000, v.view, &v.block_hash);
            let signature = match v.signature {
                VoteSignature::SlowShare(_) => VoteSignature::SlowShare(slow.sign(&wrong)),
                VoteSignature::FastShare(_) => VoteSignature::FastShare(fast.sign(&wrong)),
                other => other,
            };
            Vote {
                signature,
                ..v.clone()
            }
        };
        Some(match Message::decode(payload, 64) {
            Ok(Message::Vote(v)) => Message::Vote(corrupt(&v)).encode(),
            Ok(Message::Shares(vs)) => Message::Shares(vs.iter().map(corrupt).collect()).encode(),
            _ => payload.to_vec(),
        })
    })
}

// ---- scenarios shared by both engines ----

/// n = 4, all honest: 20 heights everywhere, identical blocks, O(n) messages per height.
/// Returns the pump for engine-specific checks.
pub(crate) fn all_honest(make: Make, heights: usize) -> Pump {
    let mut p = Pump::new(4, 0, make);
    p.start();
    p.run_until(200_000, |p| p.all_committed(heights, &[]));
    assert!(p.faulty.is_empty(), "{:?}", p.faulty);
    assert!(
        p.timeouts
            .iter()
            .all(|(_, id)| !matches!(id, TimerId::Round { .. } | TimerId::ViewChange { .. }))
    );
    // Every replica's certificate list is the same chain.
    for i in 1..4 {
        let n = p.committed[i].len().min(p.committed[0].len());
        assert_eq!(p.committed[i][..n], p.committed[0][..n]);
    }
    // Linear communication: only the leader (0) broadcasts, a constant number of times per
    // height; the others send a constant number of messages per height, to it.
    let h = p.committed[0].len();
    assert!(p.broadcasts[1..].iter().all(|b| *b == 0));
    assert_eq!(p.sends[0], 0);
    let per_height_broadcasts = p.broadcasts[0] as f64 / h as f64;
    assert!(per_height_broadcasts <= 3.2, "{per_height_broadcasts}");
    for i in 1..4 {
        assert!(p.sends[i] <= 2 * (h + 1), "replica {i} sent {}", p.sends[i]);
    }
    p
}

/// The leader is down from the start: a view change, then the new leader commits.
pub(crate) fn silent_leader(make: Make) {
    let mut p = Pump::new(4, 0, make);
    p.down.insert(0);
    p.start();
    p.run_until(200_000, |p| p.all_committed(3, &[0]));
    for i in 1..4 {
        assert!(p.committed[i].iter().all(|(_, c)| c.view >= 1));
    }
    assert!(
        p.timeouts
            .iter()
            .any(|(_, id)| matches!(id, TimerId::Round { height: 1, view: 0 }))
    );
}

/// A replica signs its shares over the wrong message: the collector reports it, the blocks
/// still commit. Replica 1's shares arrive first, so they are among the first t the
/// collector combines (it only inspects the shares it needs). Returns the pump.
pub(crate) fn invalid_shares(make: Make) -> Pump {
    let mut p = Pump::new(4, 0, make);
    p.tamper = Some(corrupt_shares(&p.configs[1]));
    p.start();
    p.run_until(200_000, |p| p.all_committed(5, &[]));
    assert!(!p.faulty.is_empty());
    assert!(
        p.faulty
            .iter()
            .all(|(reporter, v, _)| *reporter == 0 && *v == 1),
        "{:?}",
        p.faulty
    );
    // No view change was needed.
    assert!(p.committed[1].iter().all(|(_, c)| c.view == 0));
    p
}

/// The leader goes silent right after broadcasting the prepare certificate of height 2
/// (`slow_to_leader`: replica 3's shares never reach it, which in SBFT forces the slow
/// path). Replicas are locked; the new leader must re-propose the locked block.
pub(crate) fn locked_block_is_re_proposed(make: Make, slow_to_leader: bool) {
    let mut p = Pump::new(4, 0, make);
    let cut = Rc::new(RefCell::new(false));
    let cut2 = cut.clone();
    p.tamper = Some(Box::new(move |from, to, payload| {
        let mut cut = cut2.borrow_mut();
        if *cut && (from == 0 || to == 0) {
            // Copies of the prepare certificate still go out; nothing else.
            return match certificate_message(payload) {
                Some((TAG_PREPARE_CERTIFICATE, 2)) if from == 0 => Some(payload.to_vec()),
                _ => None,
            };
        }
        if slow_to_leader && from == 3 && to == 0 {
            return None;
        }
        if from == 0 && certificate_message(payload) == Some((TAG_PREPARE_CERTIFICATE, 2)) {
            *cut = true;
        }
        Some(payload.to_vec())
    }));
    p.start();
    p.run_until(300_000, |p| p.all_committed(4, &[0]));
    let proposed_at_2 = p
        .built
        .iter()
        .find(|(i, b)| *i == 0 && b.height == 2)
        .map(|(_, b)| b.block_hash)
        .unwrap();
    for i in 1..4 {
        assert_eq!(p.committed[i][1].0, proposed_at_2, "replica {i}");
        assert!(
            p.committed[i][1].1.view >= 1,
            "committed after the view change"
        );
    }
}

/// Restart safety: a replica that shared for block A at (1, 0) and restarts never shares for
/// another block B at (1, 0); a leader that proposed A and restarts proposes A again.
pub(crate) fn restart_keeps_signatures(make: Make) {
    let committee = test_committee(4, 0, 1, Timing::default());
    let (a, b) = (Hash([0xa; 32]), Hash([0xb; 32]));
    let leader = &committee.configs[0];
    let shared_for = |outs: &[Output]| -> Vec<Hash> {
        outs.iter()
            .filter_map(|o| match o {
                Output::Send { payload, .. } => Some(shares_in(payload)),
                _ => None,
            })
            .flatten()
            .map(|v| v.block_hash)
            .collect()
    };
    let persisted_in = |outs: &[Output]| {
        outs.iter().rev().find_map(|o| match o {
            Output::Persist { state } => Some(state.clone()),
            _ => None,
        })
    };
    let verified = |h| Input::ProposalVerified {
        height: 1,
        view: 0,
        block_hash: h,
        valid: true,
    };
    let proposal = |h| Input::Message {
        from: 0,
        payload: proposal_payload(leader, 1, 0, h),
    };

    // Replica 1.
    let mut e = make(committee.configs[1].clone());
    e.handle(Input::Start {
        next_height: 1,
        persisted: None,
    });
    let outs = e.handle(proposal(a));
    assert!(
        outs.iter()
            .any(|o| matches!(o, Output::VerifyProposal { block_hash, .. } if *block_hash == a))
    );
    let outs = e.handle(verified(a));
    // Persist comes before the share.
    let persist_at = outs
        .iter()
        .position(|o| matches!(o, Output::Persist { .. }))
        .unwrap();
    let send_at = outs
        .iter()
        .position(|o| matches!(o, Output::Send { .. }))
        .unwrap();
    assert!(persist_at < send_at);
    assert!(shared_for(&outs).iter().all(|h| *h == a) && !shared_for(&outs).is_empty());
    let state = persisted_in(&outs).unwrap();

    let mut e = make(committee.configs[1].clone());
    e.handle(Input::Start {
        next_height: 1,
        persisted: Some(state.clone()),
    });
    let mut outs = e.handle(proposal(b));
    outs.extend(e.handle(verified(b)));
    assert!(
        shared_for(&outs).is_empty(),
        "shared for B after a restart: {outs:?}"
    );
    // A fresh engine (state lost) would have: the persisted state is what prevents it.
    let mut fresh = make(committee.configs[1].clone());
    fresh.handle(Input::Start {
        next_height: 1,
        persisted: None,
    });
    fresh.handle(proposal(b));
    assert_eq!(shared_for(&fresh.handle(verified(b))).first(), Some(&b));

    // Leader 0.
    let mut e = make(committee.configs[0].clone());
    let outs = e.handle(Input::Start {
        next_height: 1,
        persisted: None,
    });
    assert!(outs.contains(&Output::RequestProposal { height: 1, view: 0 }));
    let outs = e.handle(Input::ProposalReady(Proposal {
        height: 1,
        view: 0,
        block_hash: a,
    }));
    let persist_at = outs
        .iter()
        .position(|o| matches!(o, Output::Persist { .. }))
        .unwrap();
    let bcast_at = outs
        .iter()
        .position(|o| matches!(o, Output::Broadcast { .. }))
        .unwrap();
    assert!(persist_at < bcast_at);
    let state = persisted_in(&outs).unwrap();
    let mut e = make(committee.configs[0].clone());
    let outs = e.handle(Input::Start {
        next_height: 1,
        persisted: Some(state),
    });
    assert!(
        !outs
            .iter()
            .any(|o| matches!(o, Output::RequestProposal { .. }))
    );
    let expected = proposal_payload(leader, 1, 0, a);
    assert!(outs.contains(&Output::Broadcast { payload: expected }));
    // A proposal for B at the same (height, view) is refused.
    let outs = e.handle(Input::ProposalReady(Proposal {
        height: 1,
        view: 0,
        block_hash: b,
    }));
    assert!(!outs.iter().any(|o| matches!(o, Output::Broadcast { .. })));

    // Unreadable persisted state: the engine stays silent and says why.
    let mut e = make(committee.configs[1].clone());
    let outs = e.handle(Input::Start {
        next_height: 1,
        persisted: Some(vec![99, 1, 2]),
    });
    assert!(matches!(
        outs.as_slice(),
        [Output::Faulty { validator: 1, .. }]
    ));
    assert!(e.handle(proposal(a)).is_empty());
}

/// Garbage and mutated messages never panic and never make a replica commit.
pub(crate) fn garbage_does_not_panic(make: Make) {
    // Real messages of every kind, from a short run with a view change.
    let mut p = Pump::new(4, 0, make);
    let log: Rc<RefCell<Vec<(u32, Vec<u8>)>>> = Rc::default();
    let log2 = log.clone();
    p.down.insert(0);
    p.tamper = Some(Box::new(move |from, _to, payload| {
        log2.borrow_mut().push((from, payload.to_vec()));
        Some(payload.to_vec())
    }));
    p.start();
    p.run_until(100_000, |p| p.all_committed(2, &[0]));
    let samples = log.borrow().clone();
    assert!(samples.len() > 10);

    let committee = test_committee(4, 0, 1, Timing::default());
    let mut e = make(committee.configs[2].clone());
    e.handle(Input::Start {
        next_height: 1,
        persisted: None,
    });
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let feed = |e: &mut Box<dyn Engine>, from: u32, payload: Vec<u8>| {
        for o in e.handle(Input::Message { from, payload }) {
            assert!(!matches!(o, Output::Commit { .. }), "committed on garbage");
        }
    };
    for len in [0usize, 1, 2, 7, 40, 100, 200, 1000] {
        for tag in [1u8, 32, 33, 34, 35, 36, 37, 38, 255] {
            let mut bytes: Vec<u8> = (0..len).map(|_| rand() as u8).collect();
            if let Some(b) = bytes.first_mut() {
                *b = tag;
            }
            feed(&mut e, (rand() % 6) as u32, bytes);
        }
    }
    for (from, payload) in &samples {
        for _ in 0..4 {
            let mut bytes = payload.clone();
            match rand() % 3 {
                0 => bytes.truncate((rand() as usize) % (bytes.len() + 1)),
                1 => {
                    let at = (rand() as usize) % bytes.len().max(1);
                    if let Some(b) = bytes.get_mut(at) {
                        *b ^= 1 << (rand() % 8);
                    }
                }
                _ => bytes.extend((0..(rand() % 50)).map(|_| rand() as u8)),
            }
            feed(&mut e, *from, bytes);
        }
    }
    // Hostile counts: a new-view claiming u32::MAX view changes.
    let mut bytes = vec![37u8];
    bytes.extend_from_slice(&[0; 8 + 8 + 32 + 64]);
    bytes.push(0);
    bytes.extend_from_slice(&u32::MAX.to_le_bytes());
    feed(&mut e, 1, bytes);
}

/// How hard [`chaos_then_calm`] shakes the network.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChaosRun {
    pub n: usize,
    pub c: usize,
    pub drop_percent: u64,
    pub timer_percent: u64,
    pub restart_per_mille: u64,
    pub steps: usize,
    /// Replica 1 signs every share over the wrong message.
    pub byzantine: bool,
}

/// Random scheduling, message loss, early timers and crash-restarts for a while (safety is
/// checked at every commit), then a calm network: every replica must make progress again.
pub(crate) fn chaos_then_calm(make: Make, run: ChaosRun, seeds: std::ops::Range<u64>) {
    for seed in seeds {
        let mut p = Pump::new(run.n, run.c, make);
        if run.byzantine {
            p.tamper = Some(corrupt_shares(&p.configs[1]));
        }
        p.chaos = Some(Chaos {
            rng: seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1,
            drop_percent: run.drop_percent,
            timer_percent: run.timer_percent,
            restart_per_mille: run.restart_per_mille,
        });
        p.start();
        for _ in 0..run.steps {
            if !p.step() {
                break;
            }
        }
        p.chaos = None;
        let reached = p.committed.iter().map(Vec::len).max().unwrap_or(0);
        p.run_until(100_000, |p| p.all_committed(reached + 3, &[]));
    }
}

/// Prepare shares must be over vote_message(Prepare, ...): a helper for engine tests.
pub(crate) fn is_share(v: &Vote, phase: Phase, fast: bool) -> bool {
    v.phase == phase
        && match v.signature {
            VoteSignature::SlowShare(_) => !fast,
            VoteSignature::FastShare(_) => fast,
            VoteSignature::Ed25519(_) => false,
        }
}

/// A leader that signs two proposals at one (height, view) is reported, and the replica
/// shares for the first one only.
pub(crate) fn equivocating_leader_is_reported(make: Make) {
    let committee = test_committee(4, 0, 1, Timing::default());
    let (a, b) = (Hash([0xa; 32]), Hash([0xb; 32]));
    let mut e = make(committee.configs[2].clone());
    e.handle(Input::Start {
        next_height: 1,
        persisted: None,
    });
    let mut outs = Vec::new();
    for h in [a, b] {
        outs.extend(e.handle(Input::Message {
            from: 0,
            payload: proposal_payload(&committee.configs[0], 1, 0, h),
        }));
        outs.extend(e.handle(Input::ProposalVerified {
            height: 1,
            view: 0,
            block_hash: h,
            valid: true,
        }));
    }
    assert!(
        outs.iter()
            .any(|o| matches!(o, Output::Faulty { validator: 0, .. }))
    );
    let shared: Vec<Hash> = outs
        .iter()
        .filter_map(|o| match o {
            Output::Send { payload, .. } => Some(shares_in(payload)),
            _ => None,
        })
        .flatten()
        .map(|v| v.block_hash)
        .collect();
    assert!(
        !shared.is_empty() && shared.iter().all(|h| *h == a),
        "{shared:?}"
    );
    // A proposal signed by someone else than the view's leader is ignored.
    let forged = e.handle(Input::Message {
        from: 0,
        payload: proposal_payload(&committee.configs[1], 2, 0, b),
    });
    assert!(forged.is_empty());
}

/// The leader never sends anything to replica 1 while the others make progress with it. In
/// linear BFT nobody else sends replica 1 anything either: it times out alone, and the
/// answers to its view changes (the latest commit certificate) make it sync.
pub(crate) fn starved_replica_catches_up(make: Make) {
    let mut p = Pump::new(4, 0, make);
    p.step_ms = 1;
    p.tamper = Some(Box::new(|from, to, payload| {
        (from != 0 || to != 1).then(|| payload.to_vec())
    }));
    p.start();
    p.run_until(200_000, |p| p.all_committed(5, &[]));
    assert!(
        p.committed[0].len() > 20,
        "the others did not wait for replica 1"
    );
}
