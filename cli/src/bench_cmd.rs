//! `v2v bench`: the report's evaluation on our node (../shared/seed/, chapter 7). For each
//! engine, committee size and payload it starts the validators as separate `v2v node`
//! processes on loopback (real libp2p and RocksDB), drives them from client tasks over
//! JSON-RPC WebSocket, and measures end to end: finalized transactions per second, latency
//! from submission to the `finalized` event of `author_submitAndWatchTransaction` (p50, p95,
//! p99, max), and CPU seconds and peak RSS per validator. Results go to
//! `OUT/bench-<workload>.json` and `.csv`.
//!
//! Workload `report`: `--clients` clients (10) each send `--requests` (200) market orders
//! with random parameters from a fixed seed, one at a time (a client sends its next order
//! once the previous one is final), padded by the memo to the payload size (8 B, 1 KB,
//! 10 KB). Each client first registers, deposits and links a vehicle (not measured).
//!
//! The open-loop workloads (`bench_ladder.rs`) send at a rate that rises step by step until
//! it cannot be sustained:
//! - `saturate`: market orders, as in `report`, from `--accounts` signers;
//! - `consensus`: payload-only transactions (`system.memo`: no contract call, the memo is the
//!   payload), to measure the ordering layer alone.
//!
//! Every row also reads each validator's `system_metrics` before and after: consensus
//! messages and bytes per finalized block, and the CPU time per transaction of each stage.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, ValueEnum};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use v2v_abi::{MEMO_METHOD, MarketCall};
use v2v_primitives::{Hash, Keypair};
use v2v_rpc_client::{HttpClient, NodeMetrics, SystemApiClient, WsClient};

use crate::testnet_cmd::{Validator, free_ports, spawn_validator, stop_all};
use crate::wallet::{Call, signed_hex};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// The report's study: closed-loop clients sending market orders.
    Report,
    /// Open loop, rising rate: market orders.
    Saturate,
    /// Open loop, rising rate: payload-only transactions (no contract call).
    Consensus,
    /// Open loop, rising rate: market orders against a book of `--book-orders` resting
    /// orders, in genesis.
    Book,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::Report => "report",
            Workload::Saturate => "saturate",
            Workload::Consensus => "consensus",
            Workload::Book => "book",
        }
    }
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[arg(long, value_enum, default_value = "report")]
    pub workload: Workload,
    /// Engines to measure.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "pbft,linear,sbft"
    )]
    engines: Vec<crate::spec_cmd::Engine>,
    /// Committee sizes.
    #[arg(long, value_delimiter = ',', default_value = "4,8,16,32,64")]
    validators: Vec<usize>,
    /// Memo padding per transaction, in bytes.
    #[arg(long, value_delimiter = ',', default_value = "8,1024,10240")]
    payloads: Vec<usize>,
    #[arg(long, default_value_t = 10)]
    clients: usize,
    /// Requests per client.
    #[arg(long, default_value_t = 200)]
    requests: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where the results go.
    #[arg(long, default_value = "bench-results")]
    out: PathBuf,
    /// Open loop: signers sending round-robin.
    #[arg(long, default_value_t = 256)]
    pub accounts: usize,
    /// Open loop: WebSocket connections per validator.
    #[arg(long, default_value_t = 16)]
    pub connections: usize,
    /// Open loop: the rates to try, in transactions per second (overrides the ladder below).
    #[arg(long, value_delimiter = ',')]
    pub rates: Vec<f64>,
    /// Open loop: the first rate of the ladder.
    #[arg(long, default_value_t = 250.0)]
    pub rate_start: f64,
    /// Open loop: each step's rate over the previous one's.
    #[arg(long, default_value_t = 1.5)]
    pub rate_factor: f64,
    /// Open loop: the highest rate tried.
    #[arg(long, default_value_t = 200_000.0)]
    pub rate_max: f64,
    /// Open loop: seconds of sending per step.
    #[arg(long, default_value_t = 10.0)]
    pub step_secs: f64,
    /// Open loop: a step whose median latency exceeds this is not sustained.
    #[arg(long, default_value_t = 1000.0)]
    pub max_p50_ms: f64,
    /// Open loop: run every rate, even after one was not sustained.
    #[arg(long)]
    pub all_steps: bool,
    /// Workload book: resting orders in genesis.
    #[arg(long, default_value_t = 100_000)]
    pub book_orders: usize,
}

