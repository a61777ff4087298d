//! A deterministic simulator for the consensus engines: `n` replicas of any
//! [`v2v_consensus::Engine`] in one process, on a virtual clock, with one seeded random
//! generator (the shape of mysticeti's `simulator.rs`: a heap of timed events).
//!
//! The simulator plays the node for every replica (`../shared/DESIGN.md`, habit 3): it
//! carries out the engines' outputs (messages through a link model with latency, jitter,
//! loss, duplication, reordering and partitions; timers; durable state that survives
//! crashes; block building and checking against a registry of built blocks; state sync from
//! peers it can reach) and feeds the results back as inputs. Faulty replicas
//! ([`Behaviour`]) are the real engine behind a distorting host: silent, crash and recover,
//! equivocating twins, conflicting votes, invalid signature shares, slow links (after
//! commonware's byzantine mocks and raft-rs's harness network).
//!
//! As each event is processed, every finalized block is checked (see [`Invariant`]): no two
//! correct replicas finalize different blocks at one height, a replica finalizes each height
//! exactly once and in order, every commit carries a certificate that verifies, and only
//! blocks that were built are finalized. A run's [`Report::digest`] hashes everything that
//! happened: the same configuration and seed give the same digest.
//!
//! Tests and the `consensus-scale` benchmark only; the node never links this crate.
#![forbid(unsafe_code)]

mod behaviour;
mod config;
mod digest;
mod events;
mod report;
mod simulation;

pub use behaviour::Behaviour;
pub use config::{LinkConfig, SimConfig};
pub use report::{CommitRecord, FaultyReport, Invariant, LatencyStats, Report, Stats, Violation};
pub use simulation::{EngineFactory, Simulation, TraceEntry, TraceEvent};
