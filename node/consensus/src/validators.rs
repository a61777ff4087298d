//! The validator set: who votes, how many votes make a quorum, and the threshold keys.

use v2v_crypto::{BlsKeypair, CryptoError, PublicKey, ThresholdPublic, deal_threshold};

/// Threshold BLS public parameters dealt when the chain spec was built (Linear BFT, SBFT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThresholdKeys {
    /// t = [`ValidatorSet::quorum`]: prepare and commit certificates (Linear BFT, the SBFT
    /// slow path).
    pub slow: ThresholdPublic,
    /// t = [`ValidatorSet::fast_quorum`]: SBFT fast-path certificates.
    pub fast: Option<ThresholdPublic>,
}

/// What the trusted dealer hands out for a committee (docs/chain-spec.md): the public
/// threshold keys and each validator's (slow, fast) shares, in validator order.
#[derive(Debug, Clone)]
pub struct DealtKeys {
    pub keys: ThresholdKeys,
    pub shares: Vec<(BlsKeypair, Option<BlsKeypair>)>,
}

/// Deals the slow-path key (t = quorum) for `n` validators from `seed`, and the SBFT
/// fast-path key (t = n - c) too when `sbft_c` is given.
pub fn deal_committee_keys(
    n: usize,
    sbft_c: Option<usize>,
    seed: [u8; 32],
) -> Result<DealtKeys, CryptoError> {
    let slow = deal_threshold(n, ValidatorSet::quorum_of(n), &seed)?;
    let fast = match sbft_c {
        None => None,
        Some(c) => {
            let mut fast_seed = seed;
            fast_seed[31] ^= 0xff;
            Some(deal_threshold(
                n,
                ValidatorSet::fast_quorum_of(n, c),
                &fast_seed,
            )?)
        }
    };
    let shares = (0..n)
        .map(|i| {
            (
                slow.shares[i].clone(),
                fast.as_ref().map(|f| f.shares[i].clone()),
            )
        })
        .collect();
    Ok(DealtKeys {
        keys: ThresholdKeys {
            slow: slow.public,
            fast: fast.map(|f| f.public),
        },
        shares,
    })
}

/// The validators and their voting rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatorSet {
    /// ed25519 keys: PBFT votes, proposals and view-change messages.
    pub keys: Vec<PublicKey>,
    pub threshold: Option<ThresholdKeys>,
}

impl ValidatorSet {
    pub fn new(keys: Vec<PublicKey>) -> Self {
        Self {
            keys,
            threshold: None,
        }
    }

    pub fn with_threshold(mut self, threshold: ThresholdKeys) -> Self {
        self.threshold = Some(threshold);
        self
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The number of faulty validators tolerated: the largest f with n >= 3f + 1.
    pub fn max_faulty(&self) -> usize {
        Self::max_faulty_of(self.keys.len())
    }

    /// [`ValidatorSet::max_faulty`] for `n` validators.
    pub fn max_faulty_of(n: usize) -> usize {
        n.saturating_sub(1) / 3
    }

    /// [`ValidatorSet::quorum`] for `n` validators.
    pub fn quorum_of(n: usize) -> usize {
        (n + Self::max_faulty_of(n) + 2) / 2
    }

    /// [`ValidatorSet::fast_quorum`] for `n` validators.
    pub fn fast_quorum_of(n: usize, c: usize) -> usize {
        n.saturating_sub(c).max(Self::quorum_of(n))
    }

    /// Votes needed to prepare or commit: the smallest q with 2q - n >= f + 1, so any two
    /// quorums share an honest validator. That is 2f + 1 when n = 3f + 1, and more when n
    /// has spare validators (n = 5, f = 1 needs 4: 3 of 5 could overlap in one faulty node).
    pub fn quorum(&self) -> usize {
        Self::quorum_of(self.keys.len())
    }

    /// SBFT's fast-path quorum with `c` tolerated slow replicas: n - c, which is 3f + c + 1
    /// when n = 3f + 2c + 1 (Gueta et al., DSN 2019, §IV). With c = 0 every validator must
    /// sign.
    pub fn fast_quorum(&self, c: usize) -> usize {
        Self::fast_quorum_of(self.keys.len(), c)
    }

    /// The leader (PBFT's primary, Linear BFT's and SBFT's collector) of `view`: round robin.
    pub fn leader(&self, view: u64) -> u32 {
        if self.keys.is_empty() {
            return 0;
        }
        (view % self.keys.len() as u64) as u32
    }

    pub fn index_of(&self, key: &PublicKey) -> Option<u32> {
        self.keys.iter().position(|k| k == key).map(|i| i as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use v2v_crypto::Keypair;

    fn set(n: usize) -> ValidatorSet {
        ValidatorSet::new(
            (0..n)
                .map(|i| Keypair::from_name(&format!("v{i}")).public())
                .collect(),
        )
    }

    #[test]
    fn quorums_intersect_in_an_honest_validator() {
        for n in 1..=130 {
            let s = set(n);
            let (f, q) = (s.max_faulty(), s.quorum());
            assert!(
                q <= n - f,
                "n={n}: a quorum must be reachable without the faulty"
            );
            assert!(2 * q > n + f, "n={n}: two quorums must share f+1");
            if n % 3 == 1 {
                assert_eq!(q, 2 * f + 1, "n={n}");
            }
            assert!(s.fast_quorum(0) == n && s.fast_quorum(1) >= q);
        }
        assert_eq!(set(4).quorum(), 3);
        assert_eq!(set(5).quorum(), 4);
        assert_eq!(set(7).quorum(), 5);
        assert_eq!(set(1).quorum(), 1);
    }
}
