//! PBFT's wire messages (Castro and Liskov, OSDI 1999, §4.2 and §4.4) and their checks.
//!
//! Prepare, commit and checkpoint messages are plain [`Vote`]s (tag [`crate::TAG_VOTE`]). The
//! messages here use PBFT's engine tags (16..31): the leader's signed pre-prepare, a replica's
//! signed view-change message, and the new leader's new-view message. Decoding never panics
//! and never reserves more than the input can hold; anything that decodes is still checked
//! with the `verify` methods before the engine relies on it.

use std::collections::BTreeSet;

use v2v_abi::{DecodeError, Reader, Writer};
use v2v_crypto::{Keypair, Signature};
use v2v_primitives::Hash;

use crate::{Phase, ValidatorSet, Vote, VoteSignature};

pub(crate) const TAG_PRE_PREPARE: u8 = 16;
pub(crate) const TAG_VIEW_CHANGE: u8 = 17;
pub(crate) const TAG_NEW_VIEW: u8 = 18;

const PRE_PREPARE_DOMAIN: &[u8] = b"v2v/pbft/pre-prepare/v1";
const VIEW_CHANGE_DOMAIN: &[u8] = b"v2v/pbft/view-change/v1";

/// The smallest encodings, so that a count read from the wire never reserves more than the
/// rest of the input could hold.
const VOTE_LEN: usize = 1 + 1 + 8 + 8 + 32 + 4 + 1 + 64;
const PRE_PREPARE_LEN: usize = 1 + 8 + 8 + 32 + 64;
const PREPARED_LEN: usize = PRE_PREPARE_LEN + 4;
const VIEW_CHANGE_LEN: usize = 1 + 8 + 4 + 1 + 4 + 64;

fn invalid(what: &'static str) -> DecodeError {
    DecodeError::Invalid {
        what,
        reason: "undecodable",
    }
}

fn read_vote(r: &mut Reader<'_>) -> Result<Vote, DecodeError> {
    Vote::read(r).map_err(|_| invalid("vote"))
}

fn read_count(
    r: &mut Reader<'_>,
    what: &'static str,
    min_len: usize,
) -> Result<(usize, usize), DecodeError> {
    let n = r.u32(what)? as usize;
    Ok((n, n.min(r.remaining() / min_len)))
}

/// Checks one ed25519 vote of `phase` for exactly (`height`, `view`, `hash`).
fn check_vote(
    vote: &Vote,
    validators: &ValidatorSet,
    phase: Phase,
    height: u64,
    view: u64,
    hash: &Hash,
) -> Result<(), String> {
    if vote.phase != phase || vote.height != height || vote.view != view || &vote.block_hash != hash
    {
        return Err(format!(
            "{:?} vote of validator {} is not for height {height}, view {view}, block {hash}",
            phase, vote.voter
        ));
    }
    if !matches!(vote.signature, VoteSignature::Ed25519(_)) {
        return Err(format!("vote of validator {} is not ed25519", vote.voter));
    }
    vote.verify(validators).map_err(|e| e.to_string())
}

/// The leader's proposal of `block_hash` at `height` in `view` (PBFT's pre-prepare, §4.2),
/// signed so that it can travel inside prepared certificates and new-view messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PrePrepare {
    pub view: u64,
    pub height: u64,
    pub block_hash: Hash,
    pub signature: Signature,
}

impl PrePrepare {
    fn message(view: u64, height: u64, block_hash: &Hash) -> Vec<u8> {
        let mut w = Writer::with_capacity(PRE_PREPARE_DOMAIN.len() + 48);
        w.fixed(PRE_PREPARE_DOMAIN)
            .u64(view)
            .u64(height)
            .fixed(&block_hash.0);
        w.finish()
    }

    pub fn sign(view: u64, height: u64, block_hash: Hash, key: &Keypair) -> Self {
        let signature = key.sign(&Self::message(view, height, &block_hash));
        PrePrepare {
            view,
            height,
            block_hash,
            signature,
        }
    }

