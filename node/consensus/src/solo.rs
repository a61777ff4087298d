//! `solo`: the engine of a single-validator chain. With n = 1 the validator alone is a quorum,
//! so every block it proposes is final once it signs it. It still goes through the engine
//! interface, so the node drives it exactly like the BFT engines.

use v2v_crypto::Keypair;

use crate::{Certificate, Engine, Input, Output, Proof, Proposal, commit_message};

#[derive(Debug)]
pub struct SoloEngine {
    key: Keypair,
    /// The height whose proposal is awaited (0 before `Start`).
    awaiting: u64,
}

impl SoloEngine {
    pub fn new(key: Keypair) -> Self {
        Self { key, awaiting: 0 }
    }
}

impl Engine for SoloEngine {
    fn name(&self) -> &'static str {
        "solo"
    }

    fn handle(&mut self, input: Input) -> Vec<Output> {
        match input {
            Input::Start { next_height, .. } => {
                self.awaiting = next_height;
                vec![Output::RequestProposal {
                    height: next_height,
                    view: 0,
                }]
            }
            Input::ProposalReady(Proposal {
                height,
                view,
                block_hash,
            }) if height == self.awaiting && height > 0 => {
                let sig = self.key.sign(&commit_message(height, view, &block_hash));
                self.awaiting = height + 1;
                vec![
                    Output::Commit {
                        height,
                        block_hash,
                        certificate: Certificate {
                            height,
                            view,
                            block_hash,
                            proof: Proof::Signatures(vec![(0, sig)]),
                        },
                    },
                    Output::RequestProposal {
                        height: height + 1,
                        view: 0,
                    },
                ]
            }
            // A stale proposal, a message (there are no peers) or a timer (none are set).
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ValidatorSet;
    use v2v_primitives::Hash;

    #[test]
    fn commits_each_proposal_in_order() {
        let key = Keypair::from_name("solo");
        let set = ValidatorSet::new(vec![key.public()]);
        let mut e = SoloEngine::new(key);
        assert_eq!(
            e.handle(Input::Start {
                next_height: 5,
                persisted: None
            }),
            vec![Output::RequestProposal { height: 5, view: 0 }]
        );
        // A proposal for another height is ignored.
        assert!(
            e.handle(Input::ProposalReady(Proposal {
                height: 6,
                view: 0,
                block_hash: Hash([1; 32])
            }))
            .is_empty()
        );
        let out = e.handle(Input::ProposalReady(Proposal {
            height: 5,
            view: 0,
            block_hash: Hash([2; 32]),
        }));
        assert_eq!(out.len(), 2);
        let Output::Commit { certificate, .. } = &out[0] else {
            panic!("expected a commit first, got {out:?}");
        };
        certificate.verify(&set, 5, &Hash([2; 32])).unwrap();
        assert!(certificate.verify(&set, 5, &Hash([3; 32])).is_err());
        let back = Certificate::decode(&certificate.encode()).unwrap();
        assert_eq!(&back, certificate);
        assert_eq!(out[1], Output::RequestProposal { height: 6, view: 0 });
        // Replaying the same proposal commits nothing twice.
        assert!(
            e.handle(Input::ProposalReady(Proposal {
                height: 5,
                view: 0,
                block_hash: Hash([2; 32])
            }))
            .is_empty()
        );
    }
}
