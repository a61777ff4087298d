//! A live upgrade of the market contract on a real `v2v dev` process: dry-run, bad
//! deployments refused with their reasons while the chain goes on, the deployment through
//! `v2v contract deploy`, and the new code's behaviour, history and explorer entries.

use std::path::Path;

use serde_json::Value;
use v2v_abi::{DEPLOY_METHOD, DeployContract};
use v2v_crypto::KeyFile;
use v2v_primitives::{Hash, Keypair, UnsignedTransaction};
use v2v_rpc_client::jsonrpsee::core::ClientError;
use v2v_rpc_client::{
    AuthorApiClient, BlockId, ChainApiClient, ExplorerApiClient, HttpClient, StateApiClient,
    SystemApiClient, TxApiClient, codes,
};

use crate::support::{DevNode, client, hex, v2v, v2v_ok};

pub const V2: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../contracts/market/fixtures/v2v_market_v2.wasm"
);
pub const V2_FAILING: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../contracts/market/fixtures/v2v_market_v2_failing_migration.wasm"
);
pub const V1: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../chain-spec/wasm/v2v_market.wasm"
);

/// A deployment of `wasm` signed by `key`, as hex.
pub fn deploy_hex(key: &Keypair, chain: Hash, nonce: u64, wasm: &[u8], at: Option<u64>) -> String {
    let tx = UnsignedTransaction {
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
    .sign(key);
    hex(tx.encoded())
}

/// Submits a deployment that the node must refuse with code 1011 and `why` in the message.
pub async fn refused(c: &HttpClient, tx_hex: String, why: &str) {
    match c.submit_transaction(tx_hex).await {
        Err(ClientError::Call(e)) => {
            assert_eq!(e.code(), codes::TX_REJECTED, "{}", e.message());
            assert!(e.message().contains(why), "{} / {why}", e.message());
        }
        other => panic!("a bad deployment was not refused ({why}): {other:?}"),
    }
}

fn json_lines(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

fn key(base: &Path, name: &str) -> String {
    base.join("keys")
        .join(format!("{name}.json"))
        .display()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_upgrade_on_a_dev_chain() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start(dir.path());
    let url = node.rpc_url.clone();
    let c = client(&url);
    let chain = Hash::from_hex(&node.genesis_hash).unwrap();
    let (alice, operator) = (key(dir.path(), "alice"), key(dir.path(), "operator"));
    let op = KeyFile::read(Path::new(&operator)).unwrap();

    // Version 1 takes a deposit of half a credit.
    v2v_ok(&["wallet", "--rpc", &url, "--key", &alice, "deposit", "0.5"]);

    // The dry-run replays that block against version 2, which refuses small deposits.
    let out = v2v_ok(&[
        "contract",
        "dry-run",
        "--rpc",
        &url,
        "--wasm",
        V2,
        "--from-height",
        "1",
    ]);
    let lines = json_lines(&out);
    let (diffs, summary) = lines.split_at(lines.len() - 1);
    assert_eq!(summary[0]["differing"], 1, "{out}");
    assert_eq!(summary[0]["migration"], "activated", "{out}");
    assert_eq!(summary[0]["newVersion"], 2, "{out}");
    assert_eq!(diffs[0]["method"], "deposit");
    assert_eq!(diffs[0]["current"]["success"], true);
    assert!(
        diffs[0]["new"]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("deposits below 1 credit are refused from version 2"),
        "{out}"
    );
    let out = v2v_ok(&[
        "contract",
        "dry-run",
        "--rpc",
        &url,
        "--wasm",
        V2_FAILING,
        "--from-height",
        "1",
    ]);
    let summary = json_lines(&out).pop().unwrap();
    assert!(
        summary["migration"]
            .as_str()
            .unwrap_or_default()
            .starts_with("failed: "),
        "{out}"
    );

    // Bad deployments are refused before they reach a block, each with its reason.
    let v2 = std::fs::read(V2).unwrap();
    let nonce = c.next_nonce(op.public().to_hex()).await.unwrap();
    let refusals = [
        (
            deploy_hex(&Keypair::from_name("alice"), chain, 1, &v2, None),
            "only an operator may deploy contract code",
        ),
        (
            deploy_hex(&op, chain, nonce, b"\0asm\x01\0\0\0garbage", None),
            "invalid contract code",
        ),
        (
            deploy_hex(&op, chain, nonce, &std::fs::read(V1).unwrap(), None),
            "not greater than the version in force (1)",
        ),
        (
            deploy_hex(&op, chain, nonce, &std::fs::read(V2_FAILING).unwrap(), None),
            "migration fails on the current state",
        ),
        (
            deploy_hex(&op, chain, nonce, &v2, Some(1)),
            "is not above the deploying block",
        ),
    ];
    for (tx, why) in refusals {
        refused(&c, tx, why).await;
    }
    let (ok, _, err) = v2v(&[
        "contract", "deploy", "--rpc", &url, "--wasm", V1, "--key", &operator,
    ]);
    assert!(
        !ok && err.contains("not greater than the version in force"),
        "{err}"
    );
    // The chain goes on.
    v2v_ok(&["wallet", "--rpc", &url, "--key", &alice, "deposit", "0.25"]);

    // The deployment: it waits for the next block and reports the switch.
    let out = v2v_ok(&[
        "contract", "deploy", "--rpc", &url, "--wasm", V2, "--key", &operator,
    ]);
    assert!(out.contains("version 2 is in force from block"), "{out}");
    let info = c.get_contract().await.unwrap();
    assert_eq!(info.version, 2);
    assert_eq!(info.code_hash.0, *blake3::hash(&v2).as_bytes());
    assert_eq!(info.history.len(), 1);
    let up = &info.history[0];
    assert_eq!((up.outcome.as_str(), up.previous_version), ("activated", 1));
    assert_eq!(info.deployed_at, up.activate_at);
    assert_eq!(up.activate_at, up.deployed_at + 1);
    assert_eq!(info.deploy_tx, Some(up.deploy_tx));
    assert_eq!(c.chain().await.unwrap().contract_version, 2);

    // The new behaviour, and the migration's record.
    let (ok, _, err) = v2v(&["wallet", "--rpc", &url, "--key", &alice, "deposit", "0.5"]);
    assert!(!ok && err.contains("deposits below 1 credit"), "{err}");
    v2v_ok(&["wallet", "--rpc", &url, "--key", &alice, "deposit", "2"]);
    let migration = c.query("migration".into(), None, None).await.unwrap();
    assert_eq!(migration["from"], 1);
    assert_eq!(migration["atHeight"], up.activate_at);

    // The deployment in its block shows the code's hash, not the code; the explorer knows the code.
    let tx = c.get_by_hash(up.deploy_tx).await.unwrap();
    assert_eq!(tx.height, up.deployed_at);
    assert_eq!(
        tx.tx.call.as_ref().unwrap()["args"]["codeHash"],
        info.code_hash.to_hex()
    );
    assert_eq!(tx.receipt.events[0]["type"], "contractDeployed");
    let found = c.search(info.code_hash.to_hex()).await.unwrap();
    assert_eq!(found["kind"], "contract");
    assert_eq!(found["inForce"], true);
    assert_eq!(found["upgrades"][0]["version"], 2);
    let block = c
        .get_block(Some(BlockId::Height(up.deployed_at)))
        .await
        .unwrap();
    assert_eq!(block.transactions[0].method, DEPLOY_METHOD);
    // The spec the node serves is the one it runs.
    let spec = v2v_chain_spec::ChainSpec::from_json(c.chain_spec().await.unwrap().get()).unwrap();
    assert_eq!(spec.operators, vec![op.public()]);

    // A lower version, or the same one again, is refused: versions only go up.
    let nonce = c.next_nonce(op.public().to_hex()).await.unwrap();
    refused(
        &c,
        deploy_hex(&op, chain, nonce, &std::fs::read(V1).unwrap(), None),
        "declares version 1, which is not greater than the version in force (2)",
    )
    .await;
    let (ok, _, err) = v2v(&[
        "contract", "deploy", "--rpc", &url, "--wasm", V2, "--key", &operator,
    ]);
    assert!(
        !ok && err.contains("version 2, which is not greater"),
        "{err}"
    );
    drop(node);
}
