//! Wire messages of the collector-based engines (Linear BFT and SBFT), tags 32..47.
//!
//! Shares travel as [`Vote`]s (tag [`crate::TAG_VOTE`]): alone (Linear BFT prepare and commit
//! shares, SBFT commit shares) or two in one [`Message::Shares`] (SBFT's fast-path share and
//! slow-path prepare share, sent together). Everything else is signed by its author with its
//! ed25519 key where a third party must be able to check it later: a proposal (it is
//! embedded in a new-view message) and a view change (it is the new leader's justification).
//!
//! Decoding never panics and never reserves more than the input can hold: a list is read
//! element by element, with its length bounded by the validator count.

use v2v_abi::{DecodeError, Reader, Writer};
use v2v_crypto::{BlsSignature, Keypair, Signature};
use v2v_primitives::Hash;

use crate::{Certificate, Phase, ValidatorSet, Vote, vote_message};

pub(crate) const TAG_PROPOSAL: u8 = 32;
pub(crate) const TAG_SHARES: u8 = 33;
pub(crate) const TAG_PREPARE_CERTIFICATE: u8 = 34;
pub(crate) const TAG_COMMIT_CERTIFICATE: u8 = 35;
pub(crate) const TAG_VIEW_CHANGE: u8 = 36;
pub(crate) const TAG_NEW_VIEW: u8 = 37;

const PROPOSAL_DOMAIN: &[u8] = b"v2v/collector/proposal/v1";
const VIEW_CHANGE_DOMAIN: &[u8] = b"v2v/collector/view-change/v1";

/// At most this many votes travel in one [`Message::Shares`].
const MAX_SHARES: u32 = 4;

/// The leader of `view` proposes `block_hash` at `height`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SignedProposal {
    pub height: u64,
    pub view: u64,
    pub block_hash: Hash,
    /// By `validators.leader(view)`'s ed25519 key.
    pub signature: Signature,
}

fn proposal_bytes(height: u64, view: u64, block_hash: &Hash) -> Vec<u8> {
    let mut w = Writer::with_capacity(PROPOSAL_DOMAIN.len() + 48);
    w.fixed(PROPOSAL_DOMAIN)
        .u64(height)
        .u64(view)
        .fixed(&block_hash.0);
    w.finish()
}

impl SignedProposal {
    pub fn sign(height: u64, view: u64, block_hash: Hash, key: &Keypair) -> Self {
        let signature = key.sign(&proposal_bytes(height, view, &block_hash));
        Self {
            height,
            view,
            block_hash,
            signature,
        }
    }

    /// Signed by the leader of its view.
    pub fn verify(&self, validators: &ValidatorSet) -> bool {
        validators
            .keys
            .get(validators.leader(self.view) as usize)
            .is_some_and(|key| {
                key.verify(
                    &proposal_bytes(self.height, self.view, &self.block_hash),
                    &self.signature,
                )
                .is_ok()
            })
    }

    fn write(&self, w: &mut Writer) {
        w.u64(self.height)
            .u64(self.view)
            .fixed(&self.block_hash.0)
            .fixed(&self.signature.0);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            height: r.u64("height")?,
            view: r.u64("view")?,
            block_hash: Hash(r.array("blockHash")?),
            signature: Signature(r.array("signature")?),
        })
    }
}

/// A quorum's slow-path shares over `vote_message(Prepare, height, view, block_hash)`,
/// combined into one BLS signature under the slow-path group key: the Linear BFT "prepare"
/// certificate (SBFT's slow path, Gueta et al. §IV), on which replicas lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PrepareCertificate {
    pub height: u64,
    pub view: u64,
    pub block_hash: Hash,
    pub signature: BlsSignature,
}

impl PrepareCertificate {
    /// One pairing check against the slow-path group key.
    pub fn verify(&self, validators: &ValidatorSet) -> bool {
        validators.threshold.as_ref().is_some_and(|keys| {
            keys.slow
                .verify(
                    &vote_message(Phase::Prepare, self.height, self.view, &self.block_hash),
                    &self.signature,
                )
                .is_ok()
        })
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.u64(self.height)
            .u64(self.view)
            .fixed(&self.block_hash.0)
            .fixed(&self.signature.0);
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            height: r.u64("height")?,
            view: r.u64("view")?,
            block_hash: Hash(r.array("blockHash")?),
            signature: BlsSignature(r.array("signature")?),
        })
    }
}

/// SBFT: the highest-view fast-path share a replica signed at its next height (the height is
/// the view change's). The share itself is not needed: the report is inside the ed25519
/// signed view change, and the new leader's rule tolerates f lying reporters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FastReport {
    pub view: u64,
    pub block_hash: Hash,
}

