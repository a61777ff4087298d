//! The cost model and the search for the best candidate (`../shared/MARKET.md`, "Cost model"
//! and "Matching"; `docs/market.md`).
//!
//! Everything is integer arithmetic: distances are exact integer square roots, unit costs and
//! unit profits are compared as rationals by cross-multiplication in 192 bits, so no rounding
//! ever decides a match.

use std::cmp::Ordering;

use v2v_abi::Side;

use crate::state::{
    BUY_CELL_PREFIX, BUY_GRID_PREFIX, CellBounds, GRID_CELL_M, Order, SELL_BOOK_PREFIX, Travel,
    Vehicle, cell_key, decode_cell_key, key, trailing_id,
};
use crate::{Host, MarketError};
use crate::{book, ledger};

/// Largest |coordinate| accepted, in metres: keeps squared distances far inside u128.
pub const MAX_COORD: i64 = 1_000_000_000_000;

/// floor(sqrt(n)), exact.
pub fn isqrt(n: u128) -> u128 {
    if n < 2 {
        return n;
    }
    // Newton's iteration from an upper bound; decreasing until it settles on floor(sqrt(n)).
    let mut x = 1u128 << (128 - n.leading_zeros()).div_ceil(2);
    loop {
        let y = (x + n / x) / 2;
        if y >= x {
            return x;
        }
        x = y;
    }
}

/// Euclidean distance, floored, between two points with coordinates within `MAX_COORD`.
pub fn distance(ax: i64, ay: i64, bx: i64, by: i64) -> u128 {
    let dx = (i128::from(ax) - i128::from(bx)).unsigned_abs();
    let dy = (i128::from(ay) - i128::from(by)).unsigned_abs();
    isqrt(dx * dx + dy * dy)
}

/// Travel of a vehicle to (x, y): TE = floor(d e / 1000), TC = TE p. `None` on overflow.
pub fn travel(v: &Vehicle, x: i64, y: i64) -> Option<Travel> {
    let d = distance(v.x, v.y, x, y);
    let energy = d.checked_mul(u128::from(v.efficiency))? / 1000;
    let cost = energy.checked_mul(u128::from(v.energy_price))?;
    Some(Travel {
        distance_m: u64::try_from(d).ok()?,
        energy_wh: u64::try_from(energy).ok()?,
        cost,
    })
}

/// A client as a party to a candidate.
#[derive(Debug, Clone)]
pub struct Party {
    pub client: String,
    pub vehicle: Vehicle,
    /// Available (unescrowed) balance.
    pub balance: u64,
}

impl Party {
    pub fn load(host: &impl Host, client: &str) -> Result<Self, MarketError> {
        Ok(Party {
            client: client.into(),
            vehicle: ledger::vehicle(host, client)?,
            balance: ledger::account(host, client)?.balance,
        })
    }
}

/// A feasible (buy, sell, meeting point, quantity) and its figures.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub buy: u64,
    pub sell: u64,
    /// The order that was resting in the book (the tie-breaker).
    pub resting: u64,
    pub meeting_point: (u32, i64, i64),
    pub quantity: u64,
    pub price: u64,
    /// EC = price x q.
    pub energy_cost: u64,
    /// F = fee rate x q.
    pub fee: u64,
    /// C_C = EC + TC_C + F.
    pub consumer_cost: u128,
    /// R_P - C_P = EC - TC_P - F (never negative for a feasible candidate).
    pub provider_margin: u128,
    pub consumer_travel: Travel,
    pub provider_travel: Travel,
}

/// a x b as a 256-bit (high, low) pair.
fn mul_wide(a: u128, b: u64) -> (u128, u128) {
    let b = u128::from(b);
    let lo = (a & u128::from(u64::MAX)) * b;
    let hi = (a >> 64) * b;
    let low = lo.wrapping_add(hi << 64);
    let carry = u128::from(low < lo);
    ((hi >> 64) + carry, low)
}

/// Compares a/b with c/d exactly (b, d > 0).
fn cmp_ratio(a: u128, b: u64, c: u128, d: u64) -> Ordering {
    mul_wide(a, d).cmp(&mul_wide(c, b))
}

