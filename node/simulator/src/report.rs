//! What a run produced: violations, commits, counters and the summary report.

use std::fmt;

use serde::Serialize;
use v2v_consensus::{Certificate, ValidatorIndex};
use v2v_primitives::Hash;

/// The safety property a run broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Invariant {
    /// Two correct replicas finalized different blocks at one height.
    Agreement,
    /// A byzantine replica finalized, with a valid certificate, a different block than
    /// another replica at the same height: a quorum signed two blocks, so more than f
    /// replicas signed both (byzantine replicas run the real engine; only what they send is
    /// distorted).
    ConflictingCertificates,
    /// A replica finalized a height twice, out of order, or with a gap: a committed block
    /// must never change, and commits come exactly at head + 1.
    NoRewrite,
    /// A commit's certificate does not verify for its height and block.
    Certificate,
    /// A replica finalized a block that no replica built at that height.
    UnknownBlock,
    /// The simulator could not rebuild a replica's engine on recovery.
    Engine,
}

/// A safety violation, with the instant (virtual time) it was detected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub time_us: u64,
    pub replica: ValidatorIndex,
    pub invariant: Invariant,
    pub description: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} violated at {:.3} ms by replica {}: {}",
            self.invariant,
            self.time_us as f64 / 1_000.0,
            self.replica,
            self.description
        )
    }
}

impl std::error::Error for Violation {}

/// One finalized block in a replica's store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitRecord {
    pub time_us: u64,
    pub height: u64,
    pub block_hash: Hash,
    pub certificate: Certificate,
    /// Fetched by state sync (`Input::Synced`) rather than committed by the engine.
    pub synced: bool,
}

/// Counters of the host and the network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Events processed.
    pub events: u64,
    /// Messages handed to the network (one per recipient; a broadcast to n - 1 replicas
    /// counts n - 1) and their bytes, before loss and duplication.
    pub messages_sent: u64,
    pub bytes_sent: u64,
    pub delivered: u64,
    pub lost: u64,
    pub duplicated: u64,
    /// Dropped because sender and recipient were in different partitions.
    pub dropped_partition: u64,
    /// Dropped because the recipient was down or restarted since the message was sent.
    pub dropped_down: u64,
    pub timers_fired: u64,
    pub proposals_built: u64,
    pub syncs_served: u64,
    pub blocks_synced: u64,
}

/// Commit latencies in virtual milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LatencyStats {
    pub samples: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub max_ms: f64,
}

impl LatencyStats {
    pub(crate) fn from_us(samples: &[u64]) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        // Nearest rank: the smallest sample with at least q of all samples at or below it.
        let rank = |q: f64| {
            let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
            sorted[i] as f64 / 1_000.0
        };
        LatencyStats {
            samples: sorted.len(),
            p50_ms: rank(0.5),
            p95_ms: rank(0.95),
            max_ms: rank(1.0),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FaultyReport {
    pub reporter: ValidatorIndex,
    pub accused: ValidatorIndex,
    pub count: u64,
}

/// A summary of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub engine: String,
    pub n: usize,
    pub seed: u64,
    pub virtual_time_ms: f64,
    /// The lowest head among correct replicas that are up (what every one of them has).
    pub committed_height: u64,
    /// The highest head among correct replicas.
    pub max_committed_height: u64,
    /// From the moment the proposer's block was ready to its commit at each correct replica
    /// (commits by the engine; blocks fetched by sync are not counted).
    pub latency: LatencyStats,
    pub messages_sent: u64,
    pub bytes_sent: u64,
    /// Totals divided by `committed_height` (0 when nothing was committed).
    pub messages_per_block: f64,
    pub bytes_per_block: f64,
    /// Certificates of the engine commits at correct replicas, by kind.
    pub fast_certificates: u64,
    pub slow_certificates: u64,
    pub signature_certificates: u64,
    pub faulty_reports: Vec<FaultyReport>,
    pub stats: Stats,
    /// blake3 (hex) over every input, output and host event of the run.
    pub digest: String,
}