#[derive(Debug, Serialize)]
struct Row {
    engine: String,
    validators: usize,
    payload_bytes: usize,
    clients: usize,
    finalized: usize,
    lost: usize,
    seconds: f64,
    tx_per_s: f64,
    #[serde(flatten)]
    m: Measures,
}

/// Latency percentiles, and each validator's CPU and memory, over a measured phase.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Measures {
    pub latency_ms_p50: f64,
    pub latency_ms_p95: f64,
    pub latency_ms_p99: f64,
    pub latency_ms_max: f64,
    /// CPU seconds of each validator process during the measured phase.
    pub cpu_s: Vec<f64>,
    /// Peak resident set of each validator process, MiB.
    pub peak_rss_mib: Vec<f64>,
    pub consensus: Option<ConsensusTraffic>,
}

impl Measures {
    /// p50, p95, p99 and max latency (ms), CPU seconds and peak RSS, as CSV fields.
    pub(crate) fn csv_fields(&self) -> String {
        format!(
            "{:.1},{:.1},{:.1},{:.1},{:.2},{:.1}",
            self.latency_ms_p50,
            self.latency_ms_p95,
            self.latency_ms_p99,
            self.latency_ms_max,
            self.cpu_total(),
            self.rss_max()
        )
    }

    /// From sorted latencies, each validator's (CPU seconds, peak RSS) now and its CPU
    /// seconds when the phase began.
    pub(crate) fn new(
        sorted: &[Duration],
        usage: &[(f64, f64)],
        cpu_before: &[f64],
        consensus: Option<ConsensusTraffic>,
    ) -> Self {
        Measures {
            latency_ms_p50: percentile(sorted, 0.50),
            latency_ms_p95: percentile(sorted, 0.95),
            latency_ms_p99: percentile(sorted, 0.99),
            latency_ms_max: percentile(sorted, 1.0),
            cpu_s: usage
                .iter()
                .zip(cpu_before)
                .map(|((after, _), before)| after - before)
                .collect(),
            peak_rss_mib: usage.iter().map(|(_, rss)| *rss).collect(),
            consensus,
        }
    }

    pub(crate) fn cpu_total(&self) -> f64 {
        self.cpu_s.iter().sum()
    }

    pub(crate) fn rss_max(&self) -> f64 {
        self.peak_rss_mib.iter().copied().fold(0.0, f64::max)
    }
}

/// What the validators' `system_metrics` counted over a measured phase.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ConsensusTraffic {
    /// Blocks and transactions finalized (by the validator furthest ahead when read).
    pub blocks: u64,
    pub transactions: u64,
    /// Consensus engine messages and their bytes, all validators together, per block.
    pub engine_messages_per_block: f64,
    pub engine_bytes_per_block: f64,
    /// Proposal bodies pushed to the other validators, bytes per block.
    pub body_bytes_per_block: f64,
    /// Transaction gossip messages published per finalized transaction.
    pub gossip_messages_per_tx: f64,
    /// CPU microseconds per finalized transaction in each stage, all validators together.
    pub stage_cpu_us_per_tx: BTreeMap<String, f64>,
}

/// Every validator's counters now (None for one that did not answer).
pub(crate) async fn traffic(validators: &[Validator]) -> Vec<Option<NodeMetrics>> {
    let mut out = Vec::with_capacity(validators.len());
    for v in validators {
        let m = match client(&format!("http://127.0.0.1:{}", v.rpc_port)) {
            Ok(c) => c.metrics().await.ok(),
            Err(_) => None,
        };
        out.push(m);
    }
    out
}