/// A replica's request to move to `view`, sent to the new leader only (linear view change),
/// with what the new leader needs to stay safe: the replica's next height (proven by the
/// commit certificate of the height below, when it has one), its lock at that height, and
/// (SBFT) its highest fast-path share at that height.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ViewChange {
    pub view: u64,
    pub sender: u32,
    /// The sender's next height: it finalized everything below.
    pub height: u64,
    /// Commit certificate for `height - 1`, when the sender has it.
    pub committed: Option<Certificate>,
    /// The sender's highest prepare certificate at `height`.
    pub lock: Option<PrepareCertificate>,
    /// SBFT: the sender's highest fast-path share at `height`.
    pub fast: Option<FastReport>,
    /// The sender's ed25519 signature over everything above.
    pub signature: Signature,
}

impl ViewChange {
    pub fn sign(
        view: u64,
        sender: u32,
        height: u64,
        committed: Option<Certificate>,
        lock: Option<PrepareCertificate>,
        fast: Option<FastReport>,
        key: &Keypair,
    ) -> Self {
        let mut vc = Self {
            view,
            sender,
            height,
            committed,
            lock,
            fast,
            signature: Signature([0; 64]),
        };
        vc.signature = key.sign(&vc.signing_bytes());
        vc
    }

    fn write_body(&self, w: &mut Writer) {
        w.u64(self.view).u32(self.sender).u64(self.height);
        match &self.committed {
            Some(c) => w.u8(1).fixed(&c.encode()),
            None => w.u8(0),
        };
        match &self.lock {
            Some(l) => {
                w.u8(1);
                l.write(w);
            }
            None => {
                w.u8(0);
            }
        }
        match &self.fast {
            Some(f) => w.u8(1).u64(f.view).fixed(&f.block_hash.0),
            None => w.u8(0),
        };
    }

    fn signing_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(512);
        w.fixed(VIEW_CHANGE_DOMAIN);
        self.write_body(&mut w);
        w.finish()
    }

    /// Signed by its sender.
    pub fn verify_signature(&self, validators: &ValidatorSet) -> bool {
        validators
            .keys
            .get(self.sender as usize)
            .is_some_and(|key| key.verify(&self.signing_bytes(), &self.signature).is_ok())
    }

    /// What every view change must satisfy, without pairings: the lock and the fast report
    /// are from an earlier view at the sender's next height, the certificate proves the height
    /// below.
    pub fn well_formed(&self) -> Result<(), &'static str> {
        if let Some(l) = &self.lock
            && (l.height != self.height || l.view >= self.view)
        {
            return Err("view change carries a lock from another height or a later view");
        }
        if let Some(f) = &self.fast
            && f.view >= self.view
        {
            return Err("view change reports a fast-path share from a later view");
        }
        if let Some(c) = &self.committed
            && c.height.checked_add(1) != Some(self.height)
        {
            return Err("view change carries a certificate for another height");
        }
        Ok(())
    }

    /// [`Self::well_formed`] plus the pairings: the lock and the commit certificate verify.
    pub fn check_contents(&self, validators: &ValidatorSet) -> Result<(), &'static str> {
        self.well_formed()?;
        if let Some(l) = &self.lock
            && !l.verify(validators)
        {
            return Err("view change carries an invalid prepare certificate");
        }
        if let Some(c) = &self.committed
            && c.verify(validators, c.height, &c.block_hash).is_err()
        {
            return Err("view change carries an invalid commit certificate");
        }
        Ok(())
    }

    fn write(&self, w: &mut Writer) {
        self.write_body(w);
        w.fixed(&self.signature.0);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let view = r.u64("view")?;
        let sender = r.u32("sender")?;
        let height = r.u64("height")?;
        let committed = match r.u8("committed")? {
            0 => None,
            1 => Some(read_certificate(r)?),
            tag => {
                return Err(DecodeError::InvalidTag {
                    what: "committed",
                    tag,
                });
            }
        };
        let lock = match r.u8("lock")? {
            0 => None,
            1 => Some(PrepareCertificate::read(r)?),
            tag => return Err(DecodeError::InvalidTag { what: "lock", tag }),
        };
        let fast = match r.u8("fast")? {
            0 => None,
            1 => Some(FastReport {
                view: r.u64("fastView")?,
                block_hash: Hash(r.array("fastBlockHash")?),
            }),
            tag => return Err(DecodeError::InvalidTag { what: "fast", tag }),
        };
        Ok(Self {
            view,
            sender,
            height,
            committed,
            lock,
            fast,
            signature: Signature(r.array("signature")?),
        })
    }
}

