//! The open-loop workloads of `v2v bench` (`saturate`, `consensus`, `book`): transactions
//! are sent on a fixed schedule whatever the network does, at a rate that rises step by step
//! until a step cannot be sustained. Latency runs from a transaction's scheduled send time
//! (not from when the generator got round to it, which would hide a backlog) to the
//! `finalized` event of `author_submitAndWatchTransaction`.
//!
//! A step at rate R sends R x `--step-secs` transactions, spread evenly, round-robin over
//! `--accounts` signers and `--connections` WebSocket connections per validator, and then
//! waits for every one of them. It is *sustained* when none was lost (refused, dropped or
//! not final within 60 s), the finalized rate is at least 90 % of R, and the median latency
//! is at most `--max-p50-ms`. The finalized rate is the step's transactions over the time
//! from the first scheduled send to the last finalization, less the smallest latency (the
//! pipeline's fixed delay): below saturation that is the sending time, above it the time to
//! drain the backlog.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use v2v_abi::MarketCall;
use v2v_primitives::{Hash, Keypair};
use v2v_rpc_client::WsClient;

use crate::bench_cmd::{BenchArgs, Measures, Workload, next_call, percentile, process_usage};
use crate::testnet_cmd::Validator;
use crate::wallet::{Call, signed_hex};

/// The node accepts 64 subscriptions per connection; stay under it.
const IN_FLIGHT_PER_CONNECTION: usize = 60;
/// A transaction not final this long after its scheduled time is lost.
const FINALITY_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Step {
    pub offered_tx_per_s: f64,
    pub sent: usize,
    pub finalized: usize,
    pub lost: usize,
    /// The first reason a transaction was lost, if any.
    pub first_loss: Option<String>,
    /// From the step's start to the last finalization.
    pub seconds: f64,
    pub tx_per_s: f64,
    #[serde(flatten)]
    pub m: Measures,
    pub sustained: bool,
}

struct Connection {
    ws: Arc<WsClient>,
    slots: Arc<Semaphore>,
}

struct Account {
    key: Keypair,
    nonce: u64,
}

/// The signers of one run, their connections, and the chain they sign for.
pub(crate) struct Load {
    conns: Vec<Connection>,
    accounts: Vec<Account>,
    chain: Hash,
    rng: ChaCha8Rng,
    next_conn: usize,
}

impl Load {
    pub(crate) async fn connect(
        args: &BenchArgs,
        validators: &[Validator],
        chain: Hash,
    ) -> anyhow::Result<Self> {
        let mut conns = Vec::new();
        for _ in 0..args.connections.max(1) {
            for v in validators {
                let url = format!("ws://127.0.0.1:{}", v.rpc_port);
                conns.push(Connection {
                    ws: Arc::new(v2v_rpc_client::connect_ws(&url).await?),
                    slots: Arc::new(Semaphore::new(IN_FLIGHT_PER_CONNECTION)),
                });
            }
        }
        let accounts = (0..args.accounts.max(1))
            .map(|i| Account {
                key: Keypair::from_name(&format!("bench account {} {i}", args.seed)),
                nonce: 0,
            })
            .collect();
        Ok(Load {
            conns,
            accounts,
            chain,
            rng: ChaCha8Rng::seed_from_u64(args.seed),
            next_conn: 0,
        })
    }

    /// Registers every account, funds it and links a vehicle (market workloads).
    pub(crate) async fn setup_market(&mut self) -> anyhow::Result<()> {
        let mut txs = Vec::new();
        for i in 0..self.accounts.len() {
            let calls = market_setup(&format!("load{i}"), &mut self.rng);
            let a = &mut self.accounts[i];
            for call in calls {
                txs.push(signed_hex(
                    &a.key,
                    self.chain,
                    a.nonce,
                    &Call::from(&call),
                    0,
                ));
                a.nonce += 1;
            }
        }
        let (results, _) = self.send_all(txs, f64::INFINITY).await;
        for r in results {
            r.map_err(|e| anyhow::anyhow!("setting up the bench accounts: {e}"))?;
        }
        Ok(())
    }

