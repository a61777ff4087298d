//! `consensus-scale`: how the engines' cost grows with the committee. For each engine and
//! committee size, an all-honest simulation (fixed seed, 1 ms ± 0.2 ms links) runs until
//! every replica has finalized `--blocks` heights; the table gives messages and bytes per
//! block, commit latency in virtual milliseconds (block ready at the leader -> commit at each
//! replica) and the wall-clock time the simulation took (all replicas on one thread: it
//! measures the total CPU work of signing and verifying, not a deployment).
//!
//! ```sh
//! cargo run --release -p v2v-consensus-sim --bin consensus-scale -- \
//!     [--engines pbft,linear,sbft] [--sizes 4,8,16,32,64,128] [--blocks 10] \
//!     [--large-blocks 5] [--seed 1] [--out bench-results/consensus-scale.json]
//! ```
//!
//! `--large-blocks` is the number of heights for n >= 64 (defaults to `--blocks`), where a
//! height costs the most CPU.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use serde::Serialize;
use v2v_consensus_sim::{LinkConfig, SimConfig, Simulation};

struct Args {
    engines: Vec<String>,
    sizes: Vec<usize>,
    blocks: u64,
    large_blocks: Option<u64>,
    seed: u64,
    deadline_ms: u64,
    out: Option<PathBuf>,
}

const USAGE: &str = "usage: consensus-scale [--engines pbft,linear,sbft] [--sizes 4,8,16,32,64,128] \
[--blocks 10] [--large-blocks N] [--seed 1] [--deadline-ms 600000] [--out FILE.json]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        engines: vec!["pbft".into(), "linear".into(), "sbft".into()],
        sizes: vec![4, 8, 16, 32, 64, 128],
        blocks: 10,
        large_blocks: None,
        seed: 1,
        deadline_ms: 600_000,
        out: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            return Err(USAGE.into());
        }
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let number = |v: &str| {
            v.parse::<u64>()
                .map_err(|e| format!("{flag} {v}: {e}\n{USAGE}"))
        };
        match flag.as_str() {
            "--engines" => args.engines = value.split(',').map(str::to_string).collect(),
            "--sizes" => {
                args.sizes = value
                    .split(',')
                    .map(|s| number(s).map(|n| n as usize))
                    .collect::<Result<_, _>>()?;
            }
            "--blocks" => args.blocks = number(&value)?,
            "--large-blocks" => args.large_blocks = Some(number(&value)?),
            "--seed" => args.seed = number(&value)?,
            "--deadline-ms" => args.deadline_ms = number(&value)?,
            "--out" => args.out = Some(PathBuf::from(value)),
            _ => return Err(format!("unknown option {flag}\n{USAGE}")),
        }
    }
    Ok(args)
}

#[derive(Serialize)]
struct Row {
    engine: String,
    n: usize,
    blocks_target: u64,
    /// Heights every replica finalized (below the target if the deadline passed first).
    blocks_committed: u64,
    reached: bool,
    messages_per_block: f64,
    bytes_per_block: f64,
    latency_p50_ms: f64,
    latency_p95_ms: f64,
    latency_max_ms: f64,
    fast_certificates: u64,
    slow_certificates: u64,
    signature_certificates: u64,
    virtual_ms: f64,
    events: u64,
    wall_seconds: f64,
    digest: String,
}

#[derive(Serialize)]
struct Results {
    benchmark: &'static str,
    seed: u64,
    link: LinkConfig,
    build_delay_us: u64,
    verify_delay_us: u64,
    round_timeout_ms: u64,
    view_change_timeout_ms: u64,
    fast_path_timeout_ms: u64,
    release_build: bool,
    rows: Vec<Row>,
}

fn run(engine: &str, n: usize, blocks: u64, args: &Args) -> Result<Row, String> {
    let config = SimConfig::new(engine, n, args.seed);
    let mut sim = Simulation::new(config, &[]).map_err(|e| format!("{engine} n={n}: {e}"))?;
    let started = Instant::now();
    let reached = sim
        .run_until_height(blocks, args.deadline_ms)
        .map_err(|v| format!("{engine} n={n}: {v}"))?;
    let wall_seconds = started.elapsed().as_secs_f64();
    let report = sim.report();
    Ok(Row {
        engine: engine.to_string(),
        n,
        blocks_target: blocks,
        blocks_committed: report.committed_height,
        reached,
        messages_per_block: report.messages_per_block,
        bytes_per_block: report.bytes_per_block,
        latency_p50_ms: report.latency.p50_ms,
        latency_p95_ms: report.latency.p95_ms,
        latency_max_ms: report.latency.max_ms,
        fast_certificates: report.fast_certificates,
        slow_certificates: report.slow_certificates,
        signature_certificates: report.signature_certificates,
        virtual_ms: report.virtual_time_ms,
        events: report.stats.events,
        wall_seconds,
        digest: report.digest,
    })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build; wall-clock times mean little (use --release)");
    }
    let defaults = SimConfig::new("pbft", 1, args.seed);
    let mut results = Results {
        benchmark: "consensus-scale",
        seed: args.seed,
        link: defaults.link,
        build_delay_us: defaults.build_delay_us,
        verify_delay_us: defaults.verify_delay_us,
        round_timeout_ms: defaults.timing.round_timeout_ms,
        view_change_timeout_ms: defaults.timing.view_change_timeout_ms,
        fast_path_timeout_ms: defaults.timing.fast_path_timeout_ms,
        release_build: !cfg!(debug_assertions),
        rows: Vec::new(),
    };
    println!(
        "{:<7} {:>4} {:>7} {:>10} {:>12} {:>9} {:>9} {:>14} {:>9}",
        "engine",
        "n",
        "blocks",
        "msgs/blk",
        "bytes/blk",
        "p50 ms",
        "p95 ms",
        "fast/slow/sig",
        "wall s"
    );
    let mut failed = false;
    for engine in &args.engines {
        for &n in &args.sizes {
            let blocks = if n >= 64 {
                args.large_blocks.unwrap_or(args.blocks)
            } else {
                args.blocks
            };
            match run(engine, n, blocks, &args) {
                Ok(row) => {
                    println!(
                        "{:<7} {:>4} {:>7} {:>10.1} {:>12.0} {:>9.2} {:>9.2} {:>14} {:>9.2}{}",
                        row.engine,
                        row.n,
                        row.blocks_committed,
                        row.messages_per_block,
                        row.bytes_per_block,
                        row.latency_p50_ms,
                        row.latency_p95_ms,
                        format!(
                            "{}/{}/{}",
                            row.fast_certificates,
                            row.slow_certificates,
                            row.signature_certificates
                        ),
                        row.wall_seconds,
                        if row.reached {
                            ""
                        } else {
                            "  (deadline passed before the target)"
                        },
                    );
                    results.rows.push(row);
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    failed = true;
                }
            }
        }
    }
    if let Some(path) = &args.out {
        let json = match serde_json::to_string_pretty(&results) {
            Ok(j) => j,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && let Err(e) = std::fs::create_dir_all(dir)
        {
            eprintln!("error: {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
        if let Err(e) = std::fs::write(path, json + "\n") {
            eprintln!("error: {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        println!("wrote {}", path.display());
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
