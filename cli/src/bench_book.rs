//! `v2v bench --workload book`: the open-loop market ladder on a chain whose genesis already
//! holds a filled order book (`--book-orders`, 100 000 by default), to show that matching,
//! state and memory stay in bounds with a large book.
//!
//! The book is built natively with the market crate (the same code as the contract, the same
//! storage layout) and written into the chain spec's `genesis.storage`, which every node
//! writes over what the contract's init wrote: half the orders are sells at 200-400 µcr/Wh,
//! half are buys capped at 100 µcr/Wh, from as many clients with vehicles spread over the
//! dev chain's 4 km x 4 km of meeting points, so the book does not cross. The bench's own
//! orders then trade against it.

use anyhow::Context;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use v2v_abi::MarketCall;
use v2v_abi::genesis::GenesisClient;
use v2v_chain_spec::ChainSpec;
use v2v_market::{MemoryHost, execute, init};

/// A book client's key: never signs (the book is in genesis), only names the owner.
fn book_key(i: usize) -> [u8; 32] {
    let mut k = [0u8; 32];
    k[..4].copy_from_slice(b"book");
    k[8..16].copy_from_slice(&(i as u64).to_le_bytes());
    k
}

fn hex(b: &[u8]) -> String {
    format!("0x{}", crate::wallet::hex_encode(b))
}

/// Fills `spec`'s genesis storage with a book of `orders` resting orders.
pub(crate) fn fill(spec: &mut ChainSpec, orders: usize, seed: u64) -> anyhow::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xb00c);
    let mut market = spec.genesis_market();
    market.clients.extend((0..orders).map(|i| GenesisClient {
        id: format!("book{i}"),
        public_key: hex(&book_key(i)),
        balance: 1_000_000_000_000,
    }));
    let mut host = MemoryHost::default();
    init(&mut host, &market).map_err(|e| anyhow::anyhow!("book genesis: {e}"))?;
    let call = |host: &mut MemoryHost, i: usize, c: MarketCall| {
        host.caller = book_key(i);
        execute(host, &c).map_err(|e| anyhow::anyhow!("book client {i}: {c:?}: {e}"))
    };
    for i in 0..orders {
        call(
            &mut host,
            i,
            MarketCall::LinkVehicle {
                vehicle_id: format!("book{i}-car"),
                capacity_wh: 80_000,
                charge_wh: rng.gen_range(20_000..60_000),
                x: rng.gen_range(0..4_000),
                y: rng.gen_range(0..4_000),
                efficiency_wh_per_km: rng.gen_range(120..250),
                energy_price: rng.gen_range(150..350),
            },
        )?;
    }
    // Sells first: a buy capped below every sell's price stops at the first sell it reads,
    // so the book builds in O(n log n).
    let order = (0..orders)
        .filter(|i| i % 2 == 0)
        .chain((0..orders).filter(|i| i % 2 == 1));
    for i in order {
        let c = if i % 2 == 0 {
            MarketCall::Sell {
                amount_wh: rng.gen_range(1_000..15_000),
                price: rng.gen_range(200..400),
            }
        } else {
            MarketCall::Buy {
                amount_wh: rng.gen_range(1_000..15_000),
                max_unit_cost: Some(100),
            }
        };
        call(&mut host, i, c)?;
    }
    spec.genesis.storage = host.storage.iter().collect();
    spec.validate().context("the spec with the book")?;
    Ok(())
}
