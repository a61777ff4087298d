//! The contract's storage layout and the canonical encoding of each record.
//!
//! | key | value |
//! |---|---|
//! | `p` | [`Params`] |
//! | `o/` + operator public key (32 bytes) | empty |
//! | `a/` + client id | [`Account`] |
//! | `k/` + public key (32 bytes) | client id (UTF-8) |
//! | `m/` + meeting point id (u32 BE) | x (i64 LE), y (i64 LE) |
//! | `v/` + client id | [`Vehicle`] |
//! | `or/` + order id (u64 BE) | [`Order`] |
//! | `oo/` + client id + `/` + order id (u64 BE) | empty: a client's resting orders |
//! | `bc/` + cell | [`CellBounds`]: a grid cell holding resting buys |
//! | `bg/` + cell + order id (u64 BE) | empty: the resting buys in that cell |
//! | `bl/` + limit bucket + bound (u128 BE) + order id | empty: resting buys by bound (see `book`) |
//! | `br/` + remaining bucket + bound (u128 BE) + order id | empty: the same, by remaining amount |
//! | `bk/` + order id (u64 BE) | a buy's epoch, bound and buckets (to find its keys) |
//! | `be/` + epoch (u64 BE) + order id (u64 BE) | empty: resting buys by the epoch of their key |
//! | `me/` + epoch (u64 BE) + meeting point id (u32 BE) | empty: points added after genesis |
//! | `ep` | the epoch: the number of meeting-point changes (u64 BE) |
//! | `tw` | energy matched in trades since genesis (Wh, u128 BE) |
//! | `ss/` + price (u64 BE) + order id (u64 BE) | empty: the resting sells, cheapest first |
//! | `tr/` + trade id (u64 BE) | [`Trade`] |
//! | `to/` + client id + `/` + trade id (u64 BE) | empty: a client's trades (either side) |
//!
//! Client ids never contain `/`, so the per-client prefixes cannot overlap.

use v2v_abi::{Reader, Side, Writer};

use crate::MarketError;

pub const PARAMS_KEY: &[u8] = b"p";
pub const OPERATOR_PREFIX: &[u8] = b"o/";
pub const ACCOUNT_PREFIX: &[u8] = b"a/";
pub const KEY_PREFIX: &[u8] = b"k/";
pub const MEETING_POINT_PREFIX: &[u8] = b"m/";
pub const VEHICLE_PREFIX: &[u8] = b"v/";
pub const ORDER_PREFIX: &[u8] = b"or/";
pub const OWNER_ORDER_PREFIX: &[u8] = b"oo/";
pub const BUY_CELL_PREFIX: &[u8] = b"bc/";
pub const BUY_GRID_PREFIX: &[u8] = b"bg/";
/// Side of a grid cell, in metres. A cell (i, j) holds the buys whose consumer is in
/// [i·C, (i+1)·C) × [j·C, (j+1)·C).
pub const GRID_CELL_M: i64 = 1_000;
pub const SELL_BOOK_PREFIX: &[u8] = b"ss/";
pub const TRADED_KEY: &[u8] = b"tw";
pub const TRADE_PREFIX: &[u8] = b"tr/";
pub const OWNER_TRADE_PREFIX: &[u8] = b"to/";

pub fn key(prefix: &[u8], suffix: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + suffix.len());
    k.extend_from_slice(prefix);
    k.extend_from_slice(suffix);
    k
}

/// `prefix` + client id + `/` (the start of a per-client range).
pub fn client_prefix(prefix: &[u8], client: &str) -> Vec<u8> {
    let mut k = key(prefix, client.as_bytes());
    k.push(b'/');
    k
}

/// The id (u64 BE) at the end of an index key.
pub fn trailing_id(k: &[u8]) -> Result<u64, MarketError> {
    k.len()
        .checked_sub(8)
        .and_then(|at| <[u8; 8]>::try_from(&k[at..]).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| MarketError::CorruptState("index key".into()))
}

fn corrupt(e: v2v_abi::DecodeError) -> MarketError {
    MarketError::CorruptState(e.to_string())
}

/// Market-wide parameters and counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    /// µcr per Wh traded, charged to each side.
    pub fee_rate: u64,
    /// Client id of the treasury account.
    pub treasury: String,
    pub next_order_id: u64,
    pub next_trade_id: u64,
}

