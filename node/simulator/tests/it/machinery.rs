//! The simulator itself, driven by small engines written here and by the toy engine: the
//! link model, partitions, timers, crashes, determinism, byzantine distortions and the
//! invariant checks.

use std::sync::Arc;

use v2v_consensus::{
    Engine, EngineConfig, Input, Output, Phase, Proof, TAG_VOTE, TimerId, Timing, Vote,
    test_committee,
};
use v2v_consensus_sim::{
    Behaviour, EngineFactory, Invariant, LinkConfig, SimConfig, Simulation, TraceEntry, TraceEvent,
};

use crate::toy::{self, Mode};

// ----- probes -----

const TAG_FLOOD: u8 = 17;

/// Replica 0 broadcasts `count` numbered messages at the start and again when its timer
/// fires at 200 ms; everyone else listens.
struct Flood {
    me: u32,
    count: u32,
}

impl Flood {
    fn burst(&self, base: u32) -> Vec<Output> {
        (0..self.count)
            .map(|i| {
                let mut payload = vec![TAG_FLOOD];
                payload.extend_from_slice(&(base + i).to_le_bytes());
                Output::Broadcast { payload }
            })
            .collect()
    }
}

impl Engine for Flood {
    fn name(&self) -> &'static str {
        "flood"
    }

    fn handle(&mut self, input: Input) -> Vec<Output> {
        if self.me != 0 {
            return Vec::new();
        }
        match input {
            Input::Start { .. } => {
                let mut out = self.burst(0);
                out.push(Output::SetTimer {
                    id: TimerId::ViewChange { view: 1 },
                    after_ms: 200,
                });
                out
            }
            Input::Timeout(_) => self.burst(1_000_000),
            _ => Vec::new(),
        }
    }
}

fn flood(count: u32) -> EngineFactory {
    Arc::new(move |_: &str, c: EngineConfig| {
        Ok(Box::new(Flood { me: c.index, count }) as Box<dyn Engine>)
    })
}

/// Flood message numbers received by `to` from `from`, with their arrival times.
fn received(trace: &[TraceEntry], to: u32, from: u32) -> Vec<(u64, u32)> {
    trace
        .iter()
        .filter(|e| e.replica == to)
        .filter_map(|e| match &e.event {
            TraceEvent::Input(Input::Message { from: f, payload })
                if *f == from && payload.first() == Some(&TAG_FLOOD) =>
            {
                Some((
                    e.time_us,
                    u32::from_le_bytes(payload[1..5].try_into().unwrap()),
                ))
            }
            _ => None,
        })
        .collect()
}

fn traced(n: usize, seed: u64, link: LinkConfig) -> SimConfig {
    let mut c = SimConfig::new("toy", n, seed);
    c.link = link;
    c.record_trace = true;
    c
}

// ----- the network -----

#[test]
fn perfect_links_deliver_everything_once_in_order() {
    let mut sim =
        Simulation::with_factory(traced(4, 1, LinkConfig::fixed(1_000)), &[], flood(200)).unwrap();
    sim.run_until(100).unwrap();
    for to in 1..4 {
        let got = received(sim.trace(), to, 0);
        assert_eq!(got.len(), 200);
        assert!(
            got.iter()
                .enumerate()
                .all(|(i, &(t, m))| t == 1_000 && m == i as u32)
        );
    }
    let s = sim.stats();
    assert_eq!((s.messages_sent, s.delivered, s.lost), (600, 600, 0));
    assert_eq!(s.bytes_sent, 600 * 5);
}

#[test]
fn loss_duplication_and_reordering() {
    let link = LinkConfig {
        latency_us: 1_000,
        jitter_us: 300,
        loss_ppm: 100_000,
        duplicate_ppm: 100_000,
        reorder_ppm: 200_000,
        reorder_extra_us: 5_000,
        per_byte_ns: 0,
    };
    let mut sim = Simulation::with_factory(traced(4, 2, link), &[], flood(2_000)).unwrap();
    sim.run_until(100).unwrap();
    let s = sim.stats().clone();
    assert_eq!(s.messages_sent, 6_000);
    assert!((450..750).contains(&s.lost), "about 10% lost: {s:?}");
    assert!(
        (400..700).contains(&s.duplicated),
        "about 10% duplicated: {s:?}"
    );
    assert_eq!(s.delivered, s.messages_sent - s.lost + s.duplicated);
    for to in 1..4 {
        let got = received(sim.trace(), to, 0);
        assert!(
            got.iter().all(|&(t, _)| (700..=6_300).contains(&t)),
            "every copy within latency ± jitter + the reordering delay"
        );
        let mut numbers: Vec<u32> = got.iter().map(|&(_, m)| m).collect();
        let inversions = numbers.windows(2).filter(|w| w[0] > w[1]).count();
        assert!(inversions > 100, "reordered: {inversions} inversions");
        let total = numbers.len();
        numbers.sort_unstable();
        numbers.dedup();
        assert!(numbers.len() < total, "some duplicates arrive");
        assert!((1_700..1_900).contains(&numbers.len()), "about 90% arrive");
    }
}