    /// Checks that the leader of `view` signed it.
    pub fn verify(&self, validators: &ValidatorSet) -> Result<(), String> {
        let leader = validators.leader(self.view);
        let key = validators
            .keys
            .get(leader as usize)
            .ok_or_else(|| format!("no leader for view {}", self.view))?;
        key.verify(
            &Self::message(self.view, self.height, &self.block_hash),
            &self.signature,
        )
        .map_err(|_| {
            format!(
                "pre-prepare for height {} in view {} is not signed by its leader {leader}",
                self.height, self.view
            )
        })
    }

    pub fn write(&self, w: &mut Writer) {
        w.u8(TAG_PRE_PREPARE)
            .u64(self.view)
            .u64(self.height)
            .fixed(&self.block_hash.0)
            .fixed(&self.signature.0);
    }

    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let tag = r.u8("tag")?;
        if tag != TAG_PRE_PREPARE {
            return Err(DecodeError::InvalidTag {
                what: "pre-prepare",
                tag,
            });
        }
        Ok(PrePrepare {
            view: r.u64("view")?,
            height: r.u64("height")?,
            block_hash: Hash(r.array("blockHash")?),
            signature: Signature(r.array("signature")?),
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(PRE_PREPARE_LEN);
        self.write(&mut w);
        w.finish()
    }
}

/// PBFT's prepared certificate (§4.2): the leader's pre-prepare and `quorum - 1` matching
/// prepare votes from other replicas (the leader's pre-prepare stands for its own prepare).
/// It proves that no other block can be prepared at this height in this view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PreparedCert {
    pub pre_prepare: PrePrepare,
    pub prepares: Vec<Vote>,
}

impl PreparedCert {
    pub fn height(&self) -> u64 {
        self.pre_prepare.height
    }

    pub fn view(&self) -> u64 {
        self.pre_prepare.view
    }

    pub fn block_hash(&self) -> Hash {
        self.pre_prepare.block_hash
    }

    pub fn verify(&self, validators: &ValidatorSet) -> Result<(), String> {
        self.pre_prepare.verify(validators)?;
        let pp = &self.pre_prepare;
        let leader = validators.leader(pp.view);
        let mut seen = BTreeSet::new();
        for vote in &self.prepares {
            if vote.voter == leader {
                return Err(format!(
                    "the leader {leader} cannot prepare its own proposal"
                ));
            }
            if !seen.insert(vote.voter) {
                return Err(format!("validator {} prepared twice", vote.voter));
            }
            check_vote(
                vote,
                validators,
                Phase::Prepare,
                pp.height,
                pp.view,
                &pp.block_hash,
            )?;
        }
        if seen.len() + 1 < validators.quorum() {
            return Err(format!(
                "prepared certificate for height {} has {} prepares, needs {}",
                pp.height,
                seen.len(),
                validators.quorum() - 1
            ));
        }
        Ok(())
    }

    pub fn write(&self, w: &mut Writer) {
        self.pre_prepare.write(w);
        w.u32(self.prepares.len() as u32);
        for v in &self.prepares {
            v.write(w);
        }
    }

    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let pre_prepare = PrePrepare::read(r)?;
        let (n, cap) = read_count(r, "prepareCount", VOTE_LEN)?;
        let mut prepares = Vec::with_capacity(cap);
        for _ in 0..n {
            prepares.push(read_vote(r)?);
        }
        Ok(PreparedCert {
            pre_prepare,
            prepares,
        })
    }
}

/// A stable checkpoint's proof (§4.3): a quorum of checkpoint votes for the block at
/// `height`. Checkpoint votes are view independent: they are signed with view 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CheckpointProof {
    pub height: u64,
    pub block_hash: Hash,
    pub votes: Vec<Vote>,
}

impl CheckpointProof {
    pub fn verify(&self, validators: &ValidatorSet) -> Result<(), String> {
        if self.height == 0 {
            return Err("checkpoint at genesis".into());
        }
        let mut seen = BTreeSet::new();
        for vote in &self.votes {
            if !seen.insert(vote.voter) {
                return Err(format!("validator {} checkpointed twice", vote.voter));
            }
            check_vote(
                vote,
                validators,
                Phase::Checkpoint,
                self.height,
                0,
                &self.block_hash,
            )?;
        }
        if seen.len() < validators.quorum() {
            return Err(format!(
                "checkpoint at {} has {} votes, needs {}",
                self.height,
                seen.len(),
                validators.quorum()
            ));
        }
        Ok(())
    }

