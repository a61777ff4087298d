//! The interface every engine implements.

use v2v_primitives::Hash;

use crate::Certificate;

/// Index of a validator in the chain spec's validator list.
pub type ValidatorIndex = u32;

/// A block the node built at the engine's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    pub height: u64,
    pub view: u64,
    pub block_hash: Hash,
}

/// Timers are data: the engine asks for one with [`Output::SetTimer`] and the node feeds back
/// [`Input::Timeout`] with the same id when it fires (unless cancelled first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimerId {
    /// The leader of `view` at `height` did not get a block finalized in time.
    Round { height: u64, view: u64 },
    /// A view change to `view` did not complete in time.
    ViewChange { view: u64 },
}

/// What happened, as the engine learns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The node started; `next_height` is one above the last finalized block it has stored.
    Start { next_height: u64 },
    /// A consensus message from validator `from` (bytes as received: engines decode and
    /// authenticate them, and ignore what does not decode).
    Message {
        from: ValidatorIndex,
        payload: Vec<u8>,
    },
    /// A timer set earlier fired.
    Timeout(TimerId),
    /// The block requested by [`Output::RequestProposal`] is built, executed and stored as a
    /// candidate.
    ProposalReady(Proposal),
}

/// What the node must do, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send `payload` to validator `to`.
    Send {
        to: ValidatorIndex,
        payload: Vec<u8>,
    },
    /// Send `payload` to every other validator.
    Broadcast { payload: Vec<u8> },
    /// Start (or restart) timer `id`, firing after `after_ms` of the node's clock.
    SetTimer { id: TimerId, after_ms: u64 },
    /// Cancel timer `id` if it is pending.
    CancelTimer { id: TimerId },
    /// Durably store `state` (the engine's safety-critical memory: votes cast, locks) before
    /// carrying out any later output; hand it back on restart.
    Persist { state: Vec<u8> },
    /// Build a block at `height` for `view` from the mempool, execute it, keep it as a
    /// candidate, and answer with [`Input::ProposalReady`].
    RequestProposal { height: u64, view: u64 },
    /// The block is final: store it with its certificate (one atomic write), apply its state,
    /// and notify subscribers. Commits arrive in height order, each exactly once.
    Commit {
        height: u64,
        block_hash: Hash,
        certificate: Certificate,
    },
}

/// A consensus engine: a deterministic function from inputs to outputs.
pub trait Engine: Send {
    /// The engine's name as in the chain spec.
    fn name(&self) -> &'static str;
    /// Processes one input and returns what the node must do.
    fn handle(&mut self, input: Input) -> Vec<Output>;
}