#[test]
fn bandwidth_and_slow_replicas_add_delay() {
    let mut link = LinkConfig::fixed(1_000);
    link.per_byte_ns = 200_000; // 5 bytes: 1 ms more
    let mut sim = Simulation::with_factory(
        traced(3, 3, link),
        &[(0, Behaviour::Slow { extra_ms: 7 })],
        flood(1),
    )
    .unwrap();
    sim.run_until(100).unwrap();
    assert_eq!(received(sim.trace(), 1, 0), vec![(9_000, 0)]);
}

#[test]
fn partitions_block_delivery_until_healed() {
    let mut sim =
        Simulation::with_factory(traced(4, 4, LinkConfig::fixed(1_000)), &[], flood(10)).unwrap();
    sim.partition(0, vec![vec![0, 1], vec![2, 3]], 100);
    sim.run_until(150).unwrap();
    assert_eq!(received(sim.trace(), 1, 0).len(), 10, "same side");
    assert!(received(sim.trace(), 2, 0).is_empty(), "other side");
    assert!(received(sim.trace(), 3, 0).is_empty());
    assert_eq!(sim.stats().dropped_partition, 20);
    sim.run_until(300).unwrap();
    for to in 1..4 {
        let late = received(sim.trace(), to, 0);
        assert!(
            late.iter().any(|&(t, m)| t == 201_000 && m == 1_000_000),
            "healed"
        );
    }

    // Messages in flight when a partition starts are dropped when they arrive.
    let mut sim =
        Simulation::with_factory(traced(2, 4, LinkConfig::fixed(1_000)), &[], flood(3)).unwrap();
    sim.isolate(1, 0, 100); // scheduled after Start at time 0: the burst is already on its way
    sim.run_until(150).unwrap();
    assert!(received(sim.trace(), 1, 0).is_empty());
    assert_eq!(sim.stats().dropped_partition, 3);
}

// ----- timers -----

/// Sets, restarts and cancels timers at the start and at its first firing.
struct TimerProbe;

impl Engine for TimerProbe {
    fn name(&self) -> &'static str {
        "timers"
    }

    fn handle(&mut self, input: Input) -> Vec<Output> {
        let round = |h| TimerId::Round { height: h, view: 0 };
        match input {
            Input::Start { .. } => vec![
                Output::SetTimer {
                    id: round(1),
                    after_ms: 10,
                },
                Output::SetTimer {
                    id: round(2),
                    after_ms: 20,
                },
                Output::CancelTimer { id: round(2) },
                Output::SetTimer {
                    id: TimerId::ViewChange { view: 1 },
                    after_ms: 5,
                },
                // Restarted: fires once, at 30 ms.
                Output::SetTimer {
                    id: TimerId::ViewChange { view: 1 },
                    after_ms: 30,
                },
            ],
            Input::Timeout(id) if id == round(1) => vec![
                // Set and cancel again, then a timer set from a timer.
                Output::SetTimer {
                    id: round(3),
                    after_ms: 1,
                },
                Output::CancelTimer { id: round(3) },
                Output::SetTimer {
                    id: round(4),
                    after_ms: 50,
                },
            ],
            _ => Vec::new(),
        }
    }
}

#[test]
fn timers_fire_restart_and_cancel() {
    let factory: EngineFactory =
        Arc::new(|_: &str, _: EngineConfig| Ok(Box::new(TimerProbe) as Box<dyn Engine>));
    let mut sim =
        Simulation::with_factory(traced(1, 5, LinkConfig::fixed(1_000)), &[], factory).unwrap();
    sim.run_until(1_000).unwrap();
    let fired: Vec<(u64, TimerId)> = sim
        .trace()
        .iter()
        .filter_map(|e| match e.event {
            TraceEvent::Input(Input::Timeout(id)) => Some((e.time_us / 1_000, id)),
            _ => None,
        })
        .collect();
    assert_eq!(
        fired,
        vec![
            (10, TimerId::Round { height: 1, view: 0 }),
            (30, TimerId::ViewChange { view: 1 }),
            (60, TimerId::Round { height: 4, view: 0 }),
        ]
    );
    assert_eq!(sim.stats().timers_fired, 3);
    assert_eq!(sim.pending_events(), 0);
}

