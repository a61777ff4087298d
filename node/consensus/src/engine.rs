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
    /// SBFT: the collector waited long enough for the fast-path shares of `height` in `view`
    /// and falls back to the slow path.
    FastPath { height: u64, view: u64 },
}

/// What happened, as the engine learns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The node started. `next_height` is one above the last finalized block it has stored;
    /// `persisted` is the last state handed out by [`Output::Persist`], if any (after a
    /// restart the engine must not cast a vote that contradicts one it cast before).
    Start {
        next_height: u64,
        persisted: Option<Vec<u8>>,
    },
    /// A consensus message from validator `from`. The transport authenticates `from`; the
    /// bytes are as received: engines decode them, check every signature they rely on, and
    /// ignore what does not decode.
    Message {
        from: ValidatorIndex,
        payload: Vec<u8>,
    },
    /// A timer set earlier fired.
    Timeout(TimerId),
    /// The block requested by [`Output::RequestProposal`] is built, executed and stored as a
    /// candidate.
    ProposalReady(Proposal),
    /// The answer to [`Output::VerifyProposal`]: the node has the block, it extends the
    /// engine's chain, and it executed to the state root in its header (`valid`), or not.
    ProposalVerified {
        height: u64,
        view: u64,
        block_hash: Hash,
        valid: bool,
    },
    /// The node fetched, verified (certificate and execution) and stored the finalized block
    /// at `height`, answering [`Output::Sync`]. Arrives in height order, one by one, or
    /// jumping ahead when the node installed a state snapshot at a certified height; the
    /// engine moves on to `height + 1` and must not emit a [`Output::Commit`] for it.
    Synced {
        height: u64,
        block_hash: Hash,
        certificate: Certificate,
    },
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
    /// carrying out any later output; hand it back in [`Input::Start`] after a restart.
    Persist { state: Vec<u8> },
    /// Build a block at `height` for `view` from the mempool, execute it, keep it as a
    /// candidate, and answer with [`Input::ProposalReady`].
    RequestProposal { height: u64, view: u64 },
    /// Validator `proposer` proposed `block_hash` at `height` in `view`: get the block (from
    /// the proposer or any peer), check that it extends the chain and executes to its state
    /// root, keep it as a candidate, and answer with [`Input::ProposalVerified`].
    VerifyProposal {
        height: u64,
        view: u64,
        block_hash: Hash,
        proposer: ValidatorIndex,
    },
    /// The engine learned that `peer` has finalized blocks up to at least `up_to_height`,
    /// above what this node has: fetch the missing blocks and their certificates (from
    /// `peer` or others), verify and store them, and feed each back as [`Input::Synced`].
    Sync {
        peer: ValidatorIndex,
        up_to_height: u64,
    },
    /// Validator `validator` provably misbehaved (an invalid signature share, a signed
    /// equivocation): log it, and a network may disconnect or penalise the peer. Nothing
    /// else depends on it.
    Faulty {
        validator: ValidatorIndex,
        reason: String,
    },
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
