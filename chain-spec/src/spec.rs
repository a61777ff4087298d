//! The chain spec format and its validation.

use std::path::Path;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use v2v_abi::genesis::GenesisMarket;
use v2v_consensus::{ThresholdKeys, Timing, ValidatorSet};
use v2v_crypto::{BlsPublicKey, BlsSignature, PublicKey, ThresholdPublic, to_hex};
use v2v_primitives::ContractStorage;

#[derive(Debug, Error)]
pub enum SpecError {
    #[error("chain spec {path}: {reason}")]
    Io { path: String, reason: String },
    #[error("chain spec is not valid JSON for this format: {0}")]
    Parse(String),
    #[error("invalid chain spec: {0}")]
    Invalid(String),
}

/// Which consensus engine the chain runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// One validator that finalizes each block it proposes (dev chains).
    Solo,
    /// PBFT (Castro and Liskov 1999).
    Pbft,
    /// Linear BFT with BLS threshold certificates.
    Linear,
    /// SBFT (Gueta et al. 2019), fast path with slow-path fallback.
    Sbft,
}

impl EngineKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            EngineKind::Solo => "solo",
            EngineKind::Pbft => "pbft",
            EngineKind::Linear => "linear",
            EngineKind::Sbft => "sbft",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsensusParams {
    pub engine: EngineKind,
    /// Pause between blocks while transactions are waiting.
    pub block_interval_ms: u64,
    /// Longest pause before an empty block is produced (0 = only produce blocks with txs).
    pub empty_block_interval_ms: u64,
    pub max_block_txs: u32,
    pub max_block_bytes: u32,
    pub max_tx_bytes: u32,
    /// Leader timeout before a view change (BFT engines).
    pub round_timeout_ms: u64,
    /// Timeout of a view change itself (BFT engines); doubles on each failed view.
    pub view_change_timeout_ms: u64,
    /// SBFT: how long the collector waits for every fast-path share before it falls back to
    /// the slow path (default 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fast_path_timeout_ms: Option<u64>,
    /// SBFT: c, the slow or crashed validators the fast path tolerates (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sbft_c: Option<u32>,
    /// PBFT: heights in agreement at once (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<u64>,
    /// PBFT: heights between checkpoints (default 64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_interval: Option<u64>,
}

/// Public parameters of one (t, n) threshold BLS key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ThresholdKeySpec {
    pub threshold: u32,
    /// Verifies combined signatures (certificates), 0x + 96 hex digits.
    pub group_key: String,
    /// One per validator, in validator order: verifies that validator's shares.
    pub share_keys: Vec<String>,
}

/// Threshold keys dealt when the spec was built (Linear BFT, SBFT). The dealer is trusted to
/// have erased the secret polynomial; each validator's share is in its key file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ThresholdSpec {
    /// t = the quorum: prepare and commit certificates.
    pub slow: ThresholdKeySpec,
    /// t = n - c: SBFT fast-path certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fast: Option<ThresholdKeySpec>,
}

impl ThresholdKeySpec {
    pub fn from_public(p: &ThresholdPublic) -> Self {
        ThresholdKeySpec {
            threshold: p.threshold,
            group_key: to_hex(&p.group_key.0),
            share_keys: p.share_keys.iter().map(|k| to_hex(&k.0)).collect(),
        }
    }

