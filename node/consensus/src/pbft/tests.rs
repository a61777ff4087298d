//! Unit tests: exact outputs of single engines, and a small deterministic pump running n
//! engines (every Send/Broadcast delivered in FIFO order; the host answers RequestProposal
//! with a fresh digest and VerifyProposal with valid; timers fire only when a test says so).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use v2v_primitives::Hash;

use super::PbftEngine;
use super::log::PersistedState;
use super::messages::{
    CheckpointProof, Message, NewView, PrePrepare, PreparedCert, TAG_NEW_VIEW, TAG_PRE_PREPARE,
    ViewChange,
};
use crate::{
    Certificate, Committee, Engine, EngineConfig, Input, Output, Phase, Proof, TimerId, Timing,
    Vote, test_committee,
};

fn committee(n: usize) -> Committee {
    test_committee(n, 0, 7, Timing::default())
}

fn digest(tag: &str, x: u64) -> Hash {
    Hash::digest(tag.as_bytes(), &x.to_le_bytes())
}

/// Deterministic n-replica network.
struct Net {
    committee: Committee,
    engines: Vec<PbftEngine>,
    queue: VecDeque<(u32, Input)>,
    timers: Vec<BTreeSet<TimerId>>,
    persisted: Vec<Option<Vec<u8>>>,
    /// Commits each replica output: height -> (hash, certificate).
    commits: Vec<BTreeMap<u64, (Hash, Certificate)>>,
    /// The last height each replica committed or synced.
    head: Vec<u64>,
    faulty: Vec<(u32, u32, String)>,
    /// The height each replica asked to sync up to.
    want: Vec<u64>,
    syncs: Vec<(u32, u64)>,
    /// Replicas that neither receive nor act.
    down: BTreeSet<u32>,
    /// Votes of this phase are dropped in transit.
    drop_phase: Option<Phase>,
    /// This replica equivocates: odd-numbered replicas get conflicting pre-prepares and
    /// votes from it.
    equivocator: Option<u32>,
    /// Pre-prepares broadcast by each replica: (view, height, hash).
    pre_prepares: Vec<Vec<(u64, u64, Hash)>>,
    new_views: Vec<NewView>,
    /// Every timer set: (replica, id, after_ms).
    timers_set: Vec<(u32, TimerId, u64)>,
    /// The most heights a leader had pre-prepared above its last commit.
    max_in_flight: u64,
    fresh: u64,
    steps: usize,
}

impl Net {
    fn new(n: usize, tweak: impl Fn(&mut EngineConfig)) -> Self {
        let mut committee = committee(n);
        for c in &mut committee.configs {
            tweak(c);
        }
        let engines = committee
            .configs
            .iter()
            .map(|c| PbftEngine::new(c.clone()).unwrap())
            .collect();
        Net {
            committee,
            engines,
            queue: VecDeque::new(),
            timers: vec![BTreeSet::new(); n],
            persisted: vec![None; n],
            commits: vec![BTreeMap::new(); n],
            head: vec![0; n],
            faulty: Vec::new(),
            want: vec![0; n],
            syncs: Vec::new(),
            down: BTreeSet::new(),
            drop_phase: None,
            equivocator: None,
            pre_prepares: vec![Vec::new(); n],
            new_views: Vec::new(),
            timers_set: Vec::new(),
            max_in_flight: 0,
            fresh: 0,
            steps: 0,
        }
    }

    fn n(&self) -> u32 {
        self.engines.len() as u32
    }

    fn start_all(&mut self) {
        for i in 0..self.n() {
            self.deliver(
                i,
                Input::Start {
                    next_height: 1,
                    persisted: None,
                },
            );
        }
    }

    fn deliver(&mut self, node: u32, input: Input) {
        if self.down.contains(&node) {
            return;
        }
        let outputs = self.engines[node as usize].handle(input);
        for out in outputs {
            self.carry_out(node, out);
        }
    }

    fn dropped(&self, payload: &[u8]) -> bool {
        match (self.drop_phase, Message::decode(payload)) {
            (Some(phase), Some(Message::Vote(v))) => v.phase == phase,
            _ => false,
        }
    }

    /// What the equivocator sends odd-numbered replicas instead of `payload`.
    fn tamper(&self, node: u32, payload: &[u8]) -> Vec<u8> {
        let key = &self.committee.configs[node as usize].key;
        let evil = |h: u64, v: u64| digest("evil", h ^ (v << 32));
        match Message::decode(payload) {
            Some(Message::PrePrepare(pp)) => {
                PrePrepare::sign(pp.view, pp.height, evil(pp.height, pp.view), key).encode()
            }
            Some(Message::Vote(v)) if v.phase != Phase::Checkpoint => {
                Vote::sign_ed25519(v.phase, v.height, v.view, evil(v.height, v.view), node, key)
                    .encode()
            }
            _ => payload.to_vec(),
        }
    }

