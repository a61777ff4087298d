//! The primitives a transaction's path is made of, timed on one core of this machine: the
//! limits that the per-transaction cost budget of docs/benchmarks.md is measured against.
//!
//! cargo run --release -p v2v-service --example primitives_bench -- [--out FILE]
//!
//! Each figure is the node's own code path, not the library's: `v2v_crypto`'s ed25519 and
//! BLS wrappers, `Hash::digest` (blake3), the market contract run through `v2v_runtime`
//! (a fresh instance per call, fuel metering on, as the executor runs it), and
//! `RocksStore`'s block commit (one write batch per block).

use std::time::{Duration, Instant};

use v2v_crypto::{BlsKeypair, Keypair};
use v2v_primitives::{Block, Hash, Header};
use v2v_runtime::{CallContext, ContractStorage, Entry, Limits, Runtime};
use v2v_storage::{BlockCommit, RocksStore};

struct Figure {
    name: &'static str,
    per_op: Duration,
    unit: &'static str,
    note: String,
}

/// Runs `op` `n` times (after a tenth as warm-up) and returns the mean time per run.
fn time(n: u32, mut op: impl FnMut(u32)) -> Duration {
    for i in 0..n / 10 {
        op(i);
    }
    let started = Instant::now();
    for i in 0..n {
        op(i);
    }
    started.elapsed() / n
}

fn figure(
    name: &'static str,
    n: u32,
    unit: &'static str,
    note: &str,
    op: impl FnMut(u32),
) -> Figure {
    Figure {
        name,
        per_op: time(n, op),
        unit,
        note: note.into(),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let out = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| "bench-results/primitives.json".into());
    let mut figures = Vec::new();

    // ed25519: what admission does once per transaction on every validator.
    let key = Keypair::from_name("primitives bench");
    let message = vec![7u8; 200];
    let signature = key.sign(&message);
    let public = key.public();
    figures.push(figure(
        "ed25519 sign",
        20_000,
        "per signature",
        "200 B message",
        |_| {
            std::hint::black_box(key.sign(&message));
        },
    ));
    figures.push(figure(
        "ed25519 verify",
        20_000,
        "per signature",
        "200 B message, one at a time",
        |_| public.verify(&message, &signature).expect("valid"),
    ));

    // blake3: transaction hashes, block hashes, the state accumulator.
    for size in [64usize, 1024, 16 * 1024] {
        let data = vec![1u8; size];
        let per_op = time(200_000 / (size as u32 / 64).max(1) * 4, |i| {
            std::hint::black_box(Hash::digest(&i.to_le_bytes(), &data));
        });
        figures.push(Figure {
            name: "blake3",
            per_op,
            unit: "per hash",
            note: format!(
                "{size} B input: {:.2} GB/s",
                size as f64 / per_op.as_secs_f64() / 1e9
            ),
        });
    }

    // BLS (blst, min_pk): the linear engines' vote shares and certificates, per block.
    let bls = BlsKeypair::from_ikm(&[9u8; 32])?;
    let bls_public = bls.public();
    let bls_signature = bls.sign(&message);
    figures.push(figure("BLS sign", 2_000, "per signature", "min_pk", |_| {
        std::hint::black_box(bls.sign(&message));
    }));
    figures.push(figure(
        "BLS verify",
        1_000,
        "per signature",
        "min_pk",
        |_| bls_public.verify(&message, &bls_signature).expect("valid"),
    ));

    // The market contract in wasmtime, as the executor calls it: a call that the contract
    // refuses at decoding (instantiation, entry, host calls for the input, the error) is the
    // fixed cost every transaction pays before any market logic.
    let runtime = Runtime::new(Limits::default())?;
    let contract = runtime.load(v2v_chain_spec::MARKET_WASM)?;
    let mut storage = ContractStorage::new();
    let mut fuel = 0;
    let per_call = time(5_000, |i| {
        let ctx = CallContext {
            caller: [1; 32],
            height: u64::from(i),
            timestamp: 0,
        };
        let (back, outcome) = runtime.run(
            &contract,
            std::mem::take(&mut storage),
            ctx,
            Entry::Call,
            b"not a call".to_vec(),
        );
        assert!(outcome.result.is_err(), "garbage must be refused");
        fuel = outcome.fuel_used;
        storage = back;
    });
    figures.push(Figure {
        name: "wasmtime market call",
        per_op: per_call,
        unit: "per call",
        note: format!("fresh instance, refused at decoding, {fuel} fuel"),
    });

    // RocksDB: one write batch per block, as a validator commits a finalized block.
    let dir = tempfile::tempdir()?;
    let store = RocksStore::open(dir.path())?;
    const WRITES: usize = 1_000;
    let mut parent = None::<Hash>;
    let mut height = 0u64;
    let mut commit = |writes: usize| -> Result<(), v2v_storage::StoreError> {
        let block = Block {
            header: Header {
                height,
                parent_hash: parent.unwrap_or(Hash::ZERO),
                state_root: Hash::ZERO,
                tx_root: Hash::ZERO,
                proposer: key.public(),
                view: 0,
                timestamp: 0,
            },
            txs: Vec::new(),
        };
        let contract_writes = (0..writes)
            .map(|w| {
                let k = Hash::digest(
                    b"key",
                    &[height.to_le_bytes(), (w as u64).to_le_bytes()].concat(),
                );
                (k.0.to_vec(), Some(vec![3u8; 100]))
            })
            .collect();
        let c = BlockCommit {
            block,
            certificate: vec![0; 200],
            receipts: Vec::new(),
            contract_writes,
            nonce_writes: Vec::new(),
            accumulator: vec![0; 64],
        };
        parent = Some(c.block.hash());
        height += 1;
        store.write(store.prepare(&c)?)
    };
    for (writes, blocks) in [(0usize, 2_000u32), (WRITES, 200)] {
        let started = Instant::now();
        for _ in 0..blocks {
            commit(writes)?;
        }
        let per_block = started.elapsed() / blocks;
        figures.push(Figure {
            name: "RocksDB block commit",
            per_op: per_block,
            unit: "per block",
            note: if writes == 0 {
                "header, certificate, head and counters only".into()
            } else {
                format!(
                    "with {writes} state writes of 100 B: {:.2} µs per write",
                    (per_block.as_secs_f64() * 1e6 - figures_last_empty(&figures)) / writes as f64
                )
            },
        });
    }

    println!("{:<24} {:>12}  {:<14} note", "primitive", "µs", "");
    for f in &figures {
        println!(
            "{:<24} {:>12.2}  {:<14} {}",
            f.name,
            f.per_op.as_secs_f64() * 1e6,
            f.unit,
            f.note
        );
    }
    let json = serde_json::json!({
        "machine": machine(),
        "figures": figures.iter().map(|f| serde_json::json!({
            "primitive": f.name,
            "microseconds": f.per_op.as_secs_f64() * 1e6,
            "unit": f.unit,
            "note": f.note,
        })).collect::<Vec<_>>(),
    });
    if let Some(parent) = std::path::Path::new(&out).parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&out, serde_json::to_string_pretty(&json)? + "\n")?;
    println!("wrote {out}");
    Ok(())
}

/// The empty block commit's µs (the figure before the one being computed).
fn figures_last_empty(figures: &[Figure]) -> f64 {
    figures
        .iter()
        .rev()
        .find(|f| f.name == "RocksDB block commit")
        .map_or(0.0, |f| f.per_op.as_secs_f64() * 1e6)
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpu}, {cores} cores")
}
