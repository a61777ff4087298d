//! The engines under faults, one test per fault model and engine (`scenarios::pbft::…`,
//! `scenarios::linear::…`, `scenarios::sbft::…`), plus SBFT's fast and slow paths and a sweep
//! over random seeds. Every run checks the safety invariants as it goes (any violation fails
//! the test); each test then asserts liveness: the correct replicas reach a height.
//!
//! The link is 5 ms ± 1 ms and the host takes 5 ms to build a block, so a height takes
//! tens of milliseconds; timeouts are shortened to match (round 500 ms, view change 1 s,
//! fast path 30 ms) so that faults cost few heights (BLS verification is slow in debug).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use v2v_consensus::Timing;
use v2v_consensus_sim::{Behaviour, LinkConfig, SimConfig, Simulation};

const LEADER: u32 = 0;
const FOLLOWER: u32 = 2;
/// Virtual time allowed for liveness after the faults end (view-change timeouts double).
const PATIENCE_MS: u64 = 120_000;
/// How far the others may get past a target before a replica counts as left behind.
const LEFT_BEHIND: u64 = 200;

fn timing() -> Timing {
    Timing {
        round_timeout_ms: 500,
        view_change_timeout_ms: 1_000,
        fast_path_timeout_ms: 30,
    }
}

fn config(engine: &str, n: usize, seed: u64) -> SimConfig {
    let mut c = SimConfig::new(engine, n, seed);
    c.timing = timing();
    c.link = LinkConfig::jittery(5_000, 1_000);
    c.build_delay_us = 5_000;
    c.verify_delay_us = 1_000;
    c.sync_delay_us = 10_000;
    c
}

fn simulation(config: SimConfig, behaviours: &[(u32, Behaviour)]) -> Simulation {
    Simulation::new(config, behaviours).expect("the engine builds from a test committee")
}

fn heads(sim: &Simulation) -> Vec<u64> {
    (0..sim.config().n as u32).map(|r| sim.head(r)).collect()
}

/// Runs until every correct replica that is up has finalized `height` (Ok), or explains why
/// not: a safety violation, the deadline, or a correct replica left behind (the others went
/// [`LEFT_BEHIND`] heights past the target without it: stop early, a stuck replica would
/// otherwise cost thousands of heights of signature checks before the deadline).
fn drive(sim: &mut Simulation, height: u64, deadline_ms: u64) -> Result<(), String> {
    loop {
        let until = (sim.now_us() / 1_000 + 1_000).min(deadline_ms);
        match sim.run_until_height(height, until) {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(v) => return Err(v.to_string()),
        }
        let why = if max_head(sim) > height + LEFT_BEHIND {
            "a correct replica was left behind"
        } else if until >= deadline_ms {
            "the deadline passed"
        } else {
            continue;
        };
        return Err(format!(
            "correct replicas did not all reach height {height}: {why} at {} ms \
             (heads {:?}, live correct {:?}, {} events pending)",
            sim.now_ms(),
            heads(sim),
            sim.live_correct(),
            sim.pending_events(),
        ));
    }
}

/// [`drive`], failing the test on error.
fn reach(sim: &mut Simulation, height: u64, deadline_ms: u64) {
    if let Err(e) = drive(sim, height, deadline_ms) {
        panic!("{} n={}: {e}", sim.config().engine, sim.config().n);
    }
}

fn run_until(sim: &mut Simulation, time_ms: u64) {
    if let Err(v) = sim.run_until(time_ms) {
        panic!("{} n={}: {v}", sim.config().engine, sim.config().n);
    }
}

/// The highest head among correct replicas.
fn max_head(sim: &Simulation) -> u64 {
    sim.report().max_committed_height
}

pub fn n4_no_faults(engine: &str) {
    let mut sim = simulation(config(engine, 4, 1), &[]);
    reach(&mut sim, 20, 60_000);
    let report = sim.report();
    assert!(report.committed_height >= 20);
    assert!(
        report.faulty_reports.is_empty(),
        "{:?}",
        report.faulty_reports
    );
}

/// One faulty replica among four: the correct replicas reach 10 heights, and 8 more than the
/// furthest of them had when the fault ended (a crashed replica recovers and catches up).
pub fn n4_f1(engine: &str, replica: u32, behaviour: Behaviour) {
    let mut sim = simulation(config(engine, 4, 2), &[(replica, behaviour)]);
    let faults_end = match behaviour {
        Behaviour::CrashRecover { recover_at_ms, .. } => recover_at_ms,
        _ => 0,
    };
    run_until(&mut sim, faults_end);
    let target = (max_head(&sim) + 8).max(10);
    reach(&mut sim, target, faults_end + PATIENCE_MS);
    if faults_end > 0 {
        assert!(sim.is_up(replica) && sim.head(replica) >= target);
    }
}

