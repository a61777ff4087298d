//! The consensus engine interface, finality certificates, votes, and the engines: `solo`,
//! `pbft`, `linear` and `sbft`.
//!
//! Engines are pure state machines (`../shared/DESIGN.md`): the node feeds them [`Input`]s
//! (messages, timer expiries, proposals it built, blocks it checked) and carries out the
//! [`Output`]s they return, in order. An engine never touches the network, the disk, a clock
//! or a thread; it does not see block contents, only digests. This crate must not depend on
//! tokio, libp2p, rocksdb, wasmtime or jsonrpsee (`.ci/run` checks it).
#![forbid(unsafe_code)]

mod certificate;
mod collector;
mod config;
mod engine;
mod linear;
mod pbft;
mod sbft;
mod solo;
mod validators;
mod vote;

pub use certificate::{Certificate, CertificateError, Proof};
pub use config::{Committee, ConfigError, EngineConfig, Timing, new_engine, test_committee};
pub use engine::{Engine, Input, Output, Proposal, TimerId, ValidatorIndex};
pub use linear::LinearEngine;
pub use pbft::PbftEngine;
pub use sbft::SbftEngine;
pub use solo::SoloEngine;
pub use validators::{DealtKeys, ThresholdKeys, ValidatorSet, deal_committee_keys};
pub use vote::{
    FIRST_ENGINE_TAG, Phase, TAG_VOTE, Vote, VoteError, VoteSignature, commit_message, vote_message,
};