    fn carry_out(&mut self, node: u32, out: Output) {
        let i = node as usize;
        match out {
            Output::Send { to, payload } => {
                if !self.dropped(&payload) {
                    self.queue.push_back((
                        to,
                        Input::Message {
                            from: node,
                            payload,
                        },
                    ));
                }
            }
            Output::Broadcast { payload } => {
                match payload.first() {
                    Some(&TAG_PRE_PREPARE) => {
                        if let Some(Message::PrePrepare(pp)) = Message::decode(&payload) {
                            self.pre_prepares[i].push((pp.view, pp.height, pp.block_hash));
                            self.max_in_flight = self.max_in_flight.max(pp.height - self.head[i]);
                        }
                    }
                    Some(&TAG_NEW_VIEW) => {
                        if let Some(Message::NewView(nv)) = Message::decode(&payload) {
                            self.new_views.push(nv);
                        }
                    }
                    _ => {}
                }
                if !self.dropped(&payload) {
                    let tampered =
                        (self.equivocator == Some(node)).then(|| self.tamper(node, &payload));
                    for to in (0..self.n()).filter(|t| *t != node) {
                        let payload = match &tampered {
                            Some(t) if to % 2 == 1 => t.clone(),
                            _ => payload.clone(),
                        };
                        self.queue.push_back((
                            to,
                            Input::Message {
                                from: node,
                                payload,
                            },
                        ));
                    }
                }
            }
            Output::SetTimer { id, after_ms } => {
                self.timers_set.push((node, id, after_ms));
                self.timers[i].insert(id);
            }
            Output::CancelTimer { id } => {
                self.timers[i].remove(&id);
            }
            Output::Persist { state } => self.persisted[i] = Some(state),
            Output::RequestProposal { height, view } => {
                self.fresh += 1;
                let block_hash = digest("block", self.fresh);
                self.queue.push_back((
                    node,
                    Input::ProposalReady(crate::Proposal {
                        height,
                        view,
                        block_hash,
                    }),
                ));
            }
            Output::VerifyProposal {
                height,
                view,
                block_hash,
                ..
            } => self.queue.push_back((
                node,
                Input::ProposalVerified {
                    height,
                    view,
                    block_hash,
                    valid: true,
                },
            )),
            Output::Sync { up_to_height, .. } => {
                self.syncs.push((node, up_to_height));
                self.want[i] = self.want[i].max(up_to_height);
            }
            Output::Faulty { validator, reason } => self.faulty.push((node, validator, reason)),
            Output::Commit {
                height,
                block_hash,
                certificate,
            } => {
                assert_eq!(
                    height,
                    self.head[i] + 1,
                    "replica {node} committed out of order"
                );
                certificate
                    .verify(&self.committee.validators, height, &block_hash)
                    .unwrap();
                let Proof::Signatures(sigs) = &certificate.proof else {
                    panic!("PBFT certificates are signature lists");
                };
                assert_eq!(sigs.len(), self.committee.validators.quorum());
                assert!(sigs.windows(2).all(|w| w[0].0 < w[1].0), "sorted by index");
                // Safety: every replica commits the same block at a height.
                for other in &self.commits {
                    if let Some((h, _)) = other.get(&height) {
                        assert_eq!(*h, block_hash, "two blocks committed at {height}");
                    }
                }
                self.head[i] = height;
                self.commits[i].insert(height, (block_hash, certificate));
            }
        }
    }

    /// The host's sync: hands each replica that asked the finalized blocks others have,
    /// in order, as soon as they exist.
    fn serve_syncs(&mut self) {
        for i in 0..self.engines.len() {
            while self.head[i] < self.want[i] && !self.down.contains(&(i as u32)) {
                let h = self.head[i] + 1;
                let Some((hash, cert)) = self.commits.iter().find_map(|c| c.get(&h)).cloned()
                else {
                    break;
                };
                cert.verify(&self.committee.validators, h, &hash).unwrap();
                self.head[i] = h;
                self.deliver(
                    i as u32,
                    Input::Synced {
                        height: h,
                        block_hash: hash,
                        certificate: cert,
                    },
                );
            }
        }
    }

    /// Delivers queued inputs until `done` holds (or the queue empties).
    fn run_until(&mut self, done: impl Fn(&Net) -> bool) {
        while !done(self) {
            let Some((to, input)) = self.queue.pop_front() else {
                return;
            };
            self.step(to, input);
        }
    }

    fn step(&mut self, to: u32, input: Input) {
        self.steps += 1;
        assert!(self.steps < 2_000_000, "the pump does not converge");
        self.deliver(to, input);
        self.serve_syncs();
    }

    /// Crashes replica `i` and restarts it from its persisted state.
    fn restart(&mut self, i: u32) {
        let config = self.committee.configs[i as usize].clone();
        self.engines[i as usize] = PbftEngine::new(config).unwrap();
        self.timers[i as usize].clear();
        self.queue.retain(|(to, _)| *to != i);
        let persisted = self.persisted[i as usize].clone();
        let next_height = self.head[i as usize] + 1;
        self.deliver(
            i,
            Input::Start {
                next_height,
                persisted,
            },
        );
    }

    fn run_until_quiet(&mut self) {
        self.run_until(|_| false);
    }

    fn live(&self) -> Vec<u32> {
        (0..self.n()).filter(|i| !self.down.contains(i)).collect()
    }

    fn run_until_height(&mut self, height: u64) {
        let live = self.live();
        self.run_until(|net| live.iter().all(|i| net.head[*i as usize] >= height));
        for i in live {
            assert!(
                self.head[i as usize] >= height,
                "replica {i} stuck at {} (wanted {height})",
                self.head[i as usize]
            );
        }
    }

    /// Fires the pending timers of `nodes` that `which` selects.
    fn fire(&mut self, nodes: &[u32], which: impl Fn(&TimerId) -> bool) {
        for &node in nodes {
            let ids: Vec<TimerId> = self.timers[node as usize]
                .iter()
                .filter(|id| which(id))
                .copied()
                .collect();
            for id in ids {
                self.timers[node as usize].remove(&id);
                self.deliver(node, Input::Timeout(id));
                self.serve_syncs();
            }
        }
    }

    fn fire_rounds(&mut self, nodes: &[u32]) {
        self.fire(nodes, |id| matches!(id, TimerId::Round { .. }));
    }
}

#[test]
fn n4_all_honest_commits_twenty_heights() {
    let mut net = Net::new(4, |_| {});
    net.start_all();
    net.run_until_height(20);
    for h in 1..=20 {
        let (hash, cert) = &net.commits[0][&h];
        for i in 1..4 {
            assert_eq!(&net.commits[i][&h].0, hash, "height {h}");
        }
        assert_eq!(cert.view, 0);
    }
    assert!(net.faulty.is_empty() && net.syncs.is_empty());
    // The leader proposed every height exactly once.
    let heights: Vec<u64> = net.pre_prepares[0].iter().map(|p| p.1).collect();
    assert_eq!(heights, (1..=heights.len() as u64).collect::<Vec<_>>());
}

