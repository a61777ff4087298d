//! The simulation: n replicas of an engine, the host role of each (timers, block building,
//! proposal checks, state sync, durable state), the network between them, and the safety
//! invariants, checked as every event is processed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use v2v_consensus::{
    ConfigError, Engine, EngineConfig, Input, Output, TimerId, ValidatorIndex, ValidatorSet,
    new_engine, test_committee,
};
use v2v_primitives::Hash;

use crate::behaviour::Behaviour;
use crate::config::SimConfig;
use crate::digest::Digest;
use crate::events::{Event, EventQueue};
use crate::report::{CommitRecord, FaultyReport, LatencyStats, Report, Stats, Violation};

mod host;
mod invariants;

/// Builds an engine from its chain-spec name and configuration; called at the start and
/// again whenever a crashed replica recovers.
pub type EngineFactory =
    Arc<dyn Fn(&str, EngineConfig) -> Result<Box<dyn Engine>, ConfigError> + Send + Sync>;

/// One entry of [`Simulation::trace`] (kept only with [`SimConfig::record_trace`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceEntry {
    pub time_us: u64,
    pub replica: ValidatorIndex,
    /// 0, or 1 for the second engine of an equivocating (twin) replica.
    pub instance: usize,
    pub event: TraceEvent,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceEvent {
    Input(Input),
    Output(Output),
    Crash,
    Recover,
}

/// A failed state sync is retried this many times, with growing pauses, before the
/// simulated node gives up on the request (the engine asks again on new evidence).
const MAX_SYNC_ATTEMPTS: u32 = 40;

/// One engine and the node state that belongs to it. Honest replicas have one; an
/// equivocating replica has two (twins).
struct Instance {
    engine: Option<Box<dyn Engine>>,
    /// Pending timers and the generation of their latest `SetTimer`: a firing that does not
    /// match was cancelled or restarted.
    timers: BTreeMap<TimerId, u64>,
    /// The last `Output::Persist` (survives crashes).
    durable: Option<Vec<u8>>,
    /// Finalized blocks, `chain[h - 1]` for height h (survives crashes).
    chain: Vec<CommitRecord>,
}

struct Replica {
    behaviour: Behaviour,
    config: EngineConfig,
    up: bool,
    /// Bumped on crash and on recovery: events scheduled before carry an older epoch and are
    /// discarded.
    epoch: u64,
    instances: Vec<Instance>,
}

impl Replica {
    fn head(&self) -> u64 {
        self.instances[0].chain.len() as u64
    }
}

struct BlockInfo {
    height: u64,
    ready_us: u64,
}

struct Partition {
    id: u64,
    /// Group of each replica; replicas named in no group are alone.
    group_of: Vec<usize>,
}

/// n replicas of one engine in one process, driven by a virtual clock and one seeded random
/// generator: the same configuration and seed give the same run, event for event.
pub struct Simulation {
    config: SimConfig,
    validators: ValidatorSet,
    factory: EngineFactory,
    replicas: Vec<Replica>,
    queue: EventQueue,
    /// Virtual time, in microseconds.
    now: u64,
    rng: ChaCha8Rng,
    /// Every block built, by hash: what `VerifyProposal` checks against.
    blocks: HashMap<Hash, BlockInfo>,
    /// The block finalized at each height by the first replica that did, and which.
    decided: BTreeMap<u64, (Hash, usize)>,
    partition: Option<Partition>,
    next_partition_id: u64,
    digest: Digest,
    stats: Stats,
    latencies_us: Vec<u64>,
    /// Correct replicas' engine commits by certificate kind: fast threshold, slow threshold,
    /// ed25519 signatures.
    certificate_kinds: [u64; 3],
    faulty: BTreeMap<(ValidatorIndex, ValidatorIndex), u64>,
    /// Certificates already verified (a threshold certificate is the same at every replica).
    verified: HashSet<[u8; 32]>,
    block_counter: u64,
    timer_generation: u64,
    violation: Option<Violation>,
    trace: Vec<TraceEntry>,
}

