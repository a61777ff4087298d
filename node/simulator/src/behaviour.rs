//! Faulty replicas. The engine inside a faulty replica is the real one; the simulator, acting
//! as its host, distorts what the engine does to the outside world (the approach of
//! commonware's `simplex/mocks`: conflicter, equivocator, twins).

use rand::Rng;
use serde::Serialize;
use v2v_consensus::{EngineConfig, TAG_VOTE, ValidatorSet, Vote, VoteSignature, vote_message};
use v2v_primitives::Hash;

/// How one replica behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Behaviour {
    Honest,
    /// Never starts its engine: sends nothing and answers nothing (crashed from the start).
    Silent,
    /// Crashes at `crash_at_ms` (its engine, timers, pending host work and the messages
    /// travelling to it are lost; its durable state and stored blocks survive) and restarts
    /// at `recover_at_ms` with a fresh engine fed `Start{next_height: head + 1, persisted}`.
    /// A benign fault: its commits are checked like an honest replica's.
    CrashRecover {
        crash_at_ms: u64,
        recover_at_ms: u64,
    },
    /// Twins: two engines with the same keys. Each builds its own block when it leads;
    /// engine A talks only to the first half of the other replicas and engine B only to the
    /// second half, and both hear everything. Byzantine.
    EquivocatingLeader,
    /// Every vote of its own that it sends (a message that is a [`Vote`], or a vote it signed
    /// embedded in an engine message) is, for the second half of the recipients of a
    /// broadcast or half of the time for a message to one peer, replaced by a vote for a
    /// random block in the same phase, height and view, properly signed with its own key or
    /// share. Byzantine.
    ConflictingVotes,
    /// Every vote of its own that it sends (alone or embedded) carries, for every recipient,
    /// a signature that does not verify: ed25519 signatures get flipped bytes; BLS shares are
    /// valid signatures over another message (they decode, so only verification catches
    /// them). Byzantine.
    InvalidShares,
    /// Its outgoing messages take `extra_ms` longer. Benign.
    Slow {
        extra_ms: u64,
    },
}

impl Behaviour {
    /// Byzantine replicas send what they like. Their own commits still come from the real
    /// engine and must carry valid certificates, but their progress is not waited for.
    pub fn is_byzantine(&self) -> bool {
        matches!(
            self,
            Behaviour::EquivocatingLeader | Behaviour::ConflictingVotes | Behaviour::InvalidShares
        )
    }

    /// Counts against the f faults the protocol tolerates.
    pub fn is_faulty(&self) -> bool {
        !matches!(self, Behaviour::Honest)
    }

    /// Replicas whose progress liveness is judged by: not byzantine and not silent.
    pub fn is_correct(&self) -> bool {
        !self.is_byzantine() && !matches!(self, Behaviour::Silent)
    }

    /// A short name for tables and test output.
    pub fn name(&self) -> &'static str {
        match self {
            Behaviour::Honest => "honest",
            Behaviour::Silent => "silent",
            Behaviour::CrashRecover { .. } => "crash_recover",
            Behaviour::EquivocatingLeader => "equivocating",
            Behaviour::ConflictingVotes => "conflicting_votes",
            Behaviour::InvalidShares => "invalid_shares",
            Behaviour::Slow { .. } => "slow",
        }
    }
}

/// Encoded vote lengths: tag, phase, height, view, hash, voter, kind, then an ed25519 (64)
/// or BLS (96) signature.
const VOTE_HEADER: usize = 1 + 1 + 8 + 8 + 32 + 4 + 1;
const VOTE_LENGTHS: [usize; 2] = [VOTE_HEADER + 64, VOTE_HEADER + 96];

/// The votes signed by `me` inside `payload`, as (offset, length, vote): the payload itself
/// if it is a vote, or votes embedded in an engine message. A candidate counts only if it
/// decodes, names `me` as the voter and its signature verifies, so other bytes that happen to
/// look like a vote header are left alone.
pub(crate) fn own_votes(
    payload: &[u8],
    me: u32,
    validators: &ValidatorSet,
) -> Vec<(usize, usize, Vote)> {
    let mut found = Vec::new();
    let mut offset = 0;
    'scan: while offset < payload.len() {
        if payload[offset] == TAG_VOTE {
            for len in VOTE_LENGTHS {
                let Some(bytes) = payload.get(offset..offset + len) else {
                    continue;
                };
                if let Ok(vote) = Vote::decode(bytes)
                    && vote.voter == me
                    && vote.verify(validators).is_ok()
                {
                    found.push((offset, len, vote));
                    offset += len;
                    continue 'scan;
                }
            }
        }
        offset += 1;
    }
    found
}

/// `vote` re-signed by its voter over another block.
fn resign(vote: &Vote, block_hash: Hash, config: &EngineConfig) -> Option<Vote> {
    let (phase, height, view, voter) = (vote.phase, vote.height, vote.view, vote.voter);
    Some(match vote.signature {
        VoteSignature::Ed25519(_) => {
            Vote::sign_ed25519(phase, height, view, block_hash, voter, &config.key)
        }
        VoteSignature::SlowShare(_) => Vote::sign_share(
            phase,
            height,
            view,
            block_hash,
            voter,
            config.slow_share.as_ref()?,
            false,
        ),
        VoteSignature::FastShare(_) => Vote::sign_share(
            phase,
            height,
            view,
            block_hash,
            voter,
            config.fast_share.as_ref()?,
            true,
        ),
    })
}

