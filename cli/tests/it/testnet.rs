//! Four validators over real libp2p on loopback, one `v2v node` process each, for every BFT
//! engine: transactions sent to different nodes are finalized with identical blocks and
//! state roots everywhere; a killed follower does not stop the chain, and once restarted
//! it syncs and matches; killing the leader forces a view change and progress resumes.
//! Also `v2v testnet` itself: it starts the validators, they finalize, Ctrl-C stops them.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use v2v_abi::MarketCall;
use v2v_chain_spec::{EngineKind, FullNodeSpec};
use v2v_crypto::KeyFile;
use v2v_primitives::{Hash, Keypair, UnsignedTransaction};
use v2v_rpc_client::jsonrpsee::core::ClientError;
use v2v_rpc_client::jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use v2v_rpc_client::{
    AuthorApiClient, BlockId, ChainApiClient, StateApiClient, SystemApiClient, TxApiClient, codes,
};

use crate::support::{NodeProcess, run_until_line};

fn client(url: &str) -> HttpClient {
    HttpClientBuilder::default()
        .request_timeout(Duration::from_secs(10))
        .build(url)
        .unwrap()
}

fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    held.iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

struct Net {
    _dir: tempfile::TempDir,
    base: PathBuf,
    spec: PathBuf,
    keys: PathBuf,
    rpc_ports: Vec<u16>,
    p2p_ports: Vec<u16>,
    nodes: Vec<Option<NodeProcess>>,
    alice: Keypair,
    chain: Hash,
    /// A validator that restarted from a state snapshot.
    snapshotted: Option<usize>,
}

impl Net {
    fn start(engine: EngineKind) -> Net {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().to_path_buf();
        let keys = base.join("keys");
        std::fs::create_dir_all(&keys).unwrap();
        let ports = free_ports(8);
        let (mut spec, _) = v2v_chain_spec::local_at(engine, &ports[..4], &keys).unwrap();
        // A full node on the allow-list, without an address of its own (it dials out).
        let full = Keypair::generate();
        KeyFile::from_keypair(&full)
            .write(&keys.join("full.json"))
            .unwrap();
        spec.full_nodes.push(FullNodeSpec {
            name: "full".into(),
            ed25519: full.public(),
            address: None,
        });
        let spec_path = base.join("chain-spec.json");
        spec.save(&spec_path).unwrap();
        let alice = KeyFile::read(&keys.join("alice.json")).unwrap();
        let mut net = Net {
            _dir: dir,
            base,
            spec: spec_path,
            keys,
            rpc_ports: ports[4..].to_vec(),
            p2p_ports: ports[..4].to_vec(),
            nodes: (0..4).map(|_| None).collect(),
            alice,
            chain: Hash::ZERO,
            snapshotted: None,
        };
        for i in 0..4 {
            net.start_node(i);
        }
        net.chain = Hash::from_hex(&net.nodes[0].as_ref().unwrap().genesis_hash).unwrap();
        net
    }

    fn start_node(&mut self, i: usize) {
        self.start_node_with(i, &[]);
    }

    fn start_node_with(&mut self, i: usize, extra: &[&str]) {
        let name = format!("validator-{i}");
        self.nodes[i] = Some(NodeProcess::start_with(
            &self.spec,
            &self.base.join(&name),
            &self.keys.join(format!("{name}.json")),
            self.rpc_ports[i],
            extra,
        ));
    }

