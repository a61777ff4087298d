//! (t, n) threshold BLS signatures on BLS12-381 (blst, min-pk, the same [`SIG_DST`] as
//! ordinary validator signatures).
//!
//! **Trust assumption: a trusted dealer.** When the chain spec is built, [`deal_threshold`]
//! draws a random polynomial `f` of degree `t - 1` over the scalar field `F_r` (Shamir secret
//! sharing, Shamir 1979) and hands validator `i` the secret share `f(i + 1)` in its key file;
//! the chain spec publishes the group key `f(0)·G1` and every share key `f(i + 1)·G1`
//! ([`ThresholdPublic`]). Whoever runs the dealer learns the group secret `f(0)` and can sign
//! alone; it must discard it (nothing here keeps it, but intermediate values are not
//! zeroized). Past that, any `t` validators can sign for the group and fewer than `t` learn
//! nothing about `f(0)`.
//!
//! A share is an ordinary BLS signature `f(i + 1)·H(m)` that verifies under share key `i`.
//! Any `t` shares from distinct validators `S` combine by Lagrange interpolation at 0:
//! `σ = Σ_{j∈S} λ_j·σ_j` with `λ_j = Π_{m∈S, m≠j} x_m / (x_m − x_j)` (`x = index + 1`), which
//! is `f(0)·H(m)`, the one and only valid signature on `m` under the group key: the combined
//! signature is the same whichever `t` shares were used.

use std::fmt;
use std::sync::LazyLock;

use blst::BLST_ERROR;
use blst::min_pk;
use num_bigint::BigUint;
use rand::RngCore;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use crate::bls::SIG_DST;
use crate::{BlsKeypair, BlsPublicKey, BlsSignature, CryptoError};

/// Order `r` of the BLS12-381 groups (the scalar field modulus), big-endian.
const R_BE: [u8; 32] = [
    0x73, 0xed, 0xa7, 0x53, 0x29, 0x9d, 0x7d, 0x48, 0x33, 0x39, 0xd8, 0x08, 0x09, 0xa1, 0xd8, 0x05,
    0x53, 0xbd, 0xa4, 0x02, 0xff, 0xfe, 0x5b, 0xfe, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x01,
];

static R: LazyLock<BigUint> = LazyLock::new(|| BigUint::from_bytes_be(&R_BE));

/// Scalars are < r < 2^255: blst's multi-scalar multiplication reads 255-bit little-endian
/// scalars, 32 bytes each.
const SCALAR_BITS: usize = 255;

/// Public parameters of one (t, n) threshold key, as published in the chain spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThresholdPublic {
    /// `t`: how many shares make a signature.
    pub threshold: u32,
    /// Verifies combined signatures.
    pub group_key: BlsPublicKey,
    /// `share_keys[i]` verifies validator `i`'s share; `len()` is `n`.
    pub share_keys: Vec<BlsPublicKey>,
}

/// The dealer's output: public parameters and each validator's secret share (index `i` =
/// validator `i`, evaluation point `x = i + 1`).
pub struct ThresholdDeal {
    pub public: ThresholdPublic,
    pub shares: Vec<BlsKeypair>,
}

impl fmt::Debug for ThresholdDeal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // BlsKeypair's Debug prints only the public key.
        f.debug_struct("ThresholdDeal")
            .field("public", &self.public)
            .field("shares", &self.shares.len())
            .finish()
    }
}

/// Result of combining.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Combined {
    pub signature: BlsSignature,
    /// Validators whose shares were found invalid and left out.
    pub bad_shares: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CombineError {
    #[error("{valid} valid shares, {needed} needed (invalid shares from {bad:?})")]
    NotEnoughShares {
        valid: usize,
        needed: usize,
        bad: Vec<u32>,
    },
    #[error("share from unknown validator {0}")]
    UnknownSigner(u32),
}

fn invalid(what: &'static str, reason: impl Into<String>) -> CryptoError {
    CryptoError::Invalid {
        what,
        reason: reason.into(),
    }
}

/// A uniformly random scalar (512 random bits reduced mod r: bias below 2^-256).
fn random_scalar(rng: &mut ChaCha20Rng) -> BigUint {
    let mut wide = [0u8; 64];
    rng.fill_bytes(&mut wide);
    BigUint::from_bytes_le(&wide) % &*R
}