impl Params {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u64(self.fee_rate)
            .str(&self.treasury)
            .u64(self.next_order_id)
            .u64(self.next_trade_id);
        w.finish()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, MarketError> {
        let mut r = Reader::new(bytes);
        let p = Params {
            fee_rate: r.u64("feeRate").map_err(corrupt)?,
            treasury: r.string("treasury", 64).map_err(corrupt)?,
            next_order_id: r.u64("nextOrderId").map_err(corrupt)?,
            next_trade_id: r.u64("nextTradeId").map_err(corrupt)?,
        };
        r.finish().map_err(corrupt)?;
        Ok(p)
    }
}

/// A client account. `balance` is available money; `escrow` is money locked in open trades.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub owner: [u8; 32],
    pub balance: u64,
    pub escrow: u64,
    /// Trades in which the client is consumer or provider that are not settled or refunded.
    pub open_trades: u64,
}

impl Account {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.fixed(&self.owner)
            .u64(self.balance)
            .u64(self.escrow)
            .u64(self.open_trades);
        w.finish()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, MarketError> {
        let mut r = Reader::new(bytes);
        let a = Account {
            owner: r.array("owner").map_err(corrupt)?,
            balance: r.u64("balance").map_err(corrupt)?,
            escrow: r.u64("escrow").map_err(corrupt)?,
            open_trades: r.u64("openTrades").map_err(corrupt)?,
        };
        r.finish().map_err(corrupt)?;
        Ok(a)
    }
}

/// A client's vehicle, as last reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vehicle {
    pub vehicle_id: String,
    pub capacity_wh: u64,
    pub charge_wh: u64,
    pub x: i64,
    pub y: i64,
    pub efficiency: u32,
    /// µcr per Wh paid for the energy in the battery.
    pub energy_price: u64,
    /// Energy promised in trades as provider that are not settled or refunded.
    pub committed_wh: u64,
}

impl Vehicle {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.str(&self.vehicle_id)
            .u64(self.capacity_wh)
            .u64(self.charge_wh)
            .i64(self.x)
            .i64(self.y)
            .u32(self.efficiency)
            .u64(self.energy_price)
            .u64(self.committed_wh);
        w.finish()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, MarketError> {
        let mut r = Reader::new(bytes);
        let v = Vehicle {
            vehicle_id: r.string("vehicleId", 256).map_err(corrupt)?,
            capacity_wh: r.u64("capacity").map_err(corrupt)?,
            charge_wh: r.u64("charge").map_err(corrupt)?,
            x: r.i64("x").map_err(corrupt)?,
            y: r.i64("y").map_err(corrupt)?,
            efficiency: r.u32("efficiency").map_err(corrupt)?,
            energy_price: r.u64("energyPrice").map_err(corrupt)?,
            committed_wh: r.u64("committed").map_err(corrupt)?,
        };
        r.finish().map_err(corrupt)?;
        Ok(v)
    }
}

/// The 16-byte key of a grid cell (sign-flipped big-endian, so cells sort numerically).
pub fn cell_key(cell: (i64, i64)) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&((cell.0 as u64) ^ (1 << 63)).to_be_bytes());
    k[8..].copy_from_slice(&((cell.1 as u64) ^ (1 << 63)).to_be_bytes());
    k
}

pub fn decode_cell_key(k: &[u8]) -> Result<(i64, i64), MarketError> {
    let bad = || MarketError::CorruptState("cell key".into());
    let a = k
        .get(0..8)
        .and_then(|s| <[u8; 8]>::try_from(s).ok())
        .ok_or_else(bad)?;
    let b = k
        .get(8..16)
        .and_then(|s| <[u8; 8]>::try_from(s).ok())
        .ok_or_else(bad)?;
    Ok((
        (u64::from_be_bytes(a) ^ (1 << 63)) as i64,
        (u64::from_be_bytes(b) ^ (1 << 63)) as i64,
    ))
}

pub fn cell_of(x: i64, y: i64) -> (i64, i64) {
    (x.div_euclid(GRID_CELL_M), y.div_euclid(GRID_CELL_M))
}

