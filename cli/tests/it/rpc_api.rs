//! The wallet and explorer API over real sockets on `v2v dev`: transaction lifecycle and
//! trade subscriptions over WebSocket, the system, state and explorer reads, and paging.

use std::time::Duration;

use serde_json::json;
use v2v_abi::MarketCall;
use v2v_primitives::{Hash, Keypair};
use v2v_rpc_client::jsonrpsee::core::client::Subscription;
use v2v_rpc_client::jsonrpsee::ws_client::{WsClient, WsClientBuilder};
use v2v_rpc_client::{
    AuthorApiClient, ExplorerApiClient, MarketApiClient, StateApiClient, SystemApiClient,
    TradeEvent, TxStatus, codes,
};

use v2v_chain_spec::ChainSpec;
use v2v_rpc_client::jsonrpsee::core::ClientError;

use crate::support::{DevNode, NodeProcess, client, hex, signed};

fn tx(key: &Keypair, chain: Hash, nonce: u64, call: &MarketCall) -> String {
    hex(&signed(key, chain, nonce, call, 0))
}

fn unhex(s: &str) -> Vec<u8> {
    (2..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

async fn next<T: serde::de::DeserializeOwned>(sub: &mut Subscription<T>, what: &str) -> T {
    tokio::time::timeout(Duration::from_secs(20), sub.next())
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within 20 s"))
        .unwrap_or_else(|| panic!("{what}: subscription closed"))
        .unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// Submits through `author_submitAndWatchTransaction` and checks the whole lifecycle;
/// returns (hash, height, receipt).
async fn watch_ok(
    ws: &WsClient,
    hex: String,
    what: &str,
) -> (Hash, u64, v2v_rpc_client::ReceiptJson) {
    let mut sub = ws.submit_and_watch_transaction(hex).await.unwrap();
    let TxStatus::Accepted { hash } = next(&mut sub, what).await else {
        panic!("{what}: the first event is not accepted");
    };
    let TxStatus::Included { height, index } = next(&mut sub, what).await else {
        panic!("{what}: the second event is not included");
    };
    let TxStatus::Finalized {
        height: h2,
        index: i2,
        receipt,
    } = next(&mut sub, what).await
    else {
        panic!("{what}: the third event is not finalized");
    };
    assert_eq!((height, index), (h2, i2), "{what}");
    assert!(receipt.success, "{what}: {:?}", receipt.error);
    // The server closes the subscription after its last event.
    let end = tokio::time::timeout(Duration::from_secs(20), sub.next()).await;
    assert!(matches!(end, Ok(None)), "{what}: after finalized: {end:?}");
    (hash, height, receipt)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wallet_and_explorer_api_over_real_sockets() {
    let base = tempfile::tempdir().unwrap();
    let node = DevNode::start(base.path());
    let c = client(&node.rpc_url);
    let ws = WsClientBuilder::default()
        .request_timeout(Duration::from_secs(20))
        .build(node.rpc_url.replacen("http://", "ws://", 1))
        .await
        .unwrap();
    let chain = c.chain().await.unwrap().genesis_hash;

    // A single validator: no peers, itself connected.
    assert!(c.peers().await.unwrap().is_empty());
    let vals = c.validators().await.unwrap();
    assert_eq!(vals.len(), 1);
    assert!(vals[0].connected);
    let contract = c.get_contract().await.unwrap();
    assert_eq!(contract.version, c.chain().await.unwrap().contract_version);
    assert_eq!(contract.deployed_at, 0);
    assert_eq!(
        contract.code_hash.to_hex(),
        v2v_chain_spec::dev().0.contract.code_hash
    );

    // Trade events: everyone's, bob's, and erin's (who does not trade).
    let mut all: Subscription<TradeEvent> = ws.subscribe_trades(None).await.unwrap();
    let mut bobs = ws
        .subscribe_trades(Some(json!({ "owner": "bob" })))
        .await
        .unwrap();
    let mut erins = ws
        .subscribe_trades(Some(json!({ "owner": "erin" })))
        .await
        .unwrap();
    let bad = ws.subscribe_trades(Some(json!({ "owner": 5 }))).await;
    assert!(bad.is_err(), "a malformed filter is refused");

    let (alice, bob) = (Keypair::from_name("alice"), Keypair::from_name("bob"));
    let car = |id: &str, charge, y| MarketCall::LinkVehicle {
        vehicle_id: id.into(),
        capacity_wh: 60_000,
        charge_wh: charge,
        x: 2_000,
        y,
        efficiency_wh_per_km: 150,
        energy_price: 200,
    };
    let mut alice_txs = Vec::new();
    watch_ok(
        &ws,
        tx(&bob, chain, 0, &car("bob-car", 40_000, 0)),
        "bob links",
    )
    .await;
    alice_txs.push(
        watch_ok(
            &ws,
            tx(&alice, chain, 0, &car("alice-car", 10_000, 500)),
            "alice links",
        )
        .await
        .0,
    );
    let sell = MarketCall::Sell {
        amount_wh: 5_000,
        price: 300,
    };
    watch_ok(&ws, tx(&bob, chain, 1, &sell), "bob sells").await;
    let buy = MarketCall::Buy {
        amount_wh: 5_000,
        max_unit_cost: Some(400),
    };
    let (buy_hash, buy_height, receipt) =
        watch_ok(&ws, tx(&alice, chain, 1, &buy), "alice buys").await;
    alice_txs.push(buy_hash);
    assert!(
        receipt.events.iter().any(|e| e["type"] == "tradeMatched"),
        "{:?}",
        receipt.events
    );
    let confirm = MarketCall::Confirm { trade_id: 1 };
    // The client crate's helper: submit, then wait for the final event.
    let confirmed = v2v_rpc_client::submit_and_watch(
        &ws,
        tx(&alice, chain, 2, &confirm),
        Duration::from_secs(20),
    )
    .await
    .expect("alice confirms");
    assert!(confirmed.receipt.success, "{:?}", confirmed.receipt.error);
    alice_txs.push(confirmed.hash);

    for (sub, who) in [(&mut all, "all"), (&mut bobs, "bob")] {
        let m = next(sub, who).await;
        assert_eq!(
            (m.event.as_str(), m.trade_id, m.height),
            ("matched", Some(1), buy_height),
            "{who}"
        );
        assert_eq!(m.consumer.as_deref(), Some("alice"));
        assert_eq!(m.provider.as_deref(), Some("bob"));
        assert_eq!(m.tx_hash, Some(buy_hash));
        assert_eq!(next(sub, who).await.event, "confirmed", "{who}");
        assert_eq!(next(sub, who).await.event, "settled", "{who}");
    }
    let none = tokio::time::timeout(Duration::from_millis(500), erins.next()).await;
    assert!(none.is_err(), "erin's subscription got {none:?}");

    // A bad signature and a stale nonce: `invalid` with the error code, nothing queued.
    let mut forged = unhex(&tx(&alice, chain, 3, &MarketCall::Deposit { amount: 1 }));
    let last = forged.len() - 1;
    forged[last] ^= 1;
    let mut sub = ws.submit_and_watch_transaction(hex(&forged)).await.unwrap();
    match next(&mut sub, "forged").await {
        TxStatus::Invalid { code, .. } => assert_eq!(code, codes::TX_BAD_SIGNATURE),
        other => panic!("forged: {other:?}"),
    }
    let mut sub = ws
        .submit_and_watch_transaction(tx(&alice, chain, 0, &MarketCall::Deposit { amount: 1 }))
        .await
        .unwrap();
    match next(&mut sub, "stale").await {
        TxStatus::Invalid { code, reason } => {
            assert_eq!(code, codes::TX_STALE_NONCE, "{reason}")
        }
        other => panic!("stale: {other:?}"),
    }
    let stale = tx(&alice, chain, 0, &MarketCall::Deposit { amount: 2 });
    match v2v_rpc_client::submit_and_watch(&ws, stale, Duration::from_secs(20)).await {
        Err(v2v_rpc_client::Error::Invalid { code, .. }) => {
            assert_eq!(code, codes::TX_STALE_NONCE)
        }
        other => panic!("stale, through submit_and_watch: {other:?}"),
    }
    assert!(
        ws.submit_and_watch_transaction("0xzz".into())
            .await
            .is_err(),
        "non-hex is refused outright"
    );

    // A transaction with a nonce gap waits in the mempool.
    let gap = c
        .submit_transaction(tx(&alice, chain, 9, &MarketCall::Deposit { amount: 1 }))
        .await
        .unwrap();
    let pending = c.pending_transactions().await.unwrap();
    assert!(pending.iter().any(|t| t.hash == gap), "{pending:?}");

    // Explorer: search by height, block hash, tx hash and client id.
    let found = c.search(buy_height.to_string()).await.unwrap();
    assert_eq!(found["kind"], "block");
    assert_eq!(found["header"]["height"], buy_height);
    let block_hash = found["header"]["hash"].as_str().unwrap().to_string();
    let found = c.search(block_hash.clone()).await.unwrap();
    assert_eq!(
        (found["kind"].as_str(), found["header"]["height"].as_u64()),
        (Some("block"), Some(buy_height))
    );
    let found = c.search(buy_hash.to_hex()).await.unwrap();
    assert_eq!(found["kind"], "transaction");
    assert_eq!(found["tx"]["height"], buy_height);
    let found = c.search("alice".into()).await.unwrap();
    assert_eq!(found["kind"], "account");
    assert_eq!(found["account"]["clientId"], "alice");
    for nothing in ["nobody-here", "0x00", &format!("0x{}", "ab".repeat(32))] {
        match c.search(nothing.into()).await {
            Err(v2v_rpc_client::jsonrpsee::core::ClientError::Call(e)) => {
                assert_eq!(e.code(), codes::NOT_FOUND, "{nothing}")
            }
            other => panic!("search {nothing}: {other:?}"),
        }
    }

    let latest = c.latest_blocks(Some(3)).await.unwrap();
    assert_eq!(latest.len(), 3);
    assert!(latest[0].height >= buy_height);
    assert_eq!(latest[1].height + 1, latest[0].height);
    assert_eq!(latest[1].hash, latest[0].parent_hash);
    assert!(
        c.latest_blocks(Some(1000)).await.is_err(),
        "limit above 100"
    );

    // Alice's history, newest first, two per page: her three transactions.
    let p1 = c
        .account_history("alice".into(), None, Some(2))
        .await
        .unwrap();
    assert_eq!(p1.public_key, alice.public().to_hex());
    let hashes: Vec<Hash> = p1.items.iter().map(|t| t.tx.hash).collect();
    assert_eq!(hashes, vec![alice_txs[2], alice_txs[1]]);
    let cursor = p1.next_cursor.clone().expect("a second page");
    let p2 = c
        .account_history("alice".into(), Some(cursor), Some(2))
        .await
        .unwrap();
    let hashes: Vec<Hash> = p2.items.iter().map(|t| t.tx.hash).collect();
    assert_eq!(hashes, vec![alice_txs[0]]);
    assert_eq!(p2.next_cursor, None);
    assert!(
        c.account_history("alice".into(), Some("x".into()), None)
            .await
            .is_err()
    );

    let stats = c.stats().await.unwrap();
    assert!(stats.blocks >= buy_height);
    assert_eq!(
        stats.txs, 5,
        "two links, a sell, a buy, a confirm and nothing else"
    );
    assert_eq!(stats.trades, 1);
    assert_eq!(stats.volume_wh, "5000");
    assert!(stats.tx_per_sec_last_minute > 0.0);
    node.interrupt();
}

/// `system_chainSpec` serves the spec the node started with, genesis storage included (from
/// the copy the node writes to its base path, not from memory), and refuses with a code of
/// its own a spec over the response limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chain_spec_is_served_whole_from_the_base_path() {
    let dir = tempfile::tempdir().unwrap();
    let (spec_path, keys) = (dir.path().join("spec.json"), dir.path().join("keys"));
    let (ok, _, err) = crate::support::run(&[
        "chain-spec",
        "build",
        "--preset",
        "local",
        "--validators",
        "1",
        "--keys-dir",
        keys.to_str().unwrap(),
        "--out",
        spec_path.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let key = keys.join("validator-0.json");
    let mut spec = ChainSpec::load(&spec_path).unwrap();
    spec.genesis.storage.insert(b"bench".to_vec(), vec![1, 2]);
    spec.save(&spec_path).unwrap();
    let base = dir.path().join("node");
    let node = NodeProcess::start(&spec_path, &base, &key, 0);
    let served = client(&node.rpc_url).chain_spec().await.unwrap();
    assert_eq!(ChainSpec::from_json(served.get()).unwrap(), spec);
    assert_eq!(
        ChainSpec::load(&base.join("chain-spec.json")).unwrap(),
        spec
    );
    drop(node);

    // 18 MiB of hex in one genesis value: over the 16 MiB response limit.
    spec.genesis
        .storage
        .insert(b"big".to_vec(), vec![0xab; 9 << 20]);
    spec.save(&spec_path).unwrap();
    let node = NodeProcess::start(&spec_path, &dir.path().join("big"), &key, 0);
    let c = client(&node.rpc_url);
    let err = c.chain_spec().await.unwrap_err();
    let ClientError::Call(e) = &err else {
        panic!("{err}");
    };
    assert_eq!(e.code(), codes::RESPONSE_TOO_LARGE, "{e}");
    assert!(e.message().contains("chain-spec.json"), "{e}");
    // The node goes on serving.
    assert!(c.health().await.is_ok());
}