#[test]
fn n1_commits_alone() {
    let mut net = Net::new(1, |_| {});
    net.start_all();
    net.run_until_height(5);
    assert_eq!(net.commits[0].len(), 5);
}

#[test]
fn n7_commits_with_the_larger_quorum() {
    let mut net = Net::new(7, |_| {});
    net.start_all();
    net.run_until_height(6);
}

#[test]
fn window_keeps_several_heights_in_flight() {
    let mut net = Net::new(4, |_| {});
    net.start_all();
    net.run_until_height(12);
    assert_eq!(net.max_in_flight, 4, "the leader fills its window of 4");

    let mut net = Net::new(4, |c| c.window = 1);
    net.start_all();
    net.run_until_height(12);
    assert_eq!(net.max_in_flight, 1);
}

#[test]
fn checkpoints_garbage_collect_the_log() {
    let (k, w) = (4, 2);
    let mut net = Net::new(4, |c| {
        c.checkpoint_interval = k;
        c.window = w;
    });
    net.start_all();
    net.run_until_height(60);
    for e in &net.engines {
        let stable = e.stable_height();
        assert!(stable >= 52, "stable checkpoint {stable}");
        assert_eq!(stable % k, 0);
        assert!(e.slots.keys().all(|h| *h > stable));
        assert!(
            e.slots.len() as u64 <= e.log_size + 2 * w,
            "{} slots",
            e.slots.len()
        );
        assert!(e.checkpoint_votes.keys().all(|h| *h > stable));
        assert!(e.checkpoint_votes.len() <= 3);
    }
    // The persisted state stays small too.
    for p in &net.persisted {
        let p = p.as_ref().unwrap();
        let state = PersistedState::decode(p).unwrap();
        assert!(
            state.slots.len() as u64 <= 2 * k + w,
            "{}",
            state.slots.len()
        );
    }
}

#[test]
fn silent_leader_is_replaced_by_a_view_change() {
    let mut net = Net::new(4, |_| {});
    net.down.insert(0);
    net.start_all();
    net.run_until_quiet();
    assert!(net.commits.iter().all(|c| c.is_empty()));
    net.fire_rounds(&[1, 2, 3]);
    net.run_until_height(10);
    assert_eq!(net.new_views.len(), 1);
    assert_eq!(net.new_views[0].view, 1);
    for i in 1..4 {
        assert!(net.commits[i].values().all(|(_, c)| c.view == 1));
        assert_eq!(net.engines[i].view, 1);
        assert!(net.engines[i].active);
    }
}

#[test]
fn leader_failing_midway_is_replaced_and_history_is_kept() {
    let mut net = Net::new(4, |_| {});
    net.start_all();
    net.run_until_height(5);
    net.down.insert(0);
    net.run_until_quiet();
    net.fire_rounds(&[1, 2, 3]);
    net.run_until_height(15);
    // Carry_out checks that all replicas agree at every height; the old leader's committed
    // heights were not touched.
    for h in 1..=5 {
        assert_eq!(net.commits[1][&h].0, net.commits[0][&h].0);
    }
}

#[test]
fn prepared_block_is_reproposed_in_the_next_view() {
    let mut net = Net::new(4, |_| {});
    net.drop_phase = Some(Phase::Commit);
    net.start_all();
    net.run_until_quiet();
    // Heights 1..=4 prepared everywhere, committed nowhere.
    assert!(net.commits.iter().all(|c| c.is_empty()));
    let proposed: Vec<(u64, Hash)> = net.pre_prepares[0].iter().map(|p| (p.1, p.2)).collect();
    assert_eq!(proposed.len(), 4);
    for e in &net.engines {
        for (h, hash) in &proposed {
            let p = e.slots[h].prepared.as_ref().unwrap();
            assert_eq!((p.view(), p.block_hash()), (0, *hash));
        }
    }
    net.drop_phase = None;
    net.fire_rounds(&[0, 1, 2, 3]);
    net.run_until_height(8);
    let nv = &net.new_views[0];
    assert_eq!(nv.view, 1);
    let reproposed: Vec<(u64, Hash)> = nv
        .pre_prepares
        .iter()
        .map(|pp| (pp.height, pp.block_hash))
        .collect();
    assert_eq!(reproposed, proposed);
    for i in 0..4 {
        for (h, hash) in &proposed {
            let (got, cert) = &net.commits[i][h];
            assert_eq!(got, hash);
            assert_eq!(cert.view, 1);
        }
    }
}

#[test]
fn new_view_stops_at_the_first_unprepared_height() {
    // Prepared certificates for heights 1 and 3 but none for 2: only 1 is re-proposed.
    let c = committee(4);
    let cert = |h: u64, hash: Hash| {
        let pp = PrePrepare::sign(0, h, hash, &c.configs[0].key);
        let prepares = (1..3)
            .map(|i| Vote::sign_ed25519(Phase::Prepare, h, 0, hash, i, &c.configs[i as usize].key))
            .collect();
        PreparedCert {
            pre_prepare: pp,
            prepares,
        }
    };
    let vcs: Vec<ViewChange> = (1..4)
        .map(|i| {
            ViewChange::sign(
                1,
                i,
                None,
                vec![cert(1, digest("b", 1)), cert(3, digest("b", 3))],
                &c.configs[i as usize].key,
            )
        })
        .collect();
    for vc in &vcs {
        vc.verify(&c.validators, 100).unwrap();
    }
    let plan = super::view_change::plan(&vcs, 100);
    assert_eq!(plan.reproposals, vec![(1, digest("b", 1), 0)]);
}

#[test]
fn f_plus_one_view_changes_pull_the_others_along() {
    let mut net = Net::new(4, |_| {});
    net.start_all();
    net.run_until_height(3);
    // Only replicas 2 and 3 (f + 1) time out; 0 and 1 join without their timers.
    net.fire_rounds(&[2, 3]);
    net.run_until_height(8);
    for e in &net.engines {
        assert_eq!(e.view, 1);
        assert!(e.active);
    }
}