/// `vote` with a signature that does not verify.
fn corrupt(vote: &Vote, config: &EngineConfig) -> Vote {
    let mut bad = vote.clone();
    // A different message under the right key: for BLS shares this yields a well-formed
    // point that decodes and fails only the pairing check.
    let mut other = vote.block_hash;
    other.0.iter_mut().for_each(|b| *b = !*b);
    let wrong_msg = vote_message(vote.phase, vote.height, vote.view, &other);
    bad.signature = match vote.signature {
        VoteSignature::Ed25519(mut sig) => {
            sig.0[0] ^= 0x5a;
            sig.0[40] ^= 0x01;
            VoteSignature::Ed25519(sig)
        }
        VoteSignature::SlowShare(sig) => VoteSignature::SlowShare(
            config
                .slow_share
                .as_ref()
                .map_or(flip(sig), |s| s.sign(&wrong_msg)),
        ),
        VoteSignature::FastShare(sig) => VoteSignature::FastShare(
            config
                .fast_share
                .as_ref()
                .map_or(flip(sig), |s| s.sign(&wrong_msg)),
        ),
    };
    bad
}

fn flip(mut sig: v2v_crypto::BlsSignature) -> v2v_crypto::BlsSignature {
    sig.0[95] ^= 0x01;
    sig
}

fn rewrite(
    payload: &[u8],
    votes: &[(usize, usize, Vote)],
    mut f: impl FnMut(&Vote) -> Option<Vote>,
) -> Option<Vec<u8>> {
    let mut out = payload.to_vec();
    let mut changed = false;
    for (offset, len, vote) in votes {
        if let Some(new) = f(vote) {
            let bytes = new.encode();
            // Same signature kind, so the same length: the message keeps its layout.
            if bytes.len() == *len {
                out[*offset..offset + len].copy_from_slice(&bytes);
                changed = true;
            }
        }
    }
    changed.then_some(out)
}

/// The conflicting version of `payload` (None if it carries none of `config`'s votes).
pub(crate) fn conflicting_payload(
    payload: &[u8],
    config: &EngineConfig,
    rng: &mut impl Rng,
) -> Option<Vec<u8>> {
    let votes = own_votes(payload, config.index, &config.validators);
    if votes.is_empty() {
        return None;
    }
    rewrite(payload, &votes, |vote| {
        let mut hash = Hash::ZERO;
        rng.fill(&mut hash.0);
        resign(vote, hash, config)
    })
}

/// `payload` with the signatures of `config`'s votes broken (None if it carries none).
pub(crate) fn invalid_share_payload(payload: &[u8], config: &EngineConfig) -> Option<Vec<u8>> {
    let votes = own_votes(payload, config.index, &config.validators);
    if votes.is_empty() {
        return None;
    }
    rewrite(payload, &votes, |vote| Some(corrupt(vote, config)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use v2v_consensus::{Phase, Timing, test_committee};

    #[test]
    fn finds_rewrites_and_breaks_own_votes() {
        let committee = test_committee(4, 0, 7, Timing::default());
        let me = &committee.configs[1];
        let set = &committee.validators;
        let ed = Vote::sign_ed25519(Phase::Commit, 3, 0, Hash([9; 32]), 1, &me.key);
        let share = Vote::sign_share(
            Phase::Prepare,
            3,
            0,
            Hash([9; 32]),
            1,
            me.slow_share.as_ref().unwrap(),
            false,
        );
        let other = Vote::sign_ed25519(
            Phase::Commit,
            3,
            0,
            Hash([9; 32]),
            2,
            &committee.configs[2].key,
        );
        // An engine message: a tag, a length-ish prefix, then three embedded votes.
        let mut msg = vec![40u8, 1, 0, 0, 0];
        msg.extend(ed.encode());
        msg.extend(other.encode());
        msg.extend(share.encode());
        let found = own_votes(&msg, 1, set);
        assert_eq!(found.len(), 2, "only validator 1's votes");
        assert_eq!(found[0].2, ed);
        assert_eq!(found[1].2, share);

        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let conflicting = conflicting_payload(&msg, me, &mut rng).unwrap();
        assert_eq!(conflicting.len(), msg.len());
        let again = own_votes(&conflicting, 1, set);
        assert_eq!(again.len(), 2, "the conflicting votes are validly signed");
        assert!(again.iter().all(|(_, _, v)| v.block_hash != Hash([9; 32])));

        let broken = invalid_share_payload(&msg, me).unwrap();
        assert!(own_votes(&broken, 1, set).is_empty());
        let bare = invalid_share_payload(&share.encode(), me).unwrap();
        let decoded = Vote::decode(&bare).unwrap();
        assert!(decoded.verify(set).is_err(), "decodes but does not verify");
        assert!(invalid_share_payload(&other.encode(), me).is_none());
    }
}