impl Candidate {
    /// Whether `self` beats `other`: smaller UC, then larger UP, then the older resting
    /// order, then the lower meeting-point id.
    pub fn beats(&self, other: &Candidate) -> bool {
        let uc = cmp_ratio(
            self.consumer_cost,
            self.quantity,
            other.consumer_cost,
            other.quantity,
        );
        let order = uc
            .then_with(|| {
                cmp_ratio(
                    other.provider_margin,
                    other.quantity,
                    self.provider_margin,
                    self.quantity,
                )
            })
            .then_with(|| self.resting.cmp(&other.resting))
            .then_with(|| self.meeting_point.0.cmp(&other.meeting_point.0));
        order == Ordering::Less
    }
}

/// Evaluates one candidate; `None` if it is infeasible (rules 1-6) or overflows.
#[allow(clippy::too_many_arguments)]
pub fn evaluate(
    buy: &Order,
    sell: &Order,
    resting: u64,
    consumer: &Party,
    provider: &Party,
    mp: (u32, i64, i64),
    tc: Travel,
    fee_rate: u64,
) -> Option<Candidate> {
    if consumer.client == provider.client {
        return None; // rule 6
    }
    let q = buy.remaining_wh.min(sell.remaining_wh);
    if q == 0 {
        return None;
    }
    let tp = travel(&provider.vehicle, mp.1, mp.2)?;
    // Rule 3: the consumer reaches the meeting point.
    if tc.energy_wh > consumer.vehicle.charge_wh {
        return None;
    }
    // Rule 4: the provider reaches it and still has q to deliver.
    let spare = provider
        .vehicle
        .charge_wh
        .checked_sub(provider.vehicle.committed_wh)?;
    if u128::from(tp.energy_wh) + u128::from(q) > u128::from(spare) {
        return None;
    }
    let ec = u128::from(sell.price) * u128::from(q);
    let fee = u128::from(fee_rate) * u128::from(q);
    // Rule 2: the consumer's available balance covers EC + F.
    let pay = ec.checked_add(fee)?;
    if pay > u128::from(consumer.balance) {
        return None;
    }
    // Rule 1: UP >= 0, i.e. EC >= TC_P + F.
    let margin = ec.checked_sub(tp.cost.checked_add(fee)?)?;
    let cost = pay.checked_add(tc.cost)?;
    // Rule 5: the buyer's limit on unit cost.
    if let Some(limit) = buy.max_unit_cost
        && cost > u128::from(limit) * u128::from(q)
    {
        return None;
    }
    Some(Candidate {
        buy: buy.id,
        sell: sell.id,
        resting,
        meeting_point: mp,
        quantity: q,
        price: sell.price,
        // Both fit: pay <= balance (u64).
        energy_cost: u64::try_from(ec).ok()?,
        fee: u64::try_from(fee).ok()?,
        consumer_cost: cost,
        provider_margin: margin,
        consumer_travel: tc,
        provider_travel: tp,
    })
}

fn squared_distance(ax: i64, ay: i64, bx: i64, by: i64) -> u128 {
    let dx = (i128::from(ax) - i128::from(bx)).unsigned_abs();
    let dy = (i128::from(ay) - i128::from(by)).unsigned_abs();
    dx * dx + dy * dy
}

/// The travel cost of `v` to its nearest point of `mps`; `None` without points or when it
/// overflows (then every point's does).
pub fn nearest_cost(v: &Vehicle, mps: &[(u32, i64, i64)]) -> Option<u128> {
    let mp = mps
        .iter()
        .min_by_key(|mp| squared_distance(v.x, v.y, mp.1, mp.2))?;
    travel(v, mp.1, mp.2).map(|t| t.cost)
}

