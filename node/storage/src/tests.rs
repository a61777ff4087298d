//! The same behaviour checked on both stores.

use v2v_primitives::{Block, Hash, Header, Keypair, Receipt, UnsignedTransaction, tx_root};

use std::collections::BTreeMap;

use crate::{BlockCommit, MemStore, Result, RocksStore, Store, StoreError, TxLocation};

fn commit_at(height: u64, parent: Hash, key: &Keypair) -> BlockCommit {
    let tx = UnsignedTransaction {
        chain_id: Hash([7; 32]),
        signer: key.public(),
        nonce: height,
        method: "deposit".into(),
        args: height.to_le_bytes().to_vec(),
        memo: vec![],
    }
    .sign(key);
    let txs = if height == 0 { vec![] } else { vec![tx] };
    let header = Header {
        height,
        parent_hash: parent,
        state_root: Hash([height as u8; 32]),
        tx_root: tx_root(txs.iter().map(|t| t.hash())),
        proposer: key.public(),
        view: 0,
        timestamp: 1000 + height,
    };
    let receipts = txs
        .iter()
        .map(|_| Receipt {
            success: true,
            error: None,
            events: vec![format!("{{\"h\":{height}}}")],
            fuel_used: 5,
        })
        .collect();
    BlockCommit {
        block: Block { header, txs },
        certificate: vec![height as u8; 3],
        receipts,
        contract_writes: vec![
            (format!("k{height}").into_bytes(), Some(vec![height as u8])),
            (format!("k{}", height.wrapping_sub(1)).into_bytes(), None),
        ],
        nonce_writes: vec![(key.public(), height + 1)],
        accumulator: vec![height as u8; 8],
    }
}

fn round_trip(store: &dyn Store) {
    let key = Keypair::from_name("store");
    assert_eq!(store.head().unwrap(), None);
    let g = commit_at(0, Hash::ZERO, &key);
    store.commit(&g).unwrap();
    let c1 = commit_at(1, g.block.hash(), &key);
    store.commit(&c1).unwrap();
    let c2 = commit_at(2, c1.block.hash(), &key);
    store.commit(&c2).unwrap();

    assert_eq!(store.head().unwrap(), Some((2, c2.block.hash())));
    assert_eq!(store.block_at(1).unwrap().as_ref(), Some(&c1.block));
    assert_eq!(
        store.block(&c2.block.hash()).unwrap().as_ref(),
        Some(&c2.block)
    );
    assert_eq!(
        store.certificate(&c1.block.hash()).unwrap(),
        Some(vec![1, 1, 1])
    );
    let tx = c2.block.txs[0].hash();
    let loc = store.tx_location(&tx).unwrap().unwrap();
    assert_eq!(
        loc,
        TxLocation {
            height: 2,
            index: 0
        }
    );
    assert_eq!(store.receipt(loc).unwrap().as_ref(), Some(&c2.receipts[0]));
    let state = contract_state(store);
    assert_eq!(
        state.keys().cloned().collect::<Vec<_>>(),
        vec![b"k2".to_vec()]
    );
    assert_eq!(store.nonces().unwrap().get(&key.public()), Some(&3));
    assert_eq!(store.accumulator().unwrap(), Some(vec![2; 8]));
    assert_eq!(store.nonce(&key.public()).unwrap(), 3);
    assert_eq!(
        store.nonce(&Keypair::from_name("nobody").public()).unwrap(),
        0
    );
    assert_eq!(store.engine_state().unwrap(), None);
    store.save_engine_state(b"votes").unwrap();
    assert_eq!(store.engine_state().unwrap(), Some(b"votes".to_vec()));

    // A block that does not link to the head is refused and changes nothing.
    let stray = commit_at(3, Hash([9; 32]), &key);
    assert!(matches!(
        store.commit(&stray),
        Err(StoreError::NotNext { .. })
    ));
    let gap = commit_at(5, c2.block.hash(), &key);
    assert!(matches!(
        store.commit(&gap),
        Err(StoreError::NotNext { .. })
    ));
    assert_eq!(store.head().unwrap(), Some((2, c2.block.hash())));
    assert_eq!(store.hash_at(3).unwrap(), None);

    // The signer's history, newest first, paged by an exclusive cursor.
    let at = |height| TxLocation { height, index: 0 };
    let me = key.public();
    assert_eq!(store.history(&me, None, 10).unwrap(), vec![at(2), at(1)]);
    assert_eq!(store.history(&me, None, 1).unwrap(), vec![at(2)]);
    assert_eq!(store.history(&me, Some(at(2)), 10).unwrap(), vec![at(1)]);
    assert_eq!(store.history(&me, Some(at(1)), 10).unwrap(), vec![]);
    let nobody = Keypair::from_name("nobody").public();
    assert_eq!(store.history(&nobody, None, 10).unwrap(), vec![]);
    assert_eq!(store.tx_count().unwrap(), 2);
}

