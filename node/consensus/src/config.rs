//! What an engine needs to run: who it is, its keys, the validator set and its timing.

use thiserror::Error;
use v2v_crypto::{BlsKeypair, Keypair};

use crate::{
    Engine, LinearEngine, PbftEngine, SbftEngine, SoloEngine, ValidatorIndex, ValidatorSet,
    deal_committee_keys,
};

/// Timeouts, in milliseconds of the node's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How long a replica waits for the leader to get the next block finalized before it
    /// starts a view change.
    pub round_timeout_ms: u64,
    /// How long a view change may take before the next one starts; doubles with each
    /// consecutive failed view.
    pub view_change_timeout_ms: u64,
    /// SBFT: how long the collector waits for all fast-path shares before the slow path.
    pub fast_path_timeout_ms: u64,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            round_timeout_ms: 2_000,
            view_change_timeout_ms: 4_000,
            fast_path_timeout_ms: 50,
        }
    }
}

/// One validator's engine configuration.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub index: ValidatorIndex,
    pub validators: ValidatorSet,
    /// The validator's ed25519 key (PBFT votes, proposals, view changes).
    pub key: Keypair,
    /// Its share of the slow-path threshold key (Linear BFT, SBFT).
    pub slow_share: Option<BlsKeypair>,
    /// Its share of the fast-path threshold key (SBFT).
    pub fast_share: Option<BlsKeypair>,
    pub timing: Timing,
    /// PBFT: how many heights may be in agreement at once (the log window), at least 1.
    pub window: u64,
    /// PBFT: a checkpoint every this many heights; messages below the last stable
    /// checkpoint are garbage-collected.
    pub checkpoint_interval: u64,
    /// SBFT: c, the number of slow or crashed replicas the fast path tolerates.
    pub sbft_c: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    #[error("unknown consensus engine {0:?} (expected solo, pbft, linear or sbft)")]
    UnknownEngine(String),
    #[error("validator index {index} is out of range for {n} validators")]
    BadIndex { index: u32, n: usize },
    #[error("engine {engine} needs {what}")]
    Missing {
        engine: &'static str,
        what: &'static str,
    },
    #[error("{0}")]
    Invalid(String),
}

impl EngineConfig {
    /// Checks what every engine relies on.
    pub fn check(&self) -> Result<(), ConfigError> {
        let n = self.validators.len();
        if self.index as usize >= n {
            return Err(ConfigError::BadIndex {
                index: self.index,
                n,
            });
        }
        if self.validators.keys[self.index as usize] != self.key.public() {
            return Err(ConfigError::Invalid(format!(
                "the ed25519 key is not validator {}'s",
                self.index
            )));
        }
        if self.window == 0 || self.checkpoint_interval == 0 {
            return Err(ConfigError::Invalid(
                "window and checkpoint interval must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// Builds the engine the chain spec names.
pub fn new_engine(name: &str, config: EngineConfig) -> Result<Box<dyn Engine>, ConfigError> {
    config.check()?;
    match name {
        "solo" => {
            if config.validators.len() != 1 {
                return Err(ConfigError::Invalid(
                    "the solo engine runs exactly one validator".into(),
                ));
            }
            Ok(Box::new(SoloEngine::new(config.key)))
        }
        "pbft" => Ok(Box::new(PbftEngine::new(config)?)),
        "linear" => Ok(Box::new(LinearEngine::new(config)?)),
        "sbft" => Ok(Box::new(SbftEngine::new(config)?)),
        other => Err(ConfigError::UnknownEngine(other.to_string())),
    }
}

/// A whole committee with deterministic keys: for tests, the simulator and benchmarks.
#[derive(Debug, Clone)]
pub struct Committee {
    pub validators: ValidatorSet,
    pub configs: Vec<EngineConfig>,
}

/// Deterministic keys for `n` validators from `seed`, with threshold keys dealt for the slow
/// path (t = quorum) and the fast path (t = n - c).
pub fn test_committee(n: usize, sbft_c: usize, seed: u64, timing: Timing) -> Committee {
    let keys: Vec<Keypair> = (0..n)
        .map(|i| Keypair::from_name(&format!("committee-{seed}-{i}")))
        .collect();
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    // n >= 1, so dealing cannot fail.
    let dealt = deal_committee_keys(n, Some(sbft_c), seed_bytes)
        .unwrap_or_else(|e| unreachable!("dealing keys for {n} validators: {e}"));
    let validators =
        ValidatorSet::new(keys.iter().map(|k| k.public()).collect()).with_threshold(dealt.keys);
    let configs = keys
        .into_iter()
        .enumerate()
        .map(|(i, key)| EngineConfig {
            index: i as u32,
            validators: validators.clone(),
            key,
            slow_share: Some(dealt.shares[i].0.clone()),
            fast_share: dealt.shares[i].1.clone(),
            timing,
            window: 4,
            checkpoint_interval: 16,
            sbft_c,
        })
        .collect();
    Committee {
        validators,
        configs,
    }
}