/// The counters' growth since `before`, per block and per transaction.
pub(crate) async fn traffic_since(
    validators: &[Validator],
    before: Vec<Option<NodeMetrics>>,
) -> Option<ConsensusTraffic> {
    let after = traffic(validators).await;
    let pairs: Vec<(NodeMetrics, NodeMetrics)> = before
        .into_iter()
        .zip(after)
        .map(|(b, a)| Some((b?, a?)))
        .collect::<Option<_>>()?;
    // The validator furthest ahead: the others may not have finalized the last block yet.
    let (b0, a0) = pairs.iter().max_by_key(|(_, a)| a.finalized_blocks)?;
    let blocks = a0.finalized_blocks.saturating_sub(b0.finalized_blocks);
    let txs = a0
        .finalized_transactions
        .saturating_sub(b0.finalized_transactions);
    let sum = |f: fn(&NodeMetrics) -> u64| -> f64 {
        pairs
            .iter()
            .map(|(b, a)| f(a).saturating_sub(f(b)) as f64)
            .sum()
    };
    let per_block = |x: f64| x / (blocks.max(1) as f64);
    let mut stages = BTreeMap::new();
    for (b, a) in &pairs {
        for s in &a.stages {
            let was = b
                .stages
                .iter()
                .find(|x| x.name == s.name)
                .map_or(0, |x| x.cpu_ns);
            *stages.entry(s.name.clone()).or_insert(0.0) +=
                s.cpu_ns.saturating_sub(was) as f64 / 1000.0 / (txs.max(1) as f64);
        }
    }
    Some(ConsensusTraffic {
        blocks,
        transactions: txs,
        engine_messages_per_block: per_block(sum(|m| m.engine_messages_sent)),
        engine_bytes_per_block: per_block(sum(|m| m.engine_bytes_sent)),
        body_bytes_per_block: per_block(sum(|m| m.block_bytes_sent)),
        gossip_messages_per_tx: sum(|m| m.gossip_messages_sent) / (txs.max(1) as f64),
        stage_cpu_us_per_tx: stages,
    })
}

#[derive(Debug, Serialize)]
struct Machine {
    cpus: usize,
    memory_mib: u64,
    kernel: String,
    cpu_model: String,
}

fn machine() -> Machine {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let memory_kib: u64 = read("/proc/meminfo")
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0);
    Machine {
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        memory_mib: memory_kib / 1024,
        kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
        cpu_model: read("/proc/cpuinfo")
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .unwrap_or("")
            .trim()
            .to_string(),
    }
}

fn git_commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// (CPU seconds so far, peak RSS in MiB) of a process, from /proc.
pub(crate) fn process_usage(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<f64>().ok())
        .sum();
    let hwm_kib: f64 = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0.0);
    // The kernel's USER_HZ is 100 on Linux.
    (ticks / 100.0, hwm_kib / 1024.0)
}

pub(crate) fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

fn client(url: &str) -> anyhow::Result<HttpClient> {
    Ok(v2v_rpc_client::connect_http(url)?)
}

struct Sender {
    key: Keypair,
    chain: Hash,
    nonce: u64,
    ws: WsClient,
}

impl Sender {
    /// Submits a call through `author_submitAndWatchTransaction` and waits for its
    /// `finalized` event; returns the latency. The nonce is kept here, so the measured path
    /// is one submission and the node's notification. A call the contract refused (a sell
    /// beyond the car's charge, say) is finalized all the same and counts.
    async fn send(&mut self, call: &Call, memo: usize) -> anyhow::Result<Duration> {
        let hex = signed_hex(&self.key, self.chain, self.nonce, call, memo);
        self.nonce += 1;
        let started = Instant::now();
        v2v_rpc_client::submit_and_watch(&self.ws, hex, Duration::from_secs(60)).await?;
        Ok(started.elapsed())
    }
}

/// What the measured phase sends: a random market order, or a payload-only transaction.
pub(crate) fn next_call(workload: Workload, rng: &mut ChaCha8Rng) -> Call {
    match workload {
        Workload::Report | Workload::Saturate | Workload::Book => Call::from(&random_order(rng)),
        Workload::Consensus => Call {
            method: MEMO_METHOD.into(),
            args: vec![],
        },
    }
}

