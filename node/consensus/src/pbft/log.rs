//! PBFT's message log (§4.2, §4.3): one [`Slot`] per height above the last stable checkpoint,
//! and the part of it that must survive a crash ([`PersistedState`]).

use std::collections::BTreeMap;

use v2v_abi::{DecodeError, Reader, Writer};
use v2v_primitives::Hash;

use super::messages::{
    CheckpointProof, PrePrepare, PreparedCert, read_checkpoint, write_checkpoint,
};
use v2v_crypto::Signature;

use crate::{Certificate, Vote, VoteSignature};

/// How many verified digests a slot remembers (one per view in which the height was
/// proposed, in practice one or two).
const VERIFIED_KEPT: usize = 4;

/// Everything the replica knows about one height.
#[derive(Debug, Default, Clone)]
pub(super) struct Slot {
    /// The latest pre-prepare accepted (or, at the leader, issued) for this height; used only
    /// while its view is the current one.
    pub pre_prepare: Option<PrePrepare>,
    /// Whether this replica voted for `pre_prepare` (sent its prepare, or issued it as the
    /// leader). Persisted: after a restart it never votes for another block at this height in
    /// that view.
    pub voted: bool,
    /// A `VerifyProposal` is outstanding for (view, digest).
    pub verifying: Option<(u64, Hash)>,
    /// Digests the node has (verified, built by us, or committed) at this height.
    pub verified: Vec<Hash>,
    /// Prepare votes by (view, voter); only the current view and the next are kept.
    pub prepares: BTreeMap<(u64, u32), Vote>,
    /// Commit votes by (view, voter).
    pub commits: BTreeMap<(u64, u32), Vote>,
    /// The prepared certificate of the highest view this replica prepared in (reported in
    /// view changes). Persisted before the commit vote it enables.
    pub prepared: Option<PreparedCert>,
    /// The commit vote sent: (view, digest). Persisted before it is sent.
    pub commit_sent: Option<(u64, Hash)>,
    /// A quorum of commit votes for a block the node has: committed-local, waiting for the
    /// heights below to be committed.
    pub committed: Option<Certificate>,
}

impl Slot {
    pub fn pre_prepare_in(&self, view: u64) -> Option<&PrePrepare> {
        self.pre_prepare.as_ref().filter(|pp| pp.view == view)
    }

    pub fn prepared_in(&self, view: u64) -> bool {
        self.prepared.as_ref().is_some_and(|p| p.view() == view)
    }

    pub fn is_verified(&self, hash: &Hash) -> bool {
        self.verified.contains(hash)
    }

    pub fn mark_verified(&mut self, hash: Hash) {
        if self.verified.contains(&hash) {
            return;
        }
        if self.verified.len() >= VERIFIED_KEPT {
            self.verified.remove(0);
        }
        self.verified.push(hash);
    }

    /// Makes the height prepared in `view` (§4.2) if it holds the leader's pre-prepare of
    /// `view` and `quorum - 1` matching prepares from other replicas. The caller checks the
    /// height below (the in-order rule).
    pub fn try_prepare(&mut self, view: u64, leader: u32, quorum: usize) -> bool {
        if self.prepared_in(view) {
            return false;
        }
        let Some(pp) = self.pre_prepare_in(view).cloned() else {
            return false;
        };
        let prepares: Vec<Vote> = self
            .prepares
            .range((view, 0)..=(view, u32::MAX))
            .map(|(_, v)| v)
            .filter(|v| v.block_hash == pp.block_hash && v.voter != leader)
            .take(quorum.saturating_sub(1))
            .cloned()
            .collect();
        if prepares.len() + 1 < quorum {
            return false;
        }
        self.prepared = Some(PreparedCert {
            pre_prepare: pp,
            prepares,
        });
        true
    }

    /// The digest to send a commit vote for: prepared in `view`, a block the node has, and
    /// no commit sent in `view` yet.
    pub fn commit_to_send(&self, view: u64) -> Option<Hash> {
        let p = self.prepared.as_ref().filter(|p| p.view() == view)?;
        let hash = p.block_hash();
        let already = self.commit_sent.is_some_and(|(v, _)| v == view);
        (!already && self.is_verified(&hash)).then_some(hash)
    }

    /// A quorum of commit votes of `view` for one block: the block and the first `quorum`
    /// signatures, in validator order (the certificate's proof).
    pub fn commit_quorum(&self, view: u64, quorum: usize) -> Option<(Hash, Vec<(u32, Signature)>)> {
        let mut by_hash: BTreeMap<Hash, Vec<(u32, Signature)>> = BTreeMap::new();
        for v in self
            .commits
            .range((view, 0)..=(view, u32::MAX))
            .map(|(_, v)| v)
        {
            if let VoteSignature::Ed25519(sig) = v.signature {
                by_hash
                    .entry(v.block_hash)
                    .or_default()
                    .push((v.voter, sig));
            }
        }
        by_hash
            .into_iter()
            .find(|(_, s)| s.len() >= quorum)
            .map(|(hash, mut s)| {
                s.truncate(quorum);
                (hash, s)
            })
    }

