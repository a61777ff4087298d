//! Typed access to the contract's storage (see [`crate::state`] for the layout).

use crate::book;
use crate::state::*;
use crate::{Host, MarketError};

pub fn params(host: &impl Host) -> Result<Params, MarketError> {
    let raw = host
        .get(PARAMS_KEY)
        .ok_or_else(|| MarketError::CorruptState("parameters missing".into()))?;
    Params::decode(&raw)
}

pub fn put_params(host: &mut impl Host, p: &Params) {
    host.set(PARAMS_KEY, &p.encode());
}

pub fn is_operator(host: &impl Host, pk: &[u8; 32]) -> bool {
    host.get(&key(OPERATOR_PREFIX, pk)).is_some()
}

pub fn client_of(host: &impl Host, pk: &[u8; 32]) -> Result<Option<String>, MarketError> {
    match host.get(&key(KEY_PREFIX, pk)) {
        None => Ok(None),
        Some(raw) => String::from_utf8(raw)
            .map(Some)
            .map_err(|_| MarketError::CorruptState("client id not UTF-8".into())),
    }
}

pub fn account(host: &impl Host, id: &str) -> Result<Account, MarketError> {
    let raw = host
        .get(&key(ACCOUNT_PREFIX, id.as_bytes()))
        .ok_or_else(|| MarketError::UnknownClient(id.into()))?;
    Account::decode(&raw)
}

pub fn put_account(host: &mut impl Host, id: &str, acct: &Account) {
    host.set(&key(ACCOUNT_PREFIX, id.as_bytes()), &acct.encode());
}

pub fn vehicle(host: &impl Host, client: &str) -> Result<Vehicle, MarketError> {
    let raw = host
        .get(&key(VEHICLE_PREFIX, client.as_bytes()))
        .ok_or_else(|| MarketError::NoVehicle(client.into()))?;
    Vehicle::decode(&raw)
}

pub fn put_vehicle(host: &mut impl Host, client: &str, v: &Vehicle) {
    host.set(&key(VEHICLE_PREFIX, client.as_bytes()), &v.encode());
}

pub fn order(host: &impl Host, id: u64) -> Result<Order, MarketError> {
    let raw = host
        .get(&key(ORDER_PREFIX, &id.to_be_bytes()))
        .ok_or(MarketError::UnknownOrder(id))?;
    Order::decode(&raw)
}

fn sell_book_key(o: &Order) -> Vec<u8> {
    let mut k = key(SELL_BOOK_PREFIX, &o.price.to_be_bytes());
    k.extend_from_slice(&o.id.to_be_bytes());
    k
}

fn owner_order_key(o: &Order) -> Vec<u8> {
    let mut k = client_prefix(OWNER_ORDER_PREFIX, &o.owner);
    k.extend_from_slice(&o.id.to_be_bytes());
    k
}

/// Writes an order with its book and owner index entries (it rests); `mps` are the current
/// meeting points.
pub fn put_order(
    host: &mut impl Host,
    o: &Order,
    mps: &[(u32, i64, i64)],
) -> Result<(), MarketError> {
    host.set(&key(ORDER_PREFIX, &o.id.to_be_bytes()), &o.encode());
    host.set(&owner_order_key(o), &[]);
    match o.side {
        v2v_abi::Side::Sell => host.set(&sell_book_key(o), &[]),
        v2v_abi::Side::Buy => book::file_buy(host, o, &vehicle(host, &o.owner)?, mps)?,
    }
    Ok(())
}

/// Updates a resting order's record only (its index keys do not change).
pub fn update_order(host: &mut impl Host, o: &Order) {
    host.set(&key(ORDER_PREFIX, &o.id.to_be_bytes()), &o.encode());
}

/// Takes an order out of the book and its indexes.
pub fn delete_order(host: &mut impl Host, o: &Order) -> Result<(), MarketError> {
    host.remove(&key(ORDER_PREFIX, &o.id.to_be_bytes()));
    host.remove(&owner_order_key(o));
    match o.side {
        v2v_abi::Side::Sell => host.remove(&sell_book_key(o)),
        v2v_abi::Side::Buy => book::unfile_buy(host, o, &vehicle(host, &o.owner)?)?,
    }
    Ok(())
}

