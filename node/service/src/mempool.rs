//! The mempool: checked transactions waiting for a block, bounded in count and bytes,
//! without duplicates, in arrival order.

use std::collections::BTreeMap;

use v2v_primitives::{Hash, PublicKey, SignedTransaction};
use v2v_rpc::SubmitError;

#[derive(Debug, Clone, Copy)]
pub struct MempoolLimits {
    pub max_txs: usize,
    pub max_bytes: usize,
    /// How far past the signer's next nonce a transaction may be queued.
    pub max_nonce_ahead: u64,
}

impl Default for MempoolLimits {
    fn default() -> Self {
        Self {
            max_txs: 100_000,
            max_bytes: 256 * 1024 * 1024,
            max_nonce_ahead: 1_000,
        }
    }
}

#[derive(Debug, Default)]
pub struct Mempool {
    limits: MempoolLimits,
    next_seq: u64,
    bytes: usize,
    by_seq: BTreeMap<u64, SignedTransaction>,
    by_hash: BTreeMap<Hash, u64>,
    by_signer: BTreeMap<(PublicKey, u64), Hash>,
}

impl Mempool {
    pub fn new(limits: MempoolLimits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    pub fn len(&self) -> usize {
        self.by_seq.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_seq.is_empty()
    }

    pub fn contains(&self, hash: &Hash) -> bool {
        self.by_hash.contains_key(hash)
    }

    /// Adds a checked transaction; `next_nonce` is the signer's next nonce in finalized state.
    pub fn insert(&mut self, tx: SignedTransaction, next_nonce: u64) -> Result<Hash, SubmitError> {
        let hash = tx.hash();
        let nonce = tx.tx.nonce;
        if self.by_hash.contains_key(&hash) {
            return Err(SubmitError::Duplicate(hash));
        }
        if nonce < next_nonce {
            return Err(SubmitError::StaleNonce {
                next: next_nonce,
                got: nonce,
            });
        }
        if nonce > next_nonce.saturating_add(self.limits.max_nonce_ahead) {
            return Err(SubmitError::NonceTooFar {
                next: next_nonce,
                got: nonce,
                max_ahead: self.limits.max_nonce_ahead,
            });
        }
        if self.by_signer.contains_key(&(tx.tx.signer, nonce)) {
            // Another transaction already holds this nonce: first come, first served.
            return Err(SubmitError::StaleNonce {
                next: self.pending_next_nonce(&tx.tx.signer, next_nonce),
                got: nonce,
            });
        }
        let len = tx.encoded().len();
        if self.by_seq.len() >= self.limits.max_txs {
            return Err(SubmitError::MempoolFull(format!(
                "{} transactions waiting",
                self.by_seq.len()
            )));
        }
        if self.bytes + len > self.limits.max_bytes {
            return Err(SubmitError::MempoolFull(format!(
                "{} bytes waiting",
                self.bytes
            )));
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.bytes += len;
        self.by_hash.insert(hash, seq);
        self.by_signer.insert((tx.tx.signer, nonce), hash);
        self.by_seq.insert(seq, tx);
        Ok(hash)
    }

    /// The signer's next nonce counting the transactions waiting here (contiguous from
    /// `finalized_next`).
    pub fn pending_next_nonce(&self, signer: &PublicKey, finalized_next: u64) -> u64 {
        let mut next = finalized_next;
        while self.by_signer.contains_key(&(*signer, next)) {
            next += 1;
        }
        next
    }

    /// Up to `max` transactions in arrival order, each signer's in nonce order.
    pub fn candidates(&self, max: usize) -> Vec<SignedTransaction> {
        let mut out: Vec<SignedTransaction> = self.by_seq.values().take(max).cloned().collect();
        // A stable sort by (signer, nonce) would lose arrival order between signers; instead
        // put each signer's transactions, in the slots they occupy, into nonce order.
        let mut slots: BTreeMap<PublicKey, Vec<usize>> = BTreeMap::new();
        for (i, tx) in out.iter().enumerate() {
            slots.entry(tx.tx.signer).or_default().push(i);
        }
        for idx in slots.values().filter(|v| v.len() > 1) {
            let mut txs: Vec<SignedTransaction> = idx.iter().map(|&i| out[i].clone()).collect();
            txs.sort_by_key(|t| t.tx.nonce);
            for (&i, tx) in idx.iter().zip(txs) {
                out[i] = tx;
            }
        }
        out
    }

    pub fn remove(&mut self, hash: &Hash) -> Option<SignedTransaction> {
        let seq = self.by_hash.remove(hash)?;
        let tx = self.by_seq.remove(&seq)?;
        self.by_signer.remove(&(tx.tx.signer, tx.tx.nonce));
        self.bytes -= tx.encoded().len();
        Some(tx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use v2v_primitives::{Keypair, UnsignedTransaction};

    fn tx(key: &Keypair, nonce: u64, memo: usize) -> SignedTransaction {
        UnsignedTransaction {
            chain_id: Hash([1; 32]),
            signer: key.public(),
            nonce,
            method: "deposit".into(),
            args: vec![0; 8],
            memo: vec![0; memo],
        }
        .sign(key)
    }

    #[test]
    fn bounded_deduplicated_and_ordered() {
        let a = Keypair::from_name("a");
        let b = Keypair::from_name("b");
        let mut m = Mempool::new(MempoolLimits {
            max_txs: 4,
            max_bytes: 10_000,
            max_nonce_ahead: 10,
        });
        let t1 = tx(&a, 1, 0);
        m.insert(t1.clone(), 0).unwrap();
        assert_eq!(
            m.insert(t1.clone(), 0),
            Err(SubmitError::Duplicate(t1.hash()))
        );
        assert!(matches!(
            m.insert(tx(&a, 1, 5), 0),
            Err(SubmitError::StaleNonce { .. })
        ));
        assert!(matches!(
            m.insert(tx(&b, 2, 0), 3),
            Err(SubmitError::StaleNonce { next: 3, got: 2 })
        ));
        assert!(matches!(
            m.insert(tx(&b, 20, 0), 3),
            Err(SubmitError::NonceTooFar { .. })
        ));
        m.insert(tx(&b, 3, 0), 3).unwrap();
        m.insert(tx(&a, 0, 0), 0).unwrap();
        assert_eq!(m.pending_next_nonce(&a.public(), 0), 2);
        let c = m.candidates(10);
        let order: Vec<(PublicKey, u64)> = c.iter().map(|t| (t.tx.signer, t.tx.nonce)).collect();
        assert_eq!(
            order,
            vec![(a.public(), 0), (b.public(), 3), (a.public(), 1)]
        );
        m.insert(tx(&b, 4, 0), 3).unwrap();
        assert!(matches!(
            m.insert(tx(&b, 5, 0), 3),
            Err(SubmitError::MempoolFull(_))
        ));
        assert!(m.remove(&t1.hash()).is_some());
        assert_eq!(m.len(), 3);
        assert!(matches!(
            m.insert(tx(&b, 5, 20_000), 3),
            Err(SubmitError::MempoolFull(_))
        ));
        m.insert(tx(&b, 5, 0), 3).unwrap();
    }
}