/// Bounds over the resting buys of one grid cell, used to skip cells that cannot hold the
/// best candidate. They are kept *valid* (never tighter than the truth) cheaply: adding a buy
/// only loosens them; removing one leaves them as they were; scanning the cell recomputes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CellBounds {
    pub count: u64,
    /// Lower bound of the consumers' efficiency (Wh/km).
    pub efficiency_min: u32,
    /// Lower bound of the consumers' energy price (µcr/Wh).
    pub price_min: u64,
    /// Upper bound of the buys' remaining amounts (Wh).
    pub remaining_max: u64,
    /// Upper bound of the buys' unit-cost limits (µcr/Wh; `u64::MAX` for "no limit").
    pub limit_max: u64,
}

impl CellBounds {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u64(self.count)
            .u32(self.efficiency_min)
            .u64(self.price_min)
            .u64(self.remaining_max)
            .u64(self.limit_max);
        w.finish()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, MarketError> {
        let mut r = Reader::new(bytes);
        let c = CellBounds {
            count: r.u64("count").map_err(corrupt)?,
            efficiency_min: r.u32("efficiencyMin").map_err(corrupt)?,
            price_min: r.u64("priceMin").map_err(corrupt)?,
            remaining_max: r.u64("remainingMax").map_err(corrupt)?,
            limit_max: r.u64("limitMax").map_err(corrupt)?,
        };
        r.finish().map_err(corrupt)?;
        Ok(c)
    }
}

/// A resting (or just placed) order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub id: u64,
    pub owner: String,
    pub side: Side,
    pub amount_wh: u64,
    pub remaining_wh: u64,
    /// Sell: the asking price (µcr/Wh). Buy: unused (0).
    pub price: u64,
    /// Buy: the optional limit on unit cost (µcr/Wh).
    pub max_unit_cost: Option<u64>,
    pub placed_at: u64,
}

impl Order {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u64(self.id)
            .str(&self.owner)
            .u8(match self.side {
                Side::Buy => 0,
                Side::Sell => 1,
            })
            .u64(self.amount_wh)
            .u64(self.remaining_wh)
            .u64(self.price)
            .option_u64(self.max_unit_cost)
            .u64(self.placed_at);
        w.finish()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, MarketError> {
        let mut r = Reader::new(bytes);
        let o = Order {
            id: r.u64("id").map_err(corrupt)?,
            owner: r.string("owner", 64).map_err(corrupt)?,
            side: match r.u8("side").map_err(corrupt)? {
                0 => Side::Buy,
                1 => Side::Sell,
                _ => return Err(MarketError::CorruptState("order side".into())),
            },
            amount_wh: r.u64("amount").map_err(corrupt)?,
            remaining_wh: r.u64("remaining").map_err(corrupt)?,
            price: r.u64("price").map_err(corrupt)?,
            max_unit_cost: r.option_u64("maxUnitCost").map_err(corrupt)?,
            placed_at: r.u64("placedAt").map_err(corrupt)?,
        };
        r.finish().map_err(corrupt)?;
        Ok(o)
    }
}

/// Travel of one party to the meeting point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Travel {
    pub distance_m: u64,
    pub energy_wh: u64,
    /// µcr (u128: energy times the price of that energy).
    pub cost: u128,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TradeStatus {
    Matched,
    Disputed,
    Settled,
    Refunded,
}

impl TradeStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            TradeStatus::Matched => "matched",
            TradeStatus::Disputed => "disputed",
            TradeStatus::Settled => "settled",
            TradeStatus::Refunded => "refunded",
        }
    }

    pub fn is_open(&self) -> bool {
        matches!(self, TradeStatus::Matched | TradeStatus::Disputed)
    }
}

/// A match and its settlement state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trade {
    pub id: u64,
    pub buy_order: u64,
    pub sell_order: u64,
    pub consumer: String,
    pub provider: String,
    pub meeting_point: (u32, i64, i64),
    pub quantity_wh: u64,
    pub price: u64,
    /// EC = price x quantity.
    pub energy_cost: u64,
    /// F = fee rate x quantity, charged to each side.
    pub fee: u64,
    pub consumer_travel: Travel,
    pub provider_travel: Travel,
    pub status: TradeStatus,
    pub matched_at: u64,
    pub dispute_reason: Option<String>,
}

fn put_travel(w: &mut Writer, t: &Travel) {
    w.u64(t.distance_m)
        .u64(t.energy_wh)
        .u64(t.cost as u64)
        .u64((t.cost >> 64) as u64);
}