/// The new leader's message (PBFT §4.4's new-view, sent by the collector): a quorum of view
/// changes for the proposal's view as justification, and the proposal for the next height
/// that the justification dictates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NewView {
    /// Its height and view are the new view's.
    pub proposal: SignedProposal,
    /// The commit certificate of `proposal.height - 1`, so that lagging replicas can sync.
    pub parent: Option<Certificate>,
    /// Distinct senders, in increasing index order.
    pub view_changes: Vec<ViewChange>,
}

/// Everything the collector-based engines send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Message {
    /// A prepare or commit share (tag 1).
    Vote(Vote),
    /// SBFT: a replica's fast-path share and slow-path prepare share, in one message.
    Shares(Vec<Vote>),
    Proposal(SignedProposal),
    PrepareCertificate(PrepareCertificate),
    CommitCertificate(Certificate),
    ViewChange(ViewChange),
    NewView(NewView),
}

fn read_certificate(r: &mut Reader<'_>) -> Result<Certificate, DecodeError> {
    Certificate::read(r).map_err(|_| DecodeError::Invalid {
        what: "certificate",
        reason: "undecodable",
    })
}

fn read_vote(r: &mut Reader<'_>) -> Result<Vote, DecodeError> {
    Vote::read(r).map_err(|_| DecodeError::Invalid {
        what: "vote",
        reason: "undecodable",
    })
}

/// A list length, bounded by `max`.
fn read_count(r: &mut Reader<'_>, what: &'static str, max: usize) -> Result<usize, DecodeError> {
    let n = r.u32(what)?;
    if n as usize > max {
        return Err(DecodeError::TooLong {
            what,
            len: n as usize,
            max,
        });
    }
    Ok(n as usize)
}

impl Message {
    pub fn encode(&self) -> Vec<u8> {
        if let Message::Vote(v) = self {
            return v.encode();
        }
        let mut w = Writer::with_capacity(256);
        match self {
            Message::Vote(_) => {}
            Message::Shares(votes) => {
                w.u8(TAG_SHARES).u32(votes.len() as u32);
                for v in votes {
                    v.write(&mut w);
                }
            }
            Message::Proposal(p) => {
                w.u8(TAG_PROPOSAL);
                p.write(&mut w);
            }
            Message::PrepareCertificate(pc) => {
                w.u8(TAG_PREPARE_CERTIFICATE);
                pc.write(&mut w);
            }
            Message::CommitCertificate(c) => {
                w.u8(TAG_COMMIT_CERTIFICATE).fixed(&c.encode());
            }
            Message::ViewChange(vc) => {
                w.u8(TAG_VIEW_CHANGE);
                vc.write(&mut w);
            }
            Message::NewView(nv) => {
                w.u8(TAG_NEW_VIEW);
                nv.proposal.write(&mut w);
                match &nv.parent {
                    Some(c) => w.u8(1).fixed(&c.encode()),
                    None => w.u8(0),
                };
                w.u32(nv.view_changes.len() as u32);
                for vc in &nv.view_changes {
                    vc.write(&mut w);
                }
            }
        }
        w.finish()
    }

    /// Decodes a message of a chain with `validators` validators (which bounds every list).
    pub fn decode(bytes: &[u8], validators: usize) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let message = match bytes.first().copied() {
            Some(crate::TAG_VOTE) => Message::Vote(read_vote(&mut r)?),
            Some(_) => {
                let tag = r.u8("tag")?;
                match tag {
                    TAG_SHARES => {
                        let n = read_count(&mut r, "shares", MAX_SHARES as usize)?;
                        let mut votes = Vec::with_capacity(n);
                        for _ in 0..n {
                            votes.push(read_vote(&mut r)?);
                        }
                        Message::Shares(votes)
                    }
                    TAG_PROPOSAL => Message::Proposal(SignedProposal::read(&mut r)?),
                    TAG_PREPARE_CERTIFICATE => {
                        Message::PrepareCertificate(PrepareCertificate::read(&mut r)?)
                    }
                    TAG_COMMIT_CERTIFICATE => Message::CommitCertificate(read_certificate(&mut r)?),
                    TAG_VIEW_CHANGE => Message::ViewChange(ViewChange::read(&mut r)?),
                    TAG_NEW_VIEW => {
                        let proposal = SignedProposal::read(&mut r)?;
                        let parent = match r.u8("parent")? {
                            0 => None,
                            1 => Some(read_certificate(&mut r)?),
                            tag => {
                                return Err(DecodeError::InvalidTag {
                                    what: "parent",
                                    tag,
                                });
                            }
                        };
                        let n = read_count(&mut r, "viewChanges", validators)?;
                        let mut view_changes = Vec::with_capacity(n);
                        for _ in 0..n {
                            view_changes.push(ViewChange::read(&mut r)?);
                        }
                        Message::NewView(NewView {
                            proposal,
                            parent,
                            view_changes,
                        })
                    }
                    tag => {
                        return Err(DecodeError::InvalidTag {
                            what: "message",
                            tag,
                        });
                    }
                }
            }
            None => {
                return Err(DecodeError::UnexpectedEnd {
                    what: "tag",
                    needed: 1,
                });
            }
        };
        r.finish()?;
        Ok(message)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::{Proof, Timing, test_committee};

