//! Transactions: the canonical encoding of `docs/transactions.md`, signing and the
//! stateless checks made before a transaction enters the mempool.

use thiserror::Error;
use v2v_abi::call::MAX_METHOD_LEN;
use v2v_abi::{DecodeError, Reader, Writer};
use v2v_crypto::{Keypair, PublicKey, Signature};

use crate::Hash;

/// The only encoding version.
pub const TX_VERSION: u8 = 1;
/// Signatures cover this prefix then the unsigned encoding (domain separation).
const SIGNING_DOMAIN: &[u8] = b"v2v/tx/v1";
/// Transaction hashes are blake3 over this domain then the whole signed encoding.
const HASH_DOMAIN: &[u8] = b"v2v/txhash/v1";

/// Why a transaction was refused before reaching the mempool.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TxError {
    #[error("transaction is {len} bytes, the limit is {max}")]
    TooLarge { len: usize, max: usize },
    #[error("transaction cannot be decoded: {0}")]
    Undecodable(String),
    #[error("unsupported transaction version {0}")]
    UnsupportedVersion(u8),
    #[error("bad signature")]
    BadSignature,
    #[error("wrong chain id: transaction is for {got}, this chain is {expected}")]
    WrongChain { expected: Hash, got: Hash },
}

impl From<DecodeError> for TxError {
    fn from(e: DecodeError) -> Self {
        TxError::Undecodable(e.to_string())
    }
}

/// The signed part of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsignedTransaction {
    /// The genesis hash of the chain this transaction is for.
    pub chain_id: Hash,
    pub signer: PublicKey,
    /// The signer's next nonce: transactions of one signer execute in nonce order, once.
    pub nonce: u64,
    pub method: String,
    pub args: Vec<u8>,
    /// Opaque padding, ignored by execution (payload-size experiments).
    pub memo: Vec<u8>,
}

impl UnsignedTransaction {
    /// The canonical encoding (see `docs/transactions.md`).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(
            1 + 32
                + 32
                + 8
                + 4
                + self.method.len()
                + 4
                + self.args.len()
                + 4
                + self.memo.len()
                + 64,
        );
        w.u8(TX_VERSION)
            .fixed(&self.chain_id.0)
            .fixed(&self.signer.0)
            .u64(self.nonce)
            .str(&self.method)
            .bytes(&self.args)
            .bytes(&self.memo);
        w.finish()
    }

    pub fn sign(self, key: &Keypair) -> SignedTransaction {
        let mut bytes = self.encode();
        let mut msg = Vec::with_capacity(SIGNING_DOMAIN.len() + bytes.len());
        msg.extend_from_slice(SIGNING_DOMAIN);
        msg.extend_from_slice(&bytes);
        let signature = key.sign(&msg);
        bytes.extend_from_slice(&signature.0);
        SignedTransaction {
            hash: Hash::digest(HASH_DOMAIN, &bytes),
            tx: self,
            signature,
            encoded: bytes,
        }
    }
}

/// A decoded, signed transaction with its encoding and hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedTransaction {
    pub tx: UnsignedTransaction,
    pub signature: Signature,
    encoded: Vec<u8>,
    hash: Hash,
}

impl SignedTransaction {
    /// Decodes a transaction of at most `max_len` bytes. Does not check the signature.
    pub fn decode(bytes: &[u8], max_len: usize) -> Result<Self, TxError> {
        if bytes.len() > max_len {
            return Err(TxError::TooLarge {
                len: bytes.len(),
                max: max_len,
            });
        }
        let mut r = Reader::new(bytes);
        let version = r.u8("version")?;
        if version != TX_VERSION {
            return Err(TxError::UnsupportedVersion(version));
        }
        let chain_id = Hash(r.array("chainId")?);
        let signer = PublicKey(r.array("signer")?);
        let nonce = r.u64("nonce")?;
        let method = r.string("method", MAX_METHOD_LEN)?;
        let args = r.bytes("args", max_len)?.to_vec();
        let memo = r.bytes("memo", max_len)?.to_vec();
        let signature = Signature(r.array("signature")?);
        r.finish()?;
        Ok(SignedTransaction {
            tx: UnsignedTransaction {
                chain_id,
                signer,
                nonce,
                method,
                args,
                memo,
            },
            signature,
            encoded: bytes.to_vec(),
            hash: Hash::digest(HASH_DOMAIN, bytes),
        })
    }

