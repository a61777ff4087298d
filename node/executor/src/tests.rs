//! Execution against real wasmtime and the real market contract (and, for the resource
//! limits, a small hostile contract written in WAT).

use v2v_abi::MarketCall;
use v2v_chain_spec::{ChainSpec, dev};
use v2v_primitives::{Hash, Header, Keypair, SignedTransaction, UnsignedTransaction};
use v2v_storage::{MemStore, RocksStore, Store};

use crate::{BlockLimits, Executor, Mode, Skipped, runtime_for};

pub(crate) const LIMITS: BlockLimits = BlockLimits {
    max_txs: 1000,
    max_bytes: 1 << 20,
};

pub(crate) fn tx(key: &Keypair, chain: Hash, nonce: u64, call: &MarketCall) -> SignedTransaction {
    UnsignedTransaction {
        chain_id: chain,
        signer: key.public(),
        nonce,
        method: call.method().into(),
        args: call.encode_args(),
        memo: vec![],
    }
    .sign(key)
}

pub(crate) fn raw_tx(key: &Keypair, chain: Hash, nonce: u64, method: &str) -> SignedTransaction {
    UnsignedTransaction {
        chain_id: chain,
        signer: key.public(),
        nonce,
        method: method.into(),
        args: vec![],
        memo: vec![],
    }
    .sign(key)
}

pub(crate) fn header_after(exec: &Executor, store: &dyn Store) -> Header {
    let (height, hash) = store.head().unwrap().unwrap();
    let _ = exec;
    Header {
        height: height + 1,
        parent_hash: hash,
        state_root: Hash::ZERO,
        tx_root: Hash::ZERO,
        proposer: Keypair::from_name("validator/dev").public(),
        view: 0,
        timestamp: 1_000 * (height + 1),
    }
}

/// Executes and commits one block; returns its receipts' (success, error).
pub(crate) fn run_block(
    exec: &mut Executor,
    store: &dyn Store,
    txs: Vec<SignedTransaction>,
) -> Vec<(bool, Option<String>)> {
    let header = header_after(exec, store);
    let executed = exec.execute(header, txs, Mode::Build, LIMITS).unwrap();
    store
        .commit(&exec.commit_record(&executed, vec![]))
        .unwrap();
    executed
        .receipts
        .iter()
        .map(|r| (r.success, r.error.clone()))
        .collect()
}

fn workload(chain: Hash) -> Vec<Vec<SignedTransaction>> {
    let dave = Keypair::from_name("dave");
    let alice = Keypair::from_name("alice");
    vec![
        vec![
            tx(
                &dave,
                chain,
                0,
                &MarketCall::Register {
                    client_id: "dave".into(),
                },
            ),
            tx(&dave, chain, 1, &MarketCall::Deposit { amount: 5_000_000 }),
        ],
        vec![
            tx(&dave, chain, 2, &MarketCall::Withdraw { amount: 9_000_000 }),
            tx(
                &alice,
                chain,
                0,
                &MarketCall::Withdraw { amount: 1_000_000 },
            ),
            tx(&dave, chain, 3, &MarketCall::Withdraw { amount: 1_000_000 }),
        ],
    ]
}

fn genesis_hash(spec: &ChainSpec) -> Hash {
    let (_, g) = Executor::genesis(spec, runtime_for(spec).unwrap()).unwrap();
    g.hash()
}

