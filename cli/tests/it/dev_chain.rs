//! End to end on `v2v dev`: register and deposit over JSON-RPC, bad transactions, hash links,
//! a clean Ctrl-C, and a restart on the same base path.

use std::time::{Duration, Instant};

use v2v_abi::MarketCall;
use v2v_primitives::{Hash, Keypair};
use v2v_rpc_client::jsonrpsee::core::ClientError;
use v2v_rpc_client::jsonrpsee::core::client::ClientT;
use v2v_rpc_client::jsonrpsee::http_client::HttpClient;
use v2v_rpc_client::{
    AuthorApiClient, BlockId, ChainApiClient, MarketApiClient, StateApiClient, SystemApiClient,
    TxApiClient, TxLookup, codes,
};

use crate::support::{DevNode, client, hex, signed};

async fn wait_for(c: &HttpClient, hash: Hash) -> TxLookup {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match c.get_by_hash(hash).await {
            Ok(found) => return found,
            Err(ClientError::Call(e)) if e.code() == codes::NOT_FOUND => {
                assert!(Instant::now() < deadline, "tx {hash} not finalized in 30 s");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("tx_getByHash: {e}"),
        }
    }
}

fn rejection_code(r: Result<Hash, ClientError>) -> (i32, String) {
    match r {
        Err(ClientError::Call(e)) => (e.code(), e.message().to_string()),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

/// Every block from genesis to the head links to its parent by hash.
async fn check_links(c: &HttpClient) -> u64 {
    let head = c.get_header(None).await.unwrap();
    let mut parent = c.get_header(Some(BlockId::Height(0))).await.unwrap();
    for h in 1..=head.height {
        let header = c.get_header(Some(BlockId::Height(h))).await.unwrap();
        assert_eq!(
            header.parent_hash,
            parent.hash,
            "block {h} does not link to {}",
            h - 1
        );
        assert_eq!(c.get_block_hash(h).await.unwrap(), header.hash);
        parent = header;
    }
    head.height
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_chain_end_to_end_with_restart() {
    let base = tempfile::tempdir().unwrap();
    let node = DevNode::start(base.path());
    let c = client(&node.rpc_url);

    let info = c.chain().await.unwrap();
    assert_eq!(info.engine, "solo");
    assert_eq!(info.genesis_hash.to_hex(), node.genesis_hash);
    let chain = info.genesis_hash;
    let methods = c
        .request::<serde_json::Value, _>("rpc_methods", v2v_rpc_client::jsonrpsee::rpc_params![])
        .await
        .unwrap();
    for m in [
        "system_health",
        "chain_getBlock",
        "author_submitTransaction",
        "market_getAccount",
        "chain_subscribeFinalizedHeads",
        "system_peers",
        "system_validators",
        "author_submitAndWatchTransaction",
        "author_pendingTransactions",
        "state_getContract",
        "market_subscribeTrades",
        "explorer_search",
        "explorer_latestBlocks",
        "explorer_accountHistory",
        "explorer_stats",
        "rpc_discover",
        "system_chainSpec",
    ] {
        assert!(
            methods["methods"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x == m),
            "{m} missing"
        );
    }
    // The OpenRPC document, over the wire.
    let openrpc = c
        .request::<serde_json::Value, _>("rpc_discover", v2v_rpc_client::jsonrpsee::rpc_params![])
        .await
        .unwrap();
    assert_eq!(openrpc["openrpc"], "1.2.6");
    assert!(
        openrpc["methods"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["name"] == "market_getAccount")
    );

    // Register and deposit, through the JSON-RPC client, and wait for finality.
    let key = Keypair::generate();
    let reg = signed(
        &key,
        chain,
        0,
        &MarketCall::Register {
            client_id: "erin".into(),
        },
        0,
    );
    let reg_hash = c.submit_transaction(hex(&reg)).await.unwrap();
    assert_eq!(
        c.next_nonce(key.public().to_hex()).await.unwrap(),
        1,
        "pending tx counts"
    );
    let dep = signed(
        &key,
        chain,
        1,
        &MarketCall::Deposit { amount: 12_500_000 },
        1000,
    );
    let dep_hash = c.submit_transaction(hex(&dep)).await.unwrap();
    let r1 = wait_for(&c, reg_hash).await;
    let r2 = wait_for(&c, dep_hash).await;
    assert!(r1.receipt.success && r2.receipt.success, "{r1:?} {r2:?}");
    assert_eq!(r2.tx.memo_len, 1000);
    assert_eq!(r2.receipt.events[0]["type"], "deposited");
    let acct = c.get_account("erin".into()).await.unwrap();
    assert_eq!(acct["balance"], "12500000");
    assert_eq!(acct["publicKey"], key.public().to_hex());

    // A failed transaction is recorded with its error and only moves the nonce.
    let over = signed(
        &key,
        chain,
        2,
        &MarketCall::Withdraw { amount: 99_000_000 },
        0,
    );
    let over_hash = c.submit_transaction(hex(&over)).await.unwrap();
    let r3 = wait_for(&c, over_hash).await;
    assert!(!r3.receipt.success);
    assert!(
        r3.receipt
            .error
            .as_deref()
            .unwrap()
            .contains("insufficient funds")
    );
    assert_eq!(
        c.get_account("erin".into()).await.unwrap()["balance"],
        "12500000"
    );

    // Bad transactions: each refused with its own code, nothing stored.
    let nonce_before = c.next_nonce(key.public().to_hex()).await.unwrap();
    let head_before = c.health().await.unwrap().finalized_height;
    let good = signed(
        &key,
        chain,
        nonce_before,
        &MarketCall::Deposit { amount: 1 },
        0,
    );
    let mut bad_sig = good.clone();
    let n = bad_sig.len();
    bad_sig[n - 1] ^= 0x55;
    let wrong_chain = signed(
        &key,
        Hash([9; 32]),
        nonce_before,
        &MarketCall::Deposit { amount: 1 },
        0,
    );
    let oversized = signed(
        &key,
        chain,
        nonce_before,
        &MarketCall::Deposit { amount: 1 },
        70_000,
    );
    let cases: Vec<(Result<Hash, ClientError>, i32)> = vec![
        (
            c.submit_transaction(hex(&bad_sig)).await,
            codes::TX_BAD_SIGNATURE,
        ),
        (
            c.submit_transaction(hex(&wrong_chain)).await,
            codes::TX_WRONG_CHAIN,
        ),
        (c.submit_transaction(hex(&reg)).await, codes::TX_DUPLICATE),
        (
            c.submit_transaction(hex(&signed(
                &key,
                chain,
                0,
                &MarketCall::Deposit { amount: 5 },
                0,
            )))
            .await,
            codes::TX_STALE_NONCE,
        ),
        (
            c.submit_transaction(hex(&oversized)).await,
            codes::TX_TOO_LARGE,
        ),
        (
            c.submit_transaction(hex(&good[..40])).await,
            codes::TX_UNDECODABLE,
        ),
        (
            c.submit_transaction("0xzz".into()).await,
            codes::TX_UNDECODABLE,
        ),
    ];
    let mut seen = std::collections::BTreeSet::new();
    for (result, want) in cases {
        let (code, msg) = rejection_code(result);
        assert_eq!(code, want, "{msg}");
        assert!(!msg.is_empty());
        seen.insert(code);
    }
    assert_eq!(seen.len(), 6, "distinct errors for distinct reasons");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        c.next_nonce(key.public().to_hex()).await.unwrap(),
        nonce_before
    );
    assert_eq!(
        c.get_account("erin".into()).await.unwrap()["balance"],
        "12500000"
    );
    for bad in [&bad_sig, &wrong_chain] {
        let h = v2v_primitives::SignedTransaction::decode(bad, 1 << 20)
            .unwrap()
            .hash();
        assert!(
            c.get_by_hash(h).await.is_err(),
            "a rejected tx must not be stored"
        );
    }
    let _ = head_before;

    // Queries and errors for reads.
    assert_eq!(
        c.query("params".into(), None, None).await.unwrap()["treasury"],
        "treasury"
    );
    let (code, _) = match c.get_account("nobody".into()).await {
        Err(ClientError::Call(e)) => (e.code(), e.message().to_string()),
        other => panic!("{other:?}"),
    };
    assert_eq!(code, codes::QUERY_FAILED);
    match c.get_block_hash(1_000_000).await {
        Err(ClientError::Call(e)) => assert_eq!(e.code(), codes::NOT_FOUND),
        other => panic!("{other:?}"),
    }
    let block = c.get_block(Some(BlockId::Height(r2.height))).await.unwrap();
    assert!(block.transactions.iter().any(|t| t.hash == dep_hash));
    assert_eq!(block.transactions.len(), block.receipts.len());
    let root = c.get_root(None).await.unwrap();

    let height = check_links(&c).await;
    assert!(height >= 2);
    let lines = node.interrupt();
    assert!(
        lines.iter().any(|l| l.contains("stopped cleanly")),
        "{lines:?}"
    );

    // Restart on the same base path: same chain, same blocks, same balance.
    let node = DevNode::start(base.path());
    let c = client(&node.rpc_url);
    assert_eq!(c.chain().await.unwrap().genesis_hash, chain);
    let again = check_links(&c).await;
    assert!(
        again >= height,
        "the chain resumed from its head ({again} < {height})"
    );
    let old_head = c.get_header(Some(BlockId::Height(height))).await.unwrap();
    assert_eq!(
        old_head.state_root, root,
        "the last block before the restart is unchanged"
    );
    assert_eq!(
        c.get_account("erin".into()).await.unwrap()["balance"],
        "12500000"
    );
    let found = c.get_by_hash(dep_hash).await.unwrap();
    assert_eq!(found.height, r2.height);
    // And it keeps producing blocks with the same key's next nonce.
    let next = c.next_nonce(key.public().to_hex()).await.unwrap();
    let more = signed(
        &key,
        chain,
        next,
        &MarketCall::Withdraw { amount: 500_000 },
        0,
    );
    let more_hash = c.submit_transaction(hex(&more)).await.unwrap();
    assert!(wait_for(&c, more_hash).await.receipt.success);
    assert_eq!(
        c.get_account("erin".into()).await.unwrap()["balance"],
        "12000000"
    );
    node.interrupt();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finalized_heads_subscription_over_websocket() {
    use v2v_rpc_client::jsonrpsee::ws_client::WsClientBuilder;
    let base = tempfile::tempdir().unwrap();
    let node = DevNode::start(base.path());
    let ws_url = node.rpc_url.replacen("http://", "ws://", 1);
    let ws = WsClientBuilder::default().build(&ws_url).await.unwrap();
    let mut sub = ws.subscribe_finalized_heads().await.unwrap();
    let c = client(&node.rpc_url);
    let chain = c.chain().await.unwrap().genesis_hash;
    let alice = Keypair::from_name("alice");
    let h = c
        .submit_transaction(hex(&signed(
            &alice,
            chain,
            0,
            &MarketCall::Deposit { amount: 3 },
            0,
        )))
        .await
        .unwrap();
    let found = wait_for(&c, h).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let head = tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .expect("a head within 10 s")
            .expect("subscription open")
            .expect("valid head");
        if head.height == found.height {
            assert_eq!(head.hash, found.block_hash);
            break;
        }
        assert!(Instant::now() < deadline);
    }
    node.interrupt();
}

/// The chain spec picks the engine when the node starts: the same dev chain, contract and
/// wallet run on each BFT engine (one validator is every quorum), and survive a restart with
/// the engine's persisted state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_chain_runs_on_every_engine() {
    for engine in ["pbft", "linear", "sbft"] {
        let base = tempfile::tempdir().unwrap();
        let alice = Keypair::from_name("alice");
        let mut last = 0;
        for (round, nonce) in [(0, 0u64), (1, 1)] {
            let node = DevNode::start_with(base.path(), &["--engine", engine]);
            let c = client(&node.rpc_url);
            let chain = c.chain().await.unwrap().genesis_hash;
            let h = c
                .submit_transaction(hex(&signed(
                    &alice,
                    chain,
                    nonce,
                    &MarketCall::Deposit { amount: 5 },
                    0,
                )))
                .await
                .unwrap();
            let found = wait_for(&c, h).await;
            assert!(
                found.height > last,
                "{engine} round {round}: finalized at {} after {last}",
                found.height
            );
            last = found.height;
            assert!(check_links(&c).await >= found.height);
            let lines = node.interrupt();
            assert!(
                lines.iter().any(|l| l.contains("stopped cleanly")),
                "{engine}: {lines:?}"
            );
        }
    }
}