/// `s` (< r) as 32 big-endian bytes, blst's secret key encoding.
fn scalar_be32(s: &BigUint) -> [u8; 32] {
    let raw = s.to_bytes_be();
    let mut out = [0u8; 32];
    out[32 - raw.len()..].copy_from_slice(&raw);
    out
}

/// `s` (< r) as 32 little-endian bytes, blst's multi-scalar multiplication encoding.
fn scalar_le32(s: &BigUint) -> [u8; 32] {
    let raw = s.to_bytes_le();
    let mut out = [0u8; 32];
    out[..raw.len()].copy_from_slice(&raw);
    out
}

/// `f(x)` by Horner's rule, `coeffs[k]` being the coefficient of `x^k`.
fn eval_poly(coeffs: &[BigUint], x: u64) -> BigUint {
    coeffs
        .iter()
        .rev()
        .fold(BigUint::ZERO, |acc, c| (acc * x + c) % &*R)
}

/// Deals a (t, n) key deterministically from `seed`: Shamir secret sharing of a random secret
/// `f(0) ≠ 0` with a random polynomial of degree `t - 1` over `F_r`; validator `i` gets
/// `f(i + 1)`.
pub fn deal_threshold(
    n: usize,
    threshold: usize,
    seed: &[u8; 32],
) -> Result<ThresholdDeal, CryptoError> {
    if n == 0 || threshold == 0 || threshold > n {
        return Err(invalid(
            "threshold parameters",
            format!("need 1 <= t <= n, got t = {threshold}, n = {n}"),
        ));
    }
    let threshold_u32 = u32::try_from(threshold)
        .map_err(|_| invalid("threshold parameters", format!("n = {n} is too large")))?;
    // Evaluation points i + 1 must be distinct and nonzero mod r, and indices fit in u32.
    if u32::try_from(n).is_err() {
        return Err(invalid(
            "threshold parameters",
            format!("n = {n} is too large"),
        ));
    }
    let mut rng = ChaCha20Rng::from_seed(*seed);
    loop {
        let coeffs: Vec<BigUint> = (0..threshold).map(|_| random_scalar(&mut rng)).collect();
        let secret = &coeffs[0];
        let shares: Vec<BigUint> = (1..=n as u64).map(|x| eval_poly(&coeffs, x)).collect();
        // A zero secret or share is not a valid BLS key; it happens with probability ~ n/r,
        // and drawing again keeps the deal deterministic.
        if *secret == BigUint::ZERO || shares.contains(&BigUint::ZERO) {
            continue;
        }
        let group = BlsKeypair::from_secret_bytes(&scalar_be32(secret))?;
        let shares = shares
            .iter()
            .map(|s| BlsKeypair::from_secret_bytes(&scalar_be32(s)))
            .collect::<Result<Vec<_>, _>>()?;
        let public = ThresholdPublic {
            threshold: threshold_u32,
            group_key: group.public(),
            share_keys: shares.iter().map(BlsKeypair::public).collect(),
        };
        return Ok(ThresholdDeal { public, shares });
    }
}

/// Lagrange coefficients at 0 for the distinct, nonzero evaluation points `xs`:
/// `λ_j = Π_{m≠j} x_m / (x_m − x_j) = P / (x_j · Π_{m≠j} (x_m − x_j))` with `P = Π_m x_m`.
fn lagrange_at_zero(xs: &[u64]) -> Vec<BigUint> {
    let r = &*R;
    let p = xs.iter().fold(BigUint::from(1u8), |acc, &x| acc * x) % r;
    // Denominators: products of small integers, reduced once; the sign is tracked apart.
    let dens: Vec<BigUint> = xs
        .iter()
        .enumerate()
        .map(|(j, &xj)| {
            let mut negative = false;
            let mut d = BigUint::from(xj);
            for (m, &xm) in xs.iter().enumerate() {
                if m != j {
                    negative ^= xm < xj;
                    d *= xm.abs_diff(xj);
                }
            }
            let d = d % r;
            if negative { r - d } else { d }
        })
        .collect();
    // Montgomery's batch inversion: one exponentiation a^(r-2) (Fermat) for all of them.
    let mut prefix = Vec::with_capacity(dens.len());
    let mut acc = BigUint::from(1u8);
    for d in &dens {
        prefix.push(acc.clone());
        acc = acc * d % r;
    }
    let mut inv = acc.modpow(&(r - 2u8), r);
    let mut out = vec![BigUint::ZERO; dens.len()];
    for j in (0..dens.len()).rev() {
        out[j] = &p * (&inv * &prefix[j] % r) % r;
        inv = inv * &dens[j] % r;
    }
    out
}

