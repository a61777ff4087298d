//! An independent, brute-force model of the V2V market, written from `shared/MARKET.md` and
//! `docs/market.md` only (never from the contract's source).
//!
//! It keeps plain maps, evaluates every candidate (every resting order of the other side times
//! every meeting point) for every fill, compares unit costs and unit profits as exact
//! rationals (256-bit cross products), and derives each client's escrow and committed energy
//! from the trades themselves rather than keeping running totals. A call is atomic: it runs
//! on a copy that replaces the state only when the call succeeds.

use std::cell::Cell;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use v2v_abi::genesis::{GenesisMarket, parse_hex_array};
use v2v_abi::{MarketCall, Resolution, Side};

/// Largest accepted |x| or |y|, in metres.
pub const MAX_COORD: i64 = 1_000_000_000_000;
/// Longest free-text field, in bytes.
pub const MAX_TEXT: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vehicle {
    pub vehicle_id: String,
    pub capacity_wh: u64,
    pub charge_wh: u64,
    pub x: i64,
    pub y: i64,
    pub efficiency: u32,
    pub energy_price: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// `None` for the treasury (created at genesis, no key).
    pub key: Option<[u8; 32]>,
    pub balance: u64,
    pub vehicle: Option<Vehicle>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub id: u64,
    pub owner: String,
    pub side: Side,
    pub amount_wh: u64,
    pub remaining_wh: u64,
    /// Sell price (µcr/Wh); 0 for buys.
    pub price: u64,
    /// Buy limit, if any.
    pub max_unit_cost: Option<u64>,
    pub placed_at: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Travel {
    pub distance_m: u128,
    pub energy_wh: u128,
    pub cost: u128,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Matched,
    Disputed,
    Settled,
    Refunded,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Matched => "matched",
            Status::Disputed => "disputed",
            Status::Settled => "settled",
            Status::Refunded => "refunded",
        }
    }

    pub fn is_open(self) -> bool {
        matches!(self, Status::Matched | Status::Disputed)
    }
}

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
    pub energy_cost: u64,
    pub fee: u64,
    pub consumer_travel: Travel,
    pub provider_travel: Travel,
    pub status: Status,
    pub matched_at: u64,
    pub dispute_reason: Option<String>,
}

impl Trade {
    /// What the consumer has in escrow for this trade: EC + F.
    pub fn escrowed(&self) -> u64 {
        self.energy_cost + self.fee
    }
}

/// The market state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub fee_rate: u64,
    pub treasury: String,
    pub operators: BTreeSet<[u8; 32]>,
    pub clients: BTreeMap<String, Client>,
    pub meeting_points: BTreeMap<u32, (i64, i64)>,
    /// Resting orders only.
    pub book: BTreeMap<u64, Order>,
    pub trades: BTreeMap<u64, Trade>,
    pub next_order_id: u64,
    pub next_trade_id: u64,
    /// Statistics only: how often feasibility rule k (1-6) was the first to rule out a
    /// candidate (index 0: arithmetic overflow).
    pub ruled_out: Cell<[u64; 7]>,
}

/// Why the reference rejected a call (for messages only: tests compare success/failure).
pub type Reject = String;

fn valid_client_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
}

fn coord_ok(v: i64) -> bool {
    v.unsigned_abs() <= MAX_COORD as u64
}

/// floor(sqrt(n)), by bisection on the answer.
pub fn isqrt(n: u128) -> u128 {
    let (mut lo, mut hi) = (0u128, 1u128 << 64); // answer in [lo, hi)
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if mid.checked_mul(mid).is_some_and(|sq| sq <= n) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Full 256-bit product of two u128, as (high, low).
fn mul_wide(a: u128, b: u128) -> (u128, u128) {
    const M: u128 = u64::MAX as u128;
    let (a1, a0) = (a >> 64, a & M);
    let (b1, b0) = (b >> 64, b & M);
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let p11 = a1 * b1;
    let mid = (p00 >> 64) + (p01 & M) + (p10 & M);
    let lo = (p00 & M) | ((mid & M) << 64);
    let hi = p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64);
    (hi, lo)
}

/// Compares a/b with c/d (b, d > 0) exactly.
fn cmp_frac(a: u128, b: u128, c: u128, d: u128) -> Ordering {
    mul_wide(a, d).cmp(&mul_wide(c, b))
}

