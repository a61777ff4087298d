//! A naive engine for testing the simulator's machinery: the leader of height h
//! (`validators.leader(h)`, round robin) proposes, every replica that verified the proposal
//! broadcasts an ed25519 Commit vote, and a quorum of votes commits with a
//! `Proof::Signatures` certificate. It retransmits its latest proposal and vote on a timer
//! and syncs when it sees votes above its height. Not BFT-safe and not live without the
//! leader of each height: good enough to drive the simulator.
//!
//! [`Mode`]s other than `Honest` misbehave on purpose so that tests can check that the
//! simulator's invariants catch them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use v2v_consensus::{
    Certificate, Engine, EngineConfig, Input, Output, Phase, Proof, TAG_VOTE, TimerId, Vote,
    VoteSignature, commit_message,
};
use v2v_consensus_sim::EngineFactory;
use v2v_crypto::{Keypair, Signature};
use v2v_primitives::Hash;

const TAG_PROPOSE: u8 = 16;
pub const RETRANSMIT_MS: u64 = 30;
const RETRANSMIT: TimerId = TimerId::Round { height: 0, view: 0 };

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Honest,
    /// Commits its own block at its first height, with a forged quorum certificate.
    Liar,
    /// Commits its own block with a certificate that has no signatures.
    BadCertificate,
    /// Commits its own block twice.
    DoubleCommit,
    /// Commits a block nobody built, with a forged quorum certificate.
    UnknownBlock,
}

pub struct Toy {
    config: EngineConfig,
    mode: Mode,
    /// Every validator's key, for the modes that forge certificates.
    forge: Vec<Keypair>,
    next: u64,
    proposals: BTreeMap<u64, Hash>,
    requested: BTreeSet<u64>,
    voted: BTreeMap<u64, Hash>,
    votes: BTreeMap<u64, BTreeMap<Hash, BTreeMap<u32, Signature>>>,
    sync_requested: u64,
}

/// Builds toy engines: `mode_of(index)` picks each replica's mode; `forge` are all the
/// validators' keys (from the same `test_committee`).
pub fn factory(
    mode_of: impl Fn(u32) -> Mode + Send + Sync + 'static,
    forge: Vec<Keypair>,
) -> EngineFactory {
    Arc::new(move |_name: &str, config: EngineConfig| {
        let mode = mode_of(config.index);
        Ok(Box::new(Toy {
            config,
            mode,
            forge: forge.clone(),
            next: 1,
            proposals: BTreeMap::new(),
            requested: BTreeSet::new(),
            voted: BTreeMap::new(),
            votes: BTreeMap::new(),
            sync_requested: 0,
        }) as Box<dyn Engine>)
    })
}

/// All-honest toy engines.
pub fn honest() -> EngineFactory {
    factory(|_| Mode::Honest, Vec::new())
}

pub fn propose_message(height: u64, hash: &Hash) -> Vec<u8> {
    let mut m = vec![TAG_PROPOSE];
    m.extend_from_slice(&height.to_le_bytes());
    m.extend_from_slice(&hash.0);
    m
}

pub fn decode_propose(payload: &[u8]) -> Option<(u64, Hash)> {
    if payload.len() != 41 || payload[0] != TAG_PROPOSE {
        return None;
    }
    let height = u64::from_le_bytes(payload[1..9].try_into().ok()?);
    Some((height, Hash(payload[9..41].try_into().ok()?)))
}

impl Toy {
    fn me(&self) -> u32 {
        self.config.index
    }

    fn leader(&self, height: u64) -> u32 {
        self.config.validators.leader(height)
    }

    fn forged(&self, height: u64, hash: Hash) -> Certificate {
        let msg = commit_message(height, 0, &hash);
        let quorum = self.config.validators.quorum();
        Certificate {
            height,
            view: 0,
            block_hash: hash,
            proof: Proof::Signatures(
                self.forge
                    .iter()
                    .take(quorum)
                    .enumerate()
                    .map(|(i, k)| (i as u32, k.sign(&msg)))
                    .collect(),
            ),
        }
    }

    fn persisted(&self) -> Vec<u8> {
        let mut state = vec![1u8];
        for (h, hash) in self.voted.range(self.next..) {
            state.extend_from_slice(&h.to_le_bytes());
            state.extend_from_slice(&hash.0);
        }
        state
    }

    fn restore(&mut self, state: &[u8]) {
        if state.first() != Some(&1) {
            return;
        }
        for entry in state[1..].chunks_exact(40) {
            let h = u64::from_le_bytes(entry[..8].try_into().unwrap());
            self.voted.insert(h, Hash(entry[8..].try_into().unwrap()));
        }
    }

    fn maybe_request(&mut self, out: &mut Vec<Output>) {
        let h = self.next;
        if self.leader(h) == self.me()
            && !self.proposals.contains_key(&h)
            && self.requested.insert(h)
        {
            out.push(Output::RequestProposal { height: h, view: 0 });
        }
    }

    fn advance(&mut self, out: &mut Vec<Output>) {
        self.next += 1;
        let next = self.next;
        self.votes.retain(|&h, _| h >= next);
        self.maybe_request(out);
    }

    fn vote(&mut self, height: u64, hash: Hash, out: &mut Vec<Output>) {
        if self.voted.contains_key(&height) {
            return;
        }
        self.voted.insert(height, hash);
        out.push(Output::Persist {
            state: self.persisted(),
        });
        let vote = Vote::sign_ed25519(Phase::Commit, height, 0, hash, self.me(), &self.config.key);
        let VoteSignature::Ed25519(sig) = vote.signature else {
            unreachable!()
        };
        let me = self.me();
        self.votes
            .entry(height)
            .or_default()
            .entry(hash)
            .or_default()
            .insert(me, sig);
        out.push(Output::Broadcast {
            payload: vote.encode(),
        });
        self.try_commit(out);
    }

