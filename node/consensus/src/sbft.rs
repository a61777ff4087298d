//! `sbft`: SBFT (Gueta et al., "SBFT: a Scalable and Decentralized Trust Infrastructure",
//! DSN 2019; the report's §3.3.4): Linear BFT plus a fast path. Each replica sends its
//! collector a fast-path share (t = n - c) with its slow-path prepare share; n - c fast
//! shares commit the block in one collector round trip, and otherwise (a timer, or invalid
//! shares) the collector falls back to Linear BFT's slow path for the same block in the same
//! view. View changes carry each replica's highest fast-path share so that a block that may
//! have been fast-committed is re-proposed (SBFT §V).
//!
//! The protocol lives in [`crate::collector`], shared with Linear BFT; this engine is that
//! core with the fast path on. Simplification against the paper: one collector (the
//! leader) rather than c + 1 collectors, no separate execution-collector phase (the node
//! executes and replies to clients itself), and one height at a time.

use crate::collector::Core;
use crate::{ConfigError, Engine, EngineConfig, Input, Output};

#[derive(Debug)]
pub struct SbftEngine {
    core: Core,
}

impl SbftEngine {
    /// Needs both threshold keys (slow: t = quorum; fast: t = n - c) and this validator's
    /// shares, and n >= 3f + 2c + 1 for the configured c.
    pub fn new(config: EngineConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            core: Core::new("sbft", config, true)?,
        })
    }
}

impl Engine for SbftEngine {
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

    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;
    use crate::collector::pump;
    use crate::{Phase, TimerId, Timing, test_committee};

    fn make(config: EngineConfig) -> Box<dyn Engine> {
        Box::new(SbftEngine::new(config).unwrap())
    }

    #[test]
    fn n4_all_honest_commits_20_heights_on_the_fast_path() {
        let p = pump::all_honest(make, 20);
        for i in 0..4 {
            assert!(
                p.fast_certificates(i).iter().all(|fast| *fast),
                "replica {i}"
            );
        }
        // Per height: the leader broadcasts the proposal and the certificate, each replica
        // sends one message (its two shares).
        let h = p.committed[0].len();
        assert!(
            (2 * h..=2 * h + 2).contains(&p.broadcasts[0]),
            "{}",
            p.broadcasts[0]
        );
        for i in 1..4 {
            assert!((h..=h + 1).contains(&p.sends[i]), "{}", p.sends[i]);
        }
        assert!(p.timeouts.is_empty(), "{:?}", p.timeouts);
    }

    #[test]
    fn one_silent_replica_falls_back_to_the_slow_path() {
        let mut p = pump::Pump::new(4, 0, make);
        p.down.insert(3);
        p.start();
        p.run_until(200_000, |p| p.all_committed(10, &[3]));
        for i in 0..3 {
            assert!(
                p.fast_certificates(i).iter().all(|fast| !fast),
                "replica {i}"
            );
            assert!(p.committed[i].iter().all(|(_, c)| c.view == 0));
        }
        let fast_timeouts = p
            .timeouts
            .iter()
            .filter(|(_, id)| matches!(id, TimerId::FastPath { .. }))
            .count();
        assert!(fast_timeouts >= 10);
        assert!(
            p.timeouts
                .iter()
                .all(|(_, id)| matches!(id, TimerId::FastPath { .. }))
        );
    }

    #[test]
    fn n6_c1_fast_path_survives_one_silent_replica() {
        let mut p = pump::Pump::new(6, 1, make);
        p.down.insert(4);
        p.start();
        p.run_until(100_000, |p| p.all_committed(4, &[4]));
        assert!(p.fast_certificates(0).iter().all(|fast| *fast));
        assert!(p.timeouts.is_empty());
    }

    #[test]
    fn invalid_shares_are_reported_and_the_block_commits_on_the_slow_path() {
        let p = pump::invalid_shares(make);
        let reasons: Vec<&str> = p.faulty.iter().map(|(_, _, r)| r.as_str()).collect();
        assert!(reasons.iter().any(|r| r.contains("fast-path")));
        assert!(reasons.iter().any(|r| r.contains("prepare")));
        // The bad fast share makes n - c unreachable: the slow path starts at once, no timer.
        assert!(p.fast_certificates(0).iter().all(|fast| !fast));
        assert!(p.timeouts.is_empty(), "{:?}", p.timeouts);
    }

