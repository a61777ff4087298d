//! The indexes of resting buys that a new sell searches (`docs/adr/003-matching-index.md`).
//!
//! **The bound index** (`bl/`) files every resting buy under
//! (limit bucket, ⌊2³² · TC_min / remaining⌋, order id), where TC_min is its consumer's travel
//! cost to the nearest meeting point. For a sell S, every candidate (B, S, M) has
//! UC = p_S + r + TC_C(M) / q ≥ p_S + r + TC_min / remaining(B), because q ≤ remaining(B)
//! and TC_C(M) ≥ TC_min, *provided M existed when the key was computed*. The bound does not
//! depend on the sell, so a sell reads buys in ascending bound and stops at the first whose
//! bound exceeds the best unit cost found. Buckets group buys by their unit-cost limit (about
//! 4 per doubling, "no limit" last), so a sell skips every bucket whose limits are all below
//! p_S + r.
//!
//! Keys are kept valid cheaply: a partial fill raises the true bound (the key is recomputed
//! anyway), removing a meeting point raises it too, telemetry re-files the owner's buys.
//! Adding a meeting point can *lower* the true bound of many buys, so instead of re-filing
//! them all in one transaction, each key records the **epoch** (the count of meeting-point
//! changes) it was computed at; meeting points added after the oldest live key's epoch are
//! "recent", and the candidates that use them are searched in **the grid** (`bc/`, `bg/`):
//! 1 km cells of buys by consumer position with per-cell bounds, visited by a lower bound
//! against the recent points only. Every order placement then re-keys a few of the oldest
//! buys, so the recent set empties again.

use crate::ledger::{self, orders_of, vehicle};
use crate::matching::nearest_cost;
use crate::state::*;
use crate::{Host, MarketError};

/// `bl/` + limit bucket (1) + bound (u128 BE) + order id (u64 BE): empty.
pub const BOUND_PREFIX: &[u8] = b"bl/";
/// `br/` + remaining-amount bucket (1) + bound (u128 BE) + order id (u64 BE): empty.
pub const BOUND_BY_REMAINING_PREFIX: &[u8] = b"br/";
/// `bk/` + order id: epoch (u64 BE) + bound (u128 BE) + limit bucket + remaining bucket.
pub const BOUND_OF_PREFIX: &[u8] = b"bk/";
/// `be/` + epoch (u64 BE) + order id: empty; the oldest keys first.
pub const EPOCH_INDEX_PREFIX: &[u8] = b"be/";
/// `me/` + epoch (u64 BE) + meeting point id (u32 BE): empty; points added after genesis.
pub const POINT_EPOCH_PREFIX: &[u8] = b"me/";
/// The current epoch (u64 BE); absent means 0.
pub const EPOCH_KEY: &[u8] = b"ep";

/// Fixed-point shift of the stored bound.
pub const BOUND_SHIFT: u32 = 32;

/// Buys re-keyed per order placement (see [`migrate`]).
pub const MIGRATE_PER_ORDER: usize = 4;
/// Buys re-keyed by the meeting-point change itself.
pub const MIGRATE_PER_POINT_CHANGE: usize = 64;

/// The bucket of a unit-cost limit: [`bucket`] of the limit, "no limit" as `u64::MAX`.
pub fn limit_bucket(limit: Option<u64>) -> u8 {
    bucket(limit.unwrap_or(u64::MAX))
}

/// A value's bucket: monotone, four buckets per doubling (the values of one bucket are within
/// 25 % of each other), 255 for the largest.
pub fn bucket(l: u64) -> u8 {
    if l < 4 {
        return l as u8;
    }
    let log = 63 - l.leading_zeros();
    (4 * log + ((l >> (log - 2)) & 3) as u32) as u8
}

/// ⌊2³² · cost / remaining⌋, or `u128::MAX` when that does not fit (or there is no cost:
/// no meeting point, or a travel cost that overflows, so no candidate at all).
pub fn bound_of(cost: Option<u128>, remaining: u64) -> u128 {
    let (Some(cost), Some(rem)) = (cost, std::num::NonZeroU64::new(remaining)) else {
        return u128::MAX;
    };
    let rem = u128::from(rem.get());
    let whole = cost / rem;
    if whole >> (128 - BOUND_SHIFT) != 0 {
        return u128::MAX;
    }
    (whole << BOUND_SHIFT) | (((cost % rem) << BOUND_SHIFT) / rem)
}

pub fn current_epoch(host: &impl Host) -> Result<u64, MarketError> {
    match host.get(EPOCH_KEY) {
        None => Ok(0),
        Some(v) => <[u8; 8]>::try_from(&v[..])
            .map(u64::from_be_bytes)
            .map_err(|_| MarketError::CorruptState("epoch".into())),
    }
}