#[test]
fn same_transactions_give_the_same_root_twice_and_on_two_stores() {
    let (spec, _, _) = dev();
    let chain = genesis_hash(&spec);
    let mem = MemStore::new();
    let dir = tempfile::tempdir().unwrap();
    let rocks = RocksStore::open(dir.path()).unwrap();
    let mut roots = Vec::new();
    for store in [&mem as &dyn Store, &rocks as &dyn Store] {
        let mut exec = Executor::open(&spec, runtime_for(&spec).unwrap(), store).unwrap();
        let mut receipts = Vec::new();
        for block in workload(chain) {
            receipts.push(run_block(&mut exec, store, block));
        }
        assert_eq!(receipts[0], vec![(true, None), (true, None)]);
        assert!(!receipts[1][0].0, "over-withdrawal fails");
        assert!(
            receipts[1][0]
                .1
                .as_deref()
                .unwrap()
                .contains("insufficient funds"),
            "{:?}",
            receipts[1][0]
        );
        assert_eq!(receipts[1][1], (true, None));
        assert_eq!(receipts[1][2], (true, None));
        let acct = exec.query("account", r#"{"clientId":"dave"}"#, 2).unwrap();
        assert_eq!(acct["balance"], "4000000");
        roots.push((exec.state().root(), store.head().unwrap().unwrap()));
    }
    assert_eq!(
        roots[0], roots[1],
        "both stores reach the same state root and head"
    );

    // Reopening the RocksDB store resumes with the same state.
    drop(rocks);
    let rocks = RocksStore::open(dir.path()).unwrap();
    let exec = Executor::open(&spec, runtime_for(&spec).unwrap(), &rocks).unwrap();
    assert_eq!(exec.state().root(), roots[0].0);
    assert_eq!(
        exec.state()
            .next_nonce(&Keypair::from_name("dave").public()),
        4
    );
}

#[test]
fn a_failed_transaction_changes_only_the_nonce() {
    let (spec, _, _) = dev();
    let chain = genesis_hash(&spec);
    let store = MemStore::new();
    let mut exec = Executor::open(&spec, runtime_for(&spec).unwrap(), &store).unwrap();
    let alice = Keypair::from_name("alice");
    let before = exec.state().contract.clone();
    let r = run_block(
        &mut exec,
        &store,
        vec![
            tx(&alice, chain, 0, &MarketCall::Withdraw { amount: u64::MAX }),
            raw_tx(&alice, chain, 1, "noSuchMethod"),
        ],
    );
    assert!(!r[0].0 && !r[1].0);
    assert!(
        r[1].1.as_deref().unwrap().contains("unknown method"),
        "{r:?}"
    );
    assert_eq!(exec.state().contract, before);
    assert_eq!(exec.state().next_nonce(&alice.public()), 2);
}

#[test]
fn build_mode_skips_bad_nonces_and_verify_mode_rejects_them() {
    let (spec, _, _) = dev();
    let chain = genesis_hash(&spec);
    let store = MemStore::new();
    let mut exec = Executor::open(&spec, runtime_for(&spec).unwrap(), &store).unwrap();
    let alice = Keypair::from_name("alice");
    let stale = tx(&alice, chain, 0, &MarketCall::Deposit { amount: 1 });
    run_block(&mut exec, &store, vec![stale.clone()]);
    let future = tx(&alice, chain, 5, &MarketCall::Deposit { amount: 1 });
    let header = header_after(&exec, &store);
    let root_before = exec.state().root();
    let executed = exec
        .execute(
            header.clone(),
            vec![stale.clone(), future.clone()],
            Mode::Build,
            LIMITS,
        )
        .unwrap();
    assert!(executed.block.txs.is_empty());
    assert_eq!(
        executed.skipped,
        vec![Skipped::Stale(stale.hash()), Skipped::Future(future.hash())]
    );
    assert!(
        exec.execute(header, vec![stale], Mode::Verify, LIMITS)
            .is_err()
    );
    assert_eq!(
        exec.state().root(),
        root_before,
        "a rejected block leaves no trace"
    );
}

#[test]
fn another_replica_verifies_the_block_and_revert_restores_the_state() {
    let (spec, _, _) = dev();
    let chain = genesis_hash(&spec);
    let (a_store, b_store) = (MemStore::new(), MemStore::new());
    let mut a = Executor::open(&spec, runtime_for(&spec).unwrap(), &a_store).unwrap();
    let mut b = Executor::open(&spec, runtime_for(&spec).unwrap(), &b_store).unwrap();
    let txs = workload(chain).concat();
    let built = a
        .execute(header_after(&a, &a_store), txs.clone(), Mode::Build, LIMITS)
        .unwrap();
    let root_before = b.state().root();
    let verified = b
        .execute(
            built.block.header.clone(),
            built.block.txs.clone(),
            Mode::Verify,
            LIMITS,
        )
        .unwrap();
    assert_eq!(verified.receipts, built.receipts);
    assert_eq!(b.state().root(), a.state().root());
    b.revert(verified);
    assert_eq!(b.state().root(), root_before);
    assert_eq!(b.state().recompute_accumulator().root(), root_before);

    let mut forged = built.block.header.clone();
    forged.state_root = Hash([1; 32]);
    assert!(
        b.execute(forged, built.block.txs.clone(), Mode::Verify, LIMITS)
            .is_err()
    );
    assert_eq!(b.state().root(), root_before);
}

#[test]
fn dry_run_leaves_the_state_and_apply_installs_the_record() {
    let (spec, _, _) = dev();
    let chain = genesis_hash(&spec);
    let (a_store, b_store) = (MemStore::new(), MemStore::new());
    let mut a = Executor::open(&spec, runtime_for(&spec).unwrap(), &a_store).unwrap();
    let mut b = Executor::open(&spec, runtime_for(&spec).unwrap(), &b_store).unwrap();
    for txs in workload(chain) {
        let before = b.state().root();
        let (record, skipped) = b
            .dry_run(header_after(&b, &b_store), txs.clone(), Mode::Build, LIMITS)
            .unwrap();
        assert!(skipped.is_empty());
        assert_eq!(b.state().root(), before, "a dry run changes nothing");
        // The reference: execute and keep the state.
        let executed = a
            .execute(header_after(&a, &a_store), txs, Mode::Build, LIMITS)
            .unwrap();
        assert_eq!(record, a.commit_record(&executed, vec![]));
        a_store.commit(&a.commit_record(&executed, vec![])).unwrap();
        b.apply(&record).unwrap();
        b_store.commit(&record).unwrap();
        assert_eq!(b.state().root(), a.state().root());
        assert_eq!(b.state().root(), record.block.header.state_root);
        assert_eq!(b.state().recompute_accumulator().root(), b.state().root());
    }
    // A record whose accumulator does not match its header is refused, and changes nothing.
    let (mut record, _) = b
        .dry_run(header_after(&b, &b_store), vec![], Mode::Build, LIMITS)
        .unwrap();
    record.block.header.state_root = Hash([7; 32]);
    let before = b.state().root();
    assert!(b.apply(&record).is_err());
    assert_eq!(b.state().root(), before);
}

#[test]
fn a_snapshot_replaces_the_state_and_the_store_reopens_on_it() {
    let (spec, _, _) = dev();
    let chain = genesis_hash(&spec);
    let dir = tempfile::tempdir().unwrap();
    let (a_store, b_store) = (MemStore::new(), RocksStore::open(dir.path()).unwrap());
    let mut a = Executor::open(&spec, runtime_for(&spec).unwrap(), &a_store).unwrap();
    let mut b = Executor::open(&spec, runtime_for(&spec).unwrap(), &b_store).unwrap();
    // B has the first block; A goes on for more.
    let blocks = workload(chain);
    run_block(&mut b, &b_store, blocks[0].clone());
    for txs in blocks {
        run_block(&mut a, &a_store, txs);
    }
    for _ in 0..3 {
        run_block(&mut a, &a_store, vec![]);
    }
    let (head, hash) = a_store.head().unwrap().unwrap();
    let block = a_store.block(&hash).unwrap().unwrap();
    let state = a.state().clone();

    // A tampered snapshot does not hash to the block's root.
    let mut bad = state.contract.clone();
    if let Some((k, v)) = state.contract.iter().next() {
        bad.insert(k.to_vec(), [v, &[1]].concat());
    }
    assert!(
        b.snapshot_record(block.clone(), vec![9], bad, state.nonces.clone())
            .is_err()
    );

    let record = b
        .snapshot_record(block, vec![9], state.contract.clone(), state.nonces.clone())
        .unwrap();
    b_store.install_snapshot(&record).unwrap();
    b.apply(&record).unwrap();
    assert_eq!(b.state().root(), a.state().root());
    assert_eq!(b_store.head().unwrap(), Some((head, hash)));
    assert_eq!(b_store.history_base().unwrap(), head);
    assert_eq!(b_store.certificate(&hash).unwrap(), Some(vec![9]));
    // A snapshot at or below the head is refused.
    assert!(b_store.install_snapshot(&record).is_err());
    // The chain goes on from the snapshot, and the store reopens on it.
    run_block(&mut b, &b_store, vec![]);
    drop(b);
    let reopened = Executor::open(&spec, runtime_for(&spec).unwrap(), &b_store).unwrap();
    assert_eq!(
        reopened.state().root(),
        b_store
            .block_at(head + 1)
            .unwrap()
            .unwrap()
            .header
            .state_root
    );
}

/// A contract that loops forever on `loop`, grows memory until refused on `bomb`, and
/// otherwise stores its input under its method name.
const HOSTILE_WAT: &str = r#"
(module
  (import "v2v" "input_len" (func $input_len (result i32)))
  (import "v2v" "input_read" (func $input_read (param i32)))
  (import "v2v" "storage_set" (func $set (param i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (func (export "v2v_version") (result i32) i32.const 1)
  (func (export "v2v_init") (result i32) i32.const 0)
  (func (export "v2v_query") (result i32) i32.const 0)
  (func (export "v2v_call") (result i32)
    (call $input_read (i32.const 0))
    (if (i32.eq (i32.load8_u (i32.const 4)) (i32.const 108))
      (then (loop $spin (br $spin))))
    (if (i32.eq (i32.load8_u (i32.const 4)) (i32.const 98))
      (then
        (loop $grow (br_if $grow (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
        unreachable))
    (call $set (i32.const 4) (i32.load (i32.const 0)) (i32.const 0) (call $input_len))
    i32.const 0))
"#;

pub(crate) fn hostile_spec() -> ChainSpec {
    let (mut spec, _, _) = dev();
    let wasm = wat::parse_str(HOSTILE_WAT).unwrap();
    spec.contract.code_hash = format!("0x{}", hex_encode(blake3::hash(&wasm).as_bytes()));
    spec.contract.wasm = format!("0x{}", hex_encode(&wasm));
    spec.execution.fuel_per_tx = 2_000_000;
    spec.execution.memory_limit_bytes = 8 * 1024 * 1024;
    spec
}

fn hex_encode(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn out_of_fuel_and_memory_bomb_fail_their_transaction_and_the_chain_goes_on() {
    let spec = hostile_spec();
    let chain = genesis_hash(&spec);
    let dir = tempfile::tempdir().unwrap();
    let store = RocksStore::open(dir.path()).unwrap();
    let mut exec = Executor::open(&spec, runtime_for(&spec).unwrap(), &store).unwrap();
    let k = Keypair::from_name("mallory");
    let r = run_block(
        &mut exec,
        &store,
        vec![raw_tx(&k, chain, 0, "loop"), raw_tx(&k, chain, 1, "bomb")],
    );
    assert_eq!(r[0], (false, Some("out of fuel (limit 2000000)".into())));
    assert_eq!(
        r[1],
        (false, Some("memory limit of 8388608 bytes exceeded".into()))
    );
    assert!(exec.state().contract.is_empty());
    // The next blocks execute normally.
    let r = run_block(&mut exec, &store, vec![raw_tx(&k, chain, 2, "store")]);
    assert_eq!(r, vec![(true, None)]);
    assert_eq!(exec.state().contract.len(), 1);
    let r = run_block(&mut exec, &store, vec![raw_tx(&k, chain, 3, "loop")]);
    assert!(!r[0].0);
    assert_eq!(store.head().unwrap().unwrap().0, 3);
}

#[test]
fn a_database_of_another_chain_is_refused() {
    let (spec, _, _) = dev();
    let store = MemStore::new();
    Executor::open(&spec, runtime_for(&spec).unwrap(), &store).unwrap();
    let mut other = spec.clone();
    other.genesis.market.fee_rate += 1;
    let err = Executor::open(&other, runtime_for(&other).unwrap(), &store).unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");
}

#[test]
fn genesis_storage_goes_over_init_and_into_the_root() {
    let (spec, _, _) = dev();
    let (plain, g0) = Executor::genesis(&spec, runtime_for(&spec).unwrap()).unwrap();
    let (key, value) = plain.state().contract.iter().next().unwrap();
    let mut filled = spec.clone();
    filled.genesis.storage.insert(b"bench".to_vec(), vec![1, 2]);
    // A key init wrote is overwritten, not written twice.
    filled.genesis.storage.insert(key.to_vec(), vec![7]);
    let (exec, g1) = Executor::genesis(&filled, runtime_for(&filled).unwrap()).unwrap();
    let state = &exec.state().contract;
    assert_eq!(state.get(b"bench"), Some(&[1u8, 2][..]));
    assert_eq!(state.get(key), Some(&[7u8][..]));
    assert_ne!(state.get(key), Some(value));
    assert_eq!(state.len(), plain.state().contract.len() + 1);
    assert_eq!(exec.state().recompute_accumulator().root(), g1.state_root);
    assert_ne!(g0.state_root, g1.state_root);
    assert_ne!(g0.hash(), g1.hash());
    // The same spec gives the same genesis; it survives a store round trip.
    let store = MemStore::new();
    Executor::open(&filled, runtime_for(&filled).unwrap(), &store).unwrap();
    let again = Executor::open(&filled, runtime_for(&filled).unwrap(), &store).unwrap();
    assert_eq!(again.state().contract, *state);

    // Reserved or empty keys are refused (malformed hex does not parse: see the spec's
    // tests).
    for k in [&b":code"[..], b""] {
        let mut bad = spec.clone();
        bad.genesis.storage.insert(k.to_vec(), vec![0]);
        let err = Executor::genesis(&bad, runtime_for(&bad).unwrap()).unwrap_err();
        assert!(err.to_string().contains("genesis.storage"), "{k:?}: {err}");
    }
}

#[test]
fn the_spec_hash_covers_the_spec_without_wasm_and_full_nodes() {
    // The definition `spec_hash` streams: the JSON of a copy with the Wasm blanked and no
    // full nodes.
    let by_copy = |spec: &ChainSpec| {
        let mut s = spec.clone();
        s.contract.wasm = String::new();
        s.full_nodes.clear();
        Hash::digest(b"v2v/spec/v1", &serde_json::to_vec(&s).unwrap())
    };
    let (solo, _, _) = dev();
    let (mut sbft, _, _) =
        v2v_chain_spec::dev_with_engine(v2v_chain_spec::EngineKind::Sbft).unwrap();
    assert!(sbft.threshold.is_some());
    sbft.genesis.storage.insert(b"bench".to_vec(), vec![1, 2]);
    sbft.full_nodes.push(v2v_chain_spec::FullNodeSpec {
        name: "explorer".into(),
        ed25519: Keypair::from_name("explorer").public(),
        address: None,
    });
    for spec in [&solo, &sbft] {
        assert_eq!(crate::spec_hash(spec), by_copy(spec));
    }
    // Full nodes and the Wasm's hex (given its code hash) do not change it; anything else does.
    let mut without = sbft.clone();
    without.full_nodes.clear();
    assert_eq!(crate::spec_hash(&without), crate::spec_hash(&sbft));
    without.genesis.storage = Default::default();
    assert_ne!(crate::spec_hash(&without), crate::spec_hash(&sbft));
}
