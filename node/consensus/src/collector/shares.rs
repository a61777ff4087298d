//! The collector's share store for one (height, view, block): fast-path shares (SBFT),
//! slow-path prepare shares and commit shares, combined optimistically.
//!
//! Shares are stored unverified. When enough are in, [`ThresholdPublic::combine`]
//! interpolates them and checks the one result (one pairing); only when that fails does it
//! check shares one by one. Senders of invalid shares are reported and excluded for the rest
//! of the round, and the collector waits for more shares if fewer than t valid ones remain.

use std::collections::{BTreeMap, BTreeSet};

use v2v_crypto::{BlsSignature, CombineError, ThresholdPublic};
use v2v_primitives::Hash;

use super::messages::PrepareCertificate;

/// Shares of one kind, by validator index.
#[derive(Debug, Default)]
pub(crate) struct Shares {
    shares: BTreeMap<u32, BlsSignature>,
    /// Validators whose share of this kind proved invalid this round.
    bad: BTreeSet<u32>,
}

impl Shares {
    /// Keeps the first share of each validator, except from validators already caught
    /// sending an invalid one.
    pub fn add(&mut self, voter: u32, share: BlsSignature) {
        if !self.bad.contains(&voter) {
            self.shares.entry(voter).or_insert(share);
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.shares.len()
    }

    /// Validators caught with an invalid share.
    pub fn bad_count(&self) -> usize {
        self.bad.len()
    }

    /// Combines once `public.threshold` shares are in. Returns the signature if it could be
    /// made, and the validators whose shares were found invalid (now dropped).
    pub fn combine(
        &mut self,
        public: &ThresholdPublic,
        msg: &[u8],
    ) -> (Option<BlsSignature>, Vec<u32>) {
        if self.shares.len() < (public.threshold as usize).max(1) {
            return (None, Vec::new());
        }
        let shares: Vec<(u32, BlsSignature)> = self.shares.iter().map(|(i, s)| (*i, *s)).collect();
        let (signature, bad) = match public.combine(msg, &shares) {
            Ok(combined) => (Some(combined.signature), combined.bad_shares),
            Err(CombineError::NotEnoughShares { bad, .. }) => (None, bad),
            Err(CombineError::UnknownSigner(i)) => (None, vec![i]),
        };
        for i in &bad {
            self.shares.remove(i);
            self.bad.insert(*i);
        }
        (signature, bad)
    }
}

/// The collector's state for the block it proposed at (height, view).
#[derive(Debug)]
pub(crate) struct Collector {
    pub height: u64,
    pub view: u64,
    pub block_hash: Hash,
    /// SBFT fast-path shares (fast key, over the commit message).
    pub fast: Shares,
    /// Slow-path prepare shares.
    pub prepare: Shares,
    /// Slow-path commit shares, after the prepare certificate.
    pub commit: Shares,
    /// The slow path is on: always for Linear BFT; for SBFT once the fast path timed out or
    /// can no longer reach its quorum.
    pub slow_path: bool,
    pub prepared: Option<PrepareCertificate>,
    /// The commit certificate is out.
    pub done: bool,
}

impl Collector {
    pub fn new(height: u64, view: u64, block_hash: Hash, slow_path: bool) -> Self {
        Self {
            height,
            view,
            block_hash,
            fast: Shares::default(),
            prepare: Shares::default(),
            commit: Shares::default(),
            slow_path,
            prepared: None,
            done: false,
        }
    }

    pub fn is_for(&self, height: u64, view: u64, block_hash: &Hash) -> bool {
        self.height == height && self.view == view && &self.block_hash == block_hash
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use v2v_crypto::deal_threshold;

    #[test]
    fn bad_shares_are_found_dropped_and_excluded() {
        let deal = deal_threshold(4, 3, &[1; 32]).unwrap();
        let msg = b"m";
        let mut s = Shares::default();
        s.add(0, deal.shares[0].sign(msg));
        s.add(1, deal.shares[1].sign(b"another message"));
        assert_eq!(s.combine(&deal.public, msg), (None, Vec::new()));
        s.add(2, deal.shares[2].sign(msg));
        let (sig, bad) = s.combine(&deal.public, msg);
        assert_eq!((sig, bad), (None, vec![1]));
        assert_eq!(s.len(), 2);
        // Validator 1 cannot replace its share; validator 3 completes the quorum.
        s.add(1, deal.shares[1].sign(msg));
        assert_eq!(s.len(), 2);
        s.add(3, deal.shares[3].sign(msg));
        let (sig, bad) = s.combine(&deal.public, msg);
        assert!(bad.is_empty());
        deal.public.verify(msg, &sig.unwrap()).unwrap();
        assert_eq!(s.bad_count(), 1);
    }
}