/// Distance, travel energy and travel cost of a vehicle driving to (mx, my).
/// `None` when the arithmetic leaves u128.
pub fn travel(v: &Vehicle, mx: i64, my: i64) -> Option<Travel> {
    let dx = (i128::from(v.x) - i128::from(mx)).unsigned_abs();
    let dy = (i128::from(v.y) - i128::from(my)).unsigned_abs();
    let sq = dx.checked_mul(dx)?.checked_add(dy.checked_mul(dy)?)?;
    let distance_m = isqrt(sq);
    let energy_wh = distance_m.checked_mul(u128::from(v.efficiency))? / 1000;
    let cost = energy_wh.checked_mul(u128::from(v.energy_price))?;
    Some(Travel {
        distance_m,
        energy_wh,
        cost,
    })
}

/// One feasible candidate with its figures.
#[derive(Debug, Clone)]
struct Candidate {
    resting: u64,
    mp: u32,
    q: u64,
    /// C_C (numerator of UC over q).
    consumer_cost: u128,
    /// R_P - C_P (numerator of UP over q), non-negative.
    profit: u128,
    energy_cost: u64,
    fee: u64,
    consumer_travel: Travel,
    provider_travel: Travel,
}

impl Candidate {
    /// `Less` = `self` is the better candidate.
    fn rank(&self, other: &Candidate) -> Ordering {
        let q1 = u128::from(self.q);
        let q2 = u128::from(other.q);
        cmp_frac(self.consumer_cost, q1, other.consumer_cost, q2)
            .then_with(|| cmp_frac(other.profit, q2, self.profit, q1))
            .then_with(|| self.resting.cmp(&other.resting))
            .then_with(|| self.mp.cmp(&other.mp))
    }
}

impl Reference {
    /// The state after `v2v_init`; `Err` if the genesis is invalid.
    pub fn new(genesis: &GenesisMarket) -> Result<Self, Reject> {
        let mut r = Reference {
            fee_rate: genesis.fee_rate,
            treasury: genesis.treasury.clone(),
            operators: BTreeSet::new(),
            clients: BTreeMap::new(),
            meeting_points: BTreeMap::new(),
            book: BTreeMap::new(),
            trades: BTreeMap::new(),
            next_order_id: 1,
            next_trade_id: 1,
            ruled_out: Cell::new([0; 7]),
        };
        if !valid_client_id(&genesis.treasury) {
            return Err("invalid treasury id".into());
        }
        for op in &genesis.operators {
            let key = parse_hex_array::<32>(op).ok_or("bad operator key")?;
            r.operators.insert(key);
        }
        for mp in &genesis.meeting_points {
            if !coord_ok(mp.x) || !coord_ok(mp.y) {
                return Err("meeting point out of bounds".into());
            }
            if r.meeting_points.insert(mp.id, (mp.x, mp.y)).is_some() {
                return Err("duplicate meeting point".into());
            }
        }
        r.clients.insert(
            genesis.treasury.clone(),
            Client {
                key: None,
                balance: 0,
                vehicle: None,
            },
        );
        for c in &genesis.clients {
            let key = parse_hex_array::<32>(&c.public_key).ok_or("bad client key")?;
            if !valid_client_id(&c.id)
                || r.clients.contains_key(&c.id)
                || r.key_owner(&key).is_some()
            {
                return Err(format!("bad genesis client {}", c.id));
            }
            r.clients.insert(
                c.id.clone(),
                Client {
                    key: Some(key),
                    balance: c.balance,
                    vehicle: None,
                },
            );
        }
        Ok(r)
    }

    /// The client id registered for `key`, if any.
    pub fn key_owner(&self, key: &[u8; 32]) -> Option<&str> {
        self.clients
            .iter()
            .find(|(_, c)| c.key.as_ref() == Some(key))
            .map(|(id, _)| id.as_str())
    }

    /// Escrow of `client`: EC + F of its open trades as consumer.
    pub fn escrow(&self, client: &str) -> u64 {
        self.trades
            .values()
            .filter(|t| t.consumer == client && t.status.is_open())
            .map(Trade::escrowed)
            .sum()
    }

    /// Committed energy of `client`: q of its open trades as provider.
    pub fn committed(&self, client: &str) -> u64 {
        self.trades
            .values()
            .filter(|t| t.provider == client && t.status.is_open())
            .map(|t| t.quantity_wh)
            .sum()
    }