impl std::fmt::Debug for Simulation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulation")
            .field("config", &self.config)
            .field("now_us", &self.now)
            .field("pending_events", &self.queue.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

fn us(ms: u64) -> u64 {
    ms.saturating_mul(1_000)
}

impl Simulation {
    /// `config.n` replicas of the engine `config.engine` built by
    /// [`v2v_consensus::new_engine`]; replicas not named in `behaviours` are honest.
    pub fn new(
        config: SimConfig,
        behaviours: &[(ValidatorIndex, Behaviour)],
    ) -> Result<Self, ConfigError> {
        Self::with_factory(config, behaviours, Arc::new(new_engine))
    }

    /// Like [`Self::new`], with engines built by `factory` (for engines outside
    /// `v2v-consensus`, such as test doubles).
    pub fn with_factory(
        config: SimConfig,
        behaviours: &[(ValidatorIndex, Behaviour)],
        factory: EngineFactory,
    ) -> Result<Self, ConfigError> {
        let n = config.n;
        if n == 0 {
            return Err(ConfigError::Invalid("a simulation needs replicas".into()));
        }
        let committee = test_committee(n, config.sbft_c, config.seed, config.timing);
        let mut behaviour_of = vec![Behaviour::Honest; n];
        for &(index, behaviour) in behaviours {
            let slot = behaviour_of
                .get_mut(index as usize)
                .ok_or(ConfigError::BadIndex { index, n })?;
            *slot = behaviour;
        }
        let mut queue = EventQueue::default();
        let mut replicas = Vec::with_capacity(n);
        for (i, mut engine_config) in committee.configs.into_iter().enumerate() {
            engine_config.window = config.window;
            engine_config.checkpoint_interval = config.checkpoint_interval;
            let behaviour = behaviour_of[i];
            let copies = if behaviour == Behaviour::EquivocatingLeader {
                2
            } else {
                1
            };
            let mut instances = Vec::with_capacity(copies);
            for _ in 0..copies {
                let engine = if behaviour == Behaviour::Silent {
                    None
                } else {
                    Some(factory(&config.engine, engine_config.clone())?)
                };
                instances.push(Instance {
                    engine,
                    timers: BTreeMap::new(),
                    durable: None,
                    chain: Vec::new(),
                });
            }
            replicas.push(Replica {
                behaviour,
                config: engine_config,
                up: true,
                epoch: 0,
                instances,
            });
            queue.push(0, Event::Start { replica: i });
        }
        for (i, behaviour) in behaviour_of.iter().enumerate() {
            if let Behaviour::CrashRecover {
                crash_at_ms,
                recover_at_ms,
            } = *behaviour
            {
                queue.push(us(crash_at_ms), Event::Crash { replica: i });
                queue.push(us(recover_at_ms), Event::Recover { replica: i });
            }
        }
        Ok(Simulation {
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            config,
            validators: committee.validators,
            factory,
            replicas,
            queue,
            now: 0,
            blocks: HashMap::new(),
            decided: BTreeMap::new(),
            partition: None,
            next_partition_id: 0,
            digest: Digest::default(),
            stats: Stats::default(),
            latencies_us: Vec::new(),
            certificate_kinds: [0; 3],
            faulty: BTreeMap::new(),
            verified: HashSet::new(),
            block_counter: 0,
            timer_generation: 0,
            violation: None,
            trace: Vec::new(),
        })
    }

    // ----- scheduling faults -----

    /// Crashes `replica` at `at_ms` (no earlier than now); see [`Behaviour::CrashRecover`].
    pub fn crash_at(&mut self, replica: ValidatorIndex, at_ms: u64) {
        let at = us(at_ms).max(self.now);
        self.queue.push(
            at,
            Event::Crash {
                replica: replica as usize,
            },
        );
    }

    /// Restarts a crashed `replica` at `at_ms` (no earlier than now).
    pub fn recover_at(&mut self, replica: ValidatorIndex, at_ms: u64) {
        let at = us(at_ms).max(self.now);
        self.queue.push(
            at,
            Event::Recover {
                replica: replica as usize,
            },
        );
    }

    /// From `at_ms` until `heal_at_ms`, messages pass only between replicas of the same
    /// group (replicas in no group are cut off from everyone). Messages already travelling
    /// when the partition starts are dropped if they arrive during it. A later partition
    /// replaces an earlier one.
    pub fn partition(&mut self, at_ms: u64, groups: Vec<Vec<ValidatorIndex>>, heal_at_ms: u64) {
        let id = self.next_partition_id;
        self.next_partition_id += 1;
        let at = us(at_ms).max(self.now);
        self.queue.push(at, Event::PartitionStart { id, groups });
        self.queue
            .push(us(heal_at_ms).max(at), Event::PartitionHeal { id });
    }

    /// Cuts `replica` off from everyone between `at_ms` and `heal_at_ms`.
    pub fn isolate(&mut self, replica: ValidatorIndex, at_ms: u64, heal_at_ms: u64) {
        let rest = (0..self.config.n as u32)
            .filter(|&r| r != replica)
            .collect();
        self.partition(at_ms, vec![vec![replica], rest], heal_at_ms);
    }

    // ----- running -----

    /// Processes the next event. `Ok(false)` when nothing is left to happen.
    pub fn step(&mut self) -> Result<bool, Violation> {
        if let Some(v) = &self.violation {
            return Err(v.clone());
        }
        let Some((time, event)) = self.queue.pop() else {
            return Ok(false);
        };
        self.now = time;
        self.stats.events += 1;
        match self.handle_event(event) {
            Ok(()) => Ok(true),
            Err(v) => {
                self.violation = Some(v.clone());
                Err(v)
            }
        }
    }

    /// Runs every event up to and including `time_ms`; the clock then reads `time_ms`.
    pub fn run_until(&mut self, time_ms: u64) -> Result<(), Violation> {
        let limit = us(time_ms);
        while self.queue.peek_time().is_some_and(|t| t <= limit) {
            self.step()?;
        }
        if let Some(v) = &self.violation {
            return Err(v.clone());
        }
        self.now = self.now.max(limit);
        Ok(())
    }

    /// Runs until every correct replica that is up has finalized `height` (`Ok(true)`, the
    /// clock stopping at that event) or until `deadline_ms` (`Ok(false)`).
    pub fn run_until_height(&mut self, height: u64, deadline_ms: u64) -> Result<bool, Violation> {
        let deadline = us(deadline_ms);
        loop {
            if let Some(v) = &self.violation {
                return Err(v.clone());
            }
            if self.all_correct_reached(height) {
                return Ok(true);
            }
            match self.queue.peek_time() {
                Some(t) if t <= deadline => {
                    self.step()?;
                }
                _ => {
                    self.now = self.now.max(deadline);
                    return Ok(false);
                }
            }
        }
    }

    // ----- accessors -----

    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    pub fn validators(&self) -> &ValidatorSet {
        &self.validators
    }

    pub fn engine_config(&self, replica: ValidatorIndex) -> &EngineConfig {
        &self.replicas[replica as usize].config
    }

    pub fn behaviour(&self, replica: ValidatorIndex) -> Behaviour {
        self.replicas[replica as usize].behaviour
    }

    pub fn now_us(&self) -> u64 {
        self.now
    }

    pub fn now_ms(&self) -> f64 {
        self.now as f64 / 1_000.0
    }

    pub fn is_up(&self, replica: ValidatorIndex) -> bool {
        self.replicas[replica as usize].up
    }

    /// The blocks `replica` finalized (by commit or sync), in height order: `[h - 1]` is
    /// height h. For an equivocating replica, those of its first engine.
    pub fn commits(&self, replica: ValidatorIndex) -> &[CommitRecord] {
        &self.replicas[replica as usize].instances[0].chain
    }

    /// The blocks finalized by one engine of a replica (1 is the twin of an equivocating one).
    pub fn instance_commits(&self, replica: ValidatorIndex, instance: usize) -> &[CommitRecord] {
        self.replicas[replica as usize]
            .instances
            .get(instance)
            .map_or(&[], |i| i.chain.as_slice())
    }

    /// The highest height `replica` has finalized (0: none).
    pub fn head(&self, replica: ValidatorIndex) -> u64 {
        self.replicas[replica as usize].head()
    }

    /// What `replica` last persisted.
    pub fn durable_state(&self, replica: ValidatorIndex) -> Option<&[u8]> {
        self.replicas[replica as usize].instances[0]
            .durable
            .as_deref()
    }

    /// Correct replicas (neither byzantine nor silent) that are up.
    pub fn live_correct(&self) -> Vec<ValidatorIndex> {
        (0..self.replicas.len())
            .filter(|&r| self.replicas[r].behaviour.is_correct() && self.replicas[r].up)
            .map(|r| r as ValidatorIndex)
            .collect()
    }

    /// Whether every correct replica that is up (at least one) has finalized `height`.
    pub fn all_correct_reached(&self, height: u64) -> bool {
        let mut live = self
            .replicas
            .iter()
            .filter(|r| r.behaviour.is_correct() && r.up)
            .peekable();
        live.peek().is_some() && live.all(|r| r.head() >= height)
    }

    /// The lowest head among correct replicas that are up.
    pub fn min_correct_height(&self) -> u64 {
        self.live_correct()
            .iter()
            .map(|&r| self.head(r))
            .min()
            .unwrap_or(0)
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Every input and output so far, if [`SimConfig::record_trace`] is set.
    pub fn trace(&self) -> &[TraceEntry] {
        &self.trace
    }

    /// `Output::Faulty` reports, as (reporter, accused) -> count.
    pub fn faulty_reports(&self) -> &BTreeMap<(ValidatorIndex, ValidatorIndex), u64> {
        &self.faulty
    }

    /// Events scheduled and not yet processed.
    pub fn pending_events(&self) -> usize {
        self.queue.len()
    }

    /// blake3 (hex) of everything that happened so far.
    pub fn digest(&self) -> String {
        self.digest.finish_hex()
    }

    pub fn report(&self) -> Report {
        let committed_height = self.min_correct_height();
        let max_committed_height = (0..self.replicas.len())
            .filter(|&r| self.replicas[r].behaviour.is_correct())
            .map(|r| self.replicas[r].head())
            .max()
            .unwrap_or(0);
        let per_block = |total: u64| {
            if committed_height == 0 {
                0.0
            } else {
                total as f64 / committed_height as f64
            }
        };
        Report {
            engine: self.config.engine.clone(),
            n: self.config.n,
            seed: self.config.seed,
            virtual_time_ms: self.now_ms(),
            committed_height,
            max_committed_height,
            latency: LatencyStats::from_us(&self.latencies_us),
            messages_sent: self.stats.messages_sent,
            bytes_sent: self.stats.bytes_sent,
            messages_per_block: per_block(self.stats.messages_sent),
            bytes_per_block: per_block(self.stats.bytes_sent),
            fast_certificates: self.certificate_kinds[0],
            slow_certificates: self.certificate_kinds[1],
            signature_certificates: self.certificate_kinds[2],
            faulty_reports: self
                .faulty
                .iter()
                .map(|(&(reporter, accused), &count)| FaultyReport {
                    reporter,
                    accused,
                    count,
                })
                .collect(),
            stats: self.stats.clone(),
            digest: self.digest(),
        }
    }
}
