//! Contract upgrades against real wasmtime: the market contract (version 1) upgraded to the
//! fixtures built from the same source (`contracts/market/fixtures/`).

use v2v_abi::{DEPLOY_METHOD, DeployContract, MarketCall};
use v2v_chain_spec::{ChainSpec, dev};
use v2v_primitives::{Hash, Keypair, SignedTransaction, UnsignedTransaction};
use v2v_storage::{RocksStore, Store};

use crate::tests::{hostile_spec, raw_tx, run_block, tx};
use crate::{Executor, UpgradeOutcome, runtime_for};

const V2: &[u8] = include_bytes!("../../../contracts/market/fixtures/v2v_market_v2.wasm");
const V2_FAILING: &[u8] =
    include_bytes!("../../../contracts/market/fixtures/v2v_market_v2_failing_migration.wasm");

fn deploy_tx(
    key: &Keypair,
    chain: Hash,
    nonce: u64,
    wasm: &[u8],
    at: Option<u64>,
) -> SignedTransaction {
    UnsignedTransaction {
        chain_id: chain,
        signer: key.public(),
        nonce,
        method: DEPLOY_METHOD.into(),
        args: DeployContract {
            wasm: wasm.to_vec(),
            activate_at: at,
        }
        .encode(),
        memo: vec![],
    }
    .sign(key)
}

fn register(key: &Keypair, chain: Hash, nonce: u64, id: &str) -> SignedTransaction {
    let call = MarketCall::Register {
        client_id: id.into(),
    };
    tx(key, chain, nonce, &call)
}

struct Chain {
    spec: ChainSpec,
    id: Hash,
    store: RocksStore,
    exec: Executor,
    _dir: tempfile::TempDir,
}

fn chain() -> Chain {
    let (spec, _, _) = dev();
    let dir = tempfile::tempdir().unwrap();
    let store = RocksStore::open(dir.path()).unwrap();
    let exec = Executor::open(&spec, runtime_for(&spec).unwrap(), &store).unwrap();
    let id = store.hash_at(0).unwrap().unwrap();
    Chain {
        spec,
        id,
        store,
        exec,
        _dir: dir,
    }
}

impl Chain {
    fn block(&mut self, txs: Vec<SignedTransaction>) -> Vec<(bool, Option<String>)> {
        run_block(&mut self.exec, &self.store, txs)
    }

    fn version(&mut self) -> serde_json::Value {
        self.exec.query("version", "null", 0).unwrap()
    }

    fn height(&self) -> u64 {
        self.store.head().unwrap().unwrap().0
    }
}

fn operator() -> Keypair {
    Keypair::from_name("operator")
}

#[test]
fn an_operator_upgrade_activates_at_its_height_runs_its_migration_once_and_survives_a_restart() {
    let mut c = chain();
    let op = operator();
    let v1_hash = c.exec.contract_status().active.code_hash;
    assert_eq!(c.exec.contract_status().active.version, 1);

    // Deployed in block 1, to take over at block 3.
    let r = c.block(vec![deploy_tx(&op, c.id, 0, V2, Some(3))]);
    assert_eq!(r, vec![(true, None)]);
    let status = c.exec.contract_status();
    let pending = status.pending.clone().expect("pending upgrade");
    assert_eq!(
        (pending.version, pending.activate_at, pending.deployed_at),
        (2, 3, 1)
    );
    assert_eq!(pending.code_hash.0, *blake3::hash(V2).as_bytes());
    assert_eq!(status.active.code_hash, v1_hash);

    // Block 2 still runs version 1: the `migration` query does not exist there.
    let alice = Keypair::from_name("erin");
    assert_eq!(
        c.block(vec![register(&alice, c.id, 0, "erin")]),
        vec![(true, None)]
    );
    assert_eq!(c.version(), 1);
    assert!(c.exec.query("migration", "null", 0).is_err());

    // Block 3: the new code is in force before the block's first transaction.
    let bob = Keypair::from_name("frank");
    assert_eq!(
        c.block(vec![register(&bob, c.id, 0, "frank")]),
        vec![(true, None)]
    );
    assert_eq!(c.version(), 2);
    assert_eq!(
        c.exec.query("migration", "null", 0).unwrap(),
        serde_json::json!({"from": 1, "atHeight": 3})
    );
    let status = c.exec.contract_status();
    assert_eq!(status.pending, None);
    assert_eq!((status.active.version, status.active.activated_at), (2, 3));
    assert_eq!(status.history.len(), 1);
    assert_eq!(status.history[0].outcome, UpgradeOutcome::Activated);
    assert_eq!(status.history[0].previous_version, 1);

    // The migration ran once: later blocks leave its record alone.
    c.block(vec![]);
    assert_eq!(c.exec.query("migration", "null", 0).unwrap()["atHeight"], 3);

    // A restart loads the upgraded code from the stored state.
    let root = c.exec.state().root();
    let mut reopened = Executor::open(&c.spec, runtime_for(&c.spec).unwrap(), &c.store).unwrap();
    assert_eq!(reopened.state().root(), root);
    assert_eq!(reopened.query("version", "null", 0).unwrap(), 2);
    assert_eq!(reopened.contract_status(), c.exec.contract_status());
    assert_eq!(c.height(), 4);
}