/// Ids of a client's resting orders, ascending.
pub fn orders_of(host: &impl Host, client: &str) -> Result<Vec<u64>, MarketError> {
    let prefix = client_prefix(OWNER_ORDER_PREFIX, client);
    let mut out = Vec::new();
    let mut cursor: Option<Vec<u8>> = None;
    while let Some(k) = host.next_key(&prefix, cursor.as_deref()) {
        out.push(trailing_id(&k)?);
        cursor = Some(k);
    }
    Ok(out)
}

pub fn trade(host: &impl Host, id: u64) -> Result<Trade, MarketError> {
    let raw = host
        .get(&key(TRADE_PREFIX, &id.to_be_bytes()))
        .ok_or(MarketError::UnknownTrade(id))?;
    Trade::decode(&raw)
}

pub fn put_trade(host: &mut impl Host, t: &Trade) {
    host.set(&key(TRADE_PREFIX, &t.id.to_be_bytes()), &t.encode());
}

/// Indexes a new trade under both parties.
pub fn index_trade(host: &mut impl Host, t: &Trade) {
    for party in [&t.consumer, &t.provider] {
        let mut k = client_prefix(OWNER_TRADE_PREFIX, party);
        k.extend_from_slice(&t.id.to_be_bytes());
        host.set(&k, &[]);
    }
}

pub fn meeting_point(host: &impl Host, id: u32) -> Result<Option<(i64, i64)>, MarketError> {
    match host.get(&key(MEETING_POINT_PREFIX, &id.to_be_bytes())) {
        None => Ok(None),
        Some(v) => decode_point(&v).map(Some),
    }
}

pub fn decode_point(v: &[u8]) -> Result<(i64, i64), MarketError> {
    let bad = || MarketError::CorruptState("meeting point value".into());
    let x = v
        .get(0..8)
        .and_then(|s| <[u8; 8]>::try_from(s).ok())
        .ok_or_else(bad)?;
    let y = v
        .get(8..16)
        .and_then(|s| <[u8; 8]>::try_from(s).ok())
        .ok_or_else(bad)?;
    Ok((i64::from_le_bytes(x), i64::from_le_bytes(y)))
}

pub fn put_meeting_point(host: &mut impl Host, id: u32, x: i64, y: i64) {
    let mut v = Vec::with_capacity(16);
    v.extend_from_slice(&x.to_le_bytes());
    v.extend_from_slice(&y.to_le_bytes());
    host.set(&key(MEETING_POINT_PREFIX, &id.to_be_bytes()), &v);
}

/// Every meeting point, ascending id.
pub fn meeting_points(host: &impl Host) -> Result<Vec<(u32, i64, i64)>, MarketError> {
    let mut out = Vec::new();
    let mut cursor: Option<Vec<u8>> = None;
    while let Some(k) = host.next_key(MEETING_POINT_PREFIX, cursor.as_deref()) {
        let v = host
            .get(&k)
            .ok_or_else(|| MarketError::CorruptState("meeting point vanished".into()))?;
        let id = k
            .get(MEETING_POINT_PREFIX.len()..)
            .and_then(|s| <[u8; 4]>::try_from(s).ok())
            .map(u32::from_be_bytes)
            .ok_or_else(|| MarketError::CorruptState("meeting point key".into()))?;
        let (x, y) = decode_point(&v)?;
        out.push((id, x, y));
        cursor = Some(k);
    }
    Ok(out)
}

/// Energy matched in trades since genesis (Wh; settled or not).
pub fn traded_wh(host: &impl Host) -> Result<u128, MarketError> {
    match host.get(TRADED_KEY) {
        None => Ok(0),
        Some(v) => <[u8; 16]>::try_from(&v[..])
            .map(u128::from_be_bytes)
            .map_err(|_| MarketError::CorruptState("traded energy".into())),
    }
}

pub fn add_traded_wh(host: &mut impl Host, q: u64) -> Result<(), MarketError> {
    let total = traded_wh(host)?.saturating_add(u128::from(q));
    host.set(TRADED_KEY, &total.to_be_bytes());
    Ok(())
}