    /// Sends `txs` at `rate` per second (all at once if infinite) and waits for each; returns
    /// each one's latency from its scheduled time, and when the sending started.
    async fn send_all(
        &mut self,
        txs: Vec<String>,
        rate: f64,
    ) -> (Vec<Result<Duration, String>>, Instant) {
        let start = Instant::now() + Duration::from_millis(20);
        let mut set = JoinSet::new();
        for (i, hex) in txs.into_iter().enumerate() {
            let at = if rate.is_finite() {
                start + Duration::from_secs_f64(i as f64 / rate)
            } else {
                start
            };
            tokio::time::sleep_until(at.into()).await;
            let conn = &self.conns[self.next_conn % self.conns.len()];
            self.next_conn += 1;
            let Ok(slot) = conn.slots.clone().acquire_owned().await else {
                continue;
            };
            let ws = conn.ws.clone();
            set.spawn(async move {
                let r = v2v_rpc_client::submit_and_watch(&ws, hex, FINALITY_TIMEOUT).await;
                drop(slot);
                r.map(|_| at.elapsed()).map_err(|e| e.to_string())
            });
        }
        let mut results = Vec::with_capacity(set.len());
        while let Some(r) = set.join_next().await {
            results.push(r.unwrap_or_else(|e| Err(format!("client task: {e}"))));
        }
        (results, start)
    }

    /// Signs `count` transactions of the workload, round-robin over the accounts.
    fn sign(&mut self, workload: Workload, count: usize, payload: usize) -> Vec<String> {
        (0..count)
            .map(|i| {
                let call = next_call(workload, &mut self.rng);
                let n = self.accounts.len();
                let a = &mut self.accounts[i % n];
                a.nonce += 1;
                signed_hex(&a.key, self.chain, a.nonce - 1, &call, payload)
            })
            .collect()
    }
}

/// The rates of the ladder: `--rates` if given, else from `--rate-start` up by
/// `--rate-factor` to `--rate-max`.
pub(crate) fn rates(args: &BenchArgs) -> Vec<f64> {
    if !args.rates.is_empty() {
        return args.rates.clone();
    }
    let mut out = Vec::new();
    let mut r = args.rate_start.max(1.0);
    while r <= args.rate_max && out.len() < 64 {
        out.push(r.round());
        r *= args.rate_factor.max(1.05);
    }
    out
}

/// Runs the ladder on a started network; stops at the first step not sustained (unless
/// `--all-steps`).
pub(crate) async fn climb(
    args: &BenchArgs,
    validators: &[Validator],
    load: &mut Load,
    payload: usize,
) -> anyhow::Result<Vec<Step>> {
    let pids: Vec<u32> = validators.iter().map(|v| v.child.id()).collect();
    let mut steps = Vec::new();
    for rate in rates(args) {
        let count = ((rate * args.step_secs).round() as usize).max(1);
        let txs = load.sign(args.workload, count, payload);
        let cpu_before: Vec<f64> = pids.iter().map(|&p| process_usage(p).0).collect();
        let traffic_before = crate::bench_cmd::traffic(validators).await;
        eprint!("  {rate:>8.0} tx/s offered ... ");
        let (results, start) = load.send_all(txs, rate).await;
        let seconds = start.elapsed().as_secs_f64();
        let traffic = crate::bench_cmd::traffic_since(validators, traffic_before).await;
        let usage: Vec<(f64, f64)> = pids.iter().map(|&p| process_usage(p)).collect();
        let mut latencies = Vec::with_capacity(results.len());
        let mut lost = 0;
        let mut first_loss = None;
        for r in results {
            match r {
                Ok(l) => latencies.push(l),
                Err(e) => {
                    lost += 1;
                    first_loss.get_or_insert(e);
                }
            }
        }
        latencies.sort();
        // The step lasts from the first scheduled send to the last finalization, less the
        // pipeline's fixed delay (the smallest latency): below saturation that is the
        // sending time, above it the backlog's drain shows. A lost transaction's timeout
        // does not count.
        let seconds = match (latencies.first(), latencies.last()) {
            (Some(min), Some(max)) => {
                (count as f64 - 1.0) / rate + (max.as_secs_f64() - min.as_secs_f64())
            }
            _ => seconds,
        }
        .max(1.0 / rate);
        let tx_per_s = latencies.len() as f64 / seconds;
        let p50 = percentile(&latencies, 0.50);
        let sustained = lost == 0 && tx_per_s >= 0.9 * rate && p50 <= args.max_p50_ms;
        eprintln!(
            "{tx_per_s:.0} tx/s final, p50 {p50:.0} ms, lost {lost}{}",
            if sustained { "" } else { "  (not sustained)" }
        );
        steps.push(Step {
            offered_tx_per_s: rate,
            sent: count,
            finalized: latencies.len(),
            lost,
            first_loss,
            seconds,
            tx_per_s,
            m: Measures::new(&latencies, &usage, &cpu_before, traffic),
            sustained,
        });
        if !sustained && !args.all_steps {
            break;
        }
    }
    Ok(steps)
}

