//! The JSON shapes of the API. Hashes and bytes are 0x-hex, money is a decimal string.

use serde::{Deserialize, Serialize};
use v2v_abi::MarketCall;
use v2v_primitives::{Block, Hash, Header, Receipt, SignedTransaction};

/// A block named by height or by hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BlockId {
    Height(u64),
    Hash(Hash),
}

/// `system_metrics`: counters since the node started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeMetrics {
    pub finalized_blocks: u64,
    pub finalized_transactions: u64,
    /// Consensus engine messages sent to other validators (a broadcast counts once per
    /// receiver), and their bytes.
    pub engine_messages_sent: u64,
    pub engine_bytes_sent: u64,
    /// Proposal bodies pushed to other validators, and their bytes.
    pub block_bodies_sent: u64,
    pub block_bytes_sent: u64,
    /// Transaction gossip messages published, and their bytes.
    pub gossip_messages_sent: u64,
    pub gossip_bytes_sent: u64,
    /// CPU time per stage of a transaction's path, measured on the thread that ran it.
    pub stages: Vec<StageMetrics>,
}

/// One stage of `NodeMetrics`: how often it ran, on how many transactions, for how much
/// CPU time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageMetrics {
    pub name: String,
    pub calls: u64,
    pub items: u64,
    pub cpu_ns: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    pub peers: u32,
    pub is_syncing: bool,
    pub best_height: u64,
    pub finalized_height: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainInfo {
    pub name: String,
    pub id: String,
    pub genesis_hash: Hash,
    pub engine: String,
    pub validators: u32,
    pub contract_version: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeaderJson {
    pub height: u64,
    pub hash: Hash,
    pub parent_hash: Hash,
    pub state_root: Hash,
    pub tx_root: Hash,
    pub proposer: String,
    pub view: u64,
    pub timestamp: u64,
}

impl From<&Header> for HeaderJson {
    fn from(h: &Header) -> Self {
        HeaderJson {
            height: h.height,
            hash: h.hash(),
            parent_hash: h.parent_hash,
            state_root: h.state_root,
            tx_root: h.tx_root,
            proposer: h.proposer.to_hex(),
            view: h.view,
            timestamp: h.timestamp,
        }
    }
}

/// A transaction, decoded where the method is a known market call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TxJson {
    pub hash: Hash,
    pub signer: String,
    pub nonce: u64,
    pub method: String,
    /// The arguments as JSON, when the method is a known market call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call: Option<serde_json::Value>,
    pub args: String,
    pub memo_len: usize,
    /// The whole signed transaction, as submitted.
    pub raw: String,
}

/// The JSON form of a known call, or `None`.
pub fn decode_call_json(method: &str, args: &[u8]) -> Option<serde_json::Value> {
    if method == v2v_abi::DEPLOY_METHOD {
        // The code itself is in `args` and `raw`: show what identifies it.
        let d = v2v_abi::DeployContract::decode(args).ok()?;
        return Some(serde_json::json!({
            "method": method,
            "args": {
                "codeHash": Hash(*blake3::hash(&d.wasm).as_bytes()),
                "codeBytes": d.wasm.len(),
                "activateAt": d.activate_at,
            }
        }));
    }
    MarketCall::decode(method, args)
        .ok()
        .and_then(|c| serde_json::to_value(c).ok())
}

impl From<&SignedTransaction> for TxJson {
    fn from(t: &SignedTransaction) -> Self {
        TxJson {
            hash: t.hash(),
            signer: t.tx.signer.to_hex(),
            nonce: t.tx.nonce,
            method: t.tx.method.clone(),
            call: decode_call_json(&t.tx.method, &t.tx.args),
            args: format!("0x{}", hex::encode(&t.tx.args)),
            memo_len: t.tx.memo.len(),
            raw: format!("0x{}", hex::encode(t.encoded())),
        }
    }
}

/// A receipt with its events parsed back into JSON objects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptJson {
    pub success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub events: Vec<serde_json::Value>,
    pub fuel_used: u64,
}