    fn has_open_trades(&self, client: &str) -> bool {
        self.trades
            .values()
            .any(|t| t.status.is_open() && (t.consumer == client || t.provider == client))
    }

    fn has_resting_orders(&self, client: &str) -> bool {
        self.book.values().any(|o| o.owner == client)
    }

    /// Sum of all balances and all escrow.
    pub fn total_money(&self) -> u128 {
        self.clients
            .iter()
            .map(|(id, c)| u128::from(c.balance) + u128::from(self.escrow(id)))
            .sum()
    }

    /// Applies one transaction signed by `signer` in block `height`. On success returns the
    /// ids of the trades it created; on failure nothing changes.
    pub fn apply(
        &mut self,
        signer: [u8; 32],
        height: u64,
        call: &MarketCall,
    ) -> Result<Vec<u64>, Reject> {
        let mut next = self.clone();
        let created = next.apply_inner(signer, height, call)?;
        *self = next;
        Ok(created)
    }

    fn signer_client(&self, signer: &[u8; 32]) -> Result<String, Reject> {
        self.key_owner(signer)
            .map(str::to_owned)
            .ok_or_else(|| "not registered".to_owned())
    }

    fn require_operator(&self, signer: &[u8; 32]) -> Result<(), Reject> {
        if self.operators.contains(signer) {
            Ok(())
        } else {
            Err("not an operator".into())
        }
    }

    fn register(&mut self, client_id: &str, key: [u8; 32]) -> Result<(), Reject> {
        if !valid_client_id(client_id) {
            return Err("invalid client id".into());
        }
        if self.clients.contains_key(client_id) {
            return Err("client id taken".into());
        }
        if self.key_owner(&key).is_some() {
            return Err("key already registered".into());
        }
        self.clients.insert(
            client_id.to_owned(),
            Client {
                key: Some(key),
                balance: 0,
                vehicle: None,
            },
        );
        Ok(())
    }

    fn client_mut(&mut self, id: &str) -> Result<&mut Client, Reject> {
        self.clients
            .get_mut(id)
            .ok_or_else(|| format!("unknown client {id}"))
    }

    fn vehicle_of(&self, id: &str) -> Result<&Vehicle, Reject> {
        self.clients
            .get(id)
            .and_then(|c| c.vehicle.as_ref())
            .ok_or_else(|| "no vehicle".to_owned())
    }

    /// Settles trade `id`: escrow leaves the consumer, EC - F goes to the provider and 2F to
    /// the treasury.
    fn settle(&mut self, id: u64) -> Result<(), Reject> {
        let t = self.trades.get(&id).ok_or("unknown trade")?.clone();
        let payout = t.energy_cost.checked_sub(t.fee).ok_or("fee exceeds cost")?;
        let fees = t.fee.checked_mul(2).ok_or("overflow")?;
        let provider = self.client_mut(&t.provider)?;
        provider.balance = provider.balance.checked_add(payout).ok_or("overflow")?;
        let treasury = self.treasury.clone();
        let tr = self.client_mut(&treasury)?;
        tr.balance = tr.balance.checked_add(fees).ok_or("overflow")?;
        self.trades.get_mut(&id).ok_or("unknown trade")?.status = Status::Settled;
        Ok(())
    }

    fn refund(&mut self, id: u64) -> Result<(), Reject> {
        let t = self.trades.get(&id).ok_or("unknown trade")?.clone();
        let consumer = self.client_mut(&t.consumer)?;
        consumer.balance = consumer
            .balance
            .checked_add(t.escrowed())
            .ok_or("overflow")?;
        self.trades.get_mut(&id).ok_or("unknown trade")?.status = Status::Refunded;
        Ok(())
    }

