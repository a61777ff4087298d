//! What a simulation runs: the engine, the committee, the links and the host's delays.
//!
//! Durations are in microseconds of virtual time (engines count in milliseconds; the finer
//! unit lets links have sub-millisecond latency and jitter).

use serde::Serialize;
use v2v_consensus::Timing;

/// The network model, the same on every directed link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LinkConfig {
    /// One-way delay of a message.
    pub latency_us: u64,
    /// Each copy of a message is delayed by `latency_us` plus a uniform offset in
    /// `[-jitter_us, +jitter_us]`: with jitter, later messages may overtake earlier ones.
    pub jitter_us: u64,
    /// Probability, in parts per million, that a message is lost.
    pub loss_ppm: u32,
    /// Probability, in parts per million, that a message is delivered twice (each copy with
    /// its own delay).
    pub duplicate_ppm: u32,
    /// Probability, in parts per million, that a copy is held back by an extra uniform delay
    /// in `[0, reorder_extra_us]` (reordering beyond what the jitter does).
    pub reorder_ppm: u32,
    pub reorder_extra_us: u64,
    /// Transmission time in nanoseconds per byte (8 is 1 Gbit/s); 0 models unlimited
    /// bandwidth. Links are not congested by each other: this only adds size-dependent delay.
    pub per_byte_ns: u64,
}

impl LinkConfig {
    /// A perfect network with a fixed delay.
    pub fn fixed(latency_us: u64) -> Self {
        LinkConfig {
            latency_us,
            jitter_us: 0,
            loss_ppm: 0,
            duplicate_ppm: 0,
            reorder_ppm: 0,
            reorder_extra_us: 0,
            per_byte_ns: 0,
        }
    }

    /// A network with latency and jitter, and nothing lost, duplicated or held back.
    pub fn jittery(latency_us: u64, jitter_us: u64) -> Self {
        LinkConfig {
            jitter_us,
            ..Self::fixed(latency_us)
        }
    }
}

impl Default for LinkConfig {
    /// 1 ms ± 0.2 ms: a data-centre network.
    fn default() -> Self {
        Self::jittery(1_000, 200)
    }
}

/// Everything a [`crate::Simulation`] needs besides the byzantine behaviours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimConfig {
    /// The engine's chain-spec name (`pbft`, `linear`, `sbft`), passed to the engine factory.
    pub engine: String,
    /// Number of replicas (validators).
    pub n: usize,
    /// SBFT's c (slow replicas the fast path tolerates).
    pub sbft_c: usize,
    /// Seeds the single random generator and the committee's keys.
    pub seed: u64,
    #[serde(skip)]
    pub timing: Timing,
    /// PBFT log window and checkpoint interval, set in every replica's config.
    pub window: u64,
    pub checkpoint_interval: u64,
    pub link: LinkConfig,
    /// How long the host takes to build (and execute) a block after `RequestProposal`.
    pub build_delay_us: u64,
    /// How long the host takes to fetch and check a proposal after `VerifyProposal`.
    pub verify_delay_us: u64,
    /// How long a state-sync round trip takes after `Sync`.
    pub sync_delay_us: u64,
    /// Keep every input and output in [`crate::Simulation::trace`] (for tests; costs memory).
    pub record_trace: bool,
}

impl SimConfig {
    /// `n` replicas of `engine` on the default link (1 ms ± 0.2 ms), default engine timing,
    /// PBFT window 4 and checkpoints every 16 heights, and sub-millisecond host delays.
    pub fn new(engine: &str, n: usize, seed: u64) -> Self {
        SimConfig {
            engine: engine.to_string(),
            n,
            sbft_c: 0,
            seed,
            timing: Timing::default(),
            window: 4,
            checkpoint_interval: 16,
            link: LinkConfig::default(),
            build_delay_us: 500,
            verify_delay_us: 500,
            sync_delay_us: 5_000,
            record_trace: false,
        }
    }
}