    #[test]
    fn silent_leader_is_replaced_by_a_view_change() {
        pump::silent_leader(make);
    }

    #[test]
    fn locked_block_is_re_proposed_after_a_view_change() {
        pump::locked_block_is_re_proposed(make, true);
    }

    /// The leader gathers all fast shares for height 2 and commits, but its certificate
    /// reaches nobody and it falls silent. No replica is locked: only their fast-share
    /// reports in the view changes make the new leader re-propose the committed block
    /// (SBFT §V); the pump checks that everyone commits the same block.
    #[test]
    fn fast_committed_block_is_re_proposed_after_a_view_change() {
        let mut p = pump::Pump::new(4, 0, make);
        let cut = Rc::new(RefCell::new(false));
        let cut2 = cut.clone();
        p.tamper = Some(Box::new(move |from, to, payload| {
            let mut cut = cut2.borrow_mut();
            if *cut && (from == 0 || to == 0) {
                return None;
            }
            // The first commit certificate for height 2 from the leader: drop it and cut.
            if from == 0
                && payload.first() == Some(&35)
                && crate::Certificate::decode(&payload[1..]).is_ok_and(|c| c.height == 2)
            {
                *cut = true;
                return None;
            }
            Some(payload.to_vec())
        }));
        p.start();
        p.run_until(300_000, |p| p.all_committed(4, &[0]));
        assert_eq!(
            p.committed[0].len(),
            2,
            "the leader committed height 2 alone"
        );
        assert!(p.fast_certificates(0)[1]);
        for i in 1..4 {
            assert_eq!(p.committed[i][1].0, p.committed[0][1].0);
            assert!(p.committed[i][1].1.view >= 1);
        }
    }

    #[test]
    fn restart_never_signs_two_blocks_at_one_height_and_view() {
        pump::restart_keeps_signatures(make);
    }

    #[test]
    fn replicas_send_both_shares_in_one_message() {
        let committee = test_committee(4, 0, 1, Timing::default());
        let mut e = make(committee.configs[2].clone());
        e.handle(Input::Start {
            next_height: 1,
            persisted: None,
        });
        let hash = v2v_primitives::Hash([5; 32]);
        e.handle(Input::Message {
            from: 0,
            payload: pump::proposal_payload(&committee.configs[0], 1, 0, hash),
        });
        let outs = e.handle(Input::ProposalVerified {
            height: 1,
            view: 0,
            block_hash: hash,
            valid: true,
        });
        let sends: Vec<_> = outs
            .iter()
            .filter_map(|o| match o {
                Output::Send { to, payload } => Some((*to, pump::shares_in(payload))),
                _ => None,
            })
            .collect();
        assert_eq!(sends.len(), 1);
        let (to, votes) = &sends[0];
        assert_eq!(*to, 0);
        assert_eq!(votes.len(), 2);
        assert!(pump::is_share(&votes[0], Phase::Commit, true));
        assert!(pump::is_share(&votes[1], Phase::Prepare, false));
        for v in votes {
            v.verify(&committee.validators).unwrap();
        }
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
    fn n6_c1_chaos_then_calm_is_safe_and_live() {
        let run = pump::ChaosRun {
            n: 6,
            c: 1,
            drop_percent: 10,
            timer_percent: 3,
            restart_per_mille: 2,
            steps: 1_500,
            byzantine: true,
        };
        pump::chaos_then_calm(make, run, 0..3);
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
    fn config_rejects_a_c_too_large_for_n() {
        // n = 4 has f = 1: c = 1 needs n >= 6.
        let committee = test_committee(4, 1, 1, Timing::default());
        assert!(matches!(
            SbftEngine::new(committee.configs[0].clone()),
            Err(ConfigError::Invalid(_))
        ));
        let committee = test_committee(6, 1, 1, Timing::default());
        assert!(SbftEngine::new(committee.configs[0].clone()).is_ok());
        let mut cfg = committee.configs[0].clone();
        cfg.fast_share = None;
        assert!(matches!(
            SbftEngine::new(cfg),
            Err(ConfigError::Missing { .. })
        ));
        assert_eq!(make(committee.configs[0].clone()).name(), "sbft");
    }
}