/// `Σ λ_j·σ_j` over the given (index, decoded share) pairs, indices distinct.
fn interpolate(shares: &[(u32, min_pk::Signature)]) -> Option<BlsSignature> {
    let xs: Vec<u64> = shares.iter().map(|(i, _)| u64::from(*i) + 1).collect();
    let scalars: Vec<u8> = lagrange_at_zero(&xs).iter().flat_map(scalar_le32).collect();
    let sigs: Vec<min_pk::Signature> = shares.iter().map(|(_, s)| *s).collect();
    // No subgroup check here: the result is checked (with its subgroup) against the group
    // key, or every share was verified on its own before.
    let agg =
        min_pk::AggregateSignature::aggregate_with_randomness(&sigs, &scalars, SCALAR_BITS, false)
            .ok()?;
    Some(BlsSignature(agg.to_signature().compress()))
}

impl ThresholdPublic {
    /// How many valid shares a combination takes.
    fn needed(&self) -> usize {
        // A malformed t = 0 is treated as 1, so that combining never interpolates nothing.
        (self.threshold as usize).max(1)
    }

    /// Checks that the parameters are consistent: `1 <= t <= n`, every key decodes, and all
    /// share keys lie on one polynomial of degree `t - 1` whose value at 0 is the group key
    /// (interpolating the first `t` share keys "in the exponent"). Worth running once when a
    /// chain spec is loaded: [`Self::combine`] relies on it.
    pub fn validate(&self) -> Result<(), CryptoError> {
        let n = self.share_keys.len();
        let t = self.threshold as usize;
        if t == 0 || t > n || u32::try_from(n).is_err() {
            return Err(invalid(
                "threshold parameters",
                format!("need 1 <= t <= n, got t = {t}, n = {n}"),
            ));
        }
        let decode = |pk: &BlsPublicKey| {
            min_pk::PublicKey::key_validate(&pk.0)
                .map_err(|e| invalid("BLS public key", format!("{e:?}")))
        };
        decode(&self.group_key)?;
        let base: Vec<min_pk::PublicKey> = self.share_keys[..t]
            .iter()
            .map(decode)
            .collect::<Result<_, _>>()?;
        let xs: Vec<u64> = (1..=t as u64).collect();
        // Lagrange basis of the first t points evaluated at `at`:
        // L_j(at) = Π_{m≠j} (at − x_m) / (x_j − x_m); for at = 0 this is lagrange_at_zero.
        let eval_at = |at: u64| -> Result<BlsPublicKey, CryptoError> {
            let coeffs = lagrange_at(&xs, at);
            let scalars: Vec<u8> = coeffs.iter().flat_map(scalar_le32).collect();
            let pk = min_pk::AggregatePublicKey::aggregate_with_randomness(
                &base,
                &scalars,
                SCALAR_BITS,
                false,
            )
            .map_err(|e| invalid("threshold share keys", format!("{e:?}")))?;
            Ok(BlsPublicKey(pk.to_public_key().compress()))
        };
        if eval_at(0)? != self.group_key {
            return Err(invalid(
                "threshold parameters",
                "share keys do not interpolate to the group key",
            ));
        }
        for (i, key) in self.share_keys.iter().enumerate().skip(t) {
            decode(key)?;
            if eval_at(i as u64 + 1)? != *key {
                return Err(invalid(
                    "threshold parameters",
                    format!("share key {i} is not on the polynomial of the others"),
                ));
            }
        }
        Ok(())
    }

    /// Verifies validator `index`'s share of a signature on `msg`.
    pub fn verify_share(
        &self,
        index: u32,
        msg: &[u8],
        share: &BlsSignature,
    ) -> Result<(), CryptoError> {
        let key = self.share_keys.get(index as usize).ok_or_else(|| {
            invalid(
                "threshold share index",
                format!("{index} with {} validators", self.share_keys.len()),
            )
        })?;
        key.verify(msg, share)
    }

