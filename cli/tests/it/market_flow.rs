//! A whole trade, twice: locally with `v2v contract exec` on the dev spec, and on a real
//! `v2v dev` process through the wallet and operator commands of the CLI binary.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use v2v_rpc_client::MarketApiClient;
use v2v_rpc_client::jsonrpsee::http_client::HttpClientBuilder;

use crate::support::{DevNode, v2v, v2v_ok};

fn dev_spec(dir: &Path) -> String {
    let spec = dir.join("dev.json");
    v2v_ok(&[
        "chain-spec",
        "build",
        "--preset",
        "dev",
        "--out",
        spec.to_str().unwrap(),
    ]);
    spec.to_str().unwrap().to_string()
}

// The trade of both tests: bob's car at (2000, 0), alice's at (2000, 500); the nearest meeting
// point to both is #2 at (2000, 0). Bob sells 5000 Wh at 300 µcr/Wh; alice buys 5000 Wh for
// at most 400 µcr/Wh all in.
const LINK_BOB: &str = r#"{"signer":"bob","call":{"method":"linkVehicle","args":{"vehicleId":"bob-car","capacityWh":60000,"chargeWh":40000,"x":2000,"y":0,"efficiencyWhPerKm":150,"energyPrice":200}}}"#;
const LINK_ALICE: &str = r#"{"signer":"alice","call":{"method":"linkVehicle","args":{"vehicleId":"alice-car","capacityWh":60000,"chargeWh":10000,"x":2000,"y":500,"efficiencyWhPerKm":150,"energyPrice":200}}}"#;
const SELL: &str =
    r#"{"signer":"bob","call":{"method":"sell","args":{"amountWh":5000,"price":300}}}"#;
const BUY: &str =
    r#"{"signer":"alice","call":{"method":"buy","args":{"amountWh":5000,"maxUnitCost":400}}}"#;
const CONFIRM: &str = r#"{"signer":"alice","call":{"method":"confirm","args":{"tradeId":1}}}"#;

fn receipts(out: &str) -> (Vec<Value>, Value) {
    let mut lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    let last = lines.pop().expect("a final line");
    (lines, last)
}