/// The meeting points ordered by distance from `v` (then id). The consumer's travel cost is
/// non-decreasing along this order, which is what lets [`best_for_pair`] stop early.
fn by_distance_from(v: &Vehicle, meeting_points: &[(u32, i64, i64)]) -> Vec<(u32, i64, i64)> {
    let mut order: Vec<(u128, (u32, i64, i64))> = meeting_points
        .iter()
        .map(|&mp| (squared_distance(v.x, v.y, mp.1, mp.2), mp))
        .collect();
    order.sort_unstable_by_key(|&(d2, mp)| (d2, mp.0));
    order.into_iter().map(|(_, mp)| mp).collect()
}

/// Updates `best` with the best candidate of one (buy, sell) pair. `by_consumer` lists the
/// meeting points nearest to the consumer first. For a fixed pair, q and p_S are fixed, so
/// UC = p_S + r + TC_C / q grows with the consumer's travel cost: the scan stops when that
/// bound exceeds the best UC, or once the cost rises past the first feasible point's (only
/// equal-cost points can still tie and win on UP or id).
#[allow(clippy::too_many_arguments)]
fn best_for_pair(
    buy: &Order,
    sell: &Order,
    resting: u64,
    consumer: &Party,
    provider: &Party,
    by_consumer: &[(u32, i64, i64)],
    fee_rate: u64,
    best: &mut Option<Candidate>,
) {
    let q = buy.remaining_wh.min(sell.remaining_wh);
    if q == 0 || consumer.client == provider.client {
        return;
    }
    let Some(radius_sq) = provider_radius_sq(provider, sell, q, fee_rate) else {
        return;
    };
    let p = &provider.vehicle;
    let unit = u128::from(sell.price) + u128::from(fee_rate);
    let mut feasible_cost: Option<u128> = None;
    for &mp in by_consumer {
        if squared_distance(p.x, p.y, mp.1, mp.2) >= radius_sq {
            continue; // rule 1 or 4 fails for the provider here
        }
        let Some(tc) = travel(&consumer.vehicle, mp.1, mp.2) else {
            // Farther points overflow too.
            return;
        };
        if feasible_cost.is_some_and(|c| tc.cost > c) {
            return;
        }
        if let Some(b) = best.as_ref() {
            let bound = unit.saturating_mul(u128::from(q)).saturating_add(tc.cost);
            if bound < u128::MAX
                && cmp_ratio(bound, q, b.consumer_cost, b.quantity) == Ordering::Greater
            {
                return;
            }
        }
        if let Some(c) = evaluate(buy, sell, resting, consumer, provider, mp, tc, fee_rate) {
            feasible_cost.get_or_insert(tc.cost);
            if best.as_ref().is_none_or(|b| c.beats(b)) {
                *best = Some(c);
            }
        }
    }
}

/// Rules 1 and 4 for the provider of `sell` trading q: TE_P <= L = min(spare - q,
/// floor((p_S - r) q / p_P)) (the second only when p_P > 0). TE_P = floor(d e / 1000) <= L
/// exactly when d <= d_max = (1000 (L + 1) - 1) / e, and d = floor(sqrt(D²)) <= d_max exactly
/// when D² < (d_max + 1)²: that strict bound on the squared distance, or `None` when no point
/// works at all.
fn provider_radius_sq(provider: &Party, sell: &Order, q: u64, fee_rate: u64) -> Option<u128> {
    let v = &provider.vehicle;
    let spare = v.charge_wh.checked_sub(v.committed_wh)?;
    let mut l = u128::from(spare.checked_sub(q)?);
    let margin = sell.price.checked_sub(fee_rate)?;
    if v.energy_price > 0 {
        l = l.min(u128::from(margin) * u128::from(q) / u128::from(v.energy_price));
    }
    if v.efficiency == 0 {
        return Some(u128::MAX); // no travel energy anywhere
    }
    let d_max = (1000 * (l + 1) - 1) / u128::from(v.efficiency);
    Some((d_max + 1).saturating_mul(d_max + 1))
}

/// Where and how much the provider of a new sell can trade.
struct Reach {
    /// The meeting points where it could trade at all.
    points: Vec<(u32, i64, i64)>,
    /// Every feasible q lies in `q_lo..=q_hi`.
    q_lo: u64,
    q_hi: u64,
}