/// The setup calls of one market client: register, a deposit, a vehicle.
pub(crate) fn market_setup(name: &str, rng: &mut ChaCha8Rng) -> Vec<MarketCall> {
    use rand::Rng;
    vec![
        MarketCall::Register {
            client_id: name.to_string(),
        },
        MarketCall::Deposit {
            amount: 1_000_000_000_000,
        },
        MarketCall::LinkVehicle {
            vehicle_id: format!("{name}-car"),
            capacity_wh: 60_000,
            charge_wh: rng.gen_range(20_000..55_000),
            x: rng.gen_range(0..4_000),
            y: rng.gen_range(0..4_000),
            efficiency_wh_per_km: 150,
            energy_price: 200,
        },
    ]
}

/// The highest sustained step: its finalized rate and the rate offered.
pub(crate) fn best(steps: &[Step]) -> Option<&Step> {
    steps
        .iter()
        .filter(|s| s.sustained)
        .max_by(|a, b| a.tx_per_s.total_cmp(&b.tx_per_s))
}

/// One ladder: an engine, a committee size and a payload.
#[derive(Debug, Serialize)]
pub(crate) struct LadderRow {
    pub engine: String,
    pub validators: usize,
    pub payload_bytes: usize,
    pub accounts: usize,
    /// The finalized rate of the highest sustained step (0 if none was).
    pub max_sustained_tx_per_s: f64,
    pub steps: Vec<Step>,
}

/// Starts the network, sets the accounts up (market workloads), climbs, stops the network.
pub(crate) async fn run(
    args: &BenchArgs,
    engine: crate::spec_cmd::Engine,
    n: usize,
    payload: usize,
) -> anyhow::Result<LadderRow> {
    let dir = tempfile::Builder::new().prefix("v2v-bench-").tempdir()?;
    let (mut validators, chain) =
        crate::bench_cmd::start_network(args, engine, n, dir.path()).await?;
    let result = async {
        let mut load = Load::connect(args, &validators, chain).await?;
        if args.workload != Workload::Consensus {
            eprintln!("  setting up {} accounts", load.accounts.len());
            load.setup_market().await?;
        }
        climb(args, &validators, &mut load, payload).await
    }
    .await;
    crate::testnet_cmd::stop_all(&mut validators);
    let steps = result?;
    Ok(LadderRow {
        engine: format!("{engine:?}").to_lowercase(),
        validators: n,
        payload_bytes: payload,
        accounts: args.accounts,
        max_sustained_tx_per_s: best(&steps).map_or(0.0, |s| s.tx_per_s),
        steps,
    })
}

/// One CSV line per step.
pub(crate) fn write_csv(path: &std::path::Path, rows: &[LadderRow]) -> anyhow::Result<()> {
    let mut out = String::from(
        "engine,validators,payload_bytes,offered_tx_per_s,sent,finalized,lost,seconds,tx_per_s,\
         p50_ms,p95_ms,p99_ms,max_ms,cpu_s_total,peak_rss_mib_max,engine_msgs_per_block,\
         engine_bytes_per_block,sustained\n",
    );
    for r in rows {
        for s in &r.steps {
            let c = s.m.consensus.as_ref();
            out += &format!(
                "{},{},{},{:.0},{},{},{},{:.3},{:.1},{},{:.1},{:.0},{}\n",
                r.engine,
                r.validators,
                r.payload_bytes,
                s.offered_tx_per_s,
                s.sent,
                s.finalized,
                s.lost,
                s.seconds,
                s.tx_per_s,
                s.m.csv_fields(),
                c.map_or(0.0, |c| c.engine_messages_per_block),
                c.map_or(0.0, |c| c.engine_bytes_per_block),
                s.sustained,
            );
        }
    }
    std::fs::write(path, out)?;
    Ok(())
}