    /// Verifies a combined signature against the group key.
    pub fn verify(&self, msg: &[u8], signature: &BlsSignature) -> Result<(), CryptoError> {
        self.group_key.verify(msg, signature)
    }

    /// Combines shares into the group signature on `msg`.
    ///
    /// Duplicates of an index are ignored (the first one given is kept) and order does not
    /// matter. Interpolates (Lagrange at 0) the first `threshold` distinct shares by
    /// increasing index and checks the result against the group key; only if that fails,
    /// verifies shares one by one in increasing index order until `threshold` valid ones are
    /// found, and interpolates those. A share that does not decode counts as bad. `bad_shares`
    /// lists the invalid shares that were looked at; shares past the ones used may not have
    /// been checked. Assumes consistent parameters ([`Self::validate`]).
    pub fn combine(
        &self,
        msg: &[u8],
        shares: &[(u32, BlsSignature)],
    ) -> Result<Combined, CombineError> {
        let needed = self.needed();
        if let Some(&(index, _)) = shares
            .iter()
            .find(|(i, _)| *i as usize >= self.share_keys.len())
        {
            return Err(CombineError::UnknownSigner(index));
        }
        // Distinct indices, increasing, first occurrence kept (the sort is stable).
        let mut distinct: Vec<&(u32, BlsSignature)> = shares.iter().collect();
        distinct.sort_by_key(|(i, _)| *i);
        distinct.dedup_by_key(|(i, _)| *i);

        // Fast path: decode shares in index order until `needed` decode.
        let mut bad = Vec::new();
        let mut chosen: Vec<(u32, min_pk::Signature)> = Vec::with_capacity(needed);
        let mut rest = distinct.iter();
        for (index, share) in rest.by_ref() {
            match min_pk::Signature::from_bytes(&share.0) {
                Ok(sig) => chosen.push((*index, sig)),
                Err(_) => bad.push(*index),
            }
            if chosen.len() == needed {
                break;
            }
        }
        if chosen.len() < needed {
            return Err(CombineError::NotEnoughShares {
                valid: chosen.len(),
                needed,
                bad,
            });
        }
        if let Some(signature) = interpolate(&chosen)
            && self.verify(msg, &signature).is_ok()
        {
            return Ok(Combined {
                signature,
                bad_shares: bad,
            });
        }

        // Slow path: some share is bad. Verify one by one, in index order.
        let mut valid: Vec<(u32, min_pk::Signature)> = Vec::with_capacity(needed);
        let candidates = chosen
            .iter()
            .map(|(i, s)| (*i, Some(*s)))
            .chain(rest.map(|(i, share)| (*i, min_pk::Signature::from_bytes(&share.0).ok())));
        for (index, sig) in candidates {
            let ok = sig.filter(|sig| {
                let key = min_pk::PublicKey::key_validate(&self.share_keys[index as usize].0);
                key.is_ok_and(|key| {
                    sig.verify(true, msg, SIG_DST, &[], &key, false) == BLST_ERROR::BLST_SUCCESS
                })
            });
            match ok {
                Some(sig) => valid.push((index, sig)),
                None => bad.push(index),
            }
            if valid.len() == needed {
                break;
            }
        }
        bad.sort_unstable();
        match (valid.len() == needed)
            .then(|| interpolate(&valid))
            .flatten()
        {
            Some(signature) => Ok(Combined {
                signature,
                bad_shares: bad,
            }),
            None => Err(CombineError::NotEnoughShares {
                valid: valid.len(),
                needed,
                bad,
            }),
        }
    }
}