    /// Drops votes of views before `view`: they can no longer prepare or commit anything
    /// (PBFT §4.4: a replica in view v accepts only messages of view v).
    pub fn forget_views_before(&mut self, view: u64) {
        self.prepares.retain(|(v, _), _| *v >= view);
        self.commits.retain(|(v, _), _| *v >= view);
        if self.verifying.is_some_and(|(v, _)| v < view) {
            self.verifying = None;
        }
    }

    fn persisted(&self) -> Option<PersistedSlot> {
        let voted = self.pre_prepare.clone().filter(|_| self.voted);
        if voted.is_none() && self.commit_sent.is_none() && self.prepared.is_none() {
            return None;
        }
        Some(PersistedSlot {
            voted,
            commit_sent: self.commit_sent,
            prepared: self.prepared.clone(),
        })
    }
}

/// What a slot keeps across a crash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PersistedSlot {
    pub voted: Option<PrePrepare>,
    pub commit_sent: Option<(u64, Hash)>,
    pub prepared: Option<PreparedCert>,
}

impl PersistedSlot {
    pub fn into_slot(self) -> Slot {
        let voted = self.voted.is_some();
        Slot {
            pre_prepare: self.voted,
            voted,
            commit_sent: self.commit_sent,
            prepared: self.prepared,
            ..Slot::default()
        }
    }
}

/// The engine's safety-critical memory (handed out with `Output::Persist`): its view, whether
/// it is in a view change, its last stable checkpoint, per height its votes and prepared
/// certificate, and the digests it committed above the checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PersistedState {
    pub view: u64,
    pub active: bool,
    pub stable: Option<CheckpointProof>,
    pub slots: Vec<(u64, PersistedSlot)>,
    pub decided: Vec<(u64, Hash)>,
}

/// First byte of the persisted encoding.
const STATE_VERSION: u8 = 1;

impl PersistedState {
    pub fn capture(
        view: u64,
        active: bool,
        stable: Option<&CheckpointProof>,
        slots: &BTreeMap<u64, Slot>,
        decided: &BTreeMap<u64, Hash>,
    ) -> Self {
        PersistedState {
            view,
            active,
            stable: stable.cloned(),
            slots: slots
                .iter()
                .filter_map(|(h, s)| s.persisted().map(|p| (*h, p)))
                .collect(),
            decided: decided.iter().map(|(h, d)| (*h, *d)).collect(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(STATE_VERSION).u64(self.view).bool(self.active);
        write_checkpoint(&mut w, self.stable.as_ref());
        w.u32(self.slots.len() as u32);
        for (h, s) in &self.slots {
            w.u64(*h);
            match &s.voted {
                None => w.u8(0),
                Some(pp) => {
                    w.u8(1);
                    pp.write(&mut w);
                    &mut w
                }
            };
            match &s.commit_sent {
                None => w.u8(0),
                Some((v, hash)) => w.u8(1).u64(*v).fixed(&hash.0),
            };
            match &s.prepared {
                None => w.u8(0),
                Some(p) => {
                    w.u8(1);
                    p.write(&mut w);
                    &mut w
                }
            };
        }
        w.u32(self.decided.len() as u32);
        for (h, d) in &self.decided {
            w.u64(*h).fixed(&d.0);
        }
        w.finish()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let version = r.u8("version")?;
        if version != STATE_VERSION {
            return Err(DecodeError::InvalidTag {
                what: "PBFT state version",
                tag: version,
            });
        }
        let view = r.u64("view")?;
        let active = r.bool("active")?;
        let stable = read_checkpoint(&mut r)?;
        let n = r.u32("slotCount")? as usize;
        let mut slots = Vec::with_capacity(n.min(r.remaining() / 11));
        for _ in 0..n {
            let h = r.u64("height")?;
            let voted = match r.u8("voted")? {
                0 => None,
                1 => Some(PrePrepare::read(&mut r)?),
                tag => return Err(DecodeError::InvalidTag { what: "voted", tag }),
            };
            let commit_sent = match r.u8("commitSent")? {
                0 => None,
                1 => Some((r.u64("commitView")?, Hash(r.array("commitHash")?))),
                tag => {
                    return Err(DecodeError::InvalidTag {
                        what: "commitSent",
                        tag,
                    });
                }
            };
            let prepared = match r.u8("prepared")? {
                0 => None,
                1 => Some(PreparedCert::read(&mut r)?),
                tag => {
                    return Err(DecodeError::InvalidTag {
                        what: "prepared",
                        tag,
                    });
                }
            };
            slots.push((
                h,
                PersistedSlot {
                    voted,
                    commit_sent,
                    prepared,
                },
            ));
        }
        let n = r.u32("decidedCount")? as usize;
        let mut decided = Vec::with_capacity(n.min(r.remaining() / 40));
        for _ in 0..n {
            decided.push((r.u64("height")?, Hash(r.array("hash")?)));
        }
        r.finish()?;
        Ok(PersistedState {
            view,
            active,
            stable,
            slots,
            decided,
        })
    }
}