#[test]
fn the_default_activation_is_the_next_block_and_a_replica_reaches_the_same_roots() {
    let mut c = chain();
    let (spec, _, _) = dev();
    let other_store = v2v_storage::MemStore::new();
    let mut other = Executor::open(&spec, runtime_for(&spec).unwrap(), &other_store).unwrap();
    let op = operator();
    let blocks = vec![
        vec![deploy_tx(&op, c.id, 0, V2, None)],
        vec![register(&Keypair::from_name("erin"), c.id, 0, "erin")],
    ];
    for txs in blocks {
        let header = crate::tests::header_after(&c.exec, &c.store);
        let executed = c
            .exec
            .execute(
                header,
                txs.clone(),
                crate::Mode::Build,
                crate::tests::LIMITS,
            )
            .unwrap();
        c.store
            .commit(&c.exec.commit_record(&executed, vec![]))
            .unwrap();
        // The other replica verifies the block: same code, same roots.
        let verified = other
            .execute(
                executed.block.header.clone(),
                executed.block.txs.clone(),
                crate::Mode::Verify,
                crate::tests::LIMITS,
            )
            .unwrap();
        other_store
            .commit(&other.commit_record(&verified, vec![]))
            .unwrap();
    }
    assert_eq!(c.exec.contract_status().active.activated_at, 2);
    assert_eq!(other.contract_status(), c.exec.contract_status());
    assert_eq!(other.query("version", "null", 0).unwrap(), 2);
}

#[test]
fn bad_deployments_are_refused_with_clear_errors_and_change_nothing_but_nonces() {
    let mut c = chain();
    let op = operator();
    let before = c.exec.contract_status();
    let contract_state = |c: &Chain| c.exec.state().contract.clone();
    let state0 = contract_state(&c);
    let mut malformed = deploy_tx(&op, c.id, 0, V2, None).tx;
    malformed.args.truncate(10);
    let cases: Vec<(SignedTransaction, &str)> = vec![
        (
            deploy_tx(&Keypair::from_name("alice"), c.id, 0, V2, None),
            "only an operator may deploy contract code",
        ),
        (
            deploy_tx(&op, c.id, 0, b"\0asm garbage", None),
            "invalid contract code: contract code does not compile",
        ),
        (
            deploy_tx(&op, c.id, 1, &c.spec.wasm().unwrap(), None),
            "declares version 1, which is not greater than the version in force (1)",
        ),
        (
            deploy_tx(&op, c.id, 2, V2_FAILING, None),
            "the new code's migration fails on the current state: migration failed: this build refuses every migration",
        ),
        (
            deploy_tx(&op, c.id, 3, V2, Some(5)),
            "activation height 5 is not above the deploying block (5)",
        ),
        (
            UnsignedTransaction {
                nonce: 4,
                ..malformed
            }
            .sign(&op),
            "malformed deployment",
        ),
        (
            raw_tx(&op, c.id, 5, "system.selfDestruct"),
            "unknown system method 'system.selfDestruct'",
        ),
    ];
    // The mempool's check gives the same reasons before anything is executed.
    for (tx, why) in &cases {
        if tx.tx.method == DEPLOY_METHOD {
            let err = c.exec.validate_deploy(tx, 5).unwrap_err();
            assert!(err.contains(why), "{err} / {why}");
        }
    }
    // One block each (a block holds at most a few deployments' worth of bytes).
    for (tx, why) in &cases {
        let r = c.block(vec![tx.clone()]);
        assert_eq!(r.len(), 1);
        assert!(!r[0].0);
        let err = r[0].1.clone().unwrap_or_default();
        assert!(err.contains(why), "{err} / {why}");
    }
    assert_eq!(c.exec.contract_status(), before);
    assert_eq!(contract_state(&c), state0);
    assert_eq!(c.exec.state().next_nonce(&op.public()), 6);

    // A second deployment while one is pending is refused too.
    assert_eq!(
        c.block(vec![deploy_tx(&op, c.id, 6, V2, Some(10))]),
        vec![(true, None)]
    );
    let r = c.block(vec![deploy_tx(&op, c.id, 7, V2, Some(12))]);
    let err = r[0].1.clone().unwrap_or_default();
    assert!(
        err.contains("already waiting to activate at height 10"),
        "{err}"
    );
}