fn get_travel(r: &mut Reader<'_>) -> Result<Travel, MarketError> {
    let distance_m = r.u64("distance").map_err(corrupt)?;
    let energy_wh = r.u64("energy").map_err(corrupt)?;
    let lo = r.u64("cost").map_err(corrupt)?;
    let hi = r.u64("cost").map_err(corrupt)?;
    Ok(Travel {
        distance_m,
        energy_wh,
        cost: (u128::from(hi) << 64) | u128::from(lo),
    })
}

impl Trade {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u64(self.id)
            .u64(self.buy_order)
            .u64(self.sell_order)
            .str(&self.consumer)
            .str(&self.provider)
            .u32(self.meeting_point.0)
            .i64(self.meeting_point.1)
            .i64(self.meeting_point.2)
            .u64(self.quantity_wh)
            .u64(self.price)
            .u64(self.energy_cost)
            .u64(self.fee);
        put_travel(&mut w, &self.consumer_travel);
        put_travel(&mut w, &self.provider_travel);
        w.u8(match self.status {
            TradeStatus::Matched => 0,
            TradeStatus::Disputed => 1,
            TradeStatus::Settled => 2,
            TradeStatus::Refunded => 3,
        })
        .u64(self.matched_at);
        match &self.dispute_reason {
            None => w.u8(0),
            Some(s) => w.u8(1).str(s),
        };
        w.finish()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, MarketError> {
        let mut r = Reader::new(bytes);
        let t = Trade {
            id: r.u64("id").map_err(corrupt)?,
            buy_order: r.u64("buyOrder").map_err(corrupt)?,
            sell_order: r.u64("sellOrder").map_err(corrupt)?,
            consumer: r.string("consumer", 64).map_err(corrupt)?,
            provider: r.string("provider", 64).map_err(corrupt)?,
            meeting_point: (
                r.u32("mp").map_err(corrupt)?,
                r.i64("mpx").map_err(corrupt)?,
                r.i64("mpy").map_err(corrupt)?,
            ),
            quantity_wh: r.u64("quantity").map_err(corrupt)?,
            price: r.u64("price").map_err(corrupt)?,
            energy_cost: r.u64("energyCost").map_err(corrupt)?,
            fee: r.u64("fee").map_err(corrupt)?,
            consumer_travel: get_travel(&mut r)?,
            provider_travel: get_travel(&mut r)?,
            status: match r.u8("status").map_err(corrupt)? {
                0 => TradeStatus::Matched,
                1 => TradeStatus::Disputed,
                2 => TradeStatus::Settled,
                3 => TradeStatus::Refunded,
                _ => return Err(MarketError::CorruptState("trade status".into())),
            },
            matched_at: r.u64("matchedAt").map_err(corrupt)?,
            dispute_reason: match r.u8("reason").map_err(corrupt)? {
                0 => None,
                _ => Some(r.string("reason", 256).map_err(corrupt)?),
            },
        };
        r.finish().map_err(corrupt)?;
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let o = Order {
            id: 7,
            owner: "bob".into(),
            side: Side::Buy,
            amount_wh: 100,
            remaining_wh: 40,
            price: 0,
            max_unit_cost: Some(9),
            placed_at: 3,
        };
        assert_eq!(Order::decode(&o.encode()).unwrap(), o);
        let t = Trade {
            id: 1,
            buy_order: 2,
            sell_order: 3,
            consumer: "a".into(),
            provider: "b".into(),
            meeting_point: (4, -5, 6),
            quantity_wh: 7,
            price: 8,
            energy_cost: 56,
            fee: 9,
            consumer_travel: Travel {
                distance_m: 1,
                energy_wh: 2,
                cost: u128::MAX - 5,
            },
            provider_travel: Travel::default(),
            status: TradeStatus::Disputed,
            matched_at: 10,
            dispute_reason: Some("late".into()),
        };
        assert_eq!(Trade::decode(&t.encode()).unwrap(), t);
        let v = Vehicle {
            vehicle_id: "car".into(),
            capacity_wh: 1,
            charge_wh: 1,
            x: -1,
            y: 2,
            efficiency: 150,
            energy_price: 300,
            committed_wh: 0,
        };
        assert_eq!(Vehicle::decode(&v.encode()).unwrap(), v);
    }
}