    fn samples() -> Vec<Message> {
        let committee = test_committee(4, 0, 7, Timing::default());
        let cfg = &committee.configs[1];
        let hash = Hash([9; 32]);
        let slow = cfg.slow_share.as_ref().unwrap();
        let fast = cfg.fast_share.as_ref().unwrap();
        let prepare = Vote::sign_share(Phase::Prepare, 3, 1, hash, 1, slow, false);
        let fast_vote = Vote::sign_share(Phase::Commit, 3, 1, hash, 1, fast, true);
        let pc = PrepareCertificate {
            height: 3,
            view: 1,
            block_hash: hash,
            signature: slow.sign(b"x"),
        };
        let cert = Certificate {
            height: 2,
            view: 0,
            block_hash: Hash([1; 32]),
            proof: Proof::Threshold {
                fast: true,
                signature: fast.sign(b"y"),
            },
        };
        let vc = ViewChange::sign(
            2,
            1,
            3,
            Some(cert.clone()),
            Some(pc.clone()),
            Some(FastReport {
                view: 1,
                block_hash: hash,
            }),
            &cfg.key,
        );
        let proposal = SignedProposal::sign(3, 2, hash, &committee.configs[2].key);
        vec![
            Message::Vote(prepare.clone()),
            Message::Shares(vec![fast_vote, prepare]),
            Message::Proposal(proposal.clone()),
            Message::PrepareCertificate(pc),
            Message::CommitCertificate(cert.clone()),
            Message::ViewChange(vc.clone()),
            Message::NewView(NewView {
                proposal,
                parent: Some(cert),
                view_changes: vec![vc.clone(), vc],
            }),
        ]
    }

    #[test]
    fn messages_round_trip_and_truncations_are_rejected() {
        for m in samples() {
            let bytes = m.encode();
            assert_eq!(Message::decode(&bytes, 4).unwrap(), m);
            for cut in 0..bytes.len() {
                assert!(
                    Message::decode(&bytes[..cut], 4).is_err(),
                    "{m:?} cut at {cut}"
                );
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(Message::decode(&longer, 4).is_err());
        }
    }

    #[test]
    fn signatures_bind_their_contents() {
        let committee = test_committee(4, 0, 7, Timing::default());
        let set = &committee.validators;
        for m in samples() {
            match m {
                Message::Proposal(p) => {
                    assert!(p.verify(set));
                    let mut q = p.clone();
                    q.height += 1;
                    assert!(!q.verify(set));
                    q = p.clone();
                    q.view += 1; // another leader
                    assert!(!q.verify(set));
                }
                Message::ViewChange(vc) => {
                    assert!(vc.verify_signature(set));
                    vc.well_formed().unwrap();
                    // The lock's signature is garbage: the pairing check catches it.
                    assert!(vc.check_contents(set).is_err());
                    let mut other = vc.clone();
                    other.fast = None;
                    assert!(!other.verify_signature(set));
                }
                _ => {}
            }
        }
    }

    #[test]
    fn hostile_lengths_do_not_allocate() {
        // A new-view claiming u32::MAX view changes.
        let committee = test_committee(4, 0, 7, Timing::default());
        let p = SignedProposal::sign(1, 1, Hash([0; 32]), &committee.configs[1].key);
        let mut w = Writer::new();
        w.u8(TAG_NEW_VIEW);
        p.write(&mut w);
        w.u8(0).u32(u32::MAX);
        assert!(Message::decode(&w.finish(), 4).is_err());
        let mut w = Writer::new();
        w.u8(TAG_SHARES).u32(u32::MAX);
        assert!(Message::decode(&w.finish(), 4).is_err());
        assert!(Message::decode(&[], 4).is_err());
        assert!(Message::decode(&[TAG_NEW_VIEW + 10], 4).is_err());
    }
}
