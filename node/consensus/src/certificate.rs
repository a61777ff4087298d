//! Finality certificates, verifiable by anyone who knows the validator set from the spec.

use thiserror::Error;
use v2v_abi::{Reader, Writer};
use v2v_crypto::{BlsSignature, Signature};
use v2v_primitives::Hash;

use crate::{ValidatorSet, commit_message};

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CertificateError {
    #[error("certificate cannot be decoded: {0}")]
    Undecodable(String),
    #[error("certificate is for height {got}, expected {expected}")]
    WrongHeight { expected: u64, got: u64 },
    #[error("certificate is for block {got}, expected {expected}")]
    WrongBlock { expected: Hash, got: Hash },
    #[error("signer index {0} is not a validator")]
    UnknownSigner(u32),
    #[error("validator {0} signed twice")]
    DuplicateSigner(u32),
    #[error("signature of validator {0} does not verify")]
    BadSignature(u32),
    #[error("{got} valid signatures, a quorum is {needed}")]
    NoQuorum { got: usize, needed: usize },
    #[error("threshold certificate, but the chain has no {0} threshold key")]
    NoThresholdKey(&'static str),
    #[error("threshold signature does not verify against the {0} group key")]
    BadThresholdSignature(&'static str),
}

/// How a certificate proves that a quorum committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proof {
    /// A quorum of ed25519 commit signatures, as (validator index, signature) in increasing
    /// index order (PBFT, solo).
    Signatures(Vec<(u32, Signature)>),
    /// One BLS threshold signature over the commit message: by the slow-path key (t = the
    /// quorum; Linear BFT and the SBFT slow path) or the fast-path key (SBFT fast path).
    Threshold { fast: bool, signature: BlsSignature },
}

/// Proof that `block_hash` was finalized at `height` (agreed in `view`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    pub height: u64,
    pub view: u64,
    pub block_hash: Hash,
    pub proof: Proof,
}

impl Certificate {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        let kind = match self.proof {
            Proof::Signatures(_) => 1,
            Proof::Threshold { .. } => 2,
        };
        w.u8(kind)
            .u64(self.height)
            .u64(self.view)
            .fixed(&self.block_hash.0);
        match &self.proof {
            Proof::Signatures(sigs) => {
                w.u32(sigs.len() as u32);
                for (i, s) in sigs {
                    w.u32(*i).fixed(&s.0);
                }
            }
            Proof::Threshold { fast, signature } => {
                w.bool(*fast).fixed(&signature.0);
            }
        }
        w.finish()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, CertificateError> {
        let mut r = Reader::new(bytes);
        let cert = Self::read(&mut r)?;
        r.finish()
            .map_err(|e| CertificateError::Undecodable(e.to_string()))?;
        Ok(cert)
    }

    /// Reads a certificate from inside a larger message.
    pub fn read(r: &mut Reader<'_>) -> Result<Self, CertificateError> {
        let err = |e: v2v_abi::DecodeError| CertificateError::Undecodable(e.to_string());
        let kind = r.u8("kind").map_err(err)?;
        let height = r.u64("height").map_err(err)?;
        let view = r.u64("view").map_err(err)?;
        let block_hash = Hash(r.array("blockHash").map_err(err)?);
        let proof = match kind {
            1 => {
                let n = r.u32("count").map_err(err)? as usize;
                // Each entry is 68 bytes: never reserve more than the input can hold.
                let mut sigs = Vec::with_capacity(n.min(r.remaining() / 68));
                for _ in 0..n {
                    let i = r.u32("index").map_err(err)?;
                    sigs.push((i, Signature(r.array("signature").map_err(err)?)));
                }
                Proof::Signatures(sigs)
            }
            2 => Proof::Threshold {
                fast: r.bool("fast").map_err(err)?,
                signature: BlsSignature(r.array("signature").map_err(err)?),
            },
            k => {
                return Err(CertificateError::Undecodable(format!("unknown kind {k}")));
            }
        };
        Ok(Certificate {
            height,
            view,
            block_hash,
            proof,
        })
    }

    /// Checks that a quorum of the validators committed this block at this height.
    pub fn verify(
        &self,
        validators: &ValidatorSet,
        height: u64,
        block_hash: &Hash,
    ) -> Result<(), CertificateError> {
        if self.height != height {
            return Err(CertificateError::WrongHeight {
                expected: height,
                got: self.height,
            });
        }
        if &self.block_hash != block_hash {
            return Err(CertificateError::WrongBlock {
                expected: *block_hash,
                got: self.block_hash,
            });
        }
        let msg = commit_message(self.height, self.view, &self.block_hash);
        match &self.proof {
            Proof::Signatures(sigs) => {
                let mut seen = std::collections::BTreeSet::new();
                for (i, sig) in sigs {
                    let key = validators
                        .keys
                        .get(*i as usize)
                        .ok_or(CertificateError::UnknownSigner(*i))?;
                    if !seen.insert(*i) {
                        return Err(CertificateError::DuplicateSigner(*i));
                    }
                    key.verify(&msg, sig)
                        .map_err(|_| CertificateError::BadSignature(*i))?;
                }
                if seen.len() < validators.quorum() {
                    return Err(CertificateError::NoQuorum {
                        got: seen.len(),
                        needed: validators.quorum(),
                    });
                }
                Ok(())
            }
            Proof::Threshold { fast, signature } => {
                let which = if *fast { "fast-path" } else { "slow-path" };
                let keys = validators
                    .threshold
                    .as_ref()
                    .ok_or(CertificateError::NoThresholdKey(which))?;
                let public = if *fast {
                    keys.fast
                        .as_ref()
                        .ok_or(CertificateError::NoThresholdKey(which))?
                } else {
                    &keys.slow
                };
                public
                    .verify(&msg, signature)
                    .map_err(|_| CertificateError::BadThresholdSignature(which))
            }
        }
    }
}