/// The meeting points where the provider of the sell `sell` could trade at all (rules 1 and
/// 4 for some q in 1..=its remaining amount): TE_P + q <= spare charge and TC_P <= (p_S - r) q,
/// so the smallest workable q is ceil(TC_P / (p_S - r)) and it must fit under both caps. Every
/// feasible candidate of this sell uses one of them, so searching only these is exact; and
/// its q lies between the smallest q_min and the largest cap over them.
fn provider_reach(
    provider: &Party,
    sell: &Order,
    fee_rate: u64,
    meeting_points: &[(u32, i64, i64)],
) -> Reach {
    let mut reach = Reach {
        points: Vec::new(),
        q_lo: u64::MAX,
        q_hi: 0,
    };
    let v = &provider.vehicle;
    let Some(spare) = v.charge_wh.checked_sub(v.committed_wh) else {
        return reach;
    };
    let Some(margin) = sell.price.checked_sub(fee_rate) else {
        return reach; // p_S < r: every UP is negative
    };
    for &mp in meeting_points {
        let Some(tp) = travel(v, mp.1, mp.2) else {
            continue;
        };
        let q_cap = sell.remaining_wh.min(spare.saturating_sub(tp.energy_wh));
        let q_min = if tp.cost == 0 {
            1
        } else if margin == 0 {
            continue;
        } else {
            tp.cost.div_ceil(u128::from(margin))
        };
        if q_min <= u128::from(q_cap) {
            reach.points.push(mp);
            // q_min <= q_cap, a u64.
            reach.q_lo = reach.q_lo.min(q_min as u64);
            reach.q_hi = reach.q_hi.max(q_cap);
        }
    }
    reach
}

/// The best feasible candidate for the incoming order `new` against the resting book.
pub fn best_candidate(
    host: &impl Host,
    new: &Order,
    fee_rate: u64,
    meeting_points: &[(u32, i64, i64)],
) -> Result<Option<Candidate>, MarketError> {
    if meeting_points.is_empty() {
        return Ok(None);
    }
    let me = Party::load(host, &new.owner)?;
    let mut best: Option<Candidate> = None;
    let mut cursor: Option<Vec<u8>> = None;
    match new.side {
        Side::Buy => {
            let by_me = by_distance_from(&me.vehicle, meeting_points);
            // The consumer's cheapest travel (to its nearest point; saturates on overflow,
            // which only weakens the bound below).
            let my_min_cost = by_me
                .first()
                .and_then(|mp| travel(&me.vehicle, mp.1, mp.2))
                .map_or(0, |t| t.cost);
            // Sells cheapest first. Any candidate with sell S has UC >= p_S + r (travel costs
            // are non-negative), so once that bound exceeds the best UC no later sell can win
            // or tie.
            while let Some(k) = host.next_key(SELL_BOOK_PREFIX, cursor.as_deref()) {
                let sell = ledger::order(host, trailing_id(&k)?)?;
                cursor = Some(k);
                // With a limit u, UC >= p_S + r > u makes this and every later sell infeasible.
                if let Some(limit) = new.max_unit_cost
                    && u128::from(sell.price) + u128::from(fee_rate) > u128::from(limit)
                {
                    break;
                }
                // UC = p_S + r + TC_C / q with q <= the buy's remaining amount and TC_C at
                // least the consumer's cost to its nearest meeting point.
                if let Some(b) = &best {
                    let unit = u128::from(sell.price) + u128::from(fee_rate);
                    let bound = unit
                        .saturating_mul(u128::from(new.remaining_wh))
                        .saturating_add(my_min_cost);
                    if bound < u128::MAX
                        && cmp_ratio(bound, new.remaining_wh, b.consumer_cost, b.quantity)
                            == Ordering::Greater
                    {
                        break;
                    }
                }
                if sell.owner == new.owner {
                    continue;
                }
                let provider = Party::load(host, &sell.owner)?;
                best_for_pair(
                    new, &sell, sell.id, &me, &provider, &by_me, fee_rate, &mut best,
                );
            }
        }
        Side::Sell => {
            let reach = provider_reach(&me, new, fee_rate, meeting_points);
            if reach.points.is_empty() {
                return Ok(None);
            }
            let unit = u128::from(new.price) + u128::from(fee_rate);
            // Resting buys in ascending bound TC_min / remaining (see `book`): every
            // candidate of a buy whose points all predate its key has UC >= p_S + r + bound,
            // so the scan stops at the first bound above the best UC found. When the sell
            // cannot trade its whole remaining amount anywhere, only buys of at most q_hi can
            // match: read those; otherwise skip the buys whose limits are all below p_S + r.
            let one = 1u128 << book::BOUND_SHIFT;
            let which = if reach.q_hi < new.remaining_wh {
                book::Buckets::RemainingIn(reach.q_lo, reach.q_hi)
            } else {
                book::Buckets::LimitAtLeast(unit)
            };
            let mut scan = book::BoundScan::new(host, which);
            while let Some((id, bound)) = scan.next(host)? {
                if let Some(b) = &best
                    && cmp_ratio(
                        unit.saturating_mul(one).saturating_add(bound),
                        one as u64,
                        b.consumer_cost,
                        b.quantity,
                    ) == Ordering::Greater
                {
                    break;
                }
                consider_buy(host, id, new, &me, &reach, fee_rate, &mut best)?;
            }
            // Candidates at points added after some buy's key was computed.
            let recent = book::recent_points(host, &reach.points)?;
            if !recent.is_empty() {
                grid_search(host, new, &me, &reach, &recent, fee_rate, &mut best)?;
            }
        }
    }
    Ok(best)
}