    pub fn write(&self, w: &mut Writer) {
        w.u64(self.height).fixed(&self.block_hash.0);
        w.u32(self.votes.len() as u32);
        for v in &self.votes {
            v.write(w);
        }
    }

    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let height = r.u64("checkpointHeight")?;
        let block_hash = Hash(r.array("checkpointHash")?);
        let (n, cap) = read_count(r, "checkpointVotes", VOTE_LEN)?;
        let mut votes = Vec::with_capacity(cap);
        for _ in 0..n {
            votes.push(read_vote(r)?);
        }
        Ok(CheckpointProof {
            height,
            block_hash,
            votes,
        })
    }
}

pub(crate) fn write_checkpoint(w: &mut Writer, cp: Option<&CheckpointProof>) {
    match cp {
        None => {
            w.u8(0);
        }
        Some(cp) => {
            w.u8(1);
            cp.write(w);
        }
    }
}

pub(crate) fn read_checkpoint(r: &mut Reader<'_>) -> Result<Option<CheckpointProof>, DecodeError> {
    match r.u8("checkpoint")? {
        0 => Ok(None),
        1 => Ok(Some(CheckpointProof::read(r)?)),
        tag => Err(DecodeError::InvalidTag {
            what: "checkpoint",
            tag,
        }),
    }
}

/// PBFT's view-change message (§4.4): replica `replica` moves to `new_view` and reports its
/// last stable checkpoint (none: genesis) and, for every height above it, the prepared
/// certificate of the highest view it prepared in. Signed, so that the new leader can
/// forward it inside its new-view message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ViewChange {
    pub new_view: u64,
    pub replica: u32,
    pub checkpoint: Option<CheckpointProof>,
    pub prepared: Vec<PreparedCert>,
    pub signature: Signature,
}

impl ViewChange {
    fn write_body(
        w: &mut Writer,
        new_view: u64,
        replica: u32,
        checkpoint: Option<&CheckpointProof>,
        prepared: &[PreparedCert],
    ) {
        w.u8(TAG_VIEW_CHANGE).u64(new_view).u32(replica);
        write_checkpoint(w, checkpoint);
        w.u32(prepared.len() as u32);
        for p in prepared {
            p.write(w);
        }
    }

    fn signed_message(
        new_view: u64,
        replica: u32,
        checkpoint: Option<&CheckpointProof>,
        prepared: &[PreparedCert],
    ) -> Vec<u8> {
        let mut w = Writer::new();
        w.fixed(VIEW_CHANGE_DOMAIN);
        Self::write_body(&mut w, new_view, replica, checkpoint, prepared);
        w.finish()
    }

    pub fn sign(
        new_view: u64,
        replica: u32,
        checkpoint: Option<CheckpointProof>,
        prepared: Vec<PreparedCert>,
        key: &Keypair,
    ) -> Self {
        let signature = key.sign(&Self::signed_message(
            new_view,
            replica,
            checkpoint.as_ref(),
            &prepared,
        ));
        ViewChange {
            new_view,
            replica,
            checkpoint,
            prepared,
            signature,
        }
    }

    pub fn checkpoint_height(&self) -> u64 {
        self.checkpoint.as_ref().map_or(0, |c| c.height)
    }

    /// Checks the signature and every certificate inside; at most `max_entries` prepared
    /// certificates, in increasing height order, above the checkpoint and below `new_view`.
    pub fn verify(&self, validators: &ValidatorSet, max_entries: usize) -> Result<(), String> {
        let key = validators
            .keys
            .get(self.replica as usize)
            .ok_or_else(|| format!("view change from unknown replica {}", self.replica))?;
        key.verify(
            &Self::signed_message(
                self.new_view,
                self.replica,
                self.checkpoint.as_ref(),
                &self.prepared,
            ),
            &self.signature,
        )
        .map_err(|_| {
            format!(
                "bad signature on the view change of replica {}",
                self.replica
            )
        })?;
        if let Some(cp) = &self.checkpoint {
            cp.verify(validators)?;
        }
        if self.prepared.len() > max_entries {
            return Err(format!(
                "view change reports {} prepared heights, at most {max_entries} fit the log",
                self.prepared.len()
            ));
        }
        let mut above = self.checkpoint_height();
        for p in &self.prepared {
            if p.height() <= above {
                return Err(format!(
                    "prepared height {} is not above {above} (the checkpoint or the previous entry)",
                    p.height()
                ));
            }
            if p.view() >= self.new_view {
                return Err(format!(
                    "prepared in view {}, not below the new view {}",
                    p.view(),
                    self.new_view
                ));
            }
            p.verify(validators)?;
            above = p.height();
        }
        Ok(())
    }