    /// A full node of this spec (key `keys/full.json`), or, with `stranger`, a node whose
    /// own copy of the spec lists it as a full node while the validators' copy does not.
    fn start_full_node(&self, stranger: bool) -> NodeProcess {
        let (spec, key) = if stranger {
            let mut spec = v2v_chain_spec::ChainSpec::load(&self.spec).unwrap();
            let key = Keypair::generate();
            let key_path = self.keys.join("stranger.json");
            KeyFile::from_keypair(&key).write(&key_path).unwrap();
            spec.full_nodes.push(FullNodeSpec {
                name: "stranger".into(),
                ed25519: key.public(),
                address: None,
            });
            let spec_path = self.base.join("stranger-spec.json");
            spec.save(&spec_path).unwrap();
            (spec_path, key_path)
        } else {
            (self.spec.clone(), self.keys.join("full.json"))
        };
        let name = if stranger { "stranger" } else { "full" };
        NodeProcess::start(&spec, &self.base.join(name), &key, free_ports(1)[0])
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut n) = self.nodes[i].take() {
            n.kill9();
        }
    }

    fn rpc(&self, i: usize) -> HttpClient {
        client(&self.nodes[i].as_ref().unwrap().rpc_url)
    }

    fn live(&self) -> Vec<usize> {
        (0..4).filter(|i| self.nodes[*i].is_some()).collect()
    }

    fn logs(&self) -> String {
        let mut out = String::new();
        for (i, n) in self.nodes.iter().enumerate() {
            if let Some(n) = n {
                out += &format!("--- validator-{i}\n{}\n", n.recent_stderr().join("\n"));
            }
        }
        out
    }

    /// Deposits from alice with `nonce`, sent to node `via`.
    async fn deposit(&self, via: usize, nonce: u64) -> Hash {
        let bytes = UnsignedTransaction {
            chain_id: self.chain,
            signer: self.alice.public(),
            nonce,
            method: MarketCall::Deposit { amount: 1 }.method().into(),
            args: MarketCall::Deposit { amount: 1 }.encode_args(),
            memo: vec![],
        }
        .sign(&self.alice)
        .encoded()
        .to_vec();
        let hex = format!(
            "0x{}",
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        self.rpc(via).submit_transaction(hex).await.unwrap()
    }

    /// Waits until every live node has `tx` finalized; returns the highest height seen.
    async fn finalized_everywhere(&self, tx: Hash, within: Duration) -> u64 {
        let deadline = Instant::now() + within;
        let mut height = 0;
        for i in self.live() {
            let c = self.rpc(i);
            loop {
                match c.get_by_hash(tx).await {
                    Ok(found) => {
                        height = height.max(found.height);
                        break;
                    }
                    Err(ClientError::Call(e)) if e.code() == codes::NOT_FOUND => {}
                    Err(e) => panic!("validator-{i}: tx_getByHash: {e}"),
                }
                assert!(
                    Instant::now() < deadline,
                    "tx {tx} not finalized on validator-{i} within {within:?}\n{}",
                    self.logs()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        height
    }

    /// Waits until every live node has reached `height`, then checks that they agree on
    /// every block hash and state root from genesis to it.
    async fn agree_up_to(&self, height: u64, within: Duration) {
        let deadline = Instant::now() + within;
        for i in self.live() {
            let c = self.rpc(i);
            loop {
                if let Ok(h) = c.get_header(None).await
                    && h.height >= height
                {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "validator-{i} did not reach height {height} within {within:?}\n{}",
                    self.logs()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        let live = self.live();
        let reference = self.rpc(live[0]);
        for h in 0..=height {
            let want = reference
                .get_header(Some(BlockId::Height(h)))
                .await
                .unwrap();
            for &i in &live[1..] {
                let got = match self.rpc(i).get_header(Some(BlockId::Height(h))).await {
                    Ok(got) => got,
                    // Below a state snapshot a node has no history.
                    Err(ClientError::Call(e))
                        if e.code() == codes::NOT_FOUND && self.snapshotted == Some(i) =>
                    {
                        continue;
                    }
                    Err(e) => panic!("validator-{i}: header {h}: {e}"),
                };
                assert_eq!(
                    (got.hash, got.state_root),
                    (want.hash, want.state_root),
                    "validator-{i} differs from validator-{} at height {h}",
                    live[0]
                );
            }
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for i in 0..4 {
            self.kill(i);
        }
    }
}

/// Connects to a validator's p2p port as a stranger and sends bytes that are not a noise
/// handshake: the validator must hang up (and, as the rest of the test shows, carry on).
async fn garbage_peer_is_disconnected(port: u16) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let garbage: Vec<u8> = (0..65_536)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    // The write may fail part-way once the node hangs up; either way it must close.
    let _ = stream.write_all(&garbage).await;
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the validator kept a garbage connection open"
    );
}

async fn four_validators(engine: EngineKind) {
    let mut net = Net::start(engine);
    let within = Duration::from_secs(60);
    garbage_peer_is_disconnected(net.p2p_ports[1]).await;
    // Transactions sent to different nodes (gossip carries them to the leader).
    let mut nonce = 0;
    let mut last = Hash::ZERO;
    for via in 0..4 {
        last = net.deposit(via, nonce).await;
        nonce += 1;
    }
    let h = net.finalized_everywhere(last, within).await;
    net.agree_up_to(h, within).await;

    // Every block's certificate verifies with the spec's validator set alone.
    let validators = v2v_chain_spec::ChainSpec::load(&net.spec)
        .unwrap()
        .validator_set()
        .unwrap();
    let mut kinds = std::collections::BTreeSet::new();
    for height in 1..=h {
        let proof = net
            .rpc(height as usize % 4)
            .get_finality_proof(Some(BlockId::Height(height)))
            .await
            .unwrap();
        let bytes = hex_decode(&proof.certificate);
        let cert = v2v_consensus::Certificate::decode(&bytes).unwrap();
        cert.verify(&validators, height, &proof.block_hash).unwrap();
        kinds.insert(proof.kind);
    }
    let expected = match engine {
        EngineKind::Pbft => "ed25519-signatures",
        EngineKind::Linear => "bls-threshold-slow",
        _ => "bls-threshold-fast",
    };
    assert!(kinds.contains(expected), "{engine:?}: {kinds:?}");

    // A full node follows: same blocks, same state roots, served over its own RPC.
    let full = net.start_full_node(false);
    let stranger = net.start_full_node(true);
    let fc = client(&full.rpc_url);
    let reference = net.rpc(0);
    let deadline = Instant::now() + within;
    while fc.get_header(None).await.map(|h| h.height).unwrap_or(0) < h {
        assert!(
            Instant::now() < deadline,
            "the full node did not reach {h}: {:?}",
            full.recent_stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for height in 0..=h {
        let want = reference
            .get_header(Some(BlockId::Height(height)))
            .await
            .unwrap();
        let got = fc.get_header(Some(BlockId::Height(height))).await.unwrap();
        assert_eq!((got.hash, got.state_root), (want.hash, want.state_root));
    }
    assert_eq!(fc.get_by_hash(last).await.unwrap().height, h);
    // A node outside the validators' allow-list gets no block (its dials are answered by a
    // closed connection), and no validator counts it as a peer: each has at most the three
    // other validators and the full node.
    let sc = client(&stranger.rpc_url);
    // Long enough for an admitted follower to fetch the chain (the full node took less).
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        sc.health().await.unwrap().finalized_height,
        0,
        "a stranger was let in: {:?}",
        stranger.recent_stderr()
    );
    for i in 0..4 {
        let peers = net.rpc(i).health().await.unwrap().peers;
        assert!(peers <= 4, "validator-{i} has {peers} peers");
    }
    drop(stranger);

    // A follower is killed (-9, mid-stream): the other three keep finalizing.
    let before_crash = net.rpc(3).get_header(None).await.unwrap();
    net.kill(3);
    let tx = net.deposit(1, nonce).await;
    nonce += 1;
    let h = net.finalized_everywhere(tx, within).await;

    // While it is down the chain moves on; it restarts from its database, more than two
    // blocks behind, so it installs a peer's state snapshot and then syncs block by block.
    tokio::time::sleep(Duration::from_secs(3)).await;
    net.start_node_with(3, &["--snapshot-after", "2"]);
    net.snapshotted = Some(3);
    net.agree_up_to(h, within).await;
    // Nothing it had finalized before the crash was lost.
    for height in 0..=before_crash.height {
        let got = net.rpc(3).get_header(Some(BlockId::Height(height))).await;
        let want = net
            .rpc(1)
            .get_header(Some(BlockId::Height(height)))
            .await
            .unwrap();
        assert_eq!(
            got.map(|g| g.hash).ok(),
            Some(want.hash),
            "validator-3 lost block {height} in the crash"
        );
    }
    let deadline = Instant::now() + within;
    while !net.nodes[3]
        .as_ref()
        .unwrap()
        .recent_stderr()
        .iter()
        .any(|l| l.contains("installed a state snapshot"))
    {
        assert!(Instant::now() < deadline, "no snapshot:\n{}", net.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // It follows the chain from there, and takes transactions like the others.
    let tx = net.deposit(3, nonce).await;
    nonce += 1;
    let h = net.finalized_everywhere(tx, within).await;
    net.agree_up_to(h, within).await;

    // The leader is killed: a view change restores progress.
    let head = net.rpc(1).get_header(None).await.unwrap();
    let leader = (head.view % 4) as usize;
    net.kill(leader);
    let via = (leader + 1) % 4;
    let tx = net.deposit(via, nonce).await;
    let h = net.finalized_everywhere(tx, Duration::from_secs(90)).await;
    net.agree_up_to(h, within).await;
    let after = net
        .rpc(via)
        .get_header(Some(BlockId::Height(h)))
        .await
        .unwrap();
    assert!(
        after.view > head.view,
        "block {h} was finalized in view {} after the leader of view {} died",
        after.view,
        head.view
    );
}

/// A contract upgrade on four validators while alice keeps depositing 1 µcr through every
/// node: bad deployments are refused while the chain goes on; the good one switches every
/// node at the stated height (same blocks, same state roots); deposits before it succeed and
/// deposits from it on fail as version 2 says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n4_contract_upgrade_under_traffic() {
    use crate::upgrade::{V1, V2, V2_FAILING, deploy_hex, refused};
    let net = Net::start(EngineKind::Linear);
    let within = Duration::from_secs(60);
    let operator = net.keys.join("operator.json");
    let op = KeyFile::read(&operator).unwrap();
    let mut nonce = 0;
    let mut sent = vec![net.deposit(0, nonce).await];
    nonce += 1;
    let h = net.finalized_everywhere(sent[0], within).await;

    // Bad deployments, each to another node, are refused there with their reason.
    let op_nonce = net.rpc(0).next_nonce(op.public().to_hex()).await.unwrap();
    let v2 = std::fs::read(V2).unwrap();
    let bad = [
        (
            deploy_hex(&net.alice, net.chain, nonce, &v2, None),
            "only an operator",
        ),
        (
            deploy_hex(&op, net.chain, op_nonce, b"not wasm", None),
            "invalid contract code",
        ),
        (
            deploy_hex(&op, net.chain, op_nonce, &std::fs::read(V1).unwrap(), None),
            "not greater than the version in force",
        ),
        (
            deploy_hex(
                &op,
                net.chain,
                op_nonce,
                &std::fs::read(V2_FAILING).unwrap(),
                None,
            ),
            "migration fails",
        ),
    ];
    for (i, (tx, why)) in bad.into_iter().enumerate() {
        refused(&net.rpc(i), tx, why).await;
    }

    // The deployment, to take over a few blocks ahead, while the traffic goes on.
    // Blocks come every few hundred ms: leave room for the deployment to be checked (each
    // node compiles the code) and included first.
    let head = net.rpc(2).get_header(None).await.unwrap().height;
    let at = head.max(h) + 20;
    let url = net.nodes[2].as_ref().unwrap().rpc_url.clone();
    let args: Vec<String> = [
        "contract",
        "deploy",
        "--rpc",
        &url,
        "--wasm",
        V2,
        "--key",
        &operator.display().to_string(),
        "--at-height",
        &at.to_string(),
    ]
    .map(String::from)
    .to_vec();
    let deploy = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        crate::support::v2v(&args)
    });
    while !deploy.is_finished() {
        sent.push(net.deposit(nonce as usize % 4, nonce).await);
        nonce += 1;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let (ok, out, err) = deploy.await.unwrap();
    assert!(ok, "deploy failed:\n{out}\n{err}\n{}", net.logs());
    assert!(
        out.contains(&format!("version 2 is in force from block {at}")),
        "{out}"
    );
    for _ in 0..4 {
        sent.push(net.deposit(nonce as usize % 4, nonce).await);
        nonce += 1;
    }
    let h = net
        .finalized_everywhere(*sent.last().unwrap(), within)
        .await;
    net.agree_up_to(h, within).await;

    // Every node switched at `at`, with the migration run there.
    for i in 0..4 {
        let c = net.rpc(i);
        let info = c.get_contract().await.unwrap();
        assert_eq!((info.version, info.deployed_at), (2, at), "validator-{i}");
        assert_eq!(info.history.len(), 1);
        assert_eq!(info.history[0].outcome, "activated");
        let m = c.query("migration".into(), None, None).await.unwrap();
        assert_eq!(m["atHeight"], at, "validator-{i}");
    }
    // The traffic: version 1 took the 1 µcr deposits, version 2 refuses them.
    let (mut before, mut after) = (0, 0);
    for tx in &sent {
        let found = net.rpc(1).get_by_hash(*tx).await.unwrap();
        if found.height < at {
            assert!(found.receipt.success, "{:?}", found.receipt);
            before += 1;
        } else {
            let err = found.receipt.error.clone().unwrap_or_default();
            assert!(err.contains("deposits below 1 credit"), "{err}");
            after += 1;
        }
    }
    assert!(
        before >= 2 && after >= 4,
        "{before} deposits before the switch, {after} after"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n4_pbft_finalizes_survives_a_crash_and_a_leader_failure() {
    four_validators(EngineKind::Pbft).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n4_linear_finalizes_survives_a_crash_and_a_leader_failure() {
    four_validators(EngineKind::Linear).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n4_sbft_finalizes_survives_a_crash_and_a_leader_failure() {
    four_validators(EngineKind::Sbft).await;
}

/// `v2v testnet` starts its validators, they finalize blocks, and Ctrl-C stops them all.
#[test]
fn testnet_command_starts_and_stops_its_validators() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("net");
    let (child, lines) = run_until_line(
        &[
            "testnet",
            "--validators",
            "4",
            "--engine",
            "sbft",
            "--base-dir",
            base.to_str().unwrap(),
        ],
        "Press Ctrl-C",
        Duration::from_secs(60),
    );
    let mut guard = Interrupt(Some(child));
    let urls: Vec<String> = lines
        .iter()
        .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("http://")))
        .map(str::to_string)
        .collect();
    assert_eq!(urls.len(), 4, "{lines:?}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(60);
        for url in &urls {
            let c = client(url);
            loop {
                if let Ok(h) = c.get_header(None).await
                    && h.height >= 3
                {
                    break;
                }
                assert!(Instant::now() < deadline, "{url} did not finalize 3 blocks");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    });
    let exit = guard
        .interrupt()
        .expect("v2v testnet stops within 30 s of Ctrl-C");
    assert!(exit.success(), "v2v testnet exited with {exit}");
    // Every validator process is gone: their RPC ports refuse connections.
    for url in &urls {
        let addr = url.trim_start_matches("http://");
        assert!(
            std::net::TcpStream::connect(addr).is_err(),
            "{addr} still accepts connections"
        );
    }
    assert_logs_exist(&base);
}

fn assert_logs_exist(base: &Path) {
    for i in 0..4 {
        let log = base.join(format!("validator-{i}.log"));
        assert!(log.exists(), "{} missing", log.display());
    }
}

/// A `v2v testnet` process, interrupted (so that it stops its validators) however the test
/// ends.
struct Interrupt(Option<std::process::Child>);

impl Interrupt {
    fn interrupt(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.0.take()?;
        let _ = std::process::Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(s)) = child.try_wait() {
                return Some(s);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Interrupt {
    fn drop(&mut self) {
        self.interrupt();
    }
}

fn hex_decode(s: &str) -> Vec<u8> {
    let s = s.trim_start_matches("0x");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// `v2v bench` runs small `report`, `consensus` and `saturate` workloads end to end and
/// writes their results.
#[test]
fn bench_workloads_write_results() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results");
    let (ok, stdout, stderr) = crate::support::run(&[
        "bench",
        "--engines",
        "sbft",
        "--validators",
        "4",
        "--payloads",
        "8,1024",
        "--clients",
        "2",
        "--requests",
        "3",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{stdout}\n{stderr}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("bench-report.json")).unwrap())
            .unwrap();
    let rows = json["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for (row, payload) in rows.iter().zip([8, 1024]) {
        assert_eq!(row["engine"], "sbft");
        assert_eq!(row["payload_bytes"].as_u64(), Some(payload));
        assert_eq!(row["finalized"], 6, "{row}");
        assert_eq!(row["lost"], 0);
        assert!(row["tx_per_s"].as_f64().unwrap() > 0.0);
        assert_eq!(row["peak_rss_mib"].as_array().unwrap().len(), 4);
    }
    assert!(json["machine"]["cpus"].as_u64().unwrap() >= 1);
    let csv = std::fs::read_to_string(out.join("bench-report.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3);
    // Charts in the report's style: latency and throughput against n, one per payload.
    for chart in [
        "latency-8B",
        "throughput-8B",
        "latency-1KB",
        "throughput-1KB",
    ] {
        let svg = std::fs::read_to_string(out.join(format!("plots/report-{chart}.svg"))).unwrap();
        assert!(svg.contains(">sbft<"), "{chart}");
    }

    // Consensus traffic inside the nodes: every validator's system_metrics, per block.
    let traffic = &rows[0]["consensus"];
    assert!(traffic["blocks"].as_u64().unwrap() >= 1, "{traffic}");
    assert!(traffic["engine_messages_per_block"].as_f64().unwrap() > 0.0);
    for stage in [
        "txCheck",
        "mempool",
        "consensus",
        "build",
        "verify",
        "commit",
    ] {
        assert!(
            traffic["stage_cpu_us_per_tx"][stage].as_f64().unwrap() > 0.0,
            "{stage}: {traffic}"
        );
    }

    // Open loop: the ordering layer alone (payload-only transactions, no client setup),
    // market orders, and market orders against a book, each at two rates.
    // The book workload starts from a genesis book (small here).
    for (workload, engine, payload) in [
        ("consensus", "pbft", "512"),
        ("saturate", "linear", "8"),
        ("book", "sbft", "8"),
    ] {
        let (ok, stdout, stderr) = crate::support::run(&[
            "bench",
            "--workload",
            workload,
            "--engines",
            engine,
            "--validators",
            "4",
            "--payloads",
            payload,
            "--accounts",
            "4",
            "--connections",
            "1",
            "--rates",
            "20,40",
            "--step-secs",
            "2",
            "--all-steps",
            "--book-orders",
            "300",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(ok, "{stdout}\n{stderr}");
        assert!(
            stdout.contains("highest sustained") || stdout.contains("no rate sustained"),
            "{stdout}"
        );
        let json: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(out.join(format!("bench-{workload}.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(json["workload"], workload);
        let row = &json["rows"][0];
        assert_eq!(row["engine"], engine);
        let steps = row["steps"].as_array().unwrap();
        assert_eq!(steps.len(), 2, "{row}");
        for (step, rate) in steps.iter().zip([20.0, 40.0]) {
            assert_eq!(step["offered_tx_per_s"].as_f64(), Some(rate));
            assert_eq!(step["sent"].as_u64(), Some(2 * rate as u64), "{step}");
            assert_eq!(step["finalized"], step["sent"], "{step}");
            assert_eq!(step["lost"], 0);
            assert!(step["sustained"].is_boolean());
            assert!(step["latency_ms_p50"].as_f64().unwrap() > 0.0);
            assert!(step["consensus"]["transactions"].as_u64().unwrap() >= 2 * rate as u64);
        }
        assert!(row["max_sustained_tx_per_s"].as_f64().is_some());
        let csv = std::fs::read_to_string(out.join(format!("bench-{workload}.csv"))).unwrap();
        assert_eq!(csv.lines().count(), 3, "{csv}");
        let svg = out.join(format!("plots/{workload}-{payload}B-n4.svg"));
        assert!(svg.exists(), "{}", svg.display());
    }
}