/// Updates `best` with the best candidate of the resting buy `id` and the new sell `new`
/// over the points `reach` the provider can serve.
fn consider_buy(
    host: &impl Host,
    id: u64,
    new: &Order,
    me: &Party,
    reach: &Reach,
    fee_rate: u64,
    best: &mut Option<Candidate>,
) -> Result<(), MarketError> {
    let buy = ledger::order(host, id)?;
    let unit = u128::from(new.price) + u128::from(fee_rate);
    // UC >= p_S + r: a limit below that excludes every candidate of this buy.
    if buy.owner == new.owner || buy.max_unit_cost.is_some_and(|l| unit > u128::from(l)) {
        return Ok(());
    }
    let q = buy.remaining_wh.min(new.remaining_wh);
    if q < reach.q_lo || q > reach.q_hi {
        return Ok(());
    }
    let consumer = Party::load(host, &buy.owner)?;
    // Skip this buy without ordering the points when even its nearest one cannot reach the
    // best UC.
    if let Some(b) = best.as_ref()
        && let Some(cost) = nearest_cost(&consumer.vehicle, &reach.points)
    {
        let bound = unit.saturating_mul(u128::from(q)).saturating_add(cost);
        if bound < u128::MAX
            && cmp_ratio(bound, q, b.consumer_cost, b.quantity) == Ordering::Greater
        {
            return Ok(());
        }
    }
    let by_consumer = by_distance_from(&consumer.vehicle, &reach.points);
    best_for_pair(
        &buy,
        new,
        buy.id,
        &consumer,
        me,
        &by_consumer,
        fee_rate,
        best,
    );
    Ok(())
}

