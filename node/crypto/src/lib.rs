//! Keys and signatures: ed25519 for accounts, transactions and votes; BLS12-381 (blst,
//! min-pk) for validator certificates, with proof of possession; key files.
#![forbid(unsafe_code)]

mod bls;
mod ed25519;
mod keyfile;
mod threshold;

pub use bls::{BlsKeypair, BlsPublicKey, BlsSignature};
pub use ed25519::{Keypair, PublicKey, Signature};
pub use keyfile::{KeyFile, ThresholdSharesFile, ValidatorKeyFile, ValidatorSecrets};
pub use threshold::{CombineError, Combined, ThresholdDeal, ThresholdPublic, deal_threshold};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum CryptoError {
    #[error("invalid {what}: {reason}")]
    Invalid { what: &'static str, reason: String },
    #[error("signature does not verify")]
    BadSignature,
    #[error("BLS proof of possession does not verify")]
    BadProofOfPossession,
    #[error("key file {path}: {reason}")]
    KeyFile { path: String, reason: String },
}

/// Parses `0x`-prefixed (or bare) hex into exactly `N` bytes.
pub fn hex_array<const N: usize>(s: &str, what: &'static str) -> Result<[u8; N], CryptoError> {
    let raw = hex::decode(s.strip_prefix("0x").unwrap_or(s)).map_err(|e| CryptoError::Invalid {
        what,
        reason: e.to_string(),
    })?;
    <[u8; N]>::try_from(raw.as_slice()).map_err(|_| CryptoError::Invalid {
        what,
        reason: format!("expected {N} bytes, got {}", raw.len()),
    })
}

/// `0x`-prefixed lowercase hex.
pub fn to_hex(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}