// ----- the toy engine: commits, sync, crashes -----

fn toy_sim(n: usize, seed: u64, link: LinkConfig, behaviours: &[(u32, Behaviour)]) -> Simulation {
    let mut config = traced(n, seed, link);
    config.timing = Timing::default();
    Simulation::with_factory(config, behaviours, toy::honest()).unwrap()
}

#[test]
fn toy_engine_commits_the_same_blocks_everywhere() {
    let mut sim = toy_sim(4, 6, LinkConfig::default(), &[]);
    assert!(sim.run_until_height(20, 10_000).unwrap());
    let first = sim.commits(0)[..20].to_vec();
    for r in 0..4 {
        let commits = &sim.commits(r)[..20];
        for (i, c) in commits.iter().enumerate() {
            assert_eq!(c.height, i as u64 + 1);
            assert_eq!(c.block_hash, first[i].block_hash);
            assert!(!c.synced);
            c.certificate
                .verify(sim.validators(), c.height, &c.block_hash)
                .unwrap();
        }
    }
    let report = sim.report();
    assert!(report.committed_height >= 20);
    assert_eq!(
        report.signature_certificates as usize,
        report.latency.samples
    );
    assert!(report.latency.p50_ms > 0.0 && report.latency.p50_ms <= report.latency.p95_ms);
    assert!(report.latency.p95_ms <= report.latency.max_ms);
    assert!(report.messages_per_block > 0.0 && report.bytes_per_block > report.messages_per_block);
    assert_eq!(report.digest, sim.digest());
}

#[test]
fn toy_engine_progresses_through_loss_with_retransmission_and_sync() {
    let link = LinkConfig {
        loss_ppm: 200_000,
        duplicate_ppm: 50_000,
        reorder_ppm: 50_000,
        reorder_extra_us: 10_000,
        ..LinkConfig::jittery(2_000, 1_000)
    };
    let mut sim = toy_sim(4, 7, link, &[]);
    assert!(sim.run_until_height(30, 60_000).unwrap());
    assert!(sim.stats().lost > 0);
    assert!(sim.stats().blocks_synced > 0, "laggards caught up by sync");
    assert!((0..4).any(|r| sim.commits(r).iter().any(|c| c.synced)));
}

#[test]
fn crash_recover_restores_persisted_state() {
    let crash = Behaviour::CrashRecover {
        crash_at_ms: 40,
        recover_at_ms: 300,
    };
    let mut sim = toy_sim(4, 8, LinkConfig::default(), &[(2, crash)]);
    sim.run_until(39).unwrap();
    let persisted = sim.durable_state(2).map(<[u8]>::to_vec);
    assert!(persisted.is_some(), "the toy persists before voting");
    let head = sim.head(2);
    assert!(head > 0);

    sim.run_until(299).unwrap();
    assert!(!sim.is_up(2));
    assert_eq!(sim.head(2), head, "a crashed replica commits nothing");
    assert_eq!(sim.durable_state(2).map(<[u8]>::to_vec), persisted);
    let during: Vec<&TraceEntry> = sim
        .trace()
        .iter()
        .filter(|e| e.replica == 2 && (40_000..300_000).contains(&e.time_us))
        .collect();
    assert!(
        matches!(during.as_slice(), [e] if e.event == TraceEvent::Crash),
        "nothing reaches a crashed replica: {during:?}"
    );
    assert!(sim.stats().dropped_down > 0);

    sim.run_until(300).unwrap();
    let restart = sim
        .trace()
        .iter()
        .rev()
        .find(|e| e.replica == 2 && matches!(e.event, TraceEvent::Input(Input::Start { .. })))
        .unwrap();
    assert_eq!(restart.time_us, 300_000);
    assert_eq!(
        restart.event,
        TraceEvent::Input(Input::Start {
            next_height: head + 1,
            persisted,
        })
    );
    // The others kept going; the recovered replica syncs and joins in.
    let target = (0..4).map(|r| sim.head(r)).max().unwrap() + 5;
    assert!(sim.run_until_height(target, 20_000).unwrap());
    assert!(sim.commits(2).iter().any(|c| c.synced));
    let heights: Vec<u64> = sim.commits(2).iter().map(|c| c.height).collect();
    assert_eq!(heights, (1..=heights.len() as u64).collect::<Vec<_>>());
}