#[test]
fn a_migration_that_fails_at_activation_leaves_the_old_code_in_force() {
    let mut c = chain();
    // Staged directly (the deployment's trial run would refuse it): it fails only at activation.
    let next = c.height() + 1;
    assert_eq!(c.exec.stage_upgrade(V2_FAILING.to_vec(), next).unwrap(), 2);
    let r = c.block(vec![register(&Keypair::from_name("erin"), c.id, 0, "erin")]);
    assert_eq!(
        r,
        vec![(true, None)],
        "the block's transactions run on the old code"
    );
    assert_eq!(c.version(), 1);
    let status = c.exec.contract_status();
    assert_eq!(status.active.version, 1);
    assert_eq!(status.pending, None);
    assert_eq!(status.history.len(), 1);
    assert_eq!(status.history[0].outcome, UpgradeOutcome::Failed);
    let err = status.history[0].error.clone().unwrap_or_default();
    assert!(err.contains("this build refuses every migration"), "{err}");
    // No trace of the failed code is left but its history entry.
    assert!(!c.exec.state().contract.contains_key(&b":pending/code"[..]));
    assert!(!c.exec.state().contract.contains_key(&b":code"[..]));
    assert_eq!(c.block(vec![]), vec![]);
}

#[test]
fn a_memo_transaction_changes_only_the_nonce() {
    let mut c = chain();
    let k = Keypair::from_name("anyone");
    let state0 = c.exec.state().contract.clone();
    let mut memo = raw_tx(&k, c.id, 0, v2v_abi::MEMO_METHOD).tx;
    memo.memo = vec![7; 512];
    let mut with_args = memo.clone();
    with_args.nonce = 1;
    with_args.args = vec![1];
    let r = c.block(vec![memo.sign(&k), with_args.sign(&k)]);
    assert_eq!(r[0], (true, None));
    assert!(
        r[1].1
            .clone()
            .unwrap_or_default()
            .contains("takes no arguments")
    );
    assert_eq!(c.exec.state().contract, state0);
    assert_eq!(c.exec.state().next_nonce(&k.public()), 2);
}

#[test]
fn a_contract_cannot_touch_the_nodes_keys() {
    let spec = hostile_spec();
    let dir = tempfile::tempdir().unwrap();
    let store = RocksStore::open(dir.path()).unwrap();
    let mut exec = Executor::open(&spec, runtime_for(&spec).unwrap(), &store).unwrap();
    let chain = store.hash_at(0).unwrap().unwrap();
    let k = Keypair::from_name("mallory");
    // The hostile contract stores its input under its method name.
    let r = run_block(&mut exec, &store, vec![raw_tx(&k, chain, 0, ":code")]);
    let err = r[0].1.clone().unwrap_or_default();
    assert!(err.contains("belong to the node"), "{err}");
    assert!(exec.state().contract.is_empty());
}