    fn apply_inner(
        &mut self,
        signer: [u8; 32],
        height: u64,
        call: &MarketCall,
    ) -> Result<Vec<u64>, Reject> {
        match call {
            MarketCall::Register { client_id } => {
                self.register(client_id, signer)?;
            }
            MarketCall::LinkVehicle {
                vehicle_id,
                capacity_wh,
                charge_wh,
                x,
                y,
                efficiency_wh_per_km,
                energy_price,
            } => {
                let me = self.signer_client(&signer)?;
                if vehicle_id.len() > MAX_TEXT
                    || *capacity_wh == 0
                    || charge_wh > capacity_wh
                    || *efficiency_wh_per_km == 0
                    || !coord_ok(*x)
                    || !coord_ok(*y)
                {
                    return Err("vehicle out of bounds".into());
                }
                let replacing = self.clients[&me].vehicle.is_some();
                if replacing && (self.has_resting_orders(&me) || self.has_open_trades(&me)) {
                    return Err("vehicle busy".into());
                }
                self.client_mut(&me)?.vehicle = Some(Vehicle {
                    vehicle_id: vehicle_id.clone(),
                    capacity_wh: *capacity_wh,
                    charge_wh: *charge_wh,
                    x: *x,
                    y: *y,
                    efficiency: *efficiency_wh_per_km,
                    energy_price: *energy_price,
                });
            }
            MarketCall::Telemetry {
                charge_wh,
                x,
                y,
                energy_price,
            } => {
                let me = self.signer_client(&signer)?;
                let v = self.client_mut(&me)?.vehicle.as_mut().ok_or("no vehicle")?;
                if *charge_wh > v.capacity_wh || !coord_ok(*x) || !coord_ok(*y) {
                    return Err("telemetry out of bounds".into());
                }
                v.charge_wh = *charge_wh;
                v.x = *x;
                v.y = *y;
                v.energy_price = *energy_price;
            }
            MarketCall::Deposit { amount } => {
                let me = self.signer_client(&signer)?;
                if *amount == 0 {
                    return Err("zero amount".into());
                }
                let c = self.client_mut(&me)?;
                c.balance = c.balance.checked_add(*amount).ok_or("overflow")?;
            }
            MarketCall::Withdraw { amount } => {
                let me = self.signer_client(&signer)?;
                if *amount == 0 {
                    return Err("zero amount".into());
                }
                let c = self.client_mut(&me)?;
                c.balance = c.balance.checked_sub(*amount).ok_or("insufficient funds")?;
            }
            MarketCall::Buy {
                amount_wh,
                max_unit_cost,
            } => {
                let me = self.signer_client(&signer)?;
                let v = self.vehicle_of(&me)?;
                if *amount_wh == 0 || *amount_wh > v.capacity_wh - v.charge_wh {
                    return Err("bad buy amount".into());
                }
                let order = Order {
                    id: self.next_order_id,
                    owner: me,
                    side: Side::Buy,
                    amount_wh: *amount_wh,
                    remaining_wh: *amount_wh,
                    price: 0,
                    max_unit_cost: *max_unit_cost,
                    placed_at: height,
                };
                return self.place(order, height);
            }
            MarketCall::Sell { amount_wh, price } => {
                let me = self.signer_client(&signer)?;
                let v = self.vehicle_of(&me)?;
                if *amount_wh == 0 || *price == 0 || *amount_wh > v.charge_wh {
                    return Err("bad sell".into());
                }
                let order = Order {
                    id: self.next_order_id,
                    owner: me,
                    side: Side::Sell,
                    amount_wh: *amount_wh,
                    remaining_wh: *amount_wh,
                    price: *price,
                    max_unit_cost: None,
                    placed_at: height,
                };
                return self.place(order, height);
            }
            MarketCall::Cancel { order_id } => {
                let me = self.signer_client(&signer)?;
                let o = self.book.get(order_id).ok_or("unknown order")?;
                if o.owner != me {
                    return Err("not yours".into());
                }
                self.book.remove(order_id);
            }
            MarketCall::Confirm { trade_id } => {
                let me = self.signer_client(&signer)?;
                let t = self.trades.get(trade_id).ok_or("unknown trade")?;
                if t.consumer != me || t.status != Status::Matched {
                    return Err("cannot confirm".into());
                }
                self.settle(*trade_id)?;
            }
            MarketCall::Dispute { trade_id, reason } => {
                let me = self.signer_client(&signer)?;
                if reason.len() > MAX_TEXT {
                    return Err("reason too long".into());
                }
                let t = self.trades.get_mut(trade_id).ok_or("unknown trade")?;
                if t.consumer != me || t.status != Status::Matched {
                    return Err("cannot dispute".into());
                }
                t.status = Status::Disputed;
                t.dispute_reason = Some(reason.clone());
            }
            MarketCall::RegisterClient {
                client_id,
                public_key,
            } => {
                self.require_operator(&signer)?;
                self.register(client_id, *public_key)?;
            }
            MarketCall::RemoveClient { client_id } => {
                self.require_operator(&signer)?;
                let c = self.clients.get(client_id).ok_or("unknown client")?;
                if *client_id == self.treasury
                    || c.balance != 0
                    || self.escrow(client_id) != 0
                    || self.has_open_trades(client_id)
                {
                    return Err("client cannot be removed".into());
                }
                self.clients.remove(client_id);
                self.book.retain(|_, o| o.owner != *client_id);
            }
            MarketCall::AdjustFunds {
                client_id,
                delta,
                reason,
            } => {
                self.require_operator(&signer)?;
                if reason.is_empty() || reason.len() > MAX_TEXT {
                    return Err("bad reason".into());
                }
                let c = self.client_mut(client_id)?;
                let next = i128::from(c.balance) + i128::from(*delta);
                c.balance = u64::try_from(next).map_err(|_| "balance out of range".to_owned())?;
            }
            MarketCall::RemoveOrder { order_id, reason } => {
                self.require_operator(&signer)?;
                if reason.len() > MAX_TEXT {
                    return Err("reason too long".into());
                }
                self.book.remove(order_id).ok_or("unknown order")?;
            }
            MarketCall::AddMeetingPoint { id, x, y } => {
                self.require_operator(&signer)?;
                if !coord_ok(*x) || !coord_ok(*y) || self.meeting_points.contains_key(id) {
                    return Err("bad meeting point".into());
                }
                self.meeting_points.insert(*id, (*x, *y));
            }
            MarketCall::RemoveMeetingPoint { id } => {
                self.require_operator(&signer)?;
                self.meeting_points
                    .remove(id)
                    .ok_or("unknown meeting point")?;
            }
            MarketCall::SetFee { fee_rate } => {
                self.require_operator(&signer)?;
                self.fee_rate = *fee_rate;
            }
            MarketCall::Resolve {
                trade_id,
                resolution,
            } => {
                self.require_operator(&signer)?;
                let t = self.trades.get(trade_id).ok_or("unknown trade")?;
                if t.status != Status::Disputed {
                    return Err("not disputed".into());
                }
                match resolution {
                    Resolution::Settle => self.settle(*trade_id)?,
                    Resolution::Refund => self.refund(*trade_id)?,
                }
            }
        }
        Ok(Vec::new())
    }