#[test]
fn failed_view_change_moves_on_with_a_doubled_timeout() {
    let mut net = Net::new(4, |_| {});
    net.down.insert(1); // the leader of view 1
    net.start_all();
    net.run_until_height(2);
    net.fire_rounds(&[0, 2, 3]);
    net.run_until_quiet();
    for i in [0usize, 2, 3] {
        assert_eq!(net.engines[i].view, 1);
        assert!(!net.engines[i].active);
        assert!(net.timers[i].contains(&TimerId::ViewChange { view: 1 }));
    }
    let base = Timing::default().view_change_timeout_ms;
    assert!(
        net.timers_set
            .iter()
            .filter(|t| t.1 == TimerId::ViewChange { view: 1 })
            .all(|t| t.2 == base)
    );
    // The view change to 1 times out: on to view 2, whose timer is twice as long.
    net.fire(&[0, 2, 3], |id| *id == TimerId::ViewChange { view: 1 });
    net.run_until_height(6);
    let doubled: Vec<u64> = net
        .timers_set
        .iter()
        .filter(|t| t.1 == TimerId::ViewChange { view: 2 })
        .map(|t| t.2)
        .collect();
    assert!(!doubled.is_empty() && doubled.iter().all(|t| *t == 2 * base));
    for i in [0usize, 2, 3] {
        assert_eq!(net.engines[i].view, 2);
    }
    assert!(net.commits[2][&6].1.view == 2);
}

#[test]
fn lagging_replica_catches_up_by_sync() {
    let mut net = Net::new(4, |c| {
        c.checkpoint_interval = 4;
        c.window = 2;
    });
    net.start_all();
    net.run_until_height(3);
    net.down.insert(3);
    net.run_until(|n| n.head[0] >= 30);
    net.down.remove(&3);
    // Replica 3 missed everything from 3 or so on; the next checkpoint and commit quorums
    // tell it to sync, and it rejoins.
    net.run_until(|n| n.head[3] >= 40);
    assert!(net.head[3] >= 40, "replica 3 stuck at {}", net.head[3]);
    assert!(net.syncs.iter().any(|(i, _)| *i == 3));
    // The synced heights were not committed by replica 3 itself.
    assert!(!net.commits[3].contains_key(&20));
    // ... and then committed on its own again.
    assert!(net.commits[3].contains_key(&40));
}

/// A single follower (replica 1 of 4) and the keys to talk to it.
fn follower() -> (Committee, PbftEngine) {
    let c = committee(4);
    let mut e = PbftEngine::new(c.configs[1].clone()).unwrap();
    let out = e.handle(Input::Start {
        next_height: 1,
        persisted: None,
    });
    assert_eq!(
        out,
        vec![Output::SetTimer {
            id: TimerId::Round { height: 1, view: 0 },
            after_ms: Timing::default().round_timeout_ms
        }]
    );
    (c, e)
}

fn msg(from: u32, payload: Vec<u8>) -> Input {
    Input::Message { from, payload }
}

fn complaint(c: &Committee, voter: u32, h: u64, view: u64) -> Vec<u8> {
    Vote::sign_ed25519(
        Phase::Timeout,
        h,
        view,
        Hash::ZERO,
        voter,
        &c.configs[voter as usize].key,
    )
    .encode()
}

fn prepare(c: &Committee, voter: u32, h: u64, view: u64, hash: Hash) -> Vec<u8> {
    Vote::sign_ed25519(
        Phase::Prepare,
        h,
        view,
        hash,
        voter,
        &c.configs[voter as usize].key,
    )
    .encode()
}

#[test]
fn follower_votes_only_after_verification_and_persists_first() {
    let (c, mut e) = follower();
    let d1 = digest("b", 1);
    let pp = PrePrepare::sign(0, 1, d1, &c.configs[0].key);
    let out = e.handle(msg(0, pp.encode()));
    assert_eq!(
        out,
        vec![Output::VerifyProposal {
            height: 1,
            view: 0,
            block_hash: d1,
            proposer: 0
        }]
    );
    // A duplicate asks nothing again.
    assert!(e.handle(msg(0, pp.encode())).is_empty());
    let out = e.handle(Input::ProposalVerified {
        height: 1,
        view: 0,
        block_hash: d1,
        valid: true,
    });
    assert_eq!(out.len(), 2);
    assert!(matches!(out[0], Output::Persist { .. }));
    assert_eq!(
        out[1],
        Output::Broadcast {
            payload: prepare(&c, 1, 1, 0, d1)
        }
    );
    // One more prepare (from 2) prepares height 1: commit vote, persisted first.
    let out = e.handle(msg(2, prepare(&c, 2, 1, 0, d1)));
    assert!(matches!(out[0], Output::Persist { .. }));
    let commit = Vote::sign_ed25519(Phase::Commit, 1, 0, d1, 1, &c.configs[1].key);
    assert_eq!(
        out[1..],
        [Output::Broadcast {
            payload: commit.encode()
        }]
    );
    // Commits from 0 and 2 complete the quorum: the block is committed, certificate sorted.
    assert!(
        e.handle(msg(
            2,
            Vote::sign_ed25519(Phase::Commit, 1, 0, d1, 2, &c.configs[2].key).encode()
        ))
        .is_empty()
    );
    let out = e.handle(msg(
        0,
        Vote::sign_ed25519(Phase::Commit, 1, 0, d1, 0, &c.configs[0].key).encode(),
    ));
    // The decided digest is persisted with the commit.
    assert!(matches!(out[0], Output::Persist { .. }));
    let Output::Commit {
        height: 1,
        block_hash,
        certificate,
    } = &out[1]
    else {
        panic!("expected a commit, got {out:?}");
    };
    assert_eq!(*block_hash, d1);
    certificate.verify(&c.validators, 1, &d1).unwrap();
    let Proof::Signatures(sigs) = &certificate.proof else {
        panic!()
    };
    assert_eq!(sigs.iter().map(|s| s.0).collect::<Vec<_>>(), vec![0, 1, 2]);
    assert_eq!(
        out[2..],
        [
            Output::CancelTimer {
                id: TimerId::Round { height: 1, view: 0 }
            },
            Output::SetTimer {
                id: TimerId::Round { height: 2, view: 0 },
                after_ms: Timing::default().round_timeout_ms
            }
        ]
    );
}

