//! Contract upgrades: the records the node keeps in the contract storage's reserved keys
//! (`v2v_abi::host::RESERVED_KEY_PREFIX`, out of the contract's reach), as Substrate keeps its
//! runtime under `:code`. Being chain state, they are covered by the state root, written to
//! the store with the block, and carried by state snapshots.
//!
//! | key | value |
//! |---|---|
//! | `:code` | the Wasm in force, once an upgrade has activated (absent: the spec's code) |
//! | `:contract` | [`ActiveContract`] of that code (absent: the spec's code since genesis) |
//! | `:pending` | [`PendingUpgrade`]: deployed code waiting for its activation height |
//! | `:pending/code` | its Wasm |
//! | `:history` | every upgrade's [`UpgradeRecord`], oldest first |

use serde::{Deserialize, Serialize};
use v2v_primitives::{Hash, PublicKey};

pub const CODE_KEY: &[u8] = b":code";
pub const ACTIVE_KEY: &[u8] = b":contract";
pub const PENDING_KEY: &[u8] = b":pending";
pub const PENDING_CODE_KEY: &[u8] = b":pending/code";
pub const HISTORY_KEY: &[u8] = b":history";

/// The code in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActiveContract {
    pub version: u32,
    /// blake3 of the Wasm.
    pub code_hash: Hash,
    /// The first block this code executed (0: genesis).
    pub activated_at: u64,
    /// The deployment transaction (none for the genesis code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy_tx: Option<Hash>,
}

/// Deployed code waiting to take over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingUpgrade {
    pub version: u32,
    pub code_hash: Hash,
    pub code_bytes: u64,
    /// The height of the block that included the deployment.
    pub deployed_at: u64,
    /// The first block the new code will execute.
    pub activate_at: u64,
    pub deploy_tx: Hash,
    pub deployer: PublicKey,
}

/// How an upgrade ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpgradeOutcome {
    /// The new code took over at `activate_at`.
    Activated,
    /// Its migration failed: the old code stayed in force.
    Failed,
}

/// One upgrade, in the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeRecord {
    pub version: u32,
    pub code_hash: Hash,
    pub deployed_at: u64,
    pub activate_at: u64,
    pub deploy_tx: Hash,
    pub deployer: PublicKey,
    /// The version it replaced (or would have).
    pub previous_version: u32,
    pub outcome: UpgradeOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The contract as a client sees it: the code in force, the upgrade waiting, the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContractStatus {
    pub active: ActiveContract,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingUpgrade>,
    pub history: Vec<UpgradeRecord>,
}