fn crash_recover() -> Behaviour {
    Behaviour::CrashRecover {
        crash_at_ms: 100,
        recover_at_ms: 1_500,
    }
}

fn slow() -> Behaviour {
    Behaviour::Slow { extra_ms: 100 }
}

/// Two faulty replicas of different kinds among seven: an equivocating leader and a silent
/// follower.
pub fn n7_f2(engine: &str) {
    let faults = [
        (LEADER, Behaviour::EquivocatingLeader),
        (4, Behaviour::Silent),
    ];
    let mut sim = simulation(config(engine, 7, 3), &faults);
    reach(&mut sim, 10, PATIENCE_MS);
}

/// A 2-2 split: no quorum on either side, so nothing new is finalized until it heals.
pub fn n4_partition_2_2_then_heal(engine: &str) {
    let mut sim = simulation(config(engine, 4, 4), &[]);
    reach(&mut sim, 3, 60_000);
    let start = sim.now_us() / 1_000 + 1;
    let heal = start + 3_000;
    sim.partition(start, vec![vec![0, 1], vec![2, 3]], heal);
    // Let what was already decided before the split land (a few message delays).
    run_until(&mut sim, start + 100);
    let during = heads(&sim);
    run_until(&mut sim, heal - 1);
    assert_eq!(
        heads(&sim),
        during,
        "nothing is finalized during the partition"
    );
    let target = during.iter().max().copied().unwrap_or(0) + 5;
    reach(&mut sim, target, heal + PATIENCE_MS);
}

/// The leader crashes for good: the others change view and go on.
pub fn n4_leader_crash_view_change(engine: &str) {
    let mut sim = simulation(config(engine, 4, 5), &[]);
    reach(&mut sim, 3, 60_000);
    let crashed_at = sim.now_us() / 1_000 + 1;
    sim.crash_at(LEADER, crashed_at);
    run_until(&mut sim, crashed_at);
    let from = max_head(&sim) + 1;
    let target = from + 5;
    reach(&mut sim, target, crashed_at + PATIENCE_MS);
    let new_view = sim.commits(1)[(from - 1) as usize..]
        .iter()
        .any(|c| c.certificate.view >= 1);
    assert!(
        new_view,
        "blocks after the crash are certified in a later view"
    );
}

/// SBFT with everyone honest and prompt: every commit has a fast-path certificate.
#[test]
fn sbft_fast_path_all_honest() {
    let mut sim = simulation(config("sbft", 4, 6), &[]);
    reach(&mut sim, 10, 60_000);
    let report = sim.report();
    assert!(report.fast_certificates > 0);
    assert_eq!(
        (report.slow_certificates, report.signature_certificates),
        (0, 0),
        "{report:?}"
    );
}

/// SBFT with one replica whose messages take longer than the fast-path timeout: the
/// collector falls back to the slow path and progress continues.
#[test]
fn sbft_slow_replica_falls_back() {
    let mut sim = simulation(config("sbft", 4, 7), &[(3, slow())]);
    reach(&mut sim, 10, PATIENCE_MS);
    let report = sim.report();
    assert!(report.slow_certificates > 0, "{report:?}");
}

/// The same seed gives the same run (digest of every input and output), with a lossy,
/// jittery link and a byzantine replica drawing from the random generator; another seed
/// gives another run.
pub fn same_seed_same_digest(engine: &str) {
    let run = |seed| {
        let mut c = config(engine, 4, seed);
        c.link.loss_ppm = 20_000;
        c.link.duplicate_ppm = 20_000;
        c.link.reorder_ppm = 20_000;
        c.link.reorder_extra_us = 10_000;
        let mut sim = simulation(c, &[(FOLLOWER, Behaviour::ConflictingVotes)]);
        reach(&mut sim, 8, PATIENCE_MS);
        let report = sim.report();
        (report.digest, report.stats, sim.now_us())
    };
    let first = run(8);
    assert_eq!(first, run(8));
    assert_ne!(first.0, run(9).0);
}