#[test]
fn restart_never_votes_for_a_different_block() {
    let (c, mut e) = follower();
    let (d1, d2) = (digest("b", 1), digest("b", 2));
    e.handle(msg(
        0,
        PrePrepare::sign(0, 1, d1, &c.configs[0].key).encode(),
    ));
    let out = e.handle(Input::ProposalVerified {
        height: 1,
        view: 0,
        block_hash: d1,
        valid: true,
    });
    let Output::Persist { state } = &out[0] else {
        panic!("persist first: {out:?}")
    };
    let state = state.clone();
    // Crash and restart from the persisted state: the same prepare goes out again.
    let mut e = PbftEngine::new(c.configs[1].clone()).unwrap();
    let out = e.handle(Input::Start {
        next_height: 1,
        persisted: Some(state),
    });
    assert!(out.contains(&Output::Broadcast {
        payload: prepare(&c, 1, 1, 0, d1)
    }));
    // The node is asked to check the block again (it may have lost its candidates).
    assert!(out.contains(&Output::VerifyProposal {
        height: 1,
        view: 0,
        block_hash: d1,
        proposer: 0
    }));
    // The leader equivocates: the second block is refused and the leader reported.
    let out = e.handle(msg(
        0,
        PrePrepare::sign(0, 1, d2, &c.configs[0].key).encode(),
    ));
    assert!(
        matches!(&out[..], [Output::Faulty { validator: 0, .. }]),
        "{out:?}"
    );
    let out = e.handle(Input::ProposalVerified {
        height: 1,
        view: 0,
        block_hash: d2,
        valid: true,
    });
    assert!(out.is_empty(), "{out:?}");
    assert!(
        e.handle(Input::ProposalVerified {
            height: 1,
            view: 0,
            block_hash: d1,
            valid: true,
        })
        .is_empty()
    );
    // Prepared and committed state survives too: after a second restart the view change
    // reports the prepared certificate for d1.
    let out = e.handle(msg(2, prepare(&c, 2, 1, 0, d1)));
    let Output::Persist { state } = &out[0] else {
        panic!()
    };
    let mut e = PbftEngine::new(c.configs[1].clone()).unwrap();
    let out = e.handle(Input::Start {
        next_height: 1,
        persisted: Some(state.clone()),
    });
    let commit = Vote::sign_ed25519(Phase::Commit, 1, 0, d1, 1, &c.configs[1].key);
    assert!(out.contains(&Output::Broadcast {
        payload: commit.encode()
    }));
    // The timeout alone is a complaint (f = 1: one more replica must complain) ...
    let out = e.handle(Input::Timeout(TimerId::Round { height: 1, view: 0 }));
    assert_eq!(
        out,
        vec![
            Output::Broadcast {
                payload: complaint(&c, 1, 1, 1)
            },
            Output::SetTimer {
                id: TimerId::Round { height: 1, view: 0 },
                after_ms: Timing::default().round_timeout_ms
            }
        ]
    );
    // ... and with replica 2's, the view change starts.
    let out = e.handle(msg(2, complaint(&c, 2, 1, 1)));
    let vc = out
        .iter()
        .find_map(|o| match o {
            Output::Broadcast { payload } => match Message::decode(payload) {
                Some(Message::ViewChange(vc)) => Some(vc),
                _ => None,
            },
            _ => None,
        })
        .unwrap();
    assert_eq!(vc.new_view, 1);
    assert_eq!(vc.prepared.len(), 1);
    assert_eq!(vc.prepared[0].block_hash(), d1);
    assert!(matches!(out[0], Output::Persist { .. }));
    // Restarting in the middle of the view change stays in it and asks again.
    let Output::Persist { state } = &out[0] else {
        panic!()
    };
    let mut e = PbftEngine::new(c.configs[1].clone()).unwrap();
    let out = e.handle(Input::Start {
        next_height: 1,
        persisted: Some(state.clone()),
    });
    assert_eq!(
        out,
        vec![
            Output::Broadcast {
                payload: vc.encode()
            },
            Output::SetTimer {
                id: TimerId::ViewChange { view: 1 },
                after_ms: Timing::default().view_change_timeout_ms
            }
        ]
    );
    assert_eq!((e.view, e.active), (1, false));
    // View 0's leader can no longer get a vote out of it.
    let out = e.handle(msg(
        0,
        PrePrepare::sign(0, 2, d2, &c.configs[0].key).encode(),
    ));
    assert!(out.is_empty());
}

#[test]
fn unreadable_persisted_state_halts_the_engine() {
    let c = committee(4);
    let mut e = PbftEngine::new(c.configs[1].clone()).unwrap();
    let out = e.handle(Input::Start {
        next_height: 1,
        persisted: Some(vec![9, 9, 9]),
    });
    assert!(matches!(&out[..], [Output::Faulty { validator: 1, .. }]));
    let pp = PrePrepare::sign(0, 1, digest("b", 1), &c.configs[0].key);
    assert!(e.handle(msg(0, pp.encode())).is_empty());
}

