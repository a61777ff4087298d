//! Votes: the one message shape every engine uses for prepare, commit and fast-path
//! signatures, so that certificates, the simulator's byzantine replicas and the wire share
//! one encoding. Engine-specific messages (proposals, view changes) use tags from
//! [`FIRST_ENGINE_TAG`] up.

use thiserror::Error;
use v2v_abi::{Reader, Writer};
use v2v_crypto::{BlsKeypair, BlsSignature, Keypair, Signature};
use v2v_primitives::Hash;

use crate::ValidatorSet;

/// First byte of an encoded [`Vote`].
pub const TAG_VOTE: u8 = 1;
/// Engines number their own message kinds from here.
pub const FIRST_ENGINE_TAG: u8 = 16;

const VOTE_DOMAIN: &[u8] = b"v2v/vote/v1";

/// What a vote is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// PBFT prepare; Linear BFT / SBFT slow-path prepare share.
    Prepare,
    /// Commit: what a finality [`crate::Certificate`] is made of.
    Commit,
    /// PBFT checkpoint (`block_hash` is the digest of the checkpointed block).
    Checkpoint,
    /// PBFT timeout complaint: the voter's round timer for `height` expired, and it asks
    /// for view `view` (`block_hash` is zero). It promises nothing, unlike a view change.
    Timeout,
}

impl Phase {
    fn code(self) -> u8 {
        match self {
            Phase::Prepare => 1,
            Phase::Commit => 2,
            Phase::Checkpoint => 3,
            Phase::Timeout => 4,
        }
    }

    fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            1 => Phase::Prepare,
            2 => Phase::Commit,
            3 => Phase::Checkpoint,
            4 => Phase::Timeout,
            _ => return None,
        })
    }
}

/// The bytes a validator signs to vote for `block_hash` at `height` in `view`.
pub fn vote_message(phase: Phase, height: u64, view: u64, block_hash: &Hash) -> Vec<u8> {
    let mut w = Writer::with_capacity(VOTE_DOMAIN.len() + 49);
    w.fixed(VOTE_DOMAIN)
        .u8(phase.code())
        .u64(height)
        .u64(view)
        .fixed(&block_hash.0);
    w.finish()
}

/// The bytes behind every finality certificate: a commit vote's message.
pub fn commit_message(height: u64, view: u64, block_hash: &Hash) -> Vec<u8> {
    vote_message(Phase::Commit, height, view, block_hash)
}