#[test]
fn silent_replicas_send_nothing_and_are_not_waited_for() {
    let mut sim = toy_sim(4, 9, LinkConfig::default(), &[(3, Behaviour::Silent)]);
    // The toy needs the leader of every height; replica 3 leads height 3.
    assert!(!sim.run_until_height(3, 5_000).unwrap());
    assert_eq!(sim.live_correct(), vec![0, 1, 2]);
    assert!(sim.trace().iter().all(|e| e.replica != 3));
    assert!(sim.all_correct_reached(2));
}

// ----- determinism -----

fn digest_of(seed: u64) -> (String, u64) {
    let link = LinkConfig {
        loss_ppm: 50_000,
        duplicate_ppm: 50_000,
        reorder_ppm: 50_000,
        reorder_extra_us: 3_000,
        ..LinkConfig::jittery(1_000, 500)
    };
    let mut config = SimConfig::new("toy", 4, seed);
    config.link = link;
    let crash = Behaviour::CrashRecover {
        crash_at_ms: 30,
        recover_at_ms: 90,
    };
    let mut sim = Simulation::with_factory(config, &[(1, crash)], toy::honest()).unwrap();
    sim.run_until(400).unwrap();
    let report = sim.report();
    assert!(report.committed_height > 5);
    (report.digest, report.stats.events)
}

#[test]
fn same_seed_twice_gives_the_same_digest() {
    assert_eq!(digest_of(11), digest_of(11));
}

#[test]
fn different_seeds_give_different_digests() {
    let a = digest_of(11);
    let b = digest_of(12);
    assert_ne!(a.0, b.0);
}

// ----- invariants -----

fn forging_sim(mode_of: impl Fn(u32) -> Mode + Send + Sync + 'static) -> Simulation {
    forging_sim_with(mode_of, &[])
}

fn forging_sim_with(
    mode_of: impl Fn(u32) -> Mode + Send + Sync + 'static,
    behaviours: &[(u32, Behaviour)],
) -> Simulation {
    let config = SimConfig::new("toy", 4, 13);
    let keys = test_committee(4, 0, 13, config.timing)
        .configs
        .into_iter()
        .map(|c| c.key)
        .collect();
    Simulation::with_factory(config, behaviours, toy::factory(mode_of, keys)).unwrap()
}

#[test]
fn conflicting_commits_are_an_agreement_violation() {
    let mut sim = forging_sim(|_| Mode::Liar);
    let v = sim.run_until(100).unwrap_err();
    assert_eq!(v.invariant, Invariant::Agreement, "{v}");
    assert_eq!(v.replica, 1);
    // The violation is sticky.
    assert_eq!(sim.run_until(200).unwrap_err(), v);
    assert_eq!(sim.step().unwrap_err(), v);
}

#[test]
fn a_byzantine_replica_with_a_conflicting_certificate_is_detected() {
    // Replica 0 is byzantine and its engine commits its own block at height 1 with a forged
    // quorum certificate: impossible with at most f byzantine replicas unless the protocol
    // lets a quorum sign two blocks, which is what the check is for.
    let mut sim = forging_sim_with(
        |i| if i == 0 { Mode::Liar } else { Mode::Honest },
        &[(0, Behaviour::ConflictingVotes)],
    );
    let v = sim.run_until(1_000).unwrap_err();
    assert_eq!(v.invariant, Invariant::ConflictingCertificates, "{v}");
    assert_ne!(
        v.replica, 0,
        "the first correct commit at height 1 conflicts"
    );
    assert!(sim.commits(v.replica).is_empty(), "not stored");
}

#[test]
fn bad_certificates_are_detected() {
    let v = forging_sim(|i| {
        if i == 2 {
            Mode::BadCertificate
        } else {
            Mode::Honest
        }
    })
    .run_until(100)
    .unwrap_err();
    assert_eq!((v.invariant, v.replica), (Invariant::Certificate, 2), "{v}");
}