#[test]
fn byzantine_messages_are_ignored_or_reported() {
    let (c, mut e) = follower();
    let (d1, d2) = (digest("b", 1), digest("b", 2));
    // A pre-prepare from a replica that does not lead the view.
    let forged = PrePrepare::sign(0, 1, d1, &c.configs[2].key);
    assert!(e.handle(msg(2, forged.encode())).is_empty());
    // From the leader's link but not its signature.
    let out = e.handle(msg(0, forged.encode()));
    assert!(matches!(&out[..], [Output::Faulty { validator: 0, .. }]));
    // Conflicting pre-prepares: the first stands, the second is reported.
    let out = e.handle(msg(
        0,
        PrePrepare::sign(0, 1, d1, &c.configs[0].key).encode(),
    ));
    assert_eq!(out.len(), 1);
    let out = e.handle(msg(
        0,
        PrePrepare::sign(0, 1, d2, &c.configs[0].key).encode(),
    ));
    assert!(matches!(&out[..], [Output::Faulty { validator: 0, .. }]));
    // A vote with a bad signature.
    let mut bad = Vote::sign_ed25519(Phase::Prepare, 1, 0, d1, 2, &c.configs[2].key);
    bad.block_hash = d2;
    let out = e.handle(msg(2, bad.encode()));
    assert!(matches!(&out[..], [Output::Faulty { validator: 2, .. }]));
    // A vote relayed for someone else, and the leader's prepare: ignored.
    assert!(e.handle(msg(3, prepare(&c, 2, 1, 0, d1))).is_empty());
    assert!(e.handle(msg(0, prepare(&c, 0, 1, 0, d1))).is_empty());
    // Duplicates count once; an equivocating voter is reported.
    assert!(e.handle(msg(2, prepare(&c, 2, 1, 0, d1))).is_empty());
    assert!(e.handle(msg(2, prepare(&c, 2, 1, 0, d1))).is_empty());
    assert_eq!(e.slots[&1].prepares.len(), 1);
    let out = e.handle(msg(2, prepare(&c, 2, 1, 0, d2)));
    assert!(matches!(&out[..], [Output::Faulty { validator: 2, .. }]));
    // Stale and far-future views, far-future heights: nothing stored.
    let slots = e.slots.len();
    assert!(e.handle(msg(2, prepare(&c, 2, 2, 5, d1))).is_empty());
    assert!(e.handle(msg(2, prepare(&c, 2, 1_000, 0, d1))).is_empty());
    assert!(e.handle(msg(2, prepare(&c, 2, u64::MAX, 0, d1))).is_empty());
    assert_eq!(e.slots.len(), slots);
    // A valid pre-prepare far beyond the window: the leader is ahead, sync.
    let far = PrePrepare::sign(0, 1_000, d1, &c.configs[0].key);
    let out = e.handle(msg(0, far.encode()));
    assert_eq!(
        out,
        vec![Output::Sync {
            peer: 0,
            up_to_height: 1_000 - 4
        }]
    );
    // ... once.
    assert!(e.handle(msg(0, far.encode())).is_empty());
    assert_eq!(e.slots.len(), slots);
    // A view change whose certificate does not verify is reported; one for an old view
    // is dropped.
    let mut vc = ViewChange::sign(1, 2, None, vec![], &c.configs[2].key);
    vc.new_view = 2;
    let out = e.handle(msg(2, vc.encode()));
    assert!(matches!(&out[..], [Output::Faulty { validator: 2, .. }]));
    let old = ViewChange::sign(0, 2, None, vec![], &c.configs[2].key);
    assert!(e.handle(msg(2, old.encode())).is_empty());
    // A new view without a quorum of view changes.
    let nv = NewView {
        view: 1,
        view_changes: vec![ViewChange::sign(1, 2, None, vec![], &c.configs[2].key)],
        pre_prepares: vec![],
    };
    let out = e.handle(msg(2, nv.encode()));
    assert!(matches!(&out[..], [Output::Faulty { validator: 2, .. }]));
    assert_eq!(e.view, 0);
}

#[test]
fn new_view_with_wrong_reproposals_is_rejected() {
    let (c, mut e) = follower();
    let vcs: Vec<ViewChange> = [0u32, 2, 3]
        .iter()
        .map(|i| ViewChange::sign(1, *i, None, vec![], &c.configs[*i as usize].key))
        .collect();
    // Nothing was prepared, yet the leader slips in a block.
    let nv = NewView {
        view: 1,
        view_changes: vcs.clone(),
        pre_prepares: vec![PrePrepare::sign(1, 1, digest("b", 9), &c.configs[1].key)],
    };
    let out = e.handle(msg(2, nv.encode()));
    assert!(
        matches!(&out[..], [Output::Faulty { validator: 2, .. }]),
        "{out:?}"
    );
    // The honest new view is accepted (replica 1 leads view 1: it asks for a block).
    let nv = NewView {
        view: 1,
        view_changes: vcs,
        pre_prepares: vec![],
    };
    let out = e.handle(msg(2, nv.encode()));
    assert!(
        out.contains(&Output::RequestProposal { height: 1, view: 1 }),
        "{out:?}"
    );
    assert_eq!((e.view, e.active), (1, true));
}

#[test]
fn stable_checkpoint_above_us_asks_to_sync_and_synced_heights_are_not_committed() {
    let (c, mut e) = follower();
    let cp_hash = digest("b", 16);
    let mut outs = Vec::new();
    for i in [0u32, 2, 3] {
        let v = Vote::sign_ed25519(
            Phase::Checkpoint,
            16,
            0,
            cp_hash,
            i,
            &c.configs[i as usize].key,
        );
        outs.extend(e.handle(msg(i, v.encode())));
    }
    // f + 1 = 2 votes already ask for the sync; the quorum makes the checkpoint stable (and
    // persisted) without asking again.
    let syncs: Vec<&Output> = outs
        .iter()
        .filter(|o| matches!(o, Output::Sync { .. }))
        .collect();
    assert_eq!(
        syncs,
        [&Output::Sync {
            peer: 0,
            up_to_height: 16
        }]
    );
    assert!(outs.iter().any(|o| matches!(o, Output::Persist { .. })));
    assert_eq!(e.stable_height(), 16);
    for h in 1..=16 {
        let hash = if h == 16 { cp_hash } else { digest("b", h) };
        let out = e.handle(Input::Synced {
            height: h,
            block_hash: hash,
            certificate: Certificate {
                height: h,
                view: 0,
                block_hash: hash,
                proof: Proof::Signatures(vec![]),
            },
        });
        assert!(
            out.iter()
                .all(|o| !matches!(o, Output::Commit { .. } | Output::Sync { .. }))
        );
    }
    assert_eq!(e.next_height, 17);
}