fn random_order(rng: &mut ChaCha8Rng) -> MarketCall {
    if rng.gen_bool(0.5) {
        MarketCall::Sell {
            amount_wh: rng.gen_range(100..5_000),
            price: rng.gen_range(150..400),
        }
    } else {
        MarketCall::Buy {
            amount_wh: rng.gen_range(100..5_000),
            max_unit_cost: rng.gen_bool(0.7).then(|| rng.gen_range(200..700)),
        }
    }
}

/// Starts `n` validators of `engine` under `dir`; returns them and the genesis hash once
/// every one answers.
pub(crate) async fn start_network(
    args: &BenchArgs,
    engine: crate::spec_cmd::Engine,
    n: usize,
    dir: &Path,
) -> anyhow::Result<(Vec<Validator>, Hash)> {
    let keys = dir.join("keys");
    std::fs::create_dir_all(&keys)?;
    let ports = free_ports(2 * n)?;
    let (mut spec, _) = v2v_chain_spec::local_at(engine.into(), &ports[..n], &keys)?;
    if args.workload == Workload::Book {
        let started = Instant::now();
        crate::bench_book::fill(&mut spec, args.book_orders, args.seed)?;
        eprintln!(
            "  genesis book of {} resting orders built in {:.1} s ({} storage entries)",
            args.book_orders,
            started.elapsed().as_secs_f64(),
            spec.genesis.storage.len()
        );
    }
    let spec_path = dir.join("chain-spec.json");
    spec.save(&spec_path)?;
    let exe = std::env::current_exe()?;
    let mut validators = Vec::with_capacity(n);
    for (i, v) in spec.validators.iter().enumerate() {
        let key = keys.join(format!("{}.json", v.name));
        match spawn_validator(&exe, dir, &spec_path, &key, &v.name, ports[n + i]) {
            Ok(v) => validators.push(v),
            Err(e) => {
                stop_all(&mut validators);
                return Err(e);
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut chain = Hash::ZERO;
    for v in &validators {
        let c = client(&format!("http://127.0.0.1:{}", v.rpc_port));
        loop {
            if let Ok(info) = match &c {
                Ok(c) => c.chain().await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            } {
                chain = info.genesis_hash;
                break;
            }
            if Instant::now() > deadline {
                let why = format!("{} did not start; see {}", v.name, v.log.display());
                stop_all(&mut validators);
                anyhow::bail!(why);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok((validators, chain))
}

async fn run_one(
    args: &BenchArgs,
    engine: crate::spec_cmd::Engine,
    n: usize,
    payload: usize,
) -> anyhow::Result<Row> {
    let dir = tempfile::Builder::new().prefix("v2v-bench-").tempdir()?;
    let (mut validators, chain) = start_network(args, engine, n, dir.path()).await?;
    let result = drive(args, &validators, chain, payload).await;
    let usage: Vec<(f64, f64)> = validators
        .iter()
        .map(|v| process_usage(v.child.id()))
        .collect();
    stop_all(&mut validators);
    let (latencies, lost, seconds, cpu_before, consensus) = result?;
    let mut sorted = latencies;
    sorted.sort();
    Ok(Row {
        engine: format!("{:?}", engine).to_lowercase(),
        validators: n,
        payload_bytes: payload,
        clients: args.clients,
        finalized: sorted.len(),
        lost,
        seconds,
        tx_per_s: sorted.len() as f64 / seconds.max(1e-9),
        m: Measures::new(&sorted, &usage, &cpu_before, consensus),
    })
}

type Measured = (
    Vec<Duration>,
    usize,
    f64,
    Vec<f64>,
    Option<ConsensusTraffic>,
);

async fn drive(
    args: &BenchArgs,
    validators: &[Validator],
    chain: Hash,
    payload: usize,
) -> anyhow::Result<Measured> {
    // Setup, not measured: every client registers, deposits and links a vehicle.
    let mut senders = Vec::with_capacity(args.clients);
    for c in 0..args.clients {
        let key = Keypair::from_name(&format!("bench client {} {c}", args.seed));
        let mut rng = ChaCha8Rng::seed_from_u64(args.seed ^ (c as u64) << 32);
        let url = format!(
            "ws://127.0.0.1:{}",
            validators[c % validators.len()].rpc_port
        );
        let s = Sender {
            key,
            chain,
            nonce: 0,
            ws: v2v_rpc_client::connect_ws(&url).await?,
        };
        let setup = if args.workload == Workload::Consensus {
            Vec::new()
        } else {
            crate::bench_ladder::market_setup(&format!("bench{c}"), &mut rng)
        };
        senders.push((s, rng, setup));
    }
    // Each client's setup in order, the clients at once (a block carries all of them).
    futures::future::try_join_all(senders.iter_mut().map(|(s, _, setup)| async move {
        for call in setup.iter() {
            s.send(&Call::from(call), 0).await?;
        }
        anyhow::Ok(())
    }))
    .await?;
    let senders: Vec<_> = senders.into_iter().map(|(s, rng, _)| (s, rng)).collect();
    let cpu_before: Vec<f64> = validators
        .iter()
        .map(|v| process_usage(v.child.id()).0)
        .collect();
    let traffic_before = traffic(validators).await;
    let done = Arc::new(AtomicUsize::new(0));
    let total = args.clients * args.requests;
    let started = Instant::now();
    let ticker = {
        let done = done.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let d = done.load(Ordering::Relaxed);
                eprint!(
                    "\r  {d}/{total} final, {:.0} tx/s   ",
                    d as f64 / started.elapsed().as_secs_f64()
                );
            }
        })
    };
    let mut tasks = Vec::with_capacity(senders.len());
    for (mut s, mut rng) in senders {
        let (requests, done, workload) = (args.requests, done.clone(), args.workload);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(requests);
            let mut lost = 0;
            for _ in 0..requests {
                match s.send(&next_call(workload, &mut rng), payload).await {
                    Ok(l) => latencies.push(l),
                    Err(_) => lost += 1,
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            (latencies, lost)
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    let mut lost = 0;
    for t in tasks {
        let (l, n) = t.await.context("client task")?;
        latencies.extend(l);
        lost += n;
    }
    let seconds = started.elapsed().as_secs_f64();
    ticker.abort();
    eprintln!();
    let consensus = traffic_since(validators, traffic_before).await;
    Ok((latencies, lost, seconds, cpu_before, consensus))
}

fn write_csv(path: &Path, rows: &[Row]) -> anyhow::Result<()> {
    let mut out = String::from(
        "engine,validators,payload_bytes,clients,finalized,lost,seconds,tx_per_s,\
         p50_ms,p95_ms,p99_ms,max_ms,cpu_s_total,peak_rss_mib_max\n",
    );
    for r in rows {
        out += &format!(
            "{},{},{},{},{},{},{:.3},{:.1},{}\n",
            r.engine,
            r.validators,
            r.payload_bytes,
            r.clients,
            r.finalized,
            r.lost,
            r.seconds,
            r.tx_per_s,
            r.m.csv_fields(),
        );
    }
    std::fs::write(path, out)?;
    Ok(())
}

pub async fn bench(args: BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.clients > 0 && args.requests > 0,
        "--clients and --requests must be positive"
    );
    anyhow::ensure!(
        args.step_secs > 0.0 && args.accounts > 0 && args.connections > 0,
        "--step-secs, --accounts and --connections must be positive"
    );
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let stem = format!("bench-{}", args.workload.name());
    let json = args.out.join(format!("{stem}.json"));
    let csv = args.out.join(format!("{stem}.csv"));
    let header = |rows: serde_json::Value| {
        serde_json::json!({
            "workload": args.workload,
            "seed": args.seed,
            "clients": args.clients,
            "requests_per_client": args.requests,
            "accounts": args.accounts,
            "step_secs": args.step_secs,
            "max_p50_ms": args.max_p50_ms,
            "machine": machine(),
            "git_commit": git_commit(),
            "rows": rows,
        })
    };
    // The files are rewritten after every row, so an interrupted or failed run keeps what it
    // measured.
    let save = |rows: serde_json::Value| -> anyhow::Result<serde_json::Value> {
        let results = header(rows);
        std::fs::write(&json, serde_json::to_string_pretty(&results)?)?;
        Ok(results)
    };
    let work = async {
        if args.workload == Workload::Report {
            let rows = closed_loop(&args, |rows| {
                write_csv(&csv, rows)?;
                save(serde_json::to_value(rows)?).map(drop)
            })
            .await?;
            save(serde_json::to_value(&rows)?)
        } else {
            let rows = open_loop(&args, |rows| {
                crate::bench_ladder::write_csv(&csv, rows)?;
                save(serde_json::to_value(rows)?).map(drop)
            })
            .await?;
            save(serde_json::to_value(&rows)?)
        }
    };
    // Ctrl-C drops the run: its validators are stopped as they are dropped.
    let results = tokio::select! {
        results = work => results?,
        _ = tokio::signal::ctrl_c() => {
            anyhow::bail!("interrupted; the rows measured so far are in {}", json.display())
        }
    };
    println!("wrote {} and {}", json.display(), csv.display());
    let plots = crate::bench_plot::plot(&[results], &args.out.join("plots"))?;
    for p in plots {
        println!("wrote {}", p.display());
    }
    Ok(())
}

/// One open-loop ladder per engine, committee size and payload.
async fn open_loop(
    args: &BenchArgs,
    mut save: impl FnMut(&[crate::bench_ladder::LadderRow]) -> anyhow::Result<()>,
) -> anyhow::Result<Vec<crate::bench_ladder::LadderRow>> {
    let mut rows = Vec::new();
    for &engine in &args.engines {
        for &n in &args.validators {
            for &payload in &args.payloads {
                eprintln!("{engine:?}, {n} validators, {payload} B payload:");
                let row = crate::bench_ladder::run(args, engine, n, payload).await?;
                match crate::bench_ladder::best(&row.steps) {
                    Some(s) => println!(
                        "{:<7} {:>3} {:>7}  highest sustained: {:.0} tx/s (offered {:.0}), p50 {:.1} ms, p99 {:.1} ms",
                        row.engine,
                        n,
                        payload,
                        s.tx_per_s,
                        s.offered_tx_per_s,
                        s.m.latency_ms_p50,
                        s.m.latency_ms_p99
                    ),
                    None => println!(
                        "{:<7} {:>3} {:>7}  no rate sustained",
                        row.engine, n, payload
                    ),
                }
                rows.push(row);
                save(&rows)?;
            }
        }
    }
    Ok(rows)
}

/// The report's closed loop per engine, committee size and payload.
async fn closed_loop(
    args: &BenchArgs,
    mut save: impl FnMut(&[Row]) -> anyhow::Result<()>,
) -> anyhow::Result<Vec<Row>> {
    println!(
        "{:<7} {:>3} {:>7} {:>9} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9}",
        "engine",
        "n",
        "payload",
        "tx/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "cpu s",
        "rss MiB"
    );
    let mut rows = Vec::new();
    for &engine in &args.engines {
        for &n in &args.validators {
            for &payload in &args.payloads {
                eprintln!("{engine:?}, {n} validators, {payload} B payload:");
                let row = run_one(args, engine, n, payload).await?;
                println!(
                    "{:<7} {:>3} {:>7} {:>9.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>9.2} {:>9.1}",
                    row.engine,
                    row.validators,
                    row.payload_bytes,
                    row.tx_per_s,
                    row.m.latency_ms_p50,
                    row.m.latency_ms_p95,
                    row.m.latency_ms_p99,
                    row.m.latency_ms_max,
                    row.m.cpu_total(),
                    row.m.rss_max(),
                );
                rows.push(row);
                save(&rows)?;
            }
        }
    }
    Ok(rows)
}