    pub fn write(&self, w: &mut Writer) {
        Self::write_body(
            w,
            self.new_view,
            self.replica,
            self.checkpoint.as_ref(),
            &self.prepared,
        );
        w.fixed(&self.signature.0);
    }

    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let tag = r.u8("tag")?;
        if tag != TAG_VIEW_CHANGE {
            return Err(DecodeError::InvalidTag {
                what: "view change",
                tag,
            });
        }
        let new_view = r.u64("newView")?;
        let replica = r.u32("replica")?;
        let checkpoint = read_checkpoint(r)?;
        let (n, cap) = read_count(r, "preparedCount", PREPARED_LEN)?;
        let mut prepared = Vec::with_capacity(cap);
        for _ in 0..n {
            prepared.push(PreparedCert::read(r)?);
        }
        let signature = Signature(r.array("signature")?);
        Ok(ViewChange {
            new_view,
            replica,
            checkpoint,
            prepared,
            signature,
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.write(&mut w);
        w.finish()
    }
}

/// PBFT's new-view message (§4.4): a quorum of view-change messages for `view` and the
/// pre-prepares, signed by the leader of `view`, that they determine. It carries no
/// signature of its own: every part is signed, and replicas recompute the pre-prepares
/// from the view changes, so anyone may relay it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NewView {
    pub view: u64,
    pub view_changes: Vec<ViewChange>,
    pub pre_prepares: Vec<PrePrepare>,
}

impl NewView {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(TAG_NEW_VIEW).u64(self.view);
        w.u32(self.view_changes.len() as u32);
        for vc in &self.view_changes {
            vc.write(&mut w);
        }
        w.u32(self.pre_prepares.len() as u32);
        for pp in &self.pre_prepares {
            pp.write(&mut w);
        }
        w.finish()
    }

    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let tag = r.u8("tag")?;
        if tag != TAG_NEW_VIEW {
            return Err(DecodeError::InvalidTag {
                what: "new view",
                tag,
            });
        }
        let view = r.u64("view")?;
        let (n, cap) = read_count(r, "viewChangeCount", VIEW_CHANGE_LEN)?;
        let mut view_changes = Vec::with_capacity(cap);
        for _ in 0..n {
            view_changes.push(ViewChange::read(r)?);
        }
        let (n, cap) = read_count(r, "prePrepareCount", PRE_PREPARE_LEN)?;
        let mut pre_prepares = Vec::with_capacity(cap);
        for _ in 0..n {
            pre_prepares.push(PrePrepare::read(r)?);
        }
        Ok(NewView {
            view,
            view_changes,
            pre_prepares,
        })
    }
}

/// Any PBFT message, as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Message {
    Vote(Vote),
    PrePrepare(PrePrepare),
    ViewChange(ViewChange),
    NewView(NewView),
}

impl Message {
    /// `None` for anything that is not exactly one well-formed message.
    pub fn decode(bytes: &[u8]) -> Option<Message> {
        let mut r = Reader::new(bytes);
        let msg = match *bytes.first()? {
            crate::TAG_VOTE => Message::Vote(read_vote(&mut r).ok()?),
            TAG_PRE_PREPARE => Message::PrePrepare(PrePrepare::read(&mut r).ok()?),
            TAG_VIEW_CHANGE => Message::ViewChange(ViewChange::read(&mut r).ok()?),
            TAG_NEW_VIEW => Message::NewView(NewView::read(&mut r).ok()?),
            _ => return None,
        };
        r.finish().ok()?;
        Some(msg)
    }
}