#[test]
fn memory_store_round_trip() {
    round_trip(&MemStore::new());
}

#[test]
fn rocks_store_round_trip_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = RocksStore::open(dir.path()).unwrap();
        round_trip(&store);
    }
    let store = RocksStore::open(dir.path()).unwrap();
    let (height, hash) = store.head().unwrap().unwrap();
    assert_eq!(height, 2);
    let head = store.block(&hash).unwrap().unwrap();
    assert_eq!(head.header.height, 2);
    let parent = store.block_at(1).unwrap().unwrap();
    assert_eq!(head.header.parent_hash, parent.hash());
}

#[test]
fn a_batch_never_written_leaves_the_previous_head_intact() {
    let dir = tempfile::tempdir().unwrap();
    let key = Keypair::from_name("store");
    let (g, c1);
    {
        let store = RocksStore::open(dir.path()).unwrap();
        g = commit_at(0, Hash::ZERO, &key);
        store.commit(&g).unwrap();
        c1 = commit_at(1, g.block.hash(), &key);
        store.commit(&c1).unwrap();
        // Block 2 is fully assembled (block, indexes, receipts, state, nonces, head) and then
        // the process "dies" before the batch is written.
        let prepared = store.prepare(&commit_at(2, c1.block.hash(), &key)).unwrap();
        drop(prepared);
    }
    let store = RocksStore::open(dir.path()).unwrap();
    assert_eq!(store.head().unwrap(), Some((1, c1.block.hash())));
    assert_eq!(store.block_at(1).unwrap(), Some(c1.block.clone()));
    assert_eq!(store.hash_at(2).unwrap(), None);
    let state = contract_state(&store);
    assert_eq!(
        state.keys().cloned().collect::<Vec<_>>(),
        vec![b"k1".to_vec()]
    );
    assert_eq!(store.nonces().unwrap().get(&key.public()), Some(&2));
    assert_eq!(store.accumulator().unwrap(), Some(vec![1; 8]));
    // And the chain goes on from there.
    store.commit(&commit_at(2, c1.block.hash(), &key)).unwrap();
    assert_eq!(store.head().unwrap().map(|h| h.0), Some(2));
}

fn preload(store: &dyn Store) {
    let key = Keypair::from_name("store");
    let entries = |n: u32, tag: u8| -> Vec<(Vec<u8>, Vec<u8>)> {
        (0..n)
            .map(|i| (i.to_be_bytes().to_vec(), vec![tag; 3]))
            .collect()
    };
    // An attempt that "crashed" before its genesis commit left 10 000 entries (more than one
    // batch); the next attempt replaces them all.
    let first = entries(10_000, 1);
    store
        .preload_state(&mut first.iter().map(|(k, v)| (&k[..], &v[..])))
        .unwrap();
    let second = entries(5_000, 2);
    store
        .preload_state(&mut second.iter().map(|(k, v)| (&k[..], &v[..])))
        .unwrap();
    let mut g = commit_at(0, Hash::ZERO, &key);
    g.contract_writes.clear();
    store.commit(&g).unwrap();
    let state = contract_state(store);
    assert_eq!(state.len(), 5_000);
    assert!(state.values().all(|v| v == &vec![2u8; 3]));
    // A store with a chain refuses.
    let err = store
        .preload_state(&mut second.iter().map(|(k, v)| (&k[..], &v[..])))
        .unwrap_err();
    assert!(matches!(err, StoreError::NotEmpty(0)), "{err}");
    assert_eq!(contract_state(store).len(), 5_000);
}

#[test]
fn preloaded_state_replaces_any_earlier_attempt_and_only_before_genesis() {
    preload(&MemStore::new());
    let dir = tempfile::tempdir().unwrap();
    preload(&RocksStore::open(dir.path()).unwrap());
}

/// The store's contract state as a map.
fn contract_state(store: &dyn Store) -> BTreeMap<Vec<u8>, Vec<u8>> {
    store
        .contract_entries()
        .map(|e| e.map(|(k, v)| (k.into_vec(), v.into_vec())))
        .collect::<Result<_>>()
        .unwrap()
}
