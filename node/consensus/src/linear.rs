//! `linear`: Linear BFT, the report's §3.3.3 (PBFT with threshold signatures and the leader
//! as collector, after Yin et al.'s and SBFT's linear PBFT): replicas send their prepare and
//! commit shares to the leader only, and the leader broadcasts one combined (t = quorum)
//! BLS signature per phase, so each phase costs O(n) messages instead of PBFT's O(n²).
//!
//! The protocol (normal case, linear view change, persistence, the safety argument) lives in
//! [`crate::collector`], shared with SBFT; this engine is that core with the fast path off.

use crate::collector::Core;
use crate::{ConfigError, Engine, EngineConfig, Input, Output};

#[derive(Debug)]
pub struct LinearEngine {
    core: Core,
}

impl LinearEngine {
    /// Needs the slow-path threshold key (t = quorum) in the validator set and this
    /// validator's share of it.
    pub fn new(config: EngineConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            core: Core::new("linear", config, false)?,
        })
    }
}

impl Engine for LinearEngine {
    fn name(&self) -> &'static str {
        self.core.name()
    }

    fn handle(&mut self, input: Input) -> Vec<Output> {
        self.core.handle(input)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::collector::pump;
    use crate::{Proof, Timing, test_committee};

    fn make(config: EngineConfig) -> Box<dyn Engine> {
        Box::new(LinearEngine::new(config).unwrap())
    }

    #[test]
    fn n4_all_honest_commits_20_heights_with_linear_messages() {
        let p = pump::all_honest(make, 20);
        for i in 0..4 {
            assert!(p.fast_certificates(i).iter().all(|fast| !fast));
        }
        // Exactly: per height, the leader broadcasts proposal, prepare and commit
        // certificates; each replica sends a prepare and a commit share.
        let h = p.committed[0].len();
        assert!(
            (3 * h..=3 * h + 3).contains(&p.broadcasts[0]),
            "{}",
            p.broadcasts[0]
        );
        for i in 1..4 {
            assert!((2 * h..=2 * h + 2).contains(&p.sends[i]), "{}", p.sends[i]);
        }
    }

    #[test]
    fn n7_all_honest() {
        let mut p = pump::Pump::new(7, 0, make);
        p.start();
        p.run_until(100_000, |p| p.all_committed(5, &[]));
        assert!(p.faulty.is_empty());
    }

    #[test]
    fn silent_leader_is_replaced_by_a_view_change() {
        pump::silent_leader(make);
    }

    #[test]
    fn invalid_shares_are_reported_and_the_block_commits() {
        let p = pump::invalid_shares(make);
        assert!(p.faulty.iter().any(|(_, _, r)| r.contains("prepare")));
    }

    #[test]
    fn locked_block_is_re_proposed_after_a_view_change() {
        pump::locked_block_is_re_proposed(make, false);
    }

    #[test]
    fn restart_never_signs_two_blocks_at_one_height_and_view() {
        pump::restart_keeps_signatures(make);
    }

    #[test]
    fn chaos_then_calm_is_safe_and_live() {
        let mild = pump::ChaosRun {
            n: 4,
            c: 0,
            drop_percent: 10,
            timer_percent: 2,
            restart_per_mille: 2,
            steps: 1_500,
            byzantine: false,
        };
        pump::chaos_then_calm(make, mild, 0..4);
        let harsh = pump::ChaosRun {
            drop_percent: 30,
            timer_percent: 10,
            restart_per_mille: 5,
            ..mild
        };
        pump::chaos_then_calm(make, harsh, 4..8);
        let byzantine = pump::ChaosRun {
            byzantine: true,
            ..mild
        };
        pump::chaos_then_calm(make, byzantine, 8..11);
    }

    #[test]
    fn equivocating_leader_is_reported() {
        pump::equivocating_leader_is_reported(make);
    }

    #[test]
    fn replica_starved_by_the_leader_catches_up() {
        pump::starved_replica_catches_up(make);
    }

    #[test]
    fn garbage_payloads_do_not_panic() {
        pump::garbage_does_not_panic(make);
    }

    #[test]
    fn a_silent_replica_does_not_stop_progress() {
        let mut p = pump::Pump::new(4, 0, make);
        p.down.insert(2);
        p.start();
        p.run_until(100_000, |p| p.all_committed(5, &[2]));
        assert!(p.committed[0].iter().all(|(_, c)| c.view == 0));
    }

    #[test]
    fn lagging_replica_catches_up_through_sync() {
        let mut p = pump::Pump::new(4, 0, make);
        p.down.insert(3);
        p.start();
        p.run_until(100_000, |p| p.all_committed(4, &[3]));
        p.down.remove(&3);
        p.restart(3);
        // Replica 3 never saw anything: later certificates make it sync, then it follows.
        p.run_until(100_000, |p| p.all_committed(8, &[]));
        assert!(p.committed[0].len() <= 10);
    }

    #[test]
    fn config_needs_threshold_keys() {
        let committee = test_committee(4, 0, 1, Timing::default());
        let mut cfg = committee.configs[0].clone();
        cfg.slow_share = None;
        assert!(matches!(
            LinearEngine::new(cfg),
            Err(ConfigError::Missing { .. })
        ));
        let mut cfg = committee.configs[0].clone();
        cfg.slow_share = committee.configs[1].slow_share.clone();
        assert!(matches!(
            LinearEngine::new(cfg),
            Err(ConfigError::Invalid(_))
        ));
        let mut cfg = committee.configs[0].clone();
        cfg.validators.threshold = None;
        assert!(LinearEngine::new(cfg).is_err());
        assert_eq!(make(committee.configs[0].clone()).name(), "linear");
    }

    #[test]
    fn single_validator_commits_alone() {
        let committee = test_committee(1, 0, 1, Timing::default());
        let mut e = LinearEngine::new(committee.configs[0].clone()).unwrap();
        let outs = e.handle(Input::Start {
            next_height: 1,
            persisted: None,
        });
        assert!(outs.contains(&Output::RequestProposal { height: 1, view: 0 }));
        let hash = v2v_primitives::Hash([7; 32]);
        let outs = e.handle(Input::ProposalReady(crate::Proposal {
            height: 1,
            view: 0,
            block_hash: hash,
        }));
        let cert = outs
            .iter()
            .find_map(|o| match o {
                Output::Commit { certificate, .. } => Some(certificate.clone()),
                _ => None,
            })
            .unwrap();
        cert.verify(&committee.validators, 1, &hash).unwrap();
        assert!(matches!(cert.proof, Proof::Threshold { fast: false, .. }));
        assert!(outs.contains(&Output::RequestProposal { height: 2, view: 0 }));
    }
}
