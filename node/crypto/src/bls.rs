//! BLS12-381 signatures (blst, "min-pk": 48-byte public keys, 96-byte signatures), in the
//! proof-of-possession scheme of the IETF BLS draft: a validator's BLS key is only accepted
//! with a signature over the key itself, which rules out rogue-key attacks on aggregates.

use std::fmt;

use blst::BLST_ERROR;
use blst::min_pk;

use crate::{CryptoError, hex_array, to_hex};

/// Domain separation tag for consensus signatures.
pub const SIG_DST: &[u8] = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";
/// Domain separation tag for proofs of possession.
pub const POP_DST: &[u8] = b"BLS_POP_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";

#[derive(Clone, Copy, PartialEq, Eq)]
pub struct BlsPublicKey(pub [u8; 48]);

#[derive(Clone, Copy, PartialEq, Eq)]
pub struct BlsSignature(pub [u8; 96]);

impl fmt::Debug for BlsPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&to_hex(&self.0))
    }
}

impl fmt::Debug for BlsSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&to_hex(&self.0))
    }
}

fn verify_with(
    pk: &BlsPublicKey,
    msg: &[u8],
    sig: &BlsSignature,
    dst: &[u8],
) -> Result<(), CryptoError> {
    let pk = min_pk::PublicKey::key_validate(&pk.0).map_err(|e| CryptoError::Invalid {
        what: "BLS public key",
        reason: format!("{e:?}"),
    })?;
    let sig =
        min_pk::Signature::sig_validate(&sig.0, true).map_err(|_| CryptoError::BadSignature)?;
    match sig.verify(true, msg, dst, &[], &pk, false) {
        BLST_ERROR::BLST_SUCCESS => Ok(()),
        _ => Err(CryptoError::BadSignature),
    }
}

impl BlsPublicKey {
    pub fn from_hex(s: &str) -> Result<Self, CryptoError> {
        Ok(Self(hex_array(s, "BLS public key")?))
    }

    pub fn verify(&self, msg: &[u8], sig: &BlsSignature) -> Result<(), CryptoError> {
        verify_with(self, msg, sig, SIG_DST)
    }

    /// Checks a proof of possession: a signature by this key over its own bytes.
    pub fn verify_possession(&self, pop: &BlsSignature) -> Result<(), CryptoError> {
        verify_with(self, &self.0, pop, POP_DST).map_err(|_| CryptoError::BadProofOfPossession)
    }
}

impl BlsSignature {
    pub fn from_hex(s: &str) -> Result<Self, CryptoError> {
        Ok(Self(hex_array(s, "BLS signature")?))
    }
}

/// A BLS secret key with its public key.
#[derive(Clone)]
pub struct BlsKeypair {
    secret: min_pk::SecretKey,
}

impl fmt::Debug for BlsKeypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlsKeypair({:?})", self.public())
    }
}

impl BlsKeypair {
    /// Derives a key from at least 32 bytes of input keying material (IETF KeyGen).
    pub fn from_ikm(ikm: &[u8]) -> Result<Self, CryptoError> {
        let secret = min_pk::SecretKey::key_gen(ikm, &[]).map_err(|e| CryptoError::Invalid {
            what: "BLS key material",
            reason: format!("{e:?}"),
        })?;
        Ok(Self { secret })
    }

    pub fn generate() -> Self {
        let ikm: [u8; 32] = rand::random();
        // 32 bytes of IKM always satisfy key_gen's length requirement.
        Self::from_ikm(&ikm).unwrap_or_else(|_| unreachable!("32-byte IKM is accepted"))
    }

    pub fn from_secret_bytes(bytes: &[u8; 32]) -> Result<Self, CryptoError> {
        let secret = min_pk::SecretKey::from_bytes(bytes).map_err(|e| CryptoError::Invalid {
            what: "BLS secret key",
            reason: format!("{e:?}"),
        })?;
        Ok(Self { secret })
    }

    pub fn secret_bytes(&self) -> [u8; 32] {
        self.secret.to_bytes()
    }

    pub fn public(&self) -> BlsPublicKey {
        BlsPublicKey(self.secret.sk_to_pk().compress())
    }

    pub fn sign(&self, msg: &[u8]) -> BlsSignature {
        BlsSignature(self.secret.sign(msg, SIG_DST, &[]).compress())
    }

    pub fn proof_of_possession(&self) -> BlsSignature {
        BlsSignature(self.secret.sign(&self.public().0, POP_DST, &[]).compress())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_possession() {
        let k = BlsKeypair::from_ikm(&[7u8; 32]).unwrap();
        let sig = k.sign(b"block");
        k.public().verify(b"block", &sig).unwrap();
        assert!(k.public().verify(b"other", &sig).is_err());
        let pop = k.proof_of_possession();
        k.public().verify_possession(&pop).unwrap();
        // A consensus signature over the key is not a proof of possession (different DST).
        assert!(
            k.public()
                .verify_possession(&k.sign(&k.public().0))
                .is_err()
        );
        let other = BlsKeypair::from_ikm(&[8u8; 32]).unwrap();
        assert!(other.public().verify_possession(&pop).is_err());
        let back = BlsKeypair::from_secret_bytes(&k.secret_bytes()).unwrap();
        assert_eq!(back.public(), k.public());
    }
}