impl From<&Receipt> for ReceiptJson {
    fn from(r: &Receipt) -> Self {
        ReceiptJson {
            success: r.success,
            error: r.error.clone(),
            events: r
                .events
                .iter()
                .map(|e| {
                    serde_json::from_str(e).unwrap_or_else(|_| serde_json::Value::String(e.clone()))
                })
                .collect(),
            fuel_used: r.fuel_used,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockJson {
    pub header: HeaderJson,
    pub transactions: Vec<TxJson>,
    pub receipts: Vec<ReceiptJson>,
}

impl BlockJson {
    pub fn new(block: &Block, receipts: &[Receipt]) -> Self {
        BlockJson {
            header: HeaderJson::from(&block.header),
            transactions: block.txs.iter().map(TxJson::from).collect(),
            receipts: receipts.iter().map(ReceiptJson::from).collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TxLookup {
    pub height: u64,
    pub index: u32,
    pub block_hash: Hash,
    pub tx: TxJson,
    pub receipt: ReceiptJson,
}

/// The certificate that finalized a block (`chain_getFinalityProof`): decoded for reading,
/// and encoded (`certificate`) for verification against the validator set of the chain spec
/// (`v2v_consensus::Certificate::decode` and `verify`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FinalityProofJson {
    pub height: u64,
    pub block_hash: Hash,
    /// The view (round) in which the block was agreed.
    pub view: u64,
    /// `ed25519-signatures` (PBFT, solo), `bls-threshold-slow` (Linear BFT, SBFT slow path)
    /// or `bls-threshold-fast` (SBFT fast path).
    pub kind: String,
    /// For `ed25519-signatures`: the validator indices that signed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signers: Vec<u32>,
    /// The encoded certificate, 0x-prefixed hex.
    pub certificate: String,
}

/// A peer this node is connected to (`system_peers`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerInfo {
    /// The libp2p peer id.
    pub peer_id: String,
    /// `validator` or `fullNode`, from the chain spec.
    pub role: String,
    /// Its name in the chain spec.
    pub name: String,
}

/// A member of the validator set (`system_validators`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidatorInfo {
    pub index: u32,
    pub name: String,
    pub ed25519: String,
    pub bls: String,
    pub address: String,
    /// Whether this node has a connection to it (always true for itself).
    pub connected: bool,
    /// The last finalized block it proposed (since this node started), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen_height: Option<u64>,
}

/// The market contract in force, the upgrade waiting and every upgrade so far
/// (`state_getContract`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContractInfo {
    pub code_hash: Hash,
    pub version: u32,
    /// The height at which this code took effect (0: genesis).
    pub deployed_at: u64,
    /// The transaction that deployed it (none for the genesis code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy_tx: Option<Hash>,
    /// Code deployed and waiting for its activation height.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingUpgradeInfo>,
    /// Every upgrade that reached its activation height, oldest first, failed ones included.
    #[serde(default)]
    pub history: Vec<UpgradeInfo>,
}

/// A deployed upgrade waiting for its activation height.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingUpgradeInfo {
    pub version: u32,
    pub code_hash: Hash,
    pub code_bytes: u64,
    /// The block that included the deployment.
    pub deployed_at: u64,
    /// The first block the new code will execute.
    pub activate_at: u64,
    pub deploy_tx: Hash,
    pub deployer: String,
}

/// One upgrade at its activation height: `outcome` is `activated`, or `failed` with the
/// migration's error (the old code stayed in force).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeInfo {
    pub version: u32,
    pub code_hash: Hash,
    pub deployed_at: u64,
    pub activate_at: u64,
    pub deploy_tx: Hash,
    pub deployer: String,
    pub previous_version: u32,
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One event of `author_submitAndWatchTransaction`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "camelCase")]
pub enum TxStatus {
    /// In this node's mempool, gossiped to the validators.
    Accepted { hash: Hash },
    /// In a block (with BFT finality, the block that finalizes it).
    Included { height: u64, index: u32 },
    Finalized {
        height: u64,
        index: u32,
        receipt: ReceiptJson,
    },
    /// Refused by the node's checks; nothing was queued.
    Invalid { reason: String, code: i32 },
    /// No longer tracked: it left the mempool unfinalized, or the subscriber was too slow.
    Dropped { reason: String },
}

/// One trade lifecycle event of `market_subscribeTrades`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TradeEvent {
    /// `matched`, `confirmed`, `disputed`, `settled` or `refunded`; `dropped` ends the
    /// subscription when events could not be delivered (then `reason` says why).
    pub event: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trade_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    pub height: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tx_hash: Option<Hash>,
    /// The contract's event, as in the receipt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A page of an account's transactions (`explorer_accountHistory`), newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryPage {
    pub client_id: String,
    pub public_key: String,
    pub items: Vec<TxLookup>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// `explorer_stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExplorerStats {
    /// The finalized height (blocks after genesis).
    pub blocks: u64,
    /// Transactions in the blocks this node stored.
    pub txs: u64,
    /// Trades matched since genesis.
    pub trades: u64,
    /// Energy matched in trades since genesis (Wh, decimal string).
    pub volume_wh: String,
    /// Transactions per second over the last minute of block timestamps.
    pub tx_per_sec_last_minute: f64,
}