fn with_id(prefix: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut k = prefix.to_vec();
    for p in parts {
        k.extend_from_slice(p);
    }
    k
}

/// Files a buy in both indexes (`v` is its owner's vehicle, `mps` the current points).
pub fn file_buy(
    host: &mut impl Host,
    o: &Order,
    v: &Vehicle,
    mps: &[(u32, i64, i64)],
) -> Result<(), MarketError> {
    grid_add(host, o, v)?;
    put_bound(host, o, v, mps)
}

/// Takes a buy out of both indexes (`v`: its owner's vehicle as it was when filed).
pub fn unfile_buy(host: &mut impl Host, o: &Order, v: &Vehicle) -> Result<(), MarketError> {
    grid_remove(host, o, v)?;
    remove_bound(host, o.id)
}

/// Recomputes a resting buy's bound key against the current points (after a partial fill,
/// or to migrate an old key).
pub fn rekey(
    host: &mut impl Host,
    o: &Order,
    v: &Vehicle,
    mps: &[(u32, i64, i64)],
) -> Result<(), MarketError> {
    remove_bound(host, o.id)?;
    put_bound(host, o, v, mps)
}

fn put_bound(
    host: &mut impl Host,
    o: &Order,
    v: &Vehicle,
    mps: &[(u32, i64, i64)],
) -> Result<(), MarketError> {
    let epoch = current_epoch(host)?.to_be_bytes();
    let by_limit = [limit_bucket(o.max_unit_cost)];
    let by_remaining = [bucket(o.remaining_wh)];
    let bound = bound_of(nearest_cost(v, mps), o.remaining_wh).to_be_bytes();
    let id = o.id.to_be_bytes();
    host.set(&with_id(BOUND_PREFIX, &[&by_limit, &bound, &id]), &[]);
    host.set(
        &with_id(BOUND_BY_REMAINING_PREFIX, &[&by_remaining, &bound, &id]),
        &[],
    );
    host.set(&with_id(EPOCH_INDEX_PREFIX, &[&epoch, &id]), &[]);
    host.set(
        &with_id(BOUND_OF_PREFIX, &[&id]),
        &with_id(&epoch, &[&bound, &by_limit, &by_remaining]),
    );
    Ok(())
}

fn remove_bound(host: &mut impl Host, id: u64) -> Result<(), MarketError> {
    let id = id.to_be_bytes();
    let of = with_id(BOUND_OF_PREFIX, &[&id]);
    let Some(v) = host.get(&of) else {
        return Ok(());
    };
    if v.len() != 8 + 16 + 2 {
        return Err(MarketError::CorruptState("bound record".into()));
    }
    let bound = &v[8..24];
    host.remove(&with_id(BOUND_PREFIX, &[&v[24..25], bound, &id]));
    host.remove(&with_id(
        BOUND_BY_REMAINING_PREFIX,
        &[&v[25..26], bound, &id],
    ));
    host.remove(&with_id(EPOCH_INDEX_PREFIX, &[&v[..8], &id]));
    host.remove(&of);
    Ok(())
}

/// Re-keys up to `budget` buys whose keys are older than the current epoch, oldest first.
pub fn migrate(
    host: &mut impl Host,
    mps: &[(u32, i64, i64)],
    budget: usize,
) -> Result<(), MarketError> {
    let now = current_epoch(host)?;
    for _ in 0..budget {
        let Some(k) = host.next_key(EPOCH_INDEX_PREFIX, None) else {
            return Ok(());
        };
        let epoch = k
            .get(EPOCH_INDEX_PREFIX.len()..EPOCH_INDEX_PREFIX.len() + 8)
            .and_then(|s| <[u8; 8]>::try_from(s).ok())
            .map(u64::from_be_bytes)
            .ok_or_else(|| MarketError::CorruptState("epoch index key".into()))?;
        if epoch >= now {
            return Ok(());
        }
        let o = ledger::order(host, trailing_id(&k)?)?;
        let v = vehicle(host, &o.owner)?;
        rekey(host, &o, &v, mps)?;
    }
    Ok(())
}

/// Starts a new epoch after a meeting point was added (`added`) or removed, and re-keys a
/// first batch of buys against `mps` (the points now).
pub fn points_changed(
    host: &mut impl Host,
    added: Option<u32>,
    removed: Option<u32>,
    mps: &[(u32, i64, i64)],
) -> Result<(), MarketError> {
    let epoch = current_epoch(host)?
        .checked_add(1)
        .ok_or(MarketError::Overflow("epoch"))?;
    host.set(EPOCH_KEY, &epoch.to_be_bytes());
    if let Some(id) = added {
        host.set(
            &with_id(
                POINT_EPOCH_PREFIX,
                &[&epoch.to_be_bytes(), &id.to_be_bytes()],
            ),
            &[],
        );
    }
    if let Some(id) = removed {
        let mut cursor: Option<Vec<u8>> = None;
        while let Some(k) = host.next_key(POINT_EPOCH_PREFIX, cursor.as_deref()) {
            if k.ends_with(&id.to_be_bytes()) {
                host.remove(&k);
                break;
            }
            cursor = Some(k);
        }
    }
    migrate(host, mps, MIGRATE_PER_POINT_CHANGE)
}