    /// Evaluates one candidate; `None` if it is infeasible.
    /// Counts a candidate ruled out by `rule` (0: overflow).
    fn out<T>(&self, rule: usize) -> Option<T> {
        let mut counts = self.ruled_out.get();
        counts[rule] += 1;
        self.ruled_out.set(counts);
        None
    }

    /// Evaluates one candidate; `None` if it is infeasible. `committed` is the provider's
    /// committed energy.
    fn evaluate(&self, buy: &Order, sell: &Order, mp: u32, committed: u64) -> Option<Candidate> {
        if buy.owner == sell.owner {
            return self.out(6);
        }
        let (mx, my) = self.meeting_points[&mp];
        let consumer = &self.clients[&buy.owner];
        let provider = self.clients.get(&sell.owner)?;
        let cv = consumer.vehicle.as_ref()?;
        let pv = provider.vehicle.as_ref()?;
        let q = buy.remaining_wh.min(sell.remaining_wh);
        let q128 = u128::from(q);
        let figures = || {
            let ct = travel(cv, mx, my)?;
            let pt = travel(pv, mx, my)?;
            let fee = u128::from(self.fee_rate).checked_mul(q128)?;
            let ec = u128::from(sell.price).checked_mul(q128)?;
            let consumer_cost = ec.checked_add(ct.cost)?.checked_add(fee)?;
            let provider_cost = pt.cost.checked_add(fee)?;
            let escrow = ec.checked_add(fee)?;
            let needed = pt.energy_wh.checked_add(q128)?;
            Some((
                ct,
                pt,
                fee,
                ec,
                consumer_cost,
                provider_cost,
                escrow,
                needed,
            ))
        };
        let Some((ct, pt, fee, ec, consumer_cost, provider_cost, escrow, needed)) = figures()
        else {
            return self.out(0);
        };
        // 1. UP >= 0: the provider never trades at a loss.
        let Some(profit) = ec.checked_sub(provider_cost) else {
            return self.out(1);
        };
        // 2. The consumer's available balance covers EC + F.
        if escrow > u128::from(consumer.balance) {
            return self.out(2);
        }
        // 3. The consumer reaches M.
        if ct.energy_wh > u128::from(cv.charge_wh) {
            return self.out(3);
        }
        // 4. The provider reaches M and still delivers q from its uncommitted charge.
        let free = u128::from(pv.charge_wh).checked_sub(u128::from(committed));
        if free.is_none_or(|free| needed > free) {
            return self.out(4);
        }
        // 5. The buyer's limit: C_C <= u * q.
        if let Some(u) = buy.max_unit_cost
            && consumer_cost > u128::from(u) * q128
        {
            return self.out(5);
        }
        Some(Candidate {
            resting: 0,
            mp,
            q,
            consumer_cost,
            profit,
            energy_cost: u64::try_from(ec).ok()?,
            fee: u64::try_from(fee).ok()?,
            consumer_travel: ct,
            provider_travel: pt,
        })
    }

