//! The consensus engine interface, finality certificates, and the `solo` engine.
//!
//! Engines are pure state machines (`../shared/DESIGN.md`): the node feeds them [`Input`]s
//! (messages, timer expiries, proposals it built) and carries out the [`Output`]s they return,
//! in order. An engine never touches the network, the disk, a clock or a thread; it does not
//! see block contents, only digests. This crate must not depend on tokio, libp2p, rocksdb,
//! wasmtime or jsonrpsee (`.ci/run` checks it).
#![forbid(unsafe_code)]

mod certificate;
mod engine;
mod solo;

pub use certificate::{Certificate, CertificateError, ValidatorSet, commit_message};
pub use engine::{Engine, Input, Output, Proposal, TimerId};
pub use solo::SoloEngine;