    pub fn to_public(&self) -> Result<ThresholdPublic, SpecError> {
        let key = |s: &str| {
            BlsPublicKey::from_hex(s).map_err(|e| SpecError::Invalid(format!("threshold key: {e}")))
        };
        let p = ThresholdPublic {
            threshold: self.threshold,
            group_key: key(&self.group_key)?,
            share_keys: self
                .share_keys
                .iter()
                .map(|s| key(s))
                .collect::<Result<_, _>>()?,
        };
        p.validate()
            .map_err(|e| SpecError::Invalid(format!("threshold key: {e}")))?;
        Ok(p)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecutionParams {
    pub fuel_per_tx: u64,
    pub memory_limit_bytes: u64,
    /// Largest contract code an upgrade may deploy (default 1 MiB); a deployment transaction
    /// may exceed `maxTxBytes` by this much.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_code_bytes: Option<u32>,
}

impl ExecutionParams {
    pub const DEFAULT_MAX_CODE_BYTES: u32 = 1024 * 1024;

    pub fn max_code_bytes(&self) -> u32 {
        self.max_code_bytes.unwrap_or(Self::DEFAULT_MAX_CODE_BYTES)
    }
}

/// Room in a deployment transaction for everything but the code (the transaction's fixed
/// fields, the method name, the activation height and the signature).
const DEPLOY_TX_OVERHEAD: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ValidatorSpec {
    pub name: String,
    /// ed25519 public key: signs votes and proposals; the libp2p identity.
    pub ed25519: PublicKey,
    /// BLS12-381 (min-pk) public key, 0x + 96 hex digits.
    pub bls: String,
    /// Proof of possession of the BLS key, 0x + 192 hex digits.
    pub bls_pop: String,
    /// Network address (multiaddr), e.g. `/ip4/127.0.0.1/tcp/30333`.
    pub address: String,
}

/// A node that follows the chain without voting: it may connect to the validators, fetches
/// finalized blocks and checks their certificates, and serves RPC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FullNodeSpec {
    pub name: String,
    /// Its ed25519 public key: its libp2p identity.
    pub ed25519: PublicKey,
    /// Where it listens (multiaddr), if others should dial it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GenesisSpec {
    /// Timestamp of the genesis header, ms since the Unix epoch.
    pub timestamp: u64,
    /// Genesis market state; its operators come from the spec's `operators`.
    pub market: GenesisMarket,
    /// Raw contract storage written over what the market's init wrote (in JSON, 0x-hex key
    /// to 0x-hex value), as Substrate's raw chain specs carry genesis storage: a market that
    /// starts with a filled order book (`v2v bench --workload book`). Keys starting with `:`
    /// are reserved for the node. Decoded as it is parsed, and held compactly: the genesis
    /// state shares it rather than copying it.
    #[serde(
        default,
        with = "hex_storage",
        skip_serializing_if = "ContractStorage::is_empty"
    )]
    pub storage: ContractStorage,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContractSpec {
    /// The contract's declared version (`v2v_version`).
    pub version: u32,
    /// blake3 of the Wasm bytes, 0x + 64 hex digits.
    pub code_hash: String,
    /// The Wasm bytes, 0x-prefixed hex.
    pub wasm: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChainSpec {
    pub name: String,
    pub id: String,
    pub consensus: ConsensusParams,
    pub execution: ExecutionParams,
    pub validators: Vec<ValidatorSpec>,
    pub operators: Vec<PublicKey>,
    pub genesis: GenesisSpec,
    pub contract: ContractSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<ThresholdSpec>,
    /// Full nodes allowed on the network besides the validators. Network configuration, not
    /// chain state: not covered by the genesis hash, so full nodes come and go without a new
    /// chain.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub full_nodes: Vec<FullNodeSpec>,
}

/// What the spec's hash covers, borrowed: the spec with the Wasm blanked (its code hash
/// stands for it) and without full nodes (network configuration, not chain state). It
/// serializes exactly as such a copy of the spec would, without copying the genesis storage
/// (a book of 100 000 orders is ~90 MB of hex).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HashedSpec<'a> {
    name: &'a str,
    id: &'a str,
    consensus: &'a ConsensusParams,
    execution: &'a ExecutionParams,
    validators: &'a [ValidatorSpec],
    operators: &'a [PublicKey],
    genesis: &'a GenesisSpec,
    contract: HashedContract<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    threshold: Option<&'a ThresholdSpec>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HashedContract<'a> {
    version: u32,
    code_hash: &'a str,
    wasm: &'static str,
}

impl ChainSpec {
    /// The part of the spec its hash covers (see [`HashedSpec`]).
    pub fn hashed(&self) -> HashedSpec<'_> {
        HashedSpec {
            name: &self.name,
            id: &self.id,
            consensus: &self.consensus,
            execution: &self.execution,
            validators: &self.validators,
            operators: &self.operators,
            genesis: &self.genesis,
            contract: HashedContract {
                version: self.contract.version,
                code_hash: &self.contract.code_hash,
                wasm: "",
            },
            threshold: self.threshold.as_ref(),
        }
    }

    pub fn from_json(text: &str) -> Result<Self, SpecError> {
        let spec: ChainSpec =
            serde_json::from_str(text).map_err(|e| SpecError::Parse(e.to_string()))?;
        spec.validate()?;
        Ok(spec)
    }

    /// Reads the file as it parses (a spec with a large genesis storage is not held twice).
    pub fn load(path: &Path) -> Result<Self, SpecError> {
        let file = std::fs::File::open(path).map_err(|e| SpecError::Io {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let spec: ChainSpec =
            serde_json::from_reader(std::io::BufReader::new(file)).map_err(|e| {
                match e.classify() {
                    serde_json::error::Category::Io => SpecError::Io {
                        path: path.display().to_string(),
                        reason: e.to_string(),
                    },
                    _ => SpecError::Parse(e.to_string()),
                }
            })?;
        spec.validate()?;
        Ok(spec)
    }

    pub fn to_json(&self) -> String {
        // Serializing plain data structs cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Writes the spec (pretty-printed) as it serializes, through a temporary file renamed
    /// over `path`: a large genesis storage is never held a second time as text, and a
    /// reader never sees half a file.
    pub fn save(&self, path: &Path) -> Result<(), SpecError> {
        let io = |e: std::io::Error| SpecError::Io {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = std::path::PathBuf::from(tmp);
        let mut w = std::io::BufWriter::new(std::fs::File::create(&tmp).map_err(io)?);
        serde_json::to_writer_pretty(&mut w, self).map_err(|e| io(e.into()))?;
        w.into_inner()
            .map_err(|e| io(e.into_error()))?
            .sync_all()
            .map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// The contract's Wasm bytes (checked against `code_hash` by [`ChainSpec::validate`]).
    pub fn wasm(&self) -> Result<Vec<u8>, SpecError> {
        hex::decode(
            self.contract
                .wasm
                .strip_prefix("0x")
                .unwrap_or(&self.contract.wasm),
        )
        .map_err(|e| SpecError::Invalid(format!("contract.wasm is not hex: {e}")))
    }

    /// The largest transaction carrying `method`: a contract deployment may carry code of up
    /// to `maxCodeBytes`, everything else is held to `maxTxBytes`.
    pub fn max_tx_len(&self, method: &str) -> usize {
        if method == v2v_abi::DEPLOY_METHOD {
            self.max_decode_len()
        } else {
            self.consensus.max_tx_bytes as usize
        }
    }

    /// The largest transaction of any kind: the bound for decoding before the method is known.
    pub fn max_decode_len(&self) -> usize {
        (self.consensus.max_tx_bytes as usize)
            .max(self.execution.max_code_bytes() as usize + DEPLOY_TX_OVERHEAD)
    }

    /// The genesis input of the contract: the market state with the spec's operators.
    pub fn genesis_market(&self) -> GenesisMarket {
        let mut m = self.genesis.market.clone();
        m.operators = self.operators.iter().map(PublicKey::to_hex).collect();
        m
    }

    /// The validator set the engines vote with, threshold keys included.
    pub fn validator_set(&self) -> Result<ValidatorSet, SpecError> {
        let set = ValidatorSet::new(self.validators.iter().map(|v| v.ed25519).collect());
        let Some(t) = &self.threshold else {
            return Ok(set);
        };
        let n = set.len();
        let slow = t.slow.to_public()?;
        if slow.share_keys.len() != n || slow.threshold as usize != set.quorum() {
            return Err(SpecError::Invalid(format!(
                "threshold.slow must be {} of {n} (the quorum), it is {} of {}",
                set.quorum(),
                slow.threshold,
                slow.share_keys.len()
            )));
        }
        let fast = match &t.fast {
            None => None,
            Some(f) => {
                let fast = f.to_public()?;
                let want = set.fast_quorum(self.consensus.sbft_c.unwrap_or(0) as usize);
                if fast.share_keys.len() != n || fast.threshold as usize != want {
                    return Err(SpecError::Invalid(format!(
                        "threshold.fast must be {want} of {n} (n - c), it is {} of {}",
                        fast.threshold,
                        fast.share_keys.len()
                    )));
                }
                Some(fast)
            }
        };
        Ok(set.with_threshold(ThresholdKeys { slow, fast }))
    }

    /// The engines' timeouts.
    pub fn timing(&self) -> Timing {
        let c = &self.consensus;
        Timing {
            round_timeout_ms: c.round_timeout_ms,
            view_change_timeout_ms: c.view_change_timeout_ms,
            fast_path_timeout_ms: c.fast_path_timeout_ms.unwrap_or(50),
        }
    }

    /// Checks everything that can be checked without executing the contract.
    pub fn validate(&self) -> Result<(), SpecError> {
        let bad = |m: String| Err(SpecError::Invalid(m));
        if self.name.trim().is_empty() || self.id.trim().is_empty() {
            return bad("name and id must not be empty".into());
        }
        let c = &self.consensus;
        if c.block_interval_ms == 0 || c.max_block_txs == 0 {
            return bad("blockIntervalMs and maxBlockTxs must be positive".into());
        }
        if c.max_tx_bytes < 256 || c.max_tx_bytes > c.max_block_bytes {
            return bad(format!(
                "maxTxBytes ({}) must be at least 256 and at most maxBlockBytes ({})",
                c.max_tx_bytes, c.max_block_bytes
            ));
        }
        if c.max_block_bytes > 64 * 1024 * 1024 {
            return bad("maxBlockBytes may not exceed 64 MiB".into());
        }
        if self.validators.is_empty() {
            return bad("at least one validator is required".into());
        }
        if c.engine == EngineKind::Solo && self.validators.len() != 1 {
            return bad(format!(
                "the solo engine runs exactly one validator, the spec lists {}",
                self.validators.len()
            ));
        }
        if c.engine != EngineKind::Solo
            && (c.empty_block_interval_ms == 0
                || c.empty_block_interval_ms
                    .saturating_add(c.block_interval_ms)
                    >= c.round_timeout_ms / 2)
        {
            return bad(format!(
                "engine {}: emptyBlockIntervalMs + blockIntervalMs must be positive and below \
                 half of roundTimeoutMs ({}), or an idle leader looks failed",
                c.engine.as_str(),
                c.round_timeout_ms
            ));
        }
        if c.window == Some(0) || c.checkpoint_interval == Some(0) {
            return bad("window and checkpointInterval must be at least 1".into());
        }
        let set = self.validator_set()?;
        match c.engine {
            EngineKind::Linear if set.threshold.is_none() => {
                return bad("the linear engine needs threshold.slow keys".into());
            }
            EngineKind::Sbft if set.threshold.as_ref().is_none_or(|t| t.fast.is_none()) => {
                return bad("the sbft engine needs threshold.slow and threshold.fast keys".into());
            }
            _ => {}
        }
        if self.execution.fuel_per_tx == 0 || self.execution.memory_limit_bytes < 1 << 20 {
            return bad("fuelPerTx must be positive and memoryLimitBytes at least 1 MiB".into());
        }
        if self.max_decode_len() > c.max_block_bytes as usize {
            return bad(format!(
                "a deployment of maxCodeBytes ({}) must fit in maxBlockBytes ({})",
                self.execution.max_code_bytes(),
                c.max_block_bytes
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for v in &self.validators {
            if !seen.insert(v.ed25519) {
                return bad(format!("validator key {} appears twice", v.ed25519));
            }
            let pk = BlsPublicKey::from_hex(&v.bls)
                .map_err(|e| SpecError::Invalid(format!("validator {}: {e}", v.name)))?;
            let pop = BlsSignature::from_hex(&v.bls_pop)
                .map_err(|e| SpecError::Invalid(format!("validator {}: {e}", v.name)))?;
            pk.verify_possession(&pop)
                .map_err(|e| SpecError::Invalid(format!("validator {}: {e}", v.name)))?;
        }
        for f in &self.full_nodes {
            if !seen.insert(f.ed25519) {
                return bad(format!("node key {} appears twice", f.ed25519));
            }
        }
        if self.operators.is_empty() {
            return bad("at least one operator key is required".into());
        }
        if !self.genesis.market.operators.is_empty() {
            return bad("genesis.market.operators must be empty: operators are listed once, at the top level".into());
        }
        if let Some(k) = self
            .genesis
            .storage
            .keys()
            .find(|k| k.is_empty() || k.first() == Some(&b':'))
        {
            return bad(format!(
                "genesis.storage key 0x{:.20} is empty or reserved (starts with ':')",
                hex::encode(k)
            ));
        }
        let wasm = self.wasm()?;
        let hash = format!("0x{}", hex::encode(blake3::hash(&wasm).as_bytes()));
        if hash != self.contract.code_hash.to_lowercase() {
            return bad(format!(
                "contract.codeHash is {} but the embedded Wasm hashes to {hash}",
                self.contract.code_hash
            ));
        }
        Ok(())
    }
}

/// `genesis.storage` in JSON: an object from 0x-hex keys to 0x-hex values, written in key
/// order; a key given twice (in any letter case) is refused.
mod hex_storage {
    use std::fmt;

    use serde::de::{Error as _, MapAccess, Visitor};
    use serde::ser::SerializeMap;
    use serde::{Deserializer, Serializer};
    use v2v_primitives::ContractStorage;

    pub fn serialize<S: Serializer>(storage: &ContractStorage, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(storage.len()))?;
        for (k, v) in storage {
            map.serialize_entry(
                &format!("0x{}", hex::encode(k)),
                &format!("0x{}", hex::encode(v)),
            )?;
        }
        map.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ContractStorage, D::Error> {
        d.deserialize_map(StorageVisitor)
    }

    struct StorageVisitor;

    fn decode<E: serde::de::Error>(what: &str, s: &str) -> Result<Vec<u8>, E> {
        hex::decode(s.strip_prefix("0x").unwrap_or(s))
            .map_err(|e| E::custom(format!("genesis.storage {what} {s:.20}: {e}")))
    }

    impl<'de> Visitor<'de> for StorageVisitor {
        type Value = ContractStorage;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object from 0x-hex keys to 0x-hex values")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ContractStorage, A::Error> {
            // Entries are decoded one by one into the compact storage: the text of the whole
            // is never held.
            let (mut failed, mut given) = (None, 0usize);
            let storage: ContractStorage = std::iter::from_fn(|| {
                let entry = map.next_entry::<String, String>().and_then(|e| {
                    e.map(|(k, v)| Ok((decode("key", &k)?, decode("value", &v)?)))
                        .transpose()
                });
                match entry {
                    Ok(e) => {
                        given += usize::from(e.is_some());
                        e
                    }
                    Err(e) => {
                        failed = Some(e);
                        None
                    }
                }
            })
            .collect();
            if let Some(e) = failed {
                return Err(e);
            }
            if storage.len() != given {
                return Err(A::Error::custom(
                    "genesis.storage gives a key twice (keys are compared as bytes)",
                ));
            }
            Ok(storage)
        }
    }
}