/// Lagrange basis polynomials of the distinct points `xs`, evaluated at `at` (not one of
/// them, or one of them: then it is the indicator of that point).
fn lagrange_at(xs: &[u64], at: u64) -> Vec<BigUint> {
    if at == 0 {
        return lagrange_at_zero(xs);
    }
    let r = &*R;
    let sub = |a: u64, b: u64| -> BigUint {
        if a >= b {
            BigUint::from(a - b)
        } else {
            r - BigUint::from(b - a)
        }
    };
    xs.iter()
        .enumerate()
        .map(|(j, &xj)| {
            let mut num = BigUint::from(1u8);
            let mut den = BigUint::from(1u8);
            for (m, &xm) in xs.iter().enumerate() {
                if m != j {
                    num = num * sub(at, xm) % r;
                    den = den * sub(xj, xm) % r;
                }
            }
            num * den.modpow(&(r - 2u8), r) % r
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const MSG: &[u8] = b"block 42";

    fn deal(n: usize, t: usize) -> ThresholdDeal {
        deal_threshold(n, t, &[n as u8 ^ 0x5a; 32]).unwrap()
    }

    fn sign_all(d: &ThresholdDeal, msg: &[u8]) -> Vec<(u32, BlsSignature)> {
        d.shares
            .iter()
            .enumerate()
            .map(|(i, k)| (i as u32, k.sign(msg)))
            .collect()
    }

    fn pick(all: &[(u32, BlsSignature)], indices: &[usize]) -> Vec<(u32, BlsSignature)> {
        indices.iter().map(|&i| all[i]).collect()
    }

    /// Several t-subsets of 0..n: the first t, the last t (reversed), every other one, and a
    /// few pseudo-random ones.
    fn subsets(n: usize, t: usize) -> Vec<Vec<usize>> {
        let mut out = vec![(0..t).collect::<Vec<_>>(), (n - t..n).rev().collect()];
        let spread: Vec<usize> = (0..n).step_by(2).chain((1..n).step_by(2)).take(t).collect();
        out.push(spread);
        let mut rng = ChaCha20Rng::from_seed([9; 32]);
        for _ in 0..3 {
            let mut idx: Vec<usize> = (0..n).collect();
            for k in (1..n).rev() {
                idx.swap(k, rng.next_u32() as usize % (k + 1));
            }
            idx.truncate(t);
            out.push(idx);
        }
        out
    }

    #[test]
    fn any_t_shares_give_the_same_valid_signature() {
        for (n, t) in [(4, 3), (7, 5), (10, 7)] {
            let d = deal(n, t);
            d.public.validate().unwrap();
            assert_eq!(d.public.threshold as usize, t);
            assert_eq!(d.public.share_keys.len(), n);
            let all = sign_all(&d, MSG);
            let mut first = None;
            for subset in subsets(n, t) {
                let c = d.public.combine(MSG, &pick(&all, &subset)).unwrap();
                assert!(c.bad_shares.is_empty());
                d.public.verify(MSG, &c.signature).unwrap();
                assert!(d.public.verify(b"other", &c.signature).is_err());
                let first = *first.get_or_insert(c.signature);
                assert_eq!(c.signature, first, "n={n} t={t} subset {subset:?}");
            }
            // All n shares: the first t are used, same result.
            let c = d.public.combine(MSG, &all).unwrap();
            assert_eq!(Some(c.signature), first);
        }
    }

    #[test]
    fn fewer_than_t_shares_fail() {
        for (n, t) in [(4, 3), (7, 5), (10, 7)] {
            let d = deal(n, t);
            let all = sign_all(&d, MSG);
            let few = pick(&all, &(1..t).collect::<Vec<_>>());
            assert_eq!(
                d.public.combine(MSG, &few),
                Err(CombineError::NotEnoughShares {
                    valid: t - 1,
                    needed: t,
                    bad: vec![]
                })
            );
            // Duplicates do not count twice.
            let mut dup = few.clone();
            dup.extend(few.iter().copied());
            assert!(matches!(
                d.public.combine(MSG, &dup),
                Err(CombineError::NotEnoughShares { valid, .. }) if valid == t - 1
            ));
            assert!(matches!(
                d.public.combine(MSG, &[]),
                Err(CombineError::NotEnoughShares { valid: 0, .. })
            ));
        }
    }

    #[test]
    fn bad_shares_are_reported_and_left_out() {
        let (n, t) = (7, 5);
        let d = deal(n, t);
        let all = sign_all(&d, MSG);
        let expected = d.public.combine(MSG, &all[..t]).unwrap().signature;

        let garbage = BlsSignature([0xab; 96]);
        let mut zeros = [0u8; 96];
        zeros[0] = 0xc0; // the point at infinity: decodes, is not a valid share
        let cases: Vec<(&str, BlsSignature)> = vec![
            ("share of another message", d.shares[2].sign(b"other")),
            ("random bytes", garbage),
            ("infinity", BlsSignature(zeros)),
            ("signed with the wrong index's key", d.shares[3].sign(MSG)),
            ("the group signature", expected),
        ];
        for (what, bad) in cases {
            let mut shares = all.clone();
            shares[2].1 = bad;
            let c = d.public.combine(MSG, &shares).unwrap();
            assert_eq!(c.bad_shares, vec![2], "{what}");
            assert_eq!(c.signature, expected, "{what}");
            // Shuffled input, duplicates, same outcome.
            let mut shuffled = shares.clone();
            shuffled.reverse();
            shuffled.push(shares[0]);
            let c = d.public.combine(MSG, &shuffled).unwrap();
            assert_eq!((c.bad_shares, c.signature), (vec![2], expected), "{what}");
            // Exactly t shares, one bad: not enough.
            assert_eq!(
                d.public.combine(MSG, &shares[..t]),
                Err(CombineError::NotEnoughShares {
                    valid: t - 1,
                    needed: t,
                    bad: vec![2]
                }),
                "{what}"
            );
        }

        // Two bad shares (n - t = 2): still enough; three: not.
        let mut shares = all.clone();
        shares[0].1 = garbage;
        shares[4].1 = all[5].1;
        let c = d.public.combine(MSG, &shares).unwrap();
        assert_eq!((c.bad_shares, c.signature), (vec![0, 4], expected));
        shares[6].1 = d.shares[6].sign(b"other");
        assert_eq!(
            d.public.combine(MSG, &shares),
            Err(CombineError::NotEnoughShares {
                valid: 4,
                needed: 5,
                bad: vec![0, 4, 6]
            })
        );
        // A duplicate index keeps its first share; a later good copy is ignored.
        let mut shares = all[..t].to_vec();
        shares.insert(0, (1, garbage));
        assert!(matches!(
            d.public.combine(MSG, &shares),
            Err(CombineError::NotEnoughShares { bad, .. }) if bad == vec![1]
        ));
    }

    #[test]
    fn share_verification() {
        let d = deal(4, 3);
        let s1 = d.shares[1].sign(MSG);
        d.public.verify_share(1, MSG, &s1).unwrap();
        assert!(d.public.verify_share(2, MSG, &s1).is_err());
        assert!(d.public.verify_share(1, b"other", &s1).is_err());
        assert!(
            d.public
                .verify_share(1, MSG, &BlsSignature([0xab; 96]))
                .is_err()
        );
        assert!(matches!(
            d.public.verify_share(4, MSG, &s1),
            Err(CryptoError::Invalid { .. })
        ));
        // A share is not a group signature.
        assert!(d.public.verify(MSG, &s1).is_err());
    }

    #[test]
    fn deal_is_deterministic_and_seed_dependent() {
        let a = deal_threshold(7, 5, &[1; 32]).unwrap();
        let b = deal_threshold(7, 5, &[1; 32]).unwrap();
        let c = deal_threshold(7, 5, &[2; 32]).unwrap();
        assert_eq!(a.public, b.public);
        let secrets = |d: &ThresholdDeal| -> Vec<[u8; 32]> {
            d.shares.iter().map(BlsKeypair::secret_bytes).collect()
        };
        assert_eq!(secrets(&a), secrets(&b));
        assert_ne!(a.public.group_key, c.public.group_key);
        for i in 0..7 {
            assert_ne!(a.public.share_keys[i], c.public.share_keys[i]);
            assert_eq!(a.public.share_keys[i], a.shares[i].public());
        }
        // Debug does not print secrets.
        let dbg = format!("{a:?}");
        for s in secrets(&a) {
            assert!(!dbg.contains(&hex::encode(s)));
        }
    }

    #[test]
    fn bad_parameters() {
        assert!(deal_threshold(0, 0, &[0; 32]).is_err());
        assert!(deal_threshold(4, 0, &[0; 32]).is_err());
        assert!(deal_threshold(4, 5, &[0; 32]).is_err());
        let d = deal(4, 3);
        let s = d.shares[0].sign(MSG);
        assert_eq!(
            d.public.combine(MSG, &[(0, s), (4, s)]),
            Err(CombineError::UnknownSigner(4))
        );
        assert_eq!(
            d.public.combine(MSG, &[(u32::MAX, s)]),
            Err(CombineError::UnknownSigner(u32::MAX))
        );
        // Inconsistent public parameters are caught by validate().
        let other = deal_threshold(4, 3, &[77; 32]).unwrap();
        let mut p = d.public.clone();
        p.share_keys[3] = other.public.share_keys[3];
        assert!(p.validate().is_err());
        let mut p = d.public.clone();
        p.group_key = other.public.group_key;
        assert!(p.validate().is_err());
        let mut p = d.public.clone();
        p.threshold = 5;
        assert!(p.validate().is_err());
        let mut p = d.public.clone();
        p.share_keys[0] = BlsPublicKey([0xab; 48]);
        assert!(p.validate().is_err());
        // A malformed t = 0 does not panic.
        let mut p = d.public.clone();
        p.threshold = 0;
        let _ = p.combine(MSG, &sign_all(&d, MSG));
    }

    #[test]
    fn degenerate_thresholds() {
        // t = 1: every share key is the group key, and any single share is the signature.
        let d = deal(4, 1);
        d.public.validate().unwrap();
        assert!(d.public.share_keys.iter().all(|k| *k == d.public.group_key));
        let all = sign_all(&d, MSG);
        for share in &all {
            let c = d.public.combine(MSG, &[*share]).unwrap();
            assert_eq!(c.signature, share.1);
            d.public.verify(MSG, &c.signature).unwrap();
        }
        assert!(d.public.combine(MSG, &[]).is_err());
        let mut bad = all.clone();
        bad[0].1 = BlsSignature([0xab; 96]);
        let c = d.public.combine(MSG, &bad).unwrap();
        assert_eq!((c.bad_shares, c.signature), (vec![0], all[1].1));

        // t = n: all shares needed.
        let d = deal(5, 5);
        d.public.validate().unwrap();
        let all = sign_all(&d, MSG);
        let c = d.public.combine(MSG, &all).unwrap();
        d.public.verify(MSG, &c.signature).unwrap();
        let mut rev = all.clone();
        rev.reverse();
        assert_eq!(d.public.combine(MSG, &rev).unwrap().signature, c.signature);
        assert!(d.public.combine(MSG, &all[1..]).is_err());

        // n = t = 1.
        let d = deal(1, 1);
        let s = d.shares[0].sign(MSG);
        assert_eq!(d.public.combine(MSG, &[(0, s)]).unwrap().signature, s);
    }

    #[test]
    fn lagrange_coefficients_sum_to_one() {
        // Σ λ_j(0) = 1 for any point set (interpolating the constant 1).
        for xs in [vec![1u64, 2, 3], vec![5, 2, 9, 40], vec![7]] {
            let sum = lagrange_at_zero(&xs)
                .into_iter()
                .fold(BigUint::ZERO, |a, l| (a + l) % &*R);
            assert_eq!(sum, BigUint::from(1u8));
        }
    }

    /// Timing, not a check: `cargo test -p v2v-crypto --release -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn combine_timing() {
        for (n, t) in [(4, 3), (64, 43)] {
            let d = deal(n, t);
            let all = sign_all(&d, MSG);
            let shares = &all[..t];
            let runs = 20;
            let start = std::time::Instant::now();
            for _ in 0..runs {
                d.public.combine(MSG, shares).unwrap();
            }
            let fast = start.elapsed() / runs;
            let mut one_bad = all.clone();
            one_bad[0].1 = d.shares[0].sign(b"other");
            let start = std::time::Instant::now();
            for _ in 0..runs {
                d.public.combine(MSG, &one_bad).unwrap();
            }
            let slow = start.elapsed() / runs;
            let xs: Vec<u64> = (1..=t as u64).collect();
            let start = std::time::Instant::now();
            for _ in 0..runs {
                lagrange_at_zero(&xs);
            }
            let lagrange = start.elapsed() / runs;
            println!(
                "combine {t} of {n}: {fast:?} (all valid; Lagrange coefficients {lagrange:?}), \
                 {slow:?} with one bad share"
            );
        }
    }
}