/// `V2V_SIM_SEEDS` seeds (default 100) from `V2V_SIM_SEED_BASE` (default 0), each with
/// random link parameters and at most one random faulty replica among four; no violation,
/// and once the faults are over the correct replicas finalize 3 more heights. A failure
/// names its seed: rerun with `V2V_SIM_SEED_BASE=<seed> V2V_SIM_SEEDS=1`.
pub fn random_seeds(engine: &str) {
    let var = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    let (base, seeds) = (var("V2V_SIM_SEED_BASE", 0), var("V2V_SIM_SEEDS", 100));
    for seed in base..base.saturating_add(seeds) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
        let mut c = config(engine, 4, seed);
        let latency = rng.gen_range(500..20_000);
        let ppm = |rng: &mut ChaCha8Rng, max: u32| {
            if rng.gen_bool(0.5) {
                0
            } else {
                rng.gen_range(0..=max)
            }
        };
        c.link = LinkConfig {
            latency_us: latency,
            jitter_us: rng.gen_range(0..=latency / 2),
            loss_ppm: ppm(&mut rng, 30_000),
            duplicate_ppm: ppm(&mut rng, 30_000),
            reorder_ppm: ppm(&mut rng, 50_000),
            reorder_extra_us: rng.gen_range(0..30_000),
            per_byte_ns: 0,
        };
        let faulty = rng.gen_range(0..4u32);
        let behaviour = match rng.gen_range(0..8) {
            0 => Behaviour::Silent,
            1 => {
                let crash_at_ms = rng.gen_range(0..1_000);
                Behaviour::CrashRecover {
                    crash_at_ms,
                    recover_at_ms: crash_at_ms + rng.gen_range(100..2_000),
                }
            }
            2 => Behaviour::EquivocatingLeader,
            3 => Behaviour::ConflictingVotes,
            4 => Behaviour::InvalidShares,
            5 => Behaviour::Slow {
                extra_ms: rng.gen_range(1..150),
            },
            _ => Behaviour::Honest,
        };
        let what = format!(
            "{engine} seed {seed}: replica {faulty} {behaviour:?}, link {:?}",
            c.link
        );
        let mut sim = simulation(c, &[(faulty, behaviour)]);
        let faults_end = match behaviour {
            Behaviour::CrashRecover { recover_at_ms, .. } => recover_at_ms,
            _ => 0,
        };
        if let Err(v) = sim.run_until(faults_end) {
            panic!("{what}: {v}");
        }
        let target = max_head(&sim) + 3;
        if let Err(e) = drive(&mut sim, target, faults_end + PATIENCE_MS) {
            panic!("{what}: {e}");
        }
    }
}

macro_rules! engine_scenarios {
    ($($engine:ident),*) => {$(
        mod $engine {
            use super::*;

            const ENGINE: &str = stringify!($engine);

            #[test]
            fn n4_no_faults() {
                super::n4_no_faults(ENGINE)
            }

            #[test]
            fn n4_f1_silent_leader() {
                n4_f1(ENGINE, LEADER, Behaviour::Silent)
            }

            #[test]
            fn n4_f1_silent_follower() {
                n4_f1(ENGINE, FOLLOWER, Behaviour::Silent)
            }

            #[test]
            fn n4_f1_crash_recover_leader() {
                n4_f1(ENGINE, LEADER, crash_recover())
            }

            #[test]
            fn n4_f1_crash_recover_follower() {
                n4_f1(ENGINE, FOLLOWER, crash_recover())
            }

            #[test]
            fn n4_f1_equivocating_leader() {
                n4_f1(ENGINE, LEADER, Behaviour::EquivocatingLeader)
            }

            #[test]
            fn n4_f1_conflicting_votes_leader() {
                n4_f1(ENGINE, LEADER, Behaviour::ConflictingVotes)
            }

            #[test]
            fn n4_f1_conflicting_votes_follower() {
                n4_f1(ENGINE, FOLLOWER, Behaviour::ConflictingVotes)
            }

            #[test]
            fn n4_f1_invalid_shares_leader() {
                n4_f1(ENGINE, LEADER, Behaviour::InvalidShares)
            }

            #[test]
            fn n4_f1_invalid_shares_follower() {
                n4_f1(ENGINE, FOLLOWER, Behaviour::InvalidShares)
            }

            #[test]
            fn n4_f1_slow_leader() {
                n4_f1(ENGINE, LEADER, slow())
            }

            #[test]
            fn n4_f1_slow_follower() {
                n4_f1(ENGINE, FOLLOWER, slow())
            }

            #[test]
            fn n7_f2() {
                super::n7_f2(ENGINE)
            }

            #[test]
            fn n4_partition_2_2_then_heal() {
                super::n4_partition_2_2_then_heal(ENGINE)
            }

            #[test]
            fn n4_leader_crash_view_change() {
                super::n4_leader_crash_view_change(ENGINE)
            }

            #[test]
            fn same_seed_same_digest() {
                super::same_seed_same_digest(ENGINE)
            }

            #[test]
            fn random_seeds() {
                super::random_seeds(ENGINE)
            }
        }
    )*};
}

engine_scenarios!(pbft, linear, sbft);