#[test]
fn f_plus_one_matching_checkpoints_above_us_ask_to_sync() {
    let (c, mut e) = follower();
    let vote = |i: u32, h: u64, hash: Hash| {
        msg(
            i,
            Vote::sign_ed25519(Phase::Checkpoint, h, 0, hash, i, &c.configs[i as usize].key)
                .encode(),
        )
    };
    // One vote (possibly byzantine) proves nothing; two votes for different blocks neither.
    assert_eq!(e.handle(vote(3, 16, digest("b", 16))), vec![]);
    assert_eq!(e.handle(vote(2, 16, digest("x", 16))), vec![]);
    // f + 1 = 2 matching votes: a correct replica committed height 32 and we are behind.
    assert_eq!(e.handle(vote(3, 32, digest("b", 32))), vec![]);
    assert_eq!(
        e.handle(vote(2, 32, digest("b", 32))),
        vec![Output::Sync {
            peer: 2,
            up_to_height: 32
        }]
    );
    assert_eq!(
        e.stable_height(),
        0,
        "f + 1 votes are not a stable checkpoint"
    );
    // Asked once per target.
    assert_eq!(e.handle(vote(0, 32, digest("z", 32))), vec![]);
}

/// A tiny deterministic generator for garbage.
struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn garbage_payloads_never_panic_and_produce_nothing_but_faulty() {
    let (c, mut e) = follower();
    let d1 = digest("b", 1);
    let pp = PrePrepare::sign(0, 1, d1, &c.configs[0].key);
    let cert = PreparedCert {
        pre_prepare: pp.clone(),
        prepares: vec![
            Vote::sign_ed25519(Phase::Prepare, 1, 0, d1, 2, &c.configs[2].key),
            Vote::sign_ed25519(Phase::Prepare, 1, 0, d1, 3, &c.configs[3].key),
        ],
    };
    let vc = ViewChange::sign(5, 2, None, vec![cert], &c.configs[2].key);
    let nv = NewView {
        view: 5,
        view_changes: vec![vc.clone(), vc.clone()],
        pre_prepares: vec![pp.clone()],
    };
    let valid = [
        prepare(&c, 2, 1, 0, d1),
        Vote::sign_ed25519(Phase::Commit, 2, 0, d1, 2, &c.configs[2].key).encode(),
        pp.encode(),
        vc.encode(),
        nv.encode(),
    ];
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut payloads: Vec<Vec<u8>> = Vec::new();
    for v in &valid {
        for len in 0..v.len() {
            payloads.push(v[..len].to_vec());
        }
        for _ in 0..64 {
            let mut x = v.clone();
            let i = (rng.next() as usize) % x.len();
            x[i] ^= 1 << (rng.next() % 8);
            payloads.push(x);
        }
        let mut longer = v.clone();
        longer.push(0);
        payloads.push(longer);
    }
    for _ in 0..500 {
        let len = (rng.next() % 300) as usize;
        let mut x: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        // Make some of them look like our messages.
        if let Some(first) = x.first_mut() {
            *first = [1u8, 16, 17, 18, 0][(rng.next() % 5) as usize];
        }
        payloads.push(x);
    }
    // Huge counts in a short message.
    payloads.push(vec![18, 1, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
    payloads.push(vec![
        17, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff,
    ]);
    for p in payloads {
        for from in [0u32, 2, 3, 1, 4, 99] {
            for o in e.handle(msg(from, p.clone())) {
                assert!(matches!(o, Output::Faulty { .. }), "{o:?} from {p:?}");
            }
        }
    }
    assert!(e.slots.len() <= 2 * 4 + 1);
    assert_eq!(e.view, 0);
}

#[test]
fn messages_and_state_round_trip() {
    let c = committee(4);
    let d1 = digest("b", 1);
    let pp = PrePrepare::sign(3, 7, d1, &c.configs[3].key);
    let cert = PreparedCert {
        pre_prepare: pp.clone(),
        prepares: vec![Vote::sign_ed25519(
            Phase::Prepare,
            7,
            3,
            d1,
            1,
            &c.configs[1].key,
        )],
    };
    let cp = CheckpointProof {
        height: 4,
        block_hash: d1,
        votes: vec![Vote::sign_ed25519(
            Phase::Checkpoint,
            4,
            0,
            d1,
            0,
            &c.configs[0].key,
        )],
    };
    let vc = ViewChange::sign(
        4,
        2,
        Some(cp.clone()),
        vec![cert.clone()],
        &c.configs[2].key,
    );
    let nv = NewView {
        view: 4,
        view_changes: vec![vc.clone()],
        pre_prepares: vec![pp.clone()],
    };
    assert_eq!(
        Message::decode(&pp.encode()),
        Some(Message::PrePrepare(pp.clone()))
    );
    assert_eq!(
        Message::decode(&vc.encode()),
        Some(Message::ViewChange(vc.clone()))
    );
    assert_eq!(Message::decode(&nv.encode()), Some(Message::NewView(nv)));
    let state = PersistedState {
        view: 4,
        active: false,
        stable: Some(cp),
        slots: vec![(
            7,
            super::log::PersistedSlot {
                voted: Some(pp),
                commit_sent: Some((3, d1)),
                prepared: Some(cert),
            },
        )],
        decided: vec![(6, d1)],
    };
    assert_eq!(PersistedState::decode(&state.encode()).unwrap(), state);
}

#[test]
fn crashed_replicas_restart_from_their_persisted_state() {
    let mut net = Net::new(4, |_| {});
    net.start_all();
    net.run_until_height(5);
    // A follower crashes (losing its queue) and restarts.
    net.restart(2);
    net.run_until_height(12);
    // The leader crashes and restarts: it resends its pre-prepares and continues.
    net.restart(0);
    net.run_until_height(20);
    assert!(net.faulty.is_empty(), "{:?}", net.faulty);
}

/// Random delivery order, drops, and timers firing at random; then a calm phase in which
/// everything is delivered and, whenever nothing moves, every pending timer fires. Safety
/// is checked on every commit (`carry_out`); the calm phase must make progress.
fn random_schedule(seed: u64, equivocator: Option<u32>) -> Net {
    let mut net = Net::new(4, |c| {
        c.window = 3;
        c.checkpoint_interval = 4;
    });
    net.equivocator = equivocator;
    let mut rng = XorShift(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    net.start_all();
    for _ in 0..4_000 {
        let r = rng.next() % 100;
        if r < 2 || net.queue.is_empty() {
            let node = (rng.next() % 4) as u32;
            let pick = rng.next() as usize;
            let ids: Vec<TimerId> = net.timers[node as usize].iter().copied().collect();
            if !ids.is_empty() {
                let id = ids[pick % ids.len()];
                net.fire(&[node], |t| *t == id);
            }
        } else if r < 7 {
            let i = rng.next() as usize % net.queue.len();
            net.queue.remove(i);
        } else if r < 8 {
            net.restart((rng.next() % 4) as u32);
        } else {
            let i = rng.next() as usize % net.queue.len();
            if let Some((to, input)) = net.queue.remove(i) {
                net.step(to, input);
            }
        }
    }
    let honest: Vec<usize> = (0..4).filter(|i| Some(*i as u32) != equivocator).collect();
    let target = net.head.iter().copied().max().unwrap() + 5;
    let mut rounds = 0;
    loop {
        net.run_until(|n| honest.iter().all(|i| n.head[*i] >= target));
        if honest.iter().all(|i| net.head[*i] >= target) {
            return net;
        }
        rounds += 1;
        assert!(
            rounds < 60,
            "seed {seed}: no progress, heads {:?}, views {:?}",
            net.head,
            net.engines
                .iter()
                .map(|e| (e.view, e.active))
                .collect::<Vec<_>>()
        );
        net.fire(&[0, 1, 2, 3], |_| true);
    }
}

#[test]
fn random_schedules_stay_safe_and_recover() {
    for seed in 1..=12 {
        random_schedule(seed, None);
    }
}

#[test]
fn random_schedules_with_an_equivocating_replica_stay_safe() {
    let mut reported = 0;
    for seed in 1..=8 {
        let net = random_schedule(seed, Some(3));
        // Only the equivocator is ever reported.
        assert!(net.faulty.iter().all(|f| f.1 == 3), "{:?}", net.faulty);
        reported += net.faulty.len();
    }
    assert!(reported > 0);
}

#[test]
fn a_replica_that_times_out_alone_stays_in_the_view() {
    let mut net = Net::new(4, |_| {});
    // The leader of view 0 starts last; replica 3's timer fires before it is up.
    net.down.insert(0);
    net.start_all();
    net.fire_rounds(&[3]);
    net.run_until_quiet();
    assert!(net.engines[3].active && net.engines[3].view == 0);
    assert!(net.engines.iter().all(|e| e.view == 0));
    net.down.remove(&0);
    net.deliver(
        0,
        Input::Start {
            next_height: 1,
            persisted: None,
        },
    );
    net.run_until_height(10);
    // Replica 3 committed every height itself, in view 0: no view change happened.
    for h in 1..=10 {
        assert_eq!(net.commits[3][&h].1.view, 0, "height {h}");
    }
    assert!(net.new_views.is_empty());
    assert!(net.syncs.is_empty());
}

#[test]
fn f_plus_one_timeouts_change_the_view() {
    let mut net = Net::new(4, |_| {});
    net.down.insert(0);
    net.start_all();
    // One complaint (f = 1) is not enough ...
    net.fire_rounds(&[1]);
    net.run_until_quiet();
    assert!(net.engines[1..].iter().all(|e| e.active && e.view == 0));
    // ... a second one moves replicas 1 and 2, and replica 3 joins them (§4.5.2).
    net.fire_rounds(&[2]);
    net.run_until_height(5);
    assert_eq!(net.new_views.len(), 1);
    assert_eq!(net.commits[3][&5].1.view, 1);
}

#[test]
fn a_replica_alone_in_a_later_view_follows_the_commits_of_the_others() {
    let mut net = Net::new(4, |_| {});
    net.start_all();
    net.run_until_height(2);
    // Replica 3 counts a complaint only it received (a byzantine replica 2 sent it to 3
    // alone) with its own, and leaves view 0; the others carry on without it.
    net.fire_rounds(&[3]);
    let lone = Vote::sign_ed25519(
        Phase::Timeout,
        net.engines[3].next_height,
        1,
        Hash::ZERO,
        2,
        &net.committee.configs[2].key,
    );
    net.step(3, msg(2, lone.encode()));
    assert!(!net.engines[3].active && net.engines[3].view == 1);
    net.run_until(|n| n.head[0] >= 12);
    assert!(net.engines.iter().take(3).all(|e| e.view == 0));
    // Without the catching-up rule replica 3 would wait for the next stable checkpoint
    // (height 16) to sync; with it, each commit quorum of view 0 takes it along.
    let lag = net.head[0] - net.head[3];
    assert!(
        lag <= 1,
        "replica 3 at {} while replica 0 is at {}",
        net.head[3],
        net.head[0]
    );
    assert!(net.syncs.iter().filter(|(i, _)| *i == 3).count() >= 9);
    assert!(!net.engines[3].active);
}