#[test]
fn contract_exec_runs_a_whole_trade() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dev_spec(dir.path());
    // A fresh client, named by a key file relative to the transactions file.
    v2v_ok(&[
        "key",
        "generate",
        "--out",
        dir.path().join("erin.json").to_str().unwrap(),
    ]);
    let txs = dir.path().join("trade.jsonl");
    let text = [
        r#"{"signer":"erin.json","call":{"method":"register","args":{"clientId":"erin"}},"memo":"hello"}"#,
        r#"{"signer":"operator","call":{"method":"setFee","args":{"feeRate":"20"}}}"#,
        LINK_BOB,
        LINK_ALICE,
        "",
        SELL,
        BUY,
        CONFIRM,
    ]
    .join("\n");
    std::fs::write(&txs, text).unwrap();
    let args = [
        "contract",
        "exec",
        "--chain",
        &spec,
        "--txs",
        txs.to_str().unwrap(),
    ];
    let out = v2v_ok(&args);
    let (rs, last) = receipts(&out);
    assert_eq!(rs.len(), 7, "{out}");
    let methods = [
        "register",
        "setFee",
        "linkVehicle",
        "linkVehicle",
        "sell",
        "buy",
        "confirm",
    ];
    for (i, (r, m)) in rs.iter().zip(methods).enumerate() {
        assert_eq!(r["index"], i, "{r}");
        assert_eq!(r["method"], m, "{r}");
        assert_eq!(r["success"], true, "transaction {i} failed: {r}");
        assert!(r["fuelUsed"].as_u64().unwrap() > 0, "{r}");
    }
    assert_eq!(rs[0]["signer"], "erin.json");
    let types: Vec<&str> = rs
        .iter()
        .flat_map(|r| r["events"].as_array().unwrap())
        .filter_map(|e| e["type"].as_str())
        .collect();
    for t in ["tradeMatched", "tradeSettled"] {
        assert!(types.contains(&t), "no {t} event in {types:?}");
    }
    let matched = rs[5]["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "tradeMatched")
        .unwrap()
        .clone();
    assert!(matched.to_string().contains("2000"), "{matched}");
    assert_eq!(last["height"], 7, "{last}");
    let root = last["stateRoot"].as_str().unwrap().to_string();
    assert!(root.starts_with("0x") && root.len() == 66, "{root}");

    // Deterministic: the same input gives the same state root, also with the contract given
    // explicitly as the committed Wasm (the dev spec's own).
    let again = v2v_ok(&args);
    assert_eq!(receipts(&again).1["stateRoot"], root.as_str());
    let wasm = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../chain-spec/wasm/v2v_market.wasm"
    );
    let mut with_wasm = args.to_vec();
    with_wasm.extend(["--wasm", wasm]);
    let (ok, out, err) = v2v(&with_wasm);
    assert!(ok, "{err}");
    assert_eq!(receipts(&out).1["height"], 7);

    // A failing transaction is reported in its receipt and the run goes on.
    std::fs::write(
        &txs,
        [
            CONFIRM,
            r#"{"signer":"bob","call":{"method":"deposit","args":{"amount":"1"}}}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    let (rs, last) = receipts(&v2v_ok(&args));
    assert_eq!(rs[0]["success"], false);
    assert!(rs[0]["error"].as_str().is_some(), "{}", rs[0]);
    assert_eq!(rs[1]["success"], true);
    assert_eq!(last["height"], 2);

    // Bad lines stop the run before anything executes, naming the line.
    for (bad, line, needle) in [
        (
            format!(
                "{LINK_BOB}\n{}",
                r#"{"signer":"dave","call":{"method":"deposit","args":{"amount":"1"}}}"#
            ),
            "line 2",
            "unknown signer 'dave'",
        ),
        (
            format!("{LINK_BOB}\n{SELL}\n{{\"signer\": "),
            "line 3",
            "not valid JSON",
        ),
        (
            r#"{"signer":"bob","call":{"method":"teleport","args":{}}}"#.to_string(),
            "line 1",
            "not a market call",
        ),
    ] {
        std::fs::write(&txs, bad).unwrap();
        let (ok, out, err) = v2v(&args);
        assert!(!ok, "a bad line must fail the run: {out}");
        assert!(out.is_empty(), "nothing may run before a bad line: {out}");
        assert!(err.contains(line) && err.contains(needle), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let (ok, _, err) = v2v(&[
        "contract",
        "exec",
        "--chain",
        &spec,
        "--txs",
        "/nonexistent.jsonl",
    ]);
    assert!(!ok && err.contains("/nonexistent.jsonl"), "{err}");
}

/// The trade's first column in `wallet trades` output.
fn first_trade_id(out: &str) -> String {
    out.lines()
        .skip(1)
        .find_map(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no trade in: {out}"))
        .to_string()
}

#[test]
fn cli_drives_a_trade_on_a_dev_chain() {
    let base = tempfile::tempdir().unwrap();
    let node = DevNode::start(base.path());
    let url = node.rpc_url.clone();
    let keys = base.path().join("keys");
    let key = |name: &str| {
        keys.join(format!("{name}.json"))
            .to_str()
            .unwrap()
            .to_string()
    };
    let (alice, bob, operator) = (key("alice"), key("bob"), key("operator"));
    let wallet = |k: &str, rest: &[&str]| {
        let mut a = vec!["wallet", "--rpc", url.as_str(), "--key", k];
        a.extend_from_slice(rest);
        v2v(&a)
    };
    let wallet_ok = |k: &str, rest: &[&str]| {
        let (ok, out, err) = wallet(k, rest);
        assert!(ok, "wallet {rest:?} failed:\nstdout: {out}\nstderr: {err}");
        out
    };

    let out = v2v_ok(&[
        "operator", "--rpc", &url, "--key", &operator, "set-fee", "20",
    ]);
    assert!(out.contains("feeSet"), "{out}");
    // Only an operator may.
    let (ok, _, err) = v2v(&["operator", "--rpc", &url, "--key", &alice, "set-fee", "1"]);
    assert!(!ok && err.contains("not an operator"), "{err}");

    wallet_ok(
        &bob,
        &[
            "link-vehicle",
            "--vehicle-id",
            "bob-car",
            "--capacity-wh",
            "60000",
            "--charge-wh",
            "40000",
            "--x",
            "2000",
            "--y",
            "0",
            "--efficiency-wh-per-km",
            "150",
            "--energy-price",
            "200",
        ],
    );
    wallet_ok(
        &alice,
        &[
            "link-vehicle",
            "--vehicle-id",
            "alice-car",
            "--capacity-wh",
            "60000",
            "--charge-wh",
            "12000",
            "--x",
            "-300",
            "--y",
            "500",
            "--efficiency-wh-per-km",
            "150",
            "--energy-price",
            "200",
        ],
    );
    // Telemetry keeps what it is not given.
    wallet_ok(
        &alice,
        &["telemetry", "--charge-wh", "10000", "--x", "2000"],
    );
    let v = wallet_ok(&alice, &["vehicle"]);
    assert!(
        v.contains("10000 / 60000 Wh") && v.contains("(2000, 500)"),
        "{v}"
    );

    let out = wallet_ok(&bob, &["sell", "5000", "--price-ucr-per-wh", "300"]);
    assert!(out.contains("orderPlaced"), "{out}");
    let book = wallet_ok(&alice, &["market"]);
    assert!(
        book.contains("sell orders (1)") && book.contains("300 µcr/Wh"),
        "{book}"
    );
    assert!(book.contains("fee rate:  20 µcr/Wh"), "{book}");
    let mine = wallet_ok(&bob, &["orders"]);
    assert!(mine.contains("sell") && mine.contains("5000"), "{mine}");
    assert!(wallet_ok(&alice, &["orders"]).contains("no resting orders"));

    let out = wallet_ok(&alice, &["buy", "5000", "--max-unit-cost", "400"]);
    assert!(out.contains("tradeMatched"), "{out}");
    let trades = wallet_ok(&alice, &["trades"]);
    assert!(
        trades.contains("bob (you buy)")
            && trades.contains("#2 (2000, 0)")
            && trades.contains("matched"),
        "{trades}"
    );
    let id = first_trade_id(&trades);
    let bobs = wallet_ok(&bob, &["trades"]);
    assert!(bobs.contains("alice (you sell)"), "{bobs}");

    // Only the consumer confirms.
    let (ok, _, err) = wallet(&bob, &["confirm", &id]);
    assert!(!ok && err.contains("the transaction failed"), "{err}");
    let out = wallet_ok(&alice, &["confirm", &id]);
    assert!(out.contains("tradeSettled"), "{out}");
    assert!(wallet_ok(&alice, &["trades"]).contains("settled"));
    let (ok, _, err) = wallet(&alice, &["confirm", &id]);
    assert!(!ok && err.contains("the transaction failed"), "{err}");
    // Bad input is an error, not a panic.
    let (ok, _, err) = wallet(&alice, &["sell", "5", "--price-ucr-per-wh", "1.5"]);
    assert!(!ok && !err.contains("panicked"), "{err}");
    // --sign-only prints the signed transaction and submits nothing: the nonce stays.
    let nonce = wallet_ok(&alice, &["nonce"]);
    let signed = wallet_ok(&alice, &["--sign-only", "deposit", "1"]);
    let signed = signed.trim();
    assert!(
        signed.starts_with("0x01") && signed[2..].bytes().all(|b| b.is_ascii_hexdigit()),
        "{signed}"
    );
    assert_eq!(wallet_ok(&alice, &["nonce"]), nonce);

    // Settled: alice paid 5000 Wh × 300 µcr + the fee 5000 × 20 µcr; bob got the energy cost
    // less his fee; the treasury has both fees.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let c = HttpClientBuilder::default()
        .request_timeout(Duration::from_secs(20))
        .build(&url)
        .unwrap();
    rt.block_on(async {
        let a = c.get_account("alice".into()).await.unwrap();
        assert_eq!(a["balance"], "998400000", "{a}");
        assert_eq!(a["escrow"], "0", "{a}");
        let b = c.get_account("bob".into()).await.unwrap();
        assert_eq!(b["balance"], "1001400000", "{b}");
        let p = c.get_params().await.unwrap();
        assert_eq!(p["feeRate"], "20", "{p}");
        assert_eq!(p["treasuryBalance"], "200000", "{p}");
        let t = c.get_trade(id.parse().unwrap()).await.unwrap();
        assert_eq!(t["status"], "settled", "{t}");
        assert_eq!(t["meetingPoint"]["id"], 2, "{t}");
        let v = c.get_vehicle("bob".into()).await.unwrap();
        assert_eq!(v["committedWh"], 0, "{v}");
        let page = c
            .get_trades(Some(serde_json::json!({ "owner": "bob" })))
            .await
            .unwrap();
        assert_eq!(page["trades"].as_array().unwrap().len(), 1, "{page}");
        let orders = c.get_orders(None).await.unwrap();
        assert!(orders["orders"].as_array().unwrap().is_empty(), "{orders}");
        assert!(
            c.get_meeting_points()
                .await
                .unwrap()
                .as_array()
                .unwrap()
                .len()
                >= 9
        );
        // A filter that is not an object is refused with invalid params.
        let e = c.get_orders(Some(Value::from(3))).await.unwrap_err();
        assert!(e.to_string().contains("must be a JSON object"), "{e}");
    });

    // The rest of the operator's and the wallet's commands.
    let op = |rest: &[&str]| {
        let mut a = vec![
            "operator",
            "--rpc",
            url.as_str(),
            "--key",
            operator.as_str(),
        ];
        a.extend_from_slice(rest);
        v2v_ok(&a)
    };
    assert!(op(&["add-meeting-point", "10", "-1000", "-1000"]).contains("meetingPointAdded"));
    assert!(wallet_ok(&alice, &["market"]).contains("(-1000, -1000) m"));
    op(&["remove-meeting-point", "10"]);
    op(&["adjust-funds", "charlie", "-0.5", "--reason", "correction"]);
    let erin = base.path().join("erin.json");
    v2v_ok(&["key", "generate", "--out", erin.to_str().unwrap()]);
    op(&["register-client", "erin", erin.to_str().unwrap()]);
    let erin_acct = wallet_ok(erin.to_str().unwrap(), &["account"]);
    assert!(erin_acct.contains("client:     erin"), "{erin_acct}");

    // A disputed trade, refunded by the operator.
    wallet_ok(&bob, &["sell", "1000", "--price", "300"]);
    wallet_ok(&alice, &["buy", "1000"]);
    let trades = wallet_ok(&alice, &["trades"]);
    let second = trades
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .find(|w| *w != id && w.parse::<u64>().is_ok())
        .unwrap_or_else(|| panic!("no second trade: {trades}"))
        .to_string();
    wallet_ok(&alice, &["dispute", &second, "nobody came"]);
    assert!(wallet_ok(&bob, &["trades"]).contains("disputed"));
    assert!(op(&["resolve", &second, "refund"]).contains("tradeRefunded"));

    // Cancelled and removed orders.
    wallet_ok(&bob, &["sell", "500", "--price", "999"]);
    let order = first_trade_id(&wallet_ok(&bob, &["orders"]));
    rt.block_on(async {
        let o = c.get_order(order.parse().unwrap()).await.unwrap();
        assert_eq!(o["owner"], "bob", "{o}");
        assert_eq!(o["price"], "999", "{o}");
        assert_eq!(o["remainingWh"], 500, "{o}");
        let e = c.get_order(999).await.unwrap_err();
        assert!(e.to_string().contains("999"), "{e}");
    });
    wallet_ok(&bob, &["cancel", &order]);
    wallet_ok(&bob, &["sell", "600", "--price", "999"]);
    let order = first_trade_id(&wallet_ok(&bob, &["orders", "--side", "sell"]));
    assert!(op(&["remove-order", &order, "--reason", "test"]).contains("orderRemoved"));
    assert!(wallet_ok(&bob, &["orders", "--all"]).contains("no resting orders"));

    rt.block_on(async {
        let a = c.get_account("alice".into()).await.unwrap();
        assert_eq!(a["balance"], "998400000", "refunded in full: {a}");
        assert_eq!(a["escrow"], "0", "{a}");
        let ch = c.get_account("charlie".into()).await.unwrap();
        assert_eq!(ch["balance"], "999500000", "{ch}");
        let t = c.get_trade(second.parse().unwrap()).await.unwrap();
        assert_eq!(t["status"], "refunded", "{t}");
        assert_eq!(
            c.get_meeting_points()
                .await
                .unwrap()
                .as_array()
                .unwrap()
                .len(),
            9
        );
    });
    node.interrupt();
}