    /// Checks the signature over the unsigned part.
    pub fn verify_signature(&self) -> Result<(), TxError> {
        let unsigned = &self.encoded[..self.encoded.len() - 64];
        let mut msg = Vec::with_capacity(SIGNING_DOMAIN.len() + unsigned.len());
        msg.extend_from_slice(SIGNING_DOMAIN);
        msg.extend_from_slice(unsigned);
        self.tx
            .signer
            .verify(&msg, &self.signature)
            .map_err(|_| TxError::BadSignature)
    }

    /// All stateless checks: size, decoding, version, signature, chain id.
    pub fn check(bytes: &[u8], max_len: usize, chain_id: Hash) -> Result<Self, TxError> {
        let tx = Self::decode(bytes, max_len)?;
        if tx.tx.chain_id != chain_id {
            return Err(TxError::WrongChain {
                expected: chain_id,
                got: tx.tx.chain_id,
            });
        }
        tx.verify_signature()?;
        Ok(tx)
    }

    pub fn hash(&self) -> Hash {
        self.hash
    }

    pub fn encoded(&self) -> &[u8] {
        &self.encoded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> UnsignedTransaction {
        UnsignedTransaction {
            chain_id: Hash([0x11; 32]),
            signer: Keypair::from_seed([0x22; 32]).public(),
            nonce: 7,
            method: "deposit".into(),
            args: 1_500_000u64.to_le_bytes().to_vec(),
            memo: b"hi".to_vec(),
        }
    }

    /// The test vector of `docs/transactions.md`: if this changes, the document must too.
    #[test]
    fn test_vector() {
        let key = Keypair::from_seed([0x22; 32]);
        let tx = sample().sign(&key);
        let hex_tx = hex::encode(tx.encoded());
        assert_eq!(
            tx.encoded().len(),
            1 + 32 + 32 + 8 + 4 + 7 + 4 + 8 + 4 + 2 + 64
        );
        assert_eq!(&hex_tx[..2], "01");
        let expected = include_str!("../../../docs/tx-test-vector.txt");
        let mut lines = expected.lines().filter(|l| !l.starts_with('#'));
        assert_eq!(lines.next(), Some(hex_tx.as_str()), "encoding changed");
        assert_eq!(
            lines.next(),
            Some(tx.hash().to_hex().as_str()),
            "hash changed"
        );
    }

    #[test]
    fn round_trip_and_every_rejection() {
        let key = Keypair::from_seed([0x22; 32]);
        let tx = sample().sign(&key);
        let chain = Hash([0x11; 32]);
        let back = SignedTransaction::check(tx.encoded(), 4096, chain).unwrap();
        assert_eq!(back, tx);

        assert!(matches!(
            SignedTransaction::check(tx.encoded(), 100, chain),
            Err(TxError::TooLarge { .. })
        ));
        assert!(matches!(
            SignedTransaction::check(&tx.encoded()[..50], 4096, chain),
            Err(TxError::Undecodable(_))
        ));
        let mut trailing = tx.encoded().to_vec();
        trailing.push(0);
        assert!(matches!(
            SignedTransaction::check(&trailing, 4096, chain),
            Err(TxError::Undecodable(_))
        ));
        let mut v2 = tx.encoded().to_vec();
        v2[0] = 2;
        assert_eq!(
            SignedTransaction::check(&v2, 4096, chain),
            Err(TxError::UnsupportedVersion(2))
        );
        let mut tampered = tx.encoded().to_vec();
        tampered[80] ^= 1; // inside the nonce
        assert_eq!(
            SignedTransaction::check(&tampered, 4096, chain),
            Err(TxError::BadSignature)
        );
        assert!(matches!(
            SignedTransaction::check(tx.encoded(), 4096, Hash([0x12; 32])),
            Err(TxError::WrongChain { .. })
        ));
    }
}
