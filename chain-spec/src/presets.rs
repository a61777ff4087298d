//! Built-in specs: `dev` (one validator, deterministic well-known keys) and `local`
//! (N validators with fresh keys, for a testnet on this machine).

use std::path::{Path, PathBuf};

use v2v_abi::genesis::{GenesisClient, GenesisMarket, GenesisMeetingPoint};
use v2v_crypto::{BlsKeypair, KeyFile, Keypair, ValidatorKeyFile, to_hex};

use v2v_consensus::{DealtKeys, deal_committee_keys};
use v2v_crypto::ValidatorSecrets;

use crate::{
    ChainSpec, ConsensusParams, ContractSpec, EngineKind, ExecutionParams, GenesisSpec,
    MARKET_WASM, SpecError, ThresholdKeySpec, ThresholdSpec, ValidatorSpec,
};

/// A well-known dev account: its name, key and opening balance in µcr.
#[derive(Debug, Clone)]
pub struct DevAccount {
    pub name: String,
    pub key: Keypair,
    pub balance: u64,
}

/// 1 credit in µcr.
const CREDIT: u64 = 1_000_000;

fn contract() -> ContractSpec {
    ContractSpec {
        version: 1,
        code_hash: format!("0x{}", hex::encode(blake3::hash(MARKET_WASM).as_bytes())),
        wasm: format!("0x{}", hex::encode(MARKET_WASM)),
    }
}

/// `local`: the round timeout is at least this much per validator (64 validators: 3.8 s).
const LOCAL_MS_PER_VALIDATOR: u64 = 60;

fn consensus(engine: EngineKind) -> ConsensusParams {
    ConsensusParams {
        engine,
        block_interval_ms: 100,
        // BFT replicas take a leader that proposes nothing for a round timeout as failed, so
        // an idle BFT chain produces empty blocks well within it.
        empty_block_interval_ms: if engine == EngineKind::Solo {
            5_000
        } else {
            500
        },
        max_block_txs: 10_000,
        max_block_bytes: 16 * 1024 * 1024,
        max_tx_bytes: 64 * 1024,
        round_timeout_ms: 2_000,
        view_change_timeout_ms: 4_000,
        fast_path_timeout_ms: None,
        sbft_c: None,
        window: None,
        checkpoint_interval: None,
    }
}

/// Deals the threshold keys an engine needs for `n` validators from `seed` (the trusted
/// dealer of docs/chain-spec.md): none for solo and PBFT, the slow-path key (t = quorum) for
/// Linear BFT, and the fast-path key too (t = n, c = 0) for SBFT.
fn deal(
    n: usize,
    engine: EngineKind,
    seed: [u8; 32],
) -> Result<Option<(ThresholdSpec, DealtKeys)>, SpecError> {
    let sbft_c = match engine {
        EngineKind::Solo | EngineKind::Pbft => return Ok(None),
        EngineKind::Linear => None,
        EngineKind::Sbft => Some(0),
    };
    let dealt = deal_committee_keys(n, sbft_c, seed)
        .map_err(|e| SpecError::Invalid(format!("dealing threshold keys: {e}")))?;
    let spec = ThresholdSpec {
        slow: ThresholdKeySpec::from_public(&dealt.keys.slow),
        fast: dealt.keys.fast.as_ref().map(ThresholdKeySpec::from_public),
    };
    Ok(Some((spec, dealt)))
}

fn execution() -> ExecutionParams {
    ExecutionParams {
        fuel_per_tx: 20_000_000,
        memory_limit_bytes: 64 * 1024 * 1024,
        max_code_bytes: None,
    }
}

/// A 3 x 3 grid of meeting points, 2 km apart.
fn meeting_points() -> Vec<GenesisMeetingPoint> {
    (0..9)
        .map(|i| GenesisMeetingPoint {
            id: i + 1,
            x: i64::from(i % 3) * 2_000,
            y: i64::from(i / 3) * 2_000,
        })
        .collect()
}

fn market(clients: &[DevAccount]) -> GenesisMarket {
    GenesisMarket {
        fee_rate: 10,
        treasury: "treasury".into(),
        operators: vec![],
        meeting_points: meeting_points(),
        clients: clients
            .iter()
            .map(|c| GenesisClient {
                id: c.name.clone(),
                public_key: c.key.public().to_hex(),
                balance: c.balance,
            })
            .collect(),
    }
}

fn validator_spec(name: &str, ed: &Keypair, bls: &BlsKeypair, port: u16) -> ValidatorSpec {
    ValidatorSpec {
        name: name.into(),
        ed25519: ed.public(),
        bls: to_hex(&bls.public().0),
        bls_pop: to_hex(&bls.proof_of_possession().0),
        address: format!("/ip4/127.0.0.1/tcp/{port}"),
    }
}