/// Which key signed a vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoteSignature {
    /// The validator's ed25519 key (PBFT).
    Ed25519(Signature),
    /// The validator's share of the slow-path threshold key (Linear BFT, SBFT slow path).
    SlowShare(BlsSignature),
    /// The validator's share of the fast-path threshold key (SBFT fast path).
    FastShare(BlsSignature),
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VoteError {
    #[error("vote cannot be decoded: {0}")]
    Undecodable(String),
    #[error("voter {0} is not a validator")]
    UnknownVoter(u32),
    #[error("the chain has no threshold key for this vote")]
    NoThresholdKey,
    #[error("signature of validator {0} does not verify")]
    BadSignature(u32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vote {
    pub phase: Phase,
    pub height: u64,
    pub view: u64,
    pub block_hash: Hash,
    pub voter: u32,
    pub signature: VoteSignature,
}

impl Vote {
    pub fn message(&self) -> Vec<u8> {
        vote_message(self.phase, self.height, self.view, &self.block_hash)
    }

    pub fn sign_ed25519(
        phase: Phase,
        height: u64,
        view: u64,
        block_hash: Hash,
        voter: u32,
        key: &Keypair,
    ) -> Self {
        let sig = key.sign(&vote_message(phase, height, view, &block_hash));
        Vote {
            phase,
            height,
            view,
            block_hash,
            voter,
            signature: VoteSignature::Ed25519(sig),
        }
    }

    /// A threshold share vote; `fast` picks the fast-path key (the share must be of it).
    pub fn sign_share(
        phase: Phase,
        height: u64,
        view: u64,
        block_hash: Hash,
        voter: u32,
        share: &BlsKeypair,
        fast: bool,
    ) -> Self {
        let sig = share.sign(&vote_message(phase, height, view, &block_hash));
        Vote {
            phase,
            height,
            view,
            block_hash,
            voter,
            signature: if fast {
                VoteSignature::FastShare(sig)
            } else {
                VoteSignature::SlowShare(sig)
            },
        }
    }

    /// Checks the signature against the voter's key in `validators`.
    pub fn verify(&self, validators: &ValidatorSet) -> Result<(), VoteError> {
        let msg = self.message();
        let bad = |_| VoteError::BadSignature(self.voter);
        match &self.signature {
            VoteSignature::Ed25519(sig) => validators
                .keys
                .get(self.voter as usize)
                .ok_or(VoteError::UnknownVoter(self.voter))?
                .verify(&msg, sig)
                .map_err(bad),
            VoteSignature::SlowShare(sig) | VoteSignature::FastShare(sig) => {
                let keys = validators
                    .threshold
                    .as_ref()
                    .ok_or(VoteError::NoThresholdKey)?;
                let public = match self.signature {
                    VoteSignature::FastShare(_) => {
                        keys.fast.as_ref().ok_or(VoteError::NoThresholdKey)?
                    }
                    _ => &keys.slow,
                };
                if self.voter as usize >= public.share_keys.len() {
                    return Err(VoteError::UnknownVoter(self.voter));
                }
                public.verify_share(self.voter, &msg, sig).map_err(bad)
            }
        }
    }

    /// `[TAG_VOTE] ++ phase ++ height ++ view ++ hash ++ voter ++ kind ++ signature`.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(160);
        self.write(&mut w);
        w.finish()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, VoteError> {
        let mut r = Reader::new(bytes);
        let vote = Self::read(&mut r)?;
        r.finish()
            .map_err(|e| VoteError::Undecodable(e.to_string()))?;
        Ok(vote)
    }

    /// Reads a vote (with its tag) from inside a larger message.
    pub fn read(r: &mut Reader<'_>) -> Result<Self, VoteError> {
        let err = |e: v2v_abi::DecodeError| VoteError::Undecodable(e.to_string());
        let tag = r.u8("tag").map_err(err)?;
        if tag != TAG_VOTE {
            return Err(VoteError::Undecodable(format!("not a vote (tag {tag})")));
        }
        let code = r.u8("phase").map_err(err)?;
        let phase = Phase::from_code(code)
            .ok_or_else(|| VoteError::Undecodable(format!("unknown phase {code}")))?;
        let height = r.u64("height").map_err(err)?;
        let view = r.u64("view").map_err(err)?;
        let block_hash = Hash(r.array("blockHash").map_err(err)?);
        let voter = r.u32("voter").map_err(err)?;
        let signature = match r.u8("signatureKind").map_err(err)? {
            0 => VoteSignature::Ed25519(Signature(r.array("signature").map_err(err)?)),
            1 => VoteSignature::SlowShare(BlsSignature(r.array("signature").map_err(err)?)),
            2 => VoteSignature::FastShare(BlsSignature(r.array("signature").map_err(err)?)),
            k => {
                return Err(VoteError::Undecodable(format!(
                    "unknown signature kind {k}"
                )));
            }
        };
        Ok(Vote {
            phase,
            height,
            view,
            block_hash,
            voter,
            signature,
        })
    }

    /// Writes this vote (with its tag) into a larger message.
    pub fn write(&self, w: &mut Writer) {
        w.u8(TAG_VOTE)
            .u8(self.phase.code())
            .u64(self.height)
            .u64(self.view)
            .fixed(&self.block_hash.0)
            .u32(self.voter);
        match &self.signature {
            VoteSignature::Ed25519(s) => w.u8(0).fixed(&s.0),
            VoteSignature::SlowShare(s) => w.u8(1).fixed(&s.0),
            VoteSignature::FastShare(s) => w.u8(2).fixed(&s.0),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Certificate, Proof, Timing, test_committee};

    #[test]
    fn votes_round_trip_verify_and_reject_tampering() {
        let c = test_committee(4, 0, 7, Timing::default());
        let h = Hash([9; 32]);
        let k = &c.configs[1];
        let votes = [
            Vote::sign_ed25519(Phase::Prepare, 5, 2, h, 1, &k.key),
            Vote::sign_share(
                Phase::Commit,
                5,
                2,
                h,
                1,
                k.slow_share.as_ref().unwrap(),
                false,
            ),
            Vote::sign_share(
                Phase::Commit,
                5,
                2,
                h,
                1,
                k.fast_share.as_ref().unwrap(),
                true,
            ),
        ];
        for v in &votes {
            let back = Vote::decode(&v.encode()).unwrap();
            assert_eq!(&back, v);
            back.verify(&c.validators).unwrap();
            let mut other = back.clone();
            other.block_hash = Hash([8; 32]);
            assert_eq!(other.verify(&c.validators), Err(VoteError::BadSignature(1)));
            let mut other = back.clone();
            other.voter = 2;
            assert!(other.verify(&c.validators).is_err());
            // Every truncation is an error, never a panic.
            let bytes = v.encode();
            for n in 0..bytes.len() {
                assert!(Vote::decode(&bytes[..n]).is_err());
            }
        }
        assert!(Vote::decode(&[TAG_VOTE, 9]).is_err());
        assert!(Vote::decode(&[FIRST_ENGINE_TAG]).is_err());
    }

    #[test]
    fn threshold_certificates_verify_from_the_validator_set_alone() {
        let c = test_committee(4, 0, 3, Timing::default());
        let h = Hash([4; 32]);
        let msg = commit_message(10, 1, &h);
        for fast in [false, true] {
            let keys = c.validators.threshold.as_ref().unwrap();
            let public = if fast {
                keys.fast.as_ref().unwrap()
            } else {
                &keys.slow
            };
            let shares: Vec<_> = c
                .configs
                .iter()
                .map(|k| {
                    let share = if fast { &k.fast_share } else { &k.slow_share };
                    (k.index, share.as_ref().unwrap().sign(&msg))
                })
                .collect();
            let signature = public.combine(&msg, &shares).unwrap().signature;
            let cert = Certificate {
                height: 10,
                view: 1,
                block_hash: h,
                proof: Proof::Threshold { fast, signature },
            };
            let back = Certificate::decode(&cert.encode()).unwrap();
            assert_eq!(back, cert);
            back.verify(&c.validators, 10, &h).unwrap();
            assert!(back.verify(&c.validators, 11, &h).is_err());
            let mut wrong_path = back.clone();
            wrong_path.proof = Proof::Threshold {
                fast: !fast,
                signature,
            };
            assert!(wrong_path.verify(&c.validators, 10, &h).is_err());
            let mut wrong_view = back;
            wrong_view.view = 2;
            assert!(wrong_view.verify(&c.validators, 10, &h).is_err());
        }
    }
}