/// The points of `among` that were added after the oldest live buy key was computed: the
/// candidates that use them are not covered by the bound index.
pub fn recent_points(
    host: &impl Host,
    among: &[(u32, i64, i64)],
) -> Result<Vec<(u32, i64, i64)>, MarketError> {
    let Some(oldest) = host.next_key(EPOCH_INDEX_PREFIX, None) else {
        return Ok(Vec::new());
    };
    let n = EPOCH_INDEX_PREFIX.len();
    let after = with_id(POINT_EPOCH_PREFIX, &[&oldest[n..n + 8], &[0xff; 4]]);
    let mut ids = Vec::new();
    let mut cursor = Some(after);
    while let Some(k) = host.next_key(POINT_EPOCH_PREFIX, cursor.as_deref()) {
        ids.push(trailing_u32(&k)?);
        cursor = Some(k);
    }
    Ok(among
        .iter()
        .copied()
        .filter(|mp| ids.contains(&mp.0))
        .collect())
}

fn trailing_u32(k: &[u8]) -> Result<u32, MarketError> {
    k.len()
        .checked_sub(4)
        .and_then(|at| <[u8; 4]>::try_from(&k[at..]).ok())
        .map(u32::from_be_bytes)
        .ok_or_else(|| MarketError::CorruptState("point epoch key".into()))
}

/// A scan of one bound index in ascending bound over a range of its buckets, merging the
/// buckets' own ascending orders.
pub struct BoundScan {
    /// The next key of each bucket still open.
    heads: Vec<Vec<u8>>,
}

const BOUND_KEY_LEN: usize = 3 + 1 + 16 + 8;

/// Which bound index a scan reads, and its buckets.
pub enum Buckets {
    /// Buys whose unit-cost limit may be at least this (µcr/Wh), or that have none.
    LimitAtLeast(u128),
    /// Buys whose remaining amount may lie in this range (Wh).
    RemainingIn(u64, u64),
}

fn bound_in(k: &[u8]) -> Result<u128, MarketError> {
    k.get(4..20)
        .and_then(|s| <[u8; 16]>::try_from(s).ok())
        .map(u128::from_be_bytes)
        .filter(|_| k.len() == BOUND_KEY_LEN)
        .ok_or_else(|| MarketError::CorruptState("bound key".into()))
}

impl BoundScan {
    pub fn new(host: &impl Host, which: Buckets) -> Self {
        let (prefix, first, last) = match which {
            Buckets::LimitAtLeast(unit) => (
                BOUND_PREFIX,
                limit_bucket(Some(u64::try_from(unit).unwrap_or(u64::MAX))),
                u8::MAX,
            ),
            Buckets::RemainingIn(lo, hi) => (BOUND_BY_REMAINING_PREFIX, bucket(lo), bucket(hi)),
        };
        let mut heads = Vec::new();
        let mut after = (first > 0).then(|| with_id(prefix, &[&[first - 1], &[0xff; 24]]));
        while let Some(k) = host.next_key(prefix, after.as_deref()) {
            let b = k.get(3).copied().unwrap_or(u8::MAX);
            if b > last {
                break;
            }
            heads.push(k);
            if b == u8::MAX {
                break;
            }
            after = Some(with_id(prefix, &[&[b], &[0xff; 24]]));
        }
        BoundScan { heads }
    }

    /// The smallest bound not yet returned, with its position in `heads`.
    fn least(&self) -> Result<Option<(usize, u128)>, MarketError> {
        let mut least: Option<(usize, u128)> = None;
        for (i, k) in self.heads.iter().enumerate() {
            let b = bound_in(k)?;
            // Ties: the lower bucket first (any fixed order would do).
            if least.is_none_or(|(_, l)| b < l) {
                least = Some((i, b));
            }
        }
        Ok(least)
    }

    /// The next buy id and its stored bound, ascending.
    pub fn next(&mut self, host: &impl Host) -> Result<Option<(u64, u128)>, MarketError> {
        let Some((i, bound)) = self.least()? else {
            return Ok(None);
        };
        let k = self.heads[i].clone();
        let id = trailing_id(&k)?;
        match host.next_key(&k[..4], Some(&k)) {
            Some(n) => self.heads[i] = n,
            None => {
                self.heads.remove(i);
            }
        }
        Ok(Some((id, bound)))
    }
}

