//! Market benchmark: time per new order against books of 1k, 10k and 100k resting orders with
//! 16 and 256 meeting points, natively and inside wasmtime, and the fuel of each operation.
//!
//! ```sh
//! cargo run --release -p v2v-market --example market_bench -- [--out FILE] [--quick]
//! ```
//!
//! Books are built natively and then handed to the Wasm contract as its storage (both builds
//! use the same storage layout). Resting buys cap their unit cost below every resting sell's
//! price, so the book does not cross; the measured orders are a buy without a limit (searches
//! the sells cheapest first) and a cheap sell (searches the buy grid), each of which matches.

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::json;
use v2v_abi::MarketCall;
use v2v_abi::genesis::{GenesisClient, GenesisMarket, GenesisMeetingPoint, to_hex};
use v2v_market::{MemoryHost, execute, init};
use v2v_runtime::{CallContext, Contract, ContractStorage, Entry, Limits, Runtime};

/// A small deterministic generator (SplitMix64): the same book on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

const AREA_M: u64 = 20_000;

fn client_key(i: usize) -> [u8; 32] {
    let mut k = [0u8; 32];
    k[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
    k
}

fn call(h: &mut MemoryHost, who: [u8; 32], c: &MarketCall) {
    h.caller = who;
    if let Err(e) = execute(h, c) {
        panic!("setup call {c:?} failed: {e}");
    }
}

/// A market with `orders` resting orders (half buys, half sells) and `mps` meeting points.
fn build_book(orders: usize, mps: u32, rng: &mut Rng) -> MemoryHost {
    let clients = orders + 2;
    let mut h = MemoryHost::default();
    let genesis = GenesisMarket {
        fee_rate: 5,
        treasury: "treasury".into(),
        operators: vec![],
        meeting_points: (0..mps)
            .map(|id| GenesisMeetingPoint {
                id: id + 1,
                x: rng.range(0, AREA_M) as i64,
                y: rng.range(0, AREA_M) as i64,
            })
            .collect(),
        clients: (0..clients)
            .map(|i| GenesisClient {
                id: format!("c{i}"),
                public_key: to_hex(&client_key(i)),
                balance: 1_000_000_000_000,
            })
            .collect(),
    };
    init(&mut h, &genesis).expect("genesis");
    for i in 0..clients {
        let charge = rng.range(20_000, 60_000);
        call(
            &mut h,
            client_key(i),
            &MarketCall::LinkVehicle {
                vehicle_id: format!("v{i}"),
                capacity_wh: 80_000,
                charge_wh: charge,
                x: rng.range(0, AREA_M) as i64,
                y: rng.range(0, AREA_M) as i64,
                efficiency_wh_per_km: rng.range(120, 250) as u32,
                energy_price: rng.range(150, 350),
            },
        );
    }
    // Sells first: a new buy capped below every sell's price stops at the first sell, so the
    // book builds in O(n log n); the other way round each sell would read every capped buy.
    let mut order: Vec<usize> = (0..orders).filter(|i| i % 2 == 0).collect();
    order.extend((0..orders).filter(|i| i % 2 == 1));
    for i in order {
        let c = if i % 2 == 0 {
            MarketCall::Sell {
                amount_wh: rng.range(1_000, 15_000),
                price: rng.range(200, 400),
            }
        } else {
            MarketCall::Buy {
                amount_wh: rng.range(1_000, 15_000),
                max_unit_cost: Some(100),
            }
        };
        call(&mut h, client_key(i), &c);
    }
    h.events.clear();
    h
}

struct Figures {
    micros: Vec<f64>,
    fuel: Vec<u64>,
    /// Orders that ran out of fuel (the bench's limit is 10^10, 500x the dev chain's).
    out_of_fuel: usize,
}

impl Figures {
    fn pct(&self, p: f64) -> f64 {
        let mut v = self.micros.clone();
        v.sort_by(f64::total_cmp);
        v[((v.len() - 1) as f64 * p).round() as usize]
    }

    fn mean(&self) -> f64 {
        self.micros.iter().sum::<f64>() / self.micros.len() as f64
    }

    /// Orders that would not fit the dev chain's 20 M fuel per transaction.
    fn over_chain_limit(&self) -> usize {
        self.fuel.iter().filter(|&&f| f > 20_000_000).count()
    }

    fn max_fuel(&self) -> u64 {
        self.fuel.iter().copied().max().unwrap_or(0)
    }

    fn mean_fuel(&self) -> u64 {
        if self.fuel.is_empty() {
            0
        } else {
            self.fuel.iter().sum::<u64>() / self.fuel.len() as u64
        }
    }
}

/// The measured orders: alternating a buy without limit and a cheap sell, from the two
/// spare clients (whose vehicles are re-charged first so that each order is valid).
fn probe_calls(orders: usize, n: usize) -> Vec<([u8; 32], MarketCall)> {
    let (buyer, seller) = (client_key(orders), client_key(orders + 1));
    let mut out = Vec::new();
    for i in 0..n {
        if i % 2 == 0 {
            out.push((
                buyer,
                MarketCall::Telemetry {
                    charge_wh: 40_000,
                    x: (AREA_M / 2) as i64,
                    y: (AREA_M / 2) as i64,
                    energy_price: 250,
                },
            ));
            out.push((
                buyer,
                MarketCall::Buy {
                    amount_wh: 2_000,
                    max_unit_cost: None,
                },
            ));
        } else {
            out.push((
                seller,
                MarketCall::Telemetry {
                    charge_wh: 80_000,
                    x: (AREA_M / 3) as i64,
                    y: (AREA_M / 3) as i64,
                    energy_price: 50,
                },
            ));
            out.push((
                seller,
                MarketCall::Sell {
                    amount_wh: 2_000,
                    price: 60,
                },
            ));
        }
    }
    out
}

fn empty() -> Figures {
    Figures {
        micros: vec![],
        fuel: vec![],
        out_of_fuel: 0,
    }
}

/// Index of the figures an order's time goes to: 0 for buys, 1 for sells, None otherwise.
fn side_of(c: &MarketCall) -> Option<usize> {
    match c {
        MarketCall::Buy { .. } => Some(0),
        MarketCall::Sell { .. } => Some(1),
        _ => None,
    }
}

fn bench_native(book: &MemoryHost, orders: usize, n: usize) -> ([Figures; 2], usize) {
    let mut h = book.clone();
    let mut f = [empty(), empty()];
    for (who, c) in probe_calls(orders, n) {
        h.caller = who;
        let t = Instant::now();
        let r = execute(&mut h, &c);
        let us = t.elapsed().as_secs_f64() * 1e6;
        r.unwrap_or_else(|e| panic!("{c:?}: {e}"));
        if let Some(i) = side_of(&c) {
            f[i].micros.push(us);
        }
    }
    let trades = h
        .events
        .iter()
        .filter(|e| e["type"] == "tradeMatched")
        .count();
    (f, trades)
}

fn apply(storage: &mut ContractStorage, writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>) {
    for (k, v) in writes {
        match v {
            Some(v) => storage.insert(k, v),
            None => storage.remove(&k),
        };
    }
}

fn bench_wasm(
    rt: &Runtime,
    contract: &Contract,
    book: &MemoryHost,
    orders: usize,
    n: usize,
) -> [Figures; 2] {
    let mut storage: ContractStorage = book.storage.iter().collect();
    let mut f = [empty(), empty()];
    for (who, c) in probe_calls(orders, n) {
        let input = v2v_abi::host::encode_entry_input(c.method(), &c.encode_args());
        let ctx = CallContext {
            caller: who,
            height: 1,
            timestamp: 0,
        };
        let t = Instant::now();
        let (back, out) = rt.run(contract, storage, ctx, Entry::Call, input);
        let us = t.elapsed().as_secs_f64() * 1e6;
        storage = back;
        let side = side_of(&c);
        match &out.result {
            Ok(_) => apply(&mut storage, out.writes),
            Err(v2v_runtime::ExecError::OutOfFuel(_)) => {
                if let Some(i) = side {
                    f[i].out_of_fuel += 1;
                }
            }
            Err(e) => panic!("wasm {c:?}: {e}"),
        }
        if let Some(i) = side {
            f[i].micros.push(us);
            f[i].fuel.push(out.fuel_used);
        }
    }
    f
}

/// Fuel of single operations on a small market.
fn fuel_table(rt: &Runtime, contract: &Contract) -> Vec<(String, u64)> {
    let mut rng = Rng(7);
    let book = build_book(100, 16, &mut rng);
    let mut storage: ContractStorage = book.storage.iter().collect();
    let mut out = Vec::new();
    let newbie = [0xee; 32];
    let (buyer, seller) = (client_key(100), client_key(101));
    let steps: Vec<([u8; 32], MarketCall)> = vec![
        (
            newbie,
            MarketCall::Register {
                client_id: "newbie".into(),
            },
        ),
        (newbie, MarketCall::Deposit { amount: 5_000_000 }),
        (newbie, MarketCall::Withdraw { amount: 1_000_000 }),
        (
            newbie,
            MarketCall::LinkVehicle {
                vehicle_id: "nv".into(),
                capacity_wh: 60_000,
                charge_wh: 30_000,
                x: 100,
                y: 100,
                efficiency_wh_per_km: 150,
                energy_price: 200,
            },
        ),
        (
            newbie,
            MarketCall::Telemetry {
                charge_wh: 31_000,
                x: 120,
                y: 90,
                energy_price: 200,
            },
        ),
        (
            buyer,
            MarketCall::Buy {
                amount_wh: 2_000,
                max_unit_cost: None,
            },
        ),
        (
            seller,
            MarketCall::Telemetry {
                charge_wh: 80_000,
                x: 5_000,
                y: 5_000,
                energy_price: 50,
            },
        ),
        (
            seller,
            MarketCall::Sell {
                amount_wh: 2_000,
                price: 60,
            },
        ),
        (
            newbie,
            MarketCall::Sell {
                amount_wh: 1_000,
                price: 1_000,
            },
        ),
        (newbie, MarketCall::Cancel { order_id: 103 }),
        (buyer, MarketCall::Confirm { trade_id: 1 }),
    ];
    for (who, c) in steps {
        let input = v2v_abi::host::encode_entry_input(c.method(), &c.encode_args());
        let ctx = CallContext {
            caller: who,
            height: 1,
            timestamp: 0,
        };
        let (back, o) = rt.run(contract, storage, ctx, Entry::Call, input);
        storage = back;
        let name = match &o.result {
            Ok(_) => c.method().to_string(),
            Err(e) => format!("{} (failed: {e})", c.method()),
        };
        apply(&mut storage, o.writes);
        out.push((name, o.fuel_used));
    }
    out
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let out_path = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| "bench-results/market.json".into());
    let sizes: &[usize] = if quick {
        &[1_000]
    } else {
        &[1_000, 10_000, 100_000]
    };
    let probes = if quick { 20 } else { 200 };
    let rt = Runtime::new(Limits {
        fuel_per_call: 10_000_000_000,
        ..Limits::default()
    })
    .expect("runtime");
    let contract = rt.load(v2v_chain_spec::MARKET_WASM).expect("contract");
    let mut rows = Vec::new();
    println!(
        "{:>8} {:>4} {:>7} {:>5} {:>10} {:>10} {:>10} {:>14} {:>14} {:>5} {:>7} {:>5}",
        "orders",
        "mps",
        "where",
        "side",
        "mean µs",
        "p50 µs",
        "p99 µs",
        "mean fuel",
        "max fuel",
        ">20M",
        "trades",
        "OOF"
    );
    for &orders in sizes {
        for mps in [16u32, 256] {
            let mut rng = Rng(42 + orders as u64 + u64::from(mps));
            let t = Instant::now();
            let book = build_book(orders, mps, &mut rng);
            let setup_s = t.elapsed().as_secs_f64();
            let (native, trades) = bench_native(&book, orders, probes);
            let wasm = bench_wasm(&rt, &contract, &book, orders, probes);
            for (place, side, f) in [
                ("native", "buy", &native[0]),
                ("native", "sell", &native[1]),
                ("wasm", "buy", &wasm[0]),
                ("wasm", "sell", &wasm[1]),
            ] {
                println!(
                    "{:>8} {:>4} {:>7} {:>5} {:>10.1} {:>10.1} {:>10.1} {:>14} {:>14} {:>5} {:>7} {:>5}",
                    orders,
                    mps,
                    place,
                    side,
                    f.mean(),
                    f.pct(0.5),
                    f.pct(0.99),
                    f.mean_fuel(),
                    f.max_fuel(),
                    f.over_chain_limit(),
                    trades,
                    f.out_of_fuel
                );
                rows.push(json!({
                    "restingOrders": orders, "meetingPoints": mps, "where": place, "side": side,
                    "meanMicros": f.mean(), "p50Micros": f.pct(0.5), "p99Micros": f.pct(0.99),
                    "meanFuel": f.mean_fuel(), "maxFuel": f.max_fuel(),
                    "over20MFuel": f.over_chain_limit(), "orders": f.micros.len(), "tradesMatched": trades,
                    "outOfFuel": f.out_of_fuel,
                    "bookSetupSeconds": setup_s,
                }));
            }
        }
    }
    println!("\nfuel per operation (wasm, 100 resting orders, 16 meeting points):");
    let fuel: Vec<_> = fuel_table(&rt, &contract)
        .into_iter()
        .map(|(name, fuel)| {
            println!("  {name:<40} {fuel:>10}");
            json!({"operation": name, "fuel": fuel})
        })
        .collect();
    let report = json!({"newOrders": rows, "fuel": fuel, "probesPerRow": probes});
    if let Some(dir) = std::path::Path::new(&out_path).parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    match std::fs::write(
        &out_path,
        serde_json::to_string_pretty(&report).unwrap_or_default(),
    ) {
        Ok(()) => println!("\nwritten to {out_path}"),
        Err(e) => eprintln!("cannot write {out_path}: {e}"),
    }
}