    /// Books `order` (already validated), matches it, and rests what is left.
    fn place(&mut self, mut order: Order, height: u64) -> Result<Vec<u64>, Reject> {
        self.next_order_id += 1;
        let mut created = Vec::new();
        while order.remaining_wh > 0 {
            let mut best: Option<Candidate> = None;
            for resting in self.book.values() {
                if resting.side == order.side {
                    continue;
                }
                let (buy, sell) = match order.side {
                    Side::Buy => (&order, resting),
                    Side::Sell => (resting, &order),
                };
                let committed = self.committed(&sell.owner);
                for &mp in self.meeting_points.keys() {
                    if let Some(mut c) = self.evaluate(buy, sell, mp, committed) {
                        c.resting = resting.id;
                        if best.as_ref().is_none_or(|b| c.rank(b) == Ordering::Less) {
                            best = Some(c);
                        }
                    }
                }
            }
            let Some(c) = best else { break };
            let resting = self.book.get(&c.resting).ok_or("lost order")?.clone();
            let (buy, sell) = match order.side {
                Side::Buy => (&order, &resting),
                Side::Sell => (&resting, &order),
            };
            let (mx, my) = self.meeting_points[&c.mp];
            let trade = Trade {
                id: self.next_trade_id,
                buy_order: buy.id,
                sell_order: sell.id,
                consumer: buy.owner.clone(),
                provider: sell.owner.clone(),
                meeting_point: (c.mp, mx, my),
                quantity_wh: c.q,
                price: sell.price,
                energy_cost: c.energy_cost,
                fee: c.fee,
                consumer_travel: c.consumer_travel,
                provider_travel: c.provider_travel,
                status: Status::Matched,
                matched_at: height,
                dispute_reason: None,
            };
            let consumer = self.client_mut(&trade.consumer)?;
            consumer.balance -= trade.escrowed(); // checked by rule 2
            created.push(trade.id);
            self.trades.insert(trade.id, trade);
            self.next_trade_id += 1;
            order.remaining_wh -= c.q;
            let r = self.book.get_mut(&c.resting).ok_or("lost order")?;
            r.remaining_wh -= c.q;
            if r.remaining_wh == 0 {
                self.book.remove(&c.resting);
            }
        }
        if order.remaining_wh > 0 {
            self.book.insert(order.id, order);
        }
        Ok(created)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isqrt_is_exact() {
        for n in 0u128..2000 {
            let r = isqrt(n);
            assert!(r * r <= n && (r + 1) * (r + 1) > n, "isqrt({n}) = {r}");
        }
        let big = 8 * 10u128.pow(24);
        let r = isqrt(big);
        assert!(r * r <= big && (r + 1) * (r + 1) > big);
        assert_eq!(isqrt(u128::MAX), u128::from(u64::MAX));
    }

    #[test]
    fn wide_products_compare_exactly() {
        assert_eq!(mul_wide(u128::MAX, u128::MAX), (u128::MAX - 1, 1));
        assert_eq!(mul_wide(1 << 64, 1 << 64), (1, 0));
        assert_eq!(cmp_frac(1, 3, 2, 6), Ordering::Equal);
        assert_eq!(cmp_frac(u128::MAX, 2, u128::MAX - 1, 2), Ordering::Greater);
        assert_eq!(cmp_frac(u128::MAX, 3, u128::MAX, 2), Ordering::Less);
    }
}