#[test]
fn committing_a_height_twice_is_detected() {
    let v = forging_sim(|i| {
        if i == 1 {
            Mode::DoubleCommit
        } else {
            Mode::Honest
        }
    })
    .run_until(100)
    .unwrap_err();
    assert_eq!((v.invariant, v.replica), (Invariant::NoRewrite, 1), "{v}");
}

#[test]
fn committing_a_block_nobody_built_is_detected() {
    let v = forging_sim(|i| {
        if i == 3 {
            Mode::UnknownBlock
        } else {
            Mode::Honest
        }
    })
    .run_until(100)
    .unwrap_err();
    assert_eq!(
        (v.invariant, v.replica),
        (Invariant::UnknownBlock, 3),
        "{v}"
    );
}

// ----- byzantine distortions -----

/// Messages from `from` as received by `to`, and as `from`'s engines sent them.
fn inbound(trace: &[TraceEntry], to: u32, from: u32) -> Vec<Vec<u8>> {
    trace
        .iter()
        .filter(|e| e.replica == to)
        .filter_map(|e| match &e.event {
            TraceEvent::Input(Input::Message { from: f, payload }) if *f == from => {
                Some(payload.clone())
            }
            _ => None,
        })
        .collect()
}

fn votes_in(payloads: &[Vec<u8>]) -> Vec<Vote> {
    payloads
        .iter()
        .filter(|p| p.first() == Some(&TAG_VOTE))
        .map(|p| Vote::decode(p).unwrap())
        .collect()
}

#[test]
fn twins_send_different_proposals_to_each_half() {
    // Replica 1 leads height 1; its twins talk to {0} and {2, 3}.
    let mut sim = toy_sim(
        4,
        14,
        LinkConfig::default(),
        &[(1, Behaviour::EquivocatingLeader)],
    );
    sim.run_until(50).unwrap();
    let proposal = |to| {
        inbound(sim.trace(), to, 1)
            .iter()
            .find_map(|p| toy::decode_propose(p).filter(|(h, _)| *h == 1))
            .unwrap()
            .1
    };
    let (a, b, c) = (proposal(0), proposal(2), proposal(3));
    assert_ne!(a, b, "the two halves see different blocks");
    assert_eq!(b, c);
    // Both twins hear everything; 2 and 3 (with twin B) form a quorum, 0 does not.
    assert_eq!(sim.instance_commits(1, 1)[0].block_hash, b);
    assert_eq!(sim.commits(2)[0].block_hash, b);
    assert!(sim.commits(0).first().is_none_or(|c| c.synced));
}

#[test]
fn conflicting_votes_are_valid_votes_for_other_blocks_to_half_the_peers() {
    let mut sim = toy_sim(
        4,
        15,
        LinkConfig::default(),
        &[(3, Behaviour::ConflictingVotes)],
    );
    sim.run_until(100).unwrap();
    let honest_half = votes_in(&inbound(sim.trace(), 0, 3));
    let other_half = votes_in(&inbound(sim.trace(), 2, 3));
    assert!(!honest_half.is_empty() && !other_half.is_empty());
    for v in honest_half.iter().chain(&other_half) {
        v.verify(sim.validators()).unwrap();
    }
    let committed = |v: &Vote| {
        sim.commits(0)
            .get(v.height as usize - 1)
            .map(|c| c.block_hash)
    };
    let h1 = honest_half.iter().find(|v| v.height == 1).unwrap();
    let o1 = other_half.iter().find(|v| v.height == 1).unwrap();
    assert_eq!(committed(h1), Some(h1.block_hash));
    assert_ne!(o1.block_hash, h1.block_hash);
    assert_eq!((o1.phase, o1.voter), (Phase::Commit, 3));
}

#[test]
fn invalid_shares_do_not_verify() {
    let mut sim = toy_sim(
        4,
        16,
        LinkConfig::default(),
        &[(3, Behaviour::InvalidShares)],
    );
    // Without replica 3's votes, the others still have a quorum of three.
    assert!(sim.run_until_height(5, 2_000).unwrap());
    for to in 0..3 {
        let votes = votes_in(&inbound(sim.trace(), to, 3));
        assert!(!votes.is_empty());
        assert!(votes.iter().all(|v| v.verify(sim.validators()).is_err()));
    }
    for c in sim.commits(0) {
        let Proof::Signatures(sigs) = &c.certificate.proof else {
            panic!()
        };
        assert!(sigs.iter().all(|(i, _)| *i != 3));
    }
}