    fn try_commit(&mut self, out: &mut Vec<Output>) {
        let quorum = self.config.validators.quorum();
        loop {
            let h = self.next;
            let Some((hash, sigs)) = self
                .votes
                .get(&h)
                .and_then(|by_hash| by_hash.iter().find(|(_, s)| s.len() >= quorum))
            else {
                return;
            };
            let certificate = Certificate {
                height: h,
                view: 0,
                block_hash: *hash,
                proof: Proof::Signatures(sigs.iter().map(|(i, s)| (*i, *s)).collect()),
            };
            out.push(Output::Commit {
                height: h,
                block_hash: *hash,
                certificate,
            });
            self.advance(out);
        }
    }

    fn on_message(&mut self, from: u32, payload: &[u8], out: &mut Vec<Output>) {
        if let Some((height, hash)) = decode_propose(payload) {
            if from == self.leader(height)
                && height >= self.next
                && !self.voted.contains_key(&height)
            {
                out.push(Output::VerifyProposal {
                    height,
                    view: 0,
                    block_hash: hash,
                    proposer: from,
                });
            }
            return;
        }
        if payload.first() != Some(&TAG_VOTE) {
            return;
        }
        let Ok(vote) = Vote::decode(payload) else {
            return;
        };
        let VoteSignature::Ed25519(sig) = vote.signature else {
            return;
        };
        if vote.phase != Phase::Commit
            || vote.voter != from
            || vote.verify(&self.config.validators).is_err()
        {
            return;
        }
        // A vote at h means the leader of h finalized h - 1: catch up if that is ahead.
        if vote.height > self.next && vote.height - 1 > self.sync_requested {
            self.sync_requested = vote.height - 1;
            out.push(Output::Sync {
                peer: from,
                up_to_height: vote.height - 1,
            });
        }
        if vote.height >= self.next {
            self.votes
                .entry(vote.height)
                .or_default()
                .entry(vote.block_hash)
                .or_default()
                .insert(vote.voter, sig);
            self.try_commit(out);
        }
    }

    fn misbehave(&mut self, height: u64, hash: Hash, out: &mut Vec<Output>) {
        let commit = |hash: Hash, certificate: Certificate| Output::Commit {
            height,
            block_hash: hash,
            certificate,
        };
        match self.mode {
            Mode::Honest => {}
            Mode::Liar => {
                out.push(commit(hash, self.forged(height, hash)));
                self.next = height + 1;
            }
            Mode::BadCertificate => out.push(commit(
                hash,
                Certificate {
                    height,
                    view: 0,
                    block_hash: hash,
                    proof: Proof::Signatures(Vec::new()),
                },
            )),
            Mode::DoubleCommit => {
                out.push(commit(hash, self.forged(height, hash)));
                out.push(commit(hash, self.forged(height, hash)));
            }
            Mode::UnknownBlock => {
                let fake = Hash([0xee; 32]);
                out.push(commit(fake, self.forged(height, fake)));
            }
        }
    }
}

impl Engine for Toy {
    fn name(&self) -> &'static str {
        "toy"
    }

    fn handle(&mut self, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::Start {
                next_height,
                persisted,
            } => {
                self.next = next_height;
                if let Some(state) = persisted {
                    self.restore(&state);
                }
                out.push(Output::SetTimer {
                    id: RETRANSMIT,
                    after_ms: RETRANSMIT_MS,
                });
                if self.mode == Mode::Honest {
                    self.maybe_request(&mut out);
                } else {
                    out.push(Output::RequestProposal {
                        height: next_height,
                        view: 0,
                    });
                }
            }
            Input::ProposalReady(p) => {
                if self.mode != Mode::Honest {
                    self.misbehave(p.height, p.block_hash, &mut out);
                } else if p.height == self.next
                    && self.leader(p.height) == self.me()
                    && !self.proposals.contains_key(&p.height)
                {
                    self.proposals.insert(p.height, p.block_hash);
                    out.push(Output::Broadcast {
                        payload: propose_message(p.height, &p.block_hash),
                    });
                    self.vote(p.height, p.block_hash, &mut out);
                }
            }
            Input::Message { from, payload } => self.on_message(from, &payload, &mut out),
            Input::ProposalVerified {
                height,
                block_hash,
                valid,
                ..
            } => {
                if valid && height >= self.next {
                    self.vote(height, block_hash, &mut out);
                }
            }
            Input::Timeout(_) => {
                let h = self.next;
                if let Some(hash) = self.proposals.get(&h) {
                    out.push(Output::Broadcast {
                        payload: propose_message(h, hash),
                    });
                }
                // The previous height's vote too: a replica that missed it (the next
                // leader, say) can still finalize it.
                for (&height, hash) in self.voted.range(h.saturating_sub(1)..=h) {
                    let vote = Vote::sign_ed25519(
                        Phase::Commit,
                        height,
                        0,
                        *hash,
                        self.me(),
                        &self.config.key,
                    );
                    out.push(Output::Broadcast {
                        payload: vote.encode(),
                    });
                }
                out.push(Output::SetTimer {
                    id: RETRANSMIT,
                    after_ms: RETRANSMIT_MS,
                });
            }
            Input::Synced { height, .. } => {
                if height == self.next {
                    self.advance(&mut out);
                    self.try_commit(&mut out);
                }
            }
        }
        out
    }
}