fn grid_member_key(cell: (i64, i64), id: u64) -> Vec<u8> {
    let mut k = key(BUY_GRID_PREFIX, &cell_key(cell));
    k.extend_from_slice(&id.to_be_bytes());
    k
}

pub fn cell_bounds(host: &impl Host, cell: (i64, i64)) -> Result<Option<CellBounds>, MarketError> {
    host.get(&key(BUY_CELL_PREFIX, &cell_key(cell)))
        .map(|v| CellBounds::decode(&v))
        .transpose()
}

fn put_cell_bounds(host: &mut impl Host, cell: (i64, i64), b: &CellBounds) {
    host.set(&key(BUY_CELL_PREFIX, &cell_key(cell)), &b.encode());
}

/// Puts a resting buy in the grid cell of its owner's vehicle, loosening the cell's bounds.
fn grid_add(host: &mut impl Host, o: &Order, v: &Vehicle) -> Result<(), MarketError> {
    let cell = cell_of(v.x, v.y);
    let limit = o.max_unit_cost.unwrap_or(u64::MAX);
    let b = match cell_bounds(host, cell)? {
        None => CellBounds {
            count: 1,
            efficiency_min: v.efficiency,
            price_min: v.energy_price,
            remaining_max: o.remaining_wh,
            limit_max: limit,
        },
        Some(b) => CellBounds {
            count: b.count + 1,
            efficiency_min: b.efficiency_min.min(v.efficiency),
            price_min: b.price_min.min(v.energy_price),
            remaining_max: b.remaining_max.max(o.remaining_wh),
            limit_max: b.limit_max.max(limit),
        },
    };
    put_cell_bounds(host, cell, &b);
    host.set(&grid_member_key(cell, o.id), &[]);
    Ok(())
}

/// Takes a buy out of its cell (`v`: the owner's vehicle as it was when the buy was filed).
fn grid_remove(host: &mut impl Host, o: &Order, v: &Vehicle) -> Result<(), MarketError> {
    let cell = cell_of(v.x, v.y);
    host.remove(&grid_member_key(cell, o.id));
    if let Some(mut b) = cell_bounds(host, cell)? {
        b.count = b.count.saturating_sub(1);
        if b.count == 0 {
            host.remove(&key(BUY_CELL_PREFIX, &cell_key(cell)));
        } else {
            put_cell_bounds(host, cell, &b);
        }
    }
    Ok(())
}

/// Re-files a client's resting buys after its vehicle moved or changed its energy price.
pub fn refile_buys(
    host: &mut impl Host,
    client: &str,
    before: &Vehicle,
    after: &Vehicle,
) -> Result<(), MarketError> {
    let mut mps: Option<Vec<(u32, i64, i64)>> = None;
    for id in orders_of(host, client)? {
        let o = ledger::order(host, id)?;
        if o.side == v2v_abi::Side::Buy {
            let mps = match &mps {
                Some(m) => m,
                None => mps.insert(ledger::meeting_points(host)?),
            };
            unfile_buy(host, &o, before)?;
            file_buy(host, &o, after, mps)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotone_and_fine() {
        let mut last = 0u8;
        let mut l = 0u64;
        while l < u64::MAX / 3 {
            let b = limit_bucket(Some(l));
            assert!(b >= last, "bucket({l}) = {b} < {last}");
            last = b;
            l = l + l / 8 + 1;
        }
        assert_eq!(limit_bucket(None), 255);
        assert_eq!(limit_bucket(Some(u64::MAX)), 255);
        // Within a bucket limits differ by less than 25 %.
        assert_eq!(limit_bucket(Some(100)), limit_bucket(Some(111)));
        assert!(limit_bucket(Some(100)) < limit_bucket(Some(128)));
    }

    #[test]
    fn bounds_are_exact_floors_or_saturate() {
        assert_eq!(bound_of(Some(3), 2), 3 << 31);
        assert_eq!(bound_of(Some(1), 3), (1u128 << 32) / 3);
        assert_eq!(bound_of(Some(0), 5), 0);
        assert_eq!(bound_of(None, 5), u128::MAX);
        assert_eq!(bound_of(Some(u128::MAX), 1), u128::MAX);
        let big = 1u128 << 100;
        assert_eq!(bound_of(Some(big), 1 << 60), 1u128 << 72);
        // Never above the true value: floor(c · 2^32 / r) for values that fit.
        for (c, r) in [(12345u128, 7u64), (999_999_999, 1_000), (1 << 90, 3)] {
            let exact = (c << 32) / u128::from(r);
            assert_eq!(bound_of(Some(c), r), exact);
        }
    }
}