/// The search of the buy grid for candidates at the points `recent` (see `book`): cells are
/// visited by a lower bound on UC against those points (the travel cost of the cell's
/// cheapest conceivable consumer from the cell's nearest edge, over the largest q), and the
/// search stops at the first cell whose bound exceeds the best UC found.
fn grid_search(
    host: &impl Host,
    new: &Order,
    me: &Party,
    reach: &Reach,
    recent: &[(u32, i64, i64)],
    fee_rate: u64,
    best: &mut Option<Candidate>,
) -> Result<(), MarketError> {
    let mut cells = Vec::new();
    let mut cursor: Option<Vec<u8>> = None;
    while let Some(k) = host.next_key(BUY_CELL_PREFIX, cursor.as_deref()) {
        let cell = decode_cell_key(&k[BUY_CELL_PREFIX.len()..])?;
        let raw = host
            .get(&k)
            .ok_or_else(|| MarketError::CorruptState("cell vanished".into()))?;
        let bounds = CellBounds::decode(&raw)?;
        cursor = Some(k);
        // UC >= p_S + r: a cell whose buyers all cap their unit cost below that holds
        // nothing feasible.
        if u128::from(new.price) + u128::from(fee_rate) > u128::from(bounds.limit_max) {
            continue;
        }
        cells.push(cell_bound(cell, &bounds, new, fee_rate, recent));
    }
    cells.sort_by(|a, b| cmp_ratio(a.1, a.2, b.1, b.2).then(a.0.cmp(&b.0)));
    for (cell, num, den) in cells {
        if let Some(b) = best.as_ref()
            && cmp_ratio(num, den, b.consumer_cost, b.quantity) == Ordering::Greater
        {
            break;
        }
        let prefix = key(BUY_GRID_PREFIX, &cell_key(cell));
        let mut member: Option<Vec<u8>> = None;
        while let Some(k) = host.next_key(&prefix, member.as_deref()) {
            let id = trailing_id(&k)?;
            member = Some(k);
            consider_buy(host, id, new, me, reach, fee_rate, best)?;
        }
    }
    Ok(())
}

/// The lower bound on UC of any candidate from `cell` for the incoming sell `new`, as the
/// rational (numerator, denominator), with the cell for tie order.
fn cell_bound(
    cell: (i64, i64),
    b: &CellBounds,
    new: &Order,
    fee_rate: u64,
    meeting_points: &[(u32, i64, i64)],
) -> ((i64, i64), u128, u64) {
    let x0 = i128::from(cell.0) * i128::from(GRID_CELL_M);
    let y0 = i128::from(cell.1) * i128::from(GRID_CELL_M);
    let span = i128::from(GRID_CELL_M) - 1;
    let gap = |lo: i128, v: i64| {
        let v = i128::from(v);
        (lo - v).max(v - (lo + span)).max(0).unsigned_abs()
    };
    let nearest = meeting_points
        .iter()
        .map(|&(_, mx, my)| {
            let (dx, dy) = (gap(x0, mx), gap(y0, my));
            dx.saturating_mul(dx).saturating_add(dy.saturating_mul(dy))
        })
        .min()
        .unwrap_or(0);
    let travel_lb = (isqrt(nearest).saturating_mul(u128::from(b.efficiency_min)) / 1000)
        .saturating_mul(u128::from(b.price_min));
    let q_max = b.remaining_max.min(new.remaining_wh).max(1);
    let unit = u128::from(new.price) + u128::from(fee_rate);
    let num = unit
        .saturating_mul(u128::from(q_max))
        .saturating_add(travel_lb);
    (cell, num, q_max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isqrt_is_exact() {
        for n in 0u128..10_000 {
            let r = isqrt(n);
            assert!(r * r <= n && (r + 1) * (r + 1) > n, "isqrt({n}) = {r}");
        }
        for n in [
            u128::MAX,
            u128::MAX - 1,
            1 << 100,
            (1 << 64) - 1,
            999_999_999_999_999_999,
        ] {
            let r = isqrt(n);
            assert!(r * r <= n, "{n}");
            assert!((r + 1).checked_mul(r + 1).is_none_or(|s| s > n), "{n}");
        }
        assert_eq!(distance(0, 0, 3, 4), 5);
        assert_eq!(
            distance(-MAX_COORD, -MAX_COORD, MAX_COORD, MAX_COORD),
            2_828_427_124_746
        );
    }

    #[test]
    fn wide_ratio_comparison() {
        assert_eq!(cmp_ratio(1, 2, 2, 4), Ordering::Equal);
        assert_eq!(
            cmp_ratio(u128::MAX, u64::MAX, u128::MAX - 1, u64::MAX),
            Ordering::Greater
        );
        assert_eq!(cmp_ratio(u128::MAX, 2, u128::MAX, 3), Ordering::Greater);
        assert_eq!(cmp_ratio(3, 7, 5, 11), (3 * 11).cmp(&(5 * 7)));
    }
}