/// The dev validator's keys: derived from fixed names, so every dev chain is the same chain.
pub fn dev_validator_keys() -> (Keypair, BlsKeypair) {
    let ed = Keypair::from_name("validator/dev");
    let ikm = blake3::hash(b"v2v dev key: validator/dev/bls");
    let bls = BlsKeypair::from_ikm(ikm.as_bytes())
        .unwrap_or_else(|_| unreachable!("32-byte IKM is accepted"));
    (ed, bls)
}

/// The dev seed of the threshold dealer: every dev chain of one engine is the same chain.
fn dev_threshold_seed() -> [u8; 32] {
    *blake3::hash(b"v2v dev key: validator/dev/threshold").as_bytes()
}

/// The dev validator's secrets for a dev chain running `engine`.
pub fn dev_validator_secrets(engine: EngineKind) -> Result<ValidatorSecrets, SpecError> {
    let (ed25519, bls) = dev_validator_keys();
    let shares = deal(1, engine, dev_threshold_seed())?.map(|(_, d)| d.shares);
    let (slow_share, fast_share) = match shares.and_then(|s| s.into_iter().next()) {
        Some((slow, fast)) => (Some(slow), fast),
        None => (None, None),
    };
    Ok(ValidatorSecrets {
        ed25519,
        bls,
        slow_share,
        fast_share,
    })
}

/// The `dev` preset: one validator, the `solo` engine, an operator and three funded clients,
/// all with well-known keys (never use them for anything real). Returns the spec, the
/// operator key and the client accounts.
pub fn dev() -> (ChainSpec, DevAccount, Vec<DevAccount>) {
    // Solo needs no threshold keys, so this cannot fail.
    dev_with_engine(EngineKind::Solo).unwrap_or_else(|e| unreachable!("dev spec: {e}"))
}

/// The `dev` preset running `engine` on its one validator (any engine works with n = 1: the
/// validator alone is every quorum).
pub fn dev_with_engine(
    engine: EngineKind,
) -> Result<(ChainSpec, DevAccount, Vec<DevAccount>), SpecError> {
    let (ed, bls) = dev_validator_keys();
    let operator = DevAccount {
        name: "operator".into(),
        key: Keypair::from_name("operator"),
        balance: 0,
    };
    let clients: Vec<DevAccount> = ["alice", "bob", "charlie"]
        .iter()
        .map(|n| DevAccount {
            name: (*n).into(),
            key: Keypair::from_name(n),
            balance: 1_000 * CREDIT,
        })
        .collect();
    let mut spec = ChainSpec {
        name: "V2V Development".into(),
        id: "v2v-dev".into(),
        consensus: consensus(engine),
        execution: execution(),
        validators: vec![validator_spec("dev", &ed, &bls, 30333)],
        operators: vec![operator.key.public()],
        genesis: GenesisSpec {
            timestamp: 0,
            market: market(&clients),
            storage: Default::default(),
        },
        contract: contract(),
        threshold: deal(1, engine, dev_threshold_seed())?.map(|(t, _)| t),
        full_nodes: vec![],
    };
    if engine != EngineKind::Solo {
        spec.name = format!("V2V Development ({})", engine.as_str());
    }
    spec.validate()?;
    Ok((spec, operator, clients))
}

/// Where `local` wrote each key.
#[derive(Debug, Clone)]
pub struct LocalKeys {
    pub validators: Vec<PathBuf>,
    pub operator: PathBuf,
    pub clients: Vec<PathBuf>,
}

/// The `local` preset: `n` validators with fresh keys on 127.0.0.1 (ports from `base_port`),
/// a fresh operator key and three funded clients; every key is written under `keys_dir`.
pub fn local(
    n: usize,
    engine: EngineKind,
    base_port: u16,
    keys_dir: &Path,
) -> Result<(ChainSpec, LocalKeys), SpecError> {
    let ports = (0..n)
        .map(|i| {
            u16::try_from(i)
                .ok()
                .and_then(|i| base_port.checked_add(i))
                .ok_or_else(|| SpecError::Invalid("port range overflows".into()))
        })
        .collect::<Result<Vec<u16>, _>>()?;
    local_at(engine, &ports, keys_dir)
}

