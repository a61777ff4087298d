//! What the node counts about itself for `system_metrics`: consensus traffic it sent, what
//! it finalized, and the CPU time each stage of a transaction's path took on the thread that
//! ran it (the per-stage cost budget of docs/benchmarks.md is read from here).

use std::sync::atomic::{AtomicU64, Ordering};

use cpu_time::ThreadTime;
use v2v_rpc::{NodeMetrics, StageMetrics};

/// A stage of a transaction's path through the node (its value indexes `STAGE_NAMES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Decoding a transaction and checking its signature (RPC or gossip).
    TxCheck,
    /// Replay and nonce lookups and the mempool insert.
    Mempool,
    /// The consensus engine's steps and the commit certificate's check.
    Consensus,
    /// Building our proposal: executing it on the head.
    Build,
    /// Checking someone else's proposal: signatures not seen before and execution.
    Verify,
    /// Storing a finalized block (one RocksDB batch) and installing its state.
    Commit,
}

const STAGE_NAMES: [&str; 6] = [
    "txCheck",
    "mempool",
    "consensus",
    "build",
    "verify",
    "commit",
];

#[derive(Debug, Default)]
struct Counter {
    calls: AtomicU64,
    items: AtomicU64,
    cpu_ns: AtomicU64,
}

#[derive(Debug, Default)]
pub(crate) struct Metrics {
    stages: [Counter; 6],
    pub finalized_blocks: AtomicU64,
    pub finalized_txs: AtomicU64,
    pub engine_messages: AtomicU64,
    pub engine_bytes: AtomicU64,
    pub block_messages: AtomicU64,
    pub block_bytes: AtomicU64,
    pub gossip_messages: AtomicU64,
    pub gossip_bytes: AtomicU64,
}

impl Metrics {
    /// Runs `f`, charging the CPU time this thread spent in it to `stage`, with `items`
    /// transactions handled.
    pub fn time<T>(&self, stage: Stage, items: usize, f: impl FnOnce() -> T) -> T {
        let started = ThreadTime::try_now().ok();
        let out = f();
        let c = self.counter(stage);
        if let Some(t) = started.and_then(|t| t.try_elapsed().ok()) {
            c.cpu_ns.fetch_add(t.as_nanos() as u64, Ordering::Relaxed);
        }
        c.calls.fetch_add(1, Ordering::Relaxed);
        c.items.fetch_add(items as u64, Ordering::Relaxed);
        out
    }

    /// Adds transactions to a stage whose count is known only after it ran.
    pub fn add_items(&self, stage: Stage, n: usize) {
        self.counter(stage)
            .items
            .fetch_add(n as u64, Ordering::Relaxed);
    }

    fn counter(&self, stage: Stage) -> &Counter {
        &self.stages[stage as usize]
    }

    pub fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> NodeMetrics {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        NodeMetrics {
            finalized_blocks: get(&self.finalized_blocks),
            finalized_transactions: get(&self.finalized_txs),
            engine_messages_sent: get(&self.engine_messages),
            engine_bytes_sent: get(&self.engine_bytes),
            block_bodies_sent: get(&self.block_messages),
            block_bytes_sent: get(&self.block_bytes),
            gossip_messages_sent: get(&self.gossip_messages),
            gossip_bytes_sent: get(&self.gossip_bytes),
            stages: STAGE_NAMES
                .iter()
                .zip(&self.stages)
                .map(|(name, c)| StageMetrics {
                    name: name.to_string(),
                    calls: get(&c.calls),
                    items: get(&c.items),
                    cpu_ns: get(&c.cpu_ns),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_charges_the_stage_it_names() {
        let m = Metrics::default();
        let x = m.time(Stage::Verify, 3, || {
            (0..200_000u64).map(|i| i ^ (i >> 3)).sum::<u64>()
        });
        assert!(x > 0);
        Metrics::add(&m.engine_bytes, 10);
        let s = m.snapshot();
        let verify = s.stages.iter().find(|s| s.name == "verify").unwrap();
        assert_eq!((verify.calls, verify.items), (1, 3));
        assert!(verify.cpu_ns > 0);
        assert!(
            s.stages
                .iter()
                .filter(|s| s.name != "verify")
                .all(|s| s.calls == 0)
        );
        assert_eq!(s.engine_bytes_sent, 10);
    }
}
