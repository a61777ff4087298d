//! Finality certificates, verifiable by anyone who knows the validator set from the spec.

use thiserror::Error;
use v2v_abi::{Reader, Writer};
use v2v_crypto::{PublicKey, Signature};
use v2v_primitives::Hash;

const COMMIT_DOMAIN: &[u8] = b"v2v/commit/v1";

/// The validators and their voting rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatorSet {
    pub keys: Vec<PublicKey>,
}

impl ValidatorSet {
    pub fn new(keys: Vec<PublicKey>) -> Self {
        Self { keys }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The number of faulty validators tolerated: n = 3f + 1 + extra.
    pub fn max_faulty(&self) -> usize {
        self.keys.len().saturating_sub(1) / 3
    }

    /// Votes needed to finalize: 2f + 1 (all of them when n = 1).
    pub fn quorum(&self) -> usize {
        2 * self.max_faulty() + 1
    }

    pub fn index_of(&self, key: &PublicKey) -> Option<u32> {
        self.keys.iter().position(|k| k == key).map(|i| i as u32)
    }
}

/// The message a validator signs to commit `block_hash` at `height` in `view`.
pub fn commit_message(height: u64, view: u64, block_hash: &Hash) -> Vec<u8> {
    let mut w = Writer::with_capacity(COMMIT_DOMAIN.len() + 48);
    w.fixed(COMMIT_DOMAIN)
        .u64(height)
        .u64(view)
        .fixed(&block_hash.0);
    w.finish()
}

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
}

/// A quorum of ed25519 commit signatures over (height, view, block hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    pub height: u64,
    pub view: u64,
    pub block_hash: Hash,
    /// (validator index, signature), in increasing index order.
    pub signatures: Vec<(u32, Signature)>,
}

impl Certificate {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(1)
            .u64(self.height)
            .u64(self.view)
            .fixed(&self.block_hash.0)
            .u32(self.signatures.len() as u32);
        for (i, s) in &self.signatures {
            w.u32(*i).fixed(&s.0);
        }
        w.finish()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, CertificateError> {
        let err = |e: v2v_abi::DecodeError| CertificateError::Undecodable(e.to_string());
        let mut r = Reader::new(bytes);
        let kind = r.u8("kind").map_err(err)?;
        if kind != 1 {
            return Err(CertificateError::Undecodable(format!(
                "unknown kind {kind}"
            )));
        }
        let height = r.u64("height").map_err(err)?;
        let view = r.u64("view").map_err(err)?;
        let block_hash = Hash(r.array("blockHash").map_err(err)?);
        let n = r.u32("count").map_err(err)? as usize;
        let mut signatures = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            let i = r.u32("index").map_err(err)?;
            signatures.push((i, Signature(r.array("signature").map_err(err)?)));
        }
        r.finish().map_err(err)?;
        Ok(Certificate {
            height,
            view,
            block_hash,
            signatures,
        })
    }

    /// Checks that a quorum of distinct validators signed this block at this height.
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
        let mut seen = std::collections::BTreeSet::new();
        for (i, sig) in &self.signatures {
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
}