/// The `local` preset with one validator per p2p port in `ports` (on 127.0.0.1).
pub fn local_at(
    engine: EngineKind,
    ports: &[u16],
    keys_dir: &Path,
) -> Result<(ChainSpec, LocalKeys), SpecError> {
    let n = ports.len();
    if n == 0 || n > 512 {
        return Err(SpecError::Invalid(format!(
            "{n} validators: choose 1 to 512"
        )));
    }
    let io = |p: &Path, e: v2v_crypto::CryptoError| SpecError::Io {
        path: p.display().to_string(),
        reason: e.to_string(),
    };
    let dealt = deal(n, engine, rand::random())?;
    let mut validators = Vec::with_capacity(n);
    let mut validator_paths = Vec::with_capacity(n);
    for (i, &port) in ports.iter().enumerate() {
        let name = format!("validator-{i}");
        let ed = Keypair::generate();
        let bls = BlsKeypair::generate();
        validators.push(validator_spec(&name, &ed, &bls, port));
        let path = keys_dir.join(format!("{name}.json"));
        let mut file = ValidatorKeyFile::new(&name, &ed, &bls);
        if let Some((_, d)) = &dealt {
            file = file.with_shares(&d.shares[i].0, d.shares[i].1.as_ref());
        }
        file.write(&path).map_err(|e| io(&path, e))?;
        validator_paths.push(path);
    }
    let operator = Keypair::generate();
    let operator_path = keys_dir.join("operator.json");
    KeyFile::from_keypair(&operator)
        .write(&operator_path)
        .map_err(|e| io(&operator_path, e))?;
    let mut clients = Vec::new();
    let mut client_paths = Vec::new();
    for name in ["alice", "bob", "charlie"] {
        let key = Keypair::generate();
        let path = keys_dir.join(format!("{name}.json"));
        KeyFile::from_keypair(&key)
            .write(&path)
            .map_err(|e| io(&path, e))?;
        client_paths.push(path);
        clients.push(DevAccount {
            name: name.into(),
            key,
            balance: 1_000 * CREDIT,
        });
    }
    let mut consensus = consensus(engine);
    // Every validator of a local network shares this one machine: past 32 validators a
    // block's cost (votes to sign and check on a share of the cores) outgrows the default
    // timeouts, and view changes caused only by load make it worse.
    let load_ms = u64::try_from(n)
        .unwrap_or(u64::MAX)
        .saturating_mul(LOCAL_MS_PER_VALIDATOR);
    consensus.round_timeout_ms = consensus.round_timeout_ms.max(load_ms);
    consensus.view_change_timeout_ms = consensus
        .view_change_timeout_ms
        .max(load_ms.saturating_mul(2));
    let spec = ChainSpec {
        name: format!("V2V Local Testnet ({n} validators)"),
        id: "v2v-local".into(),
        consensus,
        execution: execution(),
        validators,
        operators: vec![operator.public()],
        genesis: GenesisSpec {
            timestamp: 0,
            market: market(&clients),
            storage: Default::default(),
        },
        contract: contract(),
        threshold: dealt.map(|(t, _)| t),
        full_nodes: vec![],
    };
    spec.validate()?;
    Ok((
        spec,
        LocalKeys {
            validators: validator_paths,
            operator: operator_path,
            clients: client_paths,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_spec_is_valid_and_stable() {
        let (spec, op, clients) = dev();
        spec.validate().unwrap();
        let (again, _, _) = dev();
        assert_eq!(spec, again);
        assert_eq!(clients.len(), 3);
        assert_eq!(spec.operators, vec![op.key.public()]);
        let back = ChainSpec::from_json(&spec.to_json()).unwrap();
        assert_eq!(back, spec);
    }

    #[test]
    fn genesis_storage_is_hex_in_json_and_bytes_in_memory() {
        let (spec, _, _) = dev();
        let with_storage = |entries: &str| {
            let mut v: serde_json::Value = serde_json::from_str(&spec.to_json()).unwrap();
            v["genesis"]["storage"] = serde_json::from_str(entries).unwrap();
            ChainSpec::from_json(&v.to_string())
        };
        let s = with_storage(r#"{"0x62": "0x0102", "0x61": "0x", "0x6162": "0xff"}"#).unwrap();
        let entries: Vec<(&[u8], &[u8])> = s.genesis.storage.iter().collect();
        assert_eq!(
            entries,
            [
                (&b"a"[..], &[][..]),
                (b"ab", &[0xff][..]),
                (b"b", &[1, 2][..])
            ]
        );
        // Written back in key order, lowercase, as it was given.
        let json: serde_json::Value = serde_json::from_str(&s.to_json()).unwrap();
        assert_eq!(
            json["genesis"]["storage"].to_string(),
            r#"{"0x61":"0x","0x6162":"0xff","0x62":"0x0102"}"#
        );
        assert_eq!(ChainSpec::from_json(&s.to_json()).unwrap(), s);
        // Malformed hex, a key given twice, reserved and empty keys are refused.
        for bad in [
            r#"{"0xzz": "0x00"}"#,
            r#"{"0x61": "0xq"}"#,
            r#"{"0x6a": "0x00", "0x6A": "0x01"}"#,
            r#"{"0x3a636f6465": "0x00"}"#,
            r#"{"0x": "0x00"}"#,
        ] {
            let err = with_storage(bad).unwrap_err().to_string();
            assert!(err.contains("genesis.storage"), "{bad}: {err}");
        }
    }

    #[test]
    fn validation_catches_tampering() {
        let (spec, _, _) = dev();
        let mut s = spec.clone();
        s.contract.wasm.push_str("00");
        assert!(s.validate().is_err(), "code hash must cover the wasm");
        let mut s = spec.clone();
        s.validators[0].bls_pop = spec.validators[0].bls.clone();
        assert!(
            s.validate().is_err(),
            "a bad proof of possession must be refused"
        );
        let mut s = spec.clone();
        s.validators.push(s.validators[0].clone());
        assert!(s.validate().is_err(), "solo runs one validator");
        let mut s = spec;
        s.consensus.max_tx_bytes = 10;
        assert!(s.validate().is_err());
        assert!(ChainSpec::from_json("{").is_err());
    }

    #[test]
    fn local_writes_keys() {
        let dir = tempfile::tempdir().unwrap();
        let (spec, keys) = local(4, EngineKind::Pbft, 40000, dir.path()).unwrap();
        assert_eq!(spec.validators.len(), 4);
        for (v, p) in spec.validators.iter().zip(&keys.validators) {
            let (ed, _) = ValidatorKeyFile::read(p).unwrap().keys().unwrap();
            assert_eq!(ed.public(), v.ed25519);
        }
        assert_eq!(
            KeyFile::read(&keys.operator).unwrap().public(),
            spec.operators[0]
        );
    }

    #[test]
    fn local_timeouts_grow_past_32_validators() {
        let dir = tempfile::tempdir().unwrap();
        let timeouts = |n: u16| {
            let ports: Vec<u16> = (0..n).map(|i| 41000 + i).collect();
            let (spec, _) = local_at(EngineKind::Pbft, &ports, dir.path()).unwrap();
            spec.validate().unwrap();
            (
                spec.consensus.round_timeout_ms,
                spec.consensus.view_change_timeout_ms,
            )
        };
        assert_eq!(timeouts(4), (2_000, 4_000));
        assert_eq!(timeouts(32), (2_000, 4_000));
        assert_eq!(timeouts(64), (3_840, 7_680));
    }

    #[test]
    fn threshold_keys_are_dealt_for_linear_and_sbft() {
        let dir = tempfile::tempdir().unwrap();
        let (spec, keys) = local(4, EngineKind::Sbft, 40100, dir.path()).unwrap();
        let set = spec.validator_set().unwrap();
        let t = set.threshold.as_ref().unwrap();
        assert_eq!(t.slow.threshold, 3);
        assert_eq!(t.fast.as_ref().unwrap().threshold, 4);
        // Every validator's shares match the published share keys, and a quorum of them
        // signs for the group key.
        let msg = b"block";
        let mut shares = Vec::new();
        for (i, p) in keys.validators.iter().enumerate() {
            let s = ValidatorKeyFile::read(p).unwrap().secrets().unwrap();
            let slow = s.slow_share.unwrap();
            assert_eq!(slow.public(), t.slow.share_keys[i]);
            assert!(s.fast_share.is_some());
            shares.push((i as u32, slow.sign(msg)));
        }
        let combined = t.slow.combine(msg, &shares[1..]).unwrap();
        t.slow.verify(msg, &combined.signature).unwrap();
        // Tampering with a share key, or a missing key set, is refused.
        let mut bad = spec.clone();
        let th = bad.threshold.as_mut().unwrap();
        th.slow.share_keys.swap(0, 1);
        assert!(bad.validate().is_err());
        let mut bad = spec.clone();
        bad.threshold.as_mut().unwrap().fast = None;
        assert!(bad.validate().is_err(), "sbft needs the fast key");
        let (pbft, _) = local(4, EngineKind::Pbft, 40200, dir.path()).unwrap();
        assert!(pbft.threshold.is_none());
        for engine in [EngineKind::Pbft, EngineKind::Linear, EngineKind::Sbft] {
            let (spec, _, _) = dev_with_engine(engine).unwrap();
            spec.validate().unwrap();
            let secrets = dev_validator_secrets(engine).unwrap();
            assert_eq!(secrets.slow_share.is_some(), engine != EngineKind::Pbft);
        }
    }
}
