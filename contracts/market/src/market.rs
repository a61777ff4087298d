//! The market's transactions: genesis, client calls, orders with matching, trades and
//! settlement, and operator calls (`docs/market.md`).

use serde_json::{Value, json};
use v2v_abi::genesis::{GenesisMarket, parse_hex_array, to_hex};
use v2v_abi::{MarketCall, Resolution, Side};

use crate::book;
use crate::ledger::{self, account, put_account};
use crate::matching::{self, MAX_COORD};
use crate::state::*;
use crate::views::{order_json, trade_json};
use crate::{Host, MarketError};

/// The treasury has no key: nobody can sign for it.
const NO_OWNER: [u8; 32] = [0u8; 32];

/// Writes the genesis market state.
pub fn init(host: &mut impl Host, genesis: &GenesisMarket) -> Result<(), MarketError> {
    let bad = |m: String| MarketError::InvalidGenesis(m);
    validate_client_id(&genesis.treasury).map_err(|e| bad(format!("treasury: {e}")))?;
    ledger::put_params(
        host,
        &Params {
            fee_rate: genesis.fee_rate,
            treasury: genesis.treasury.clone(),
            next_order_id: 1,
            next_trade_id: 1,
        },
    );
    put_account(
        host,
        &genesis.treasury,
        &Account {
            owner: NO_OWNER,
            balance: 0,
            escrow: 0,
            open_trades: 0,
        },
    );
    for op in &genesis.operators {
        let pk = parse_hex_array::<32>(op).ok_or_else(|| bad(format!("operator key {op}")))?;
        host.set(&key(OPERATOR_PREFIX, &pk), &[]);
    }
    for mp in &genesis.meeting_points {
        check_point(mp.x, mp.y).map_err(|e| bad(format!("meeting point {}: {e}", mp.id)))?;
        if ledger::meeting_point(host, mp.id)?.is_some() {
            return Err(bad(format!("meeting point {} appears twice", mp.id)));
        }
        ledger::put_meeting_point(host, mp.id, mp.x, mp.y);
    }
    for c in &genesis.clients {
        let pk = parse_hex_array::<32>(&c.public_key)
            .ok_or_else(|| bad(format!("client {} public key", c.id)))?;
        register_client(host, &c.id, pk).map_err(|e| bad(format!("client {}: {e}", c.id)))?;
        let mut acct = account(host, &c.id)?;
        acct.balance = c.balance;
        put_account(host, &c.id, &acct);
    }
    Ok(())
}

/// Executes one transaction's call on behalf of `host.caller()`.
pub fn execute(host: &mut impl Host, call: &MarketCall) -> Result<(), MarketError> {
    use MarketCall as C;
    match call {
        C::Register { client_id } => {
            let signer = host.caller();
            register_client(host, client_id, signer)?;
            host.emit(&json!({"type": "clientRegistered", "clientId": client_id, "publicKey": to_hex(&signer)}));
            Ok(())
        }
        C::LinkVehicle {
            vehicle_id,
            capacity_wh,
            charge_wh,
            x,
            y,
            efficiency_wh_per_km,
            energy_price,
        } => {
            let (id, _) = signer_account(host)?;
            link_vehicle(
                host,
                &id,
                Vehicle {
                    vehicle_id: vehicle_id.clone(),
                    capacity_wh: *capacity_wh,
                    charge_wh: *charge_wh,
                    x: *x,
                    y: *y,
                    efficiency: *efficiency_wh_per_km,
                    energy_price: *energy_price,
                    committed_wh: 0,
                },
            )
        }
        C::Telemetry {
            charge_wh,
            x,
            y,
            energy_price,
        } => {
            let (id, _) = signer_account(host)?;
            let mut v = ledger::vehicle(host, &id)?;
            if *charge_wh > v.capacity_wh {
                return Err(MarketError::InvalidVehicle(format!(
                    "charge {charge_wh} Wh exceeds the capacity {} Wh",
                    v.capacity_wh
                )));
            }
            check_point(*x, *y)?;
            let before = v.clone();
            v.charge_wh = *charge_wh;
            v.x = *x;
            v.y = *y;
            v.energy_price = *energy_price;
            ledger::put_vehicle(host, &id, &v);
            // Resting buys are filed by their owner's position and price: re-file them.
            if (before.x, before.y, before.energy_price) != (v.x, v.y, v.energy_price) {
                book::refile_buys(host, &id, &before, &v)?;
            }
            host.emit(&json!({"type": "telemetry", "clientId": id, "chargeWh": charge_wh, "x": x, "y": y, "energyPrice": energy_price.to_string()}));
            Ok(())
        }
        C::Deposit { amount } => {
            let (id, mut acct) = signer_account(host)?;
            if *amount == 0 {
                return Err(MarketError::ZeroAmount);
            }
            crate::migrate::check_deposit(*amount)?;
            acct.balance = acct
                .balance
                .checked_add(*amount)
                .ok_or(MarketError::Overflow("deposit"))?;
            put_account(host, &id, &acct);
            host.emit(&json!({"type": "deposited", "clientId": id, "amount": amount.to_string(), "balance": acct.balance.to_string()}));
            Ok(())
        }
        C::Withdraw { amount } => {
            let (id, mut acct) = signer_account(host)?;
            if *amount == 0 {
                return Err(MarketError::ZeroAmount);
            }
            acct.balance =
                acct.balance
                    .checked_sub(*amount)
                    .ok_or(MarketError::InsufficientFunds {
                        available: acct.balance,
                        requested: *amount,
                    })?;
            put_account(host, &id, &acct);
            host.emit(&json!({"type": "withdrawn", "clientId": id, "amount": amount.to_string(), "balance": acct.balance.to_string()}));
            Ok(())
        }
        C::Buy {
            amount_wh,
            max_unit_cost,
        } => {
            let (id, _) = signer_account(host)?;
            place_order(host, &id, Side::Buy, *amount_wh, 0, *max_unit_cost)
        }
        C::Sell { amount_wh, price } => {
            let (id, _) = signer_account(host)?;
            place_order(host, &id, Side::Sell, *amount_wh, *price, None)
        }
        C::Cancel { order_id } => {
            let (id, _) = signer_account(host)?;
            let o = ledger::order(host, *order_id)?;
            if o.owner != id {
                return Err(MarketError::NotYourOrder(*order_id));
            }
            ledger::delete_order(host, &o)?;
            host.emit(&json!({"type": "orderCancelled", "orderId": order_id, "owner": id, "remainingWh": o.remaining_wh}));
            Ok(())
        }
        C::Confirm { trade_id } => {
            let (id, _) = signer_account(host)?;
            let t = consumer_trade(host, *trade_id, &id, TradeStatus::Matched)?;
            host.emit(&json!({"type": "tradeConfirmed", "tradeId": trade_id, "consumer": id, "provider": t.provider}));
            settle(host, t)
        }
        C::Dispute { trade_id, reason } => {
            let (id, _) = signer_account(host)?;
            if reason.trim().is_empty() {
                return Err(MarketError::EmptyReason);
            }
            let mut t = consumer_trade(host, *trade_id, &id, TradeStatus::Matched)?;
            t.status = TradeStatus::Disputed;
            t.dispute_reason = Some(reason.clone());
            ledger::put_trade(host, &t);
            host.emit(&json!({"type": "tradeDisputed", "tradeId": trade_id, "consumer": id, "provider": t.provider, "reason": reason}));
            Ok(())
        }
        C::RegisterClient {
            client_id,
            public_key,
        } => {
            require_operator(host)?;
            register_client(host, client_id, *public_key)?;
            host.emit(&json!({"type": "clientRegistered", "clientId": client_id, "publicKey": to_hex(public_key), "byOperator": true}));
            Ok(())
        }
        C::RemoveClient { client_id } => {
            require_operator(host)?;
            remove_client(host, client_id)
        }
        C::AdjustFunds {
            client_id,
            delta,
            reason,
        } => {
            require_operator(host)?;
            if reason.trim().is_empty() {
                return Err(MarketError::EmptyReason);
            }
            let mut acct = account(host, client_id)?;
            acct.balance = if *delta >= 0 {
                acct.balance
                    .checked_add(delta.unsigned_abs())
                    .ok_or(MarketError::Overflow("adjustment"))?
            } else {
                acct.balance.checked_sub(delta.unsigned_abs()).ok_or(
                    MarketError::InsufficientFunds {
                        available: acct.balance,
                        requested: delta.unsigned_abs(),
                    },
                )?
            };
            put_account(host, client_id, &acct);
            host.emit(&json!({"type": "fundsAdjusted", "clientId": client_id, "delta": delta.to_string(), "reason": reason, "balance": acct.balance.to_string()}));
            Ok(())
        }
        C::RemoveOrder { order_id, reason } => {
            require_operator(host)?;
            let o = ledger::order(host, *order_id)?;
            ledger::delete_order(host, &o)?;
            host.emit(&json!({"type": "orderRemoved", "orderId": order_id, "owner": o.owner, "reason": reason}));
            Ok(())
        }
        C::AddMeetingPoint { id, x, y } => {
            require_operator(host)?;
            check_point(*x, *y)?;
            if ledger::meeting_point(host, *id)?.is_some() {
                return Err(MarketError::MeetingPointExists(*id));
            }
            ledger::put_meeting_point(host, *id, *x, *y);
            book::points_changed(host, Some(*id), None, &ledger::meeting_points(host)?)?;
            host.emit(&json!({"type": "meetingPointAdded", "id": id, "x": x, "y": y}));
            Ok(())
        }
        C::RemoveMeetingPoint { id } => {
            require_operator(host)?;
            if ledger::meeting_point(host, *id)?.is_none() {
                return Err(MarketError::UnknownMeetingPoint(*id));
            }
            host.remove(&key(MEETING_POINT_PREFIX, &id.to_be_bytes()));
            book::points_changed(host, None, Some(*id), &ledger::meeting_points(host)?)?;
            host.emit(&json!({"type": "meetingPointRemoved", "id": id}));
            Ok(())
        }
        C::SetFee { fee_rate } => {
            require_operator(host)?;
            let mut p = ledger::params(host)?;
            p.fee_rate = *fee_rate;
            ledger::put_params(host, &p);
            host.emit(&json!({"type": "feeSet", "feeRate": fee_rate.to_string()}));
            Ok(())
        }
        C::Resolve {
            trade_id,
            resolution,
        } => {
            require_operator(host)?;
            let t = ledger::trade(host, *trade_id)?;
            if t.status != TradeStatus::Disputed {
                return Err(MarketError::TradeNotOpen {
                    id: *trade_id,
                    status: t.status.as_str(),
                    needed: "disputed",
                });
            }
            match resolution {
                Resolution::Settle => settle(host, t),
                Resolution::Refund => refund(host, t),
            }
        }
    }
}

fn check_point(x: i64, y: i64) -> Result<(), MarketError> {
    if x.unsigned_abs() > MAX_COORD as u64 || y.unsigned_abs() > MAX_COORD as u64 {
        return Err(MarketError::OutOfBounds(format!(
            "position ({x}, {y}) (limit ±{MAX_COORD} m)"
        )));
    }
    Ok(())
}

/// Client ids: 1 to 64 bytes of lowercase ASCII letters, digits, `-`, `_` and `.`.
fn validate_client_id(id: &str) -> Result<(), MarketError> {
    if id.is_empty() || id.len() > v2v_abi::call::MAX_CLIENT_ID_LEN {
        return Err(MarketError::InvalidClientId(format!(
            "'{id}' must be 1 to {} bytes",
            v2v_abi::call::MAX_CLIENT_ID_LEN
        )));
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
    {
        return Err(MarketError::InvalidClientId(format!(
            "'{id}' may only hold a-z, 0-9, '-', '_' and '.'"
        )));
    }
    Ok(())
}

fn register_client(host: &mut impl Host, id: &str, owner: [u8; 32]) -> Result<(), MarketError> {
    validate_client_id(id)?;
    if let Some(existing) = ledger::client_of(host, &owner)? {
        return Err(MarketError::AlreadyRegistered(existing));
    }
    if host.get(&key(ACCOUNT_PREFIX, id.as_bytes())).is_some() {
        return Err(MarketError::ClientIdTaken(id.into()));
    }
    put_account(
        host,
        id,
        &Account {
            owner,
            balance: 0,
            escrow: 0,
            open_trades: 0,
        },
    );
    host.set(&key(KEY_PREFIX, &owner), id.as_bytes());
    Ok(())
}

fn require_operator(host: &impl Host) -> Result<(), MarketError> {
    if ledger::is_operator(host, &host.caller()) {
        Ok(())
    } else {
        Err(MarketError::NotOperator)
    }
}

fn signer_account(host: &impl Host) -> Result<(String, Account), MarketError> {
    let id = ledger::client_of(host, &host.caller())?.ok_or(MarketError::NotRegistered)?;
    let acct = account(host, &id)?;
    Ok((id, acct))
}

fn link_vehicle(host: &mut impl Host, client: &str, v: Vehicle) -> Result<(), MarketError> {
    if v.vehicle_id.trim().is_empty() {
        return Err(MarketError::InvalidVehicle(
            "the vehicle id is empty".into(),
        ));
    }
    if v.capacity_wh == 0 || v.charge_wh > v.capacity_wh {
        return Err(MarketError::InvalidVehicle(format!(
            "capacity {} Wh must be positive and at least the charge {} Wh",
            v.capacity_wh, v.charge_wh
        )));
    }
    if v.efficiency == 0 {
        return Err(MarketError::InvalidVehicle(
            "efficiency must be at least 1 Wh/km".into(),
        ));
    }
    check_point(v.x, v.y)?;
    if host.get(&key(VEHICLE_PREFIX, client.as_bytes())).is_some() {
        let acct = account(host, client)?;
        if acct.open_trades > 0 || !ledger::orders_of(host, client)?.is_empty() {
            return Err(MarketError::ClientBusy(format!(
                "client '{client}' has resting orders or open trades: a vehicle can only be replaced without them"
            )));
        }
    }
    ledger::put_vehicle(host, client, &v);
    host.emit(&json!({
        "type": "vehicleLinked", "clientId": client, "vehicleId": v.vehicle_id,
        "capacityWh": v.capacity_wh, "chargeWh": v.charge_wh, "x": v.x, "y": v.y,
        "efficiencyWhPerKm": v.efficiency, "energyPrice": v.energy_price.to_string(),
    }));
    Ok(())
}

fn place_order(
    host: &mut impl Host,
    owner: &str,
    side: Side,
    amount_wh: u64,
    price: u64,
    max_unit_cost: Option<u64>,
) -> Result<(), MarketError> {
    let v = ledger::vehicle(host, owner)?;
    if amount_wh == 0 {
        return Err(MarketError::ZeroAmount);
    }
    match side {
        Side::Sell if price == 0 => {
            return Err(MarketError::InvalidOrder(
                "a sell order needs a positive price".into(),
            ));
        }
        Side::Sell if amount_wh > v.charge_wh => {
            return Err(MarketError::InvalidOrder(format!(
                "selling {amount_wh} Wh but the vehicle holds {} Wh",
                v.charge_wh
            )));
        }
        Side::Buy if amount_wh > v.capacity_wh.saturating_sub(v.charge_wh) => {
            return Err(MarketError::InvalidOrder(format!(
                "buying {amount_wh} Wh but the battery has room for {} Wh",
                v.capacity_wh.saturating_sub(v.charge_wh)
            )));
        }
        _ => {}
    }
    let mut params = ledger::params(host)?;
    let mut order = Order {
        id: params.next_order_id,
        owner: owner.into(),
        side,
        amount_wh,
        remaining_wh: amount_wh,
        price,
        max_unit_cost,
        placed_at: host.block_height(),
    };
    params.next_order_id = params
        .next_order_id
        .checked_add(1)
        .ok_or(MarketError::Overflow("order ids"))?;
    host.emit(&{
        let mut e = order_json(&order);
        e["type"] = json!("orderPlaced");
        e
    });
    let meeting_points = ledger::meeting_points(host)?;
    while order.remaining_wh > 0 {
        let Some(c) = matching::best_candidate(host, &order, params.fee_rate, &meeting_points)?
        else {
            break;
        };
        let trade_id = params.next_trade_id;
        params.next_trade_id = trade_id
            .checked_add(1)
            .ok_or(MarketError::Overflow("trade ids"))?;
        apply_match(host, &mut order, &c, trade_id, &meeting_points)?;
    }
    ledger::put_params(host, &params);
    book::migrate(host, &meeting_points, book::MIGRATE_PER_ORDER)?;
    if order.remaining_wh > 0 {
        ledger::put_order(host, &order, &meeting_points)?;
    } else {
        host.emit(&json!({"type": "orderFilled", "orderId": order.id, "owner": order.owner}));
    }
    Ok(())
}

/// Records a trade: escrow, committed energy, remaining amounts, indexes, events.
fn apply_match(
    host: &mut impl Host,
    new: &mut Order,
    c: &matching::Candidate,
    trade_id: u64,
    meeting_points: &[(u32, i64, i64)],
) -> Result<(), MarketError> {
    let mut resting = ledger::order(host, c.resting)?;
    let (buy, sell) = match new.side {
        Side::Buy => (&*new, &resting),
        Side::Sell => (&resting, &*new),
    };
    let (consumer, provider) = (buy.owner.clone(), sell.owner.clone());
    let pay = c
        .energy_cost
        .checked_add(c.fee)
        .ok_or(MarketError::Overflow("payment"))?;
    let mut ca = account(host, &consumer)?;
    ca.balance = ca
        .balance
        .checked_sub(pay)
        .ok_or(MarketError::InsufficientFunds {
            available: ca.balance,
            requested: pay,
        })?;
    ca.escrow = ca
        .escrow
        .checked_add(pay)
        .ok_or(MarketError::Overflow("escrow"))?;
    ca.open_trades += 1;
    put_account(host, &consumer, &ca);
    let mut pa = account(host, &provider)?;
    pa.open_trades += 1;
    put_account(host, &provider, &pa);
    let mut pv = ledger::vehicle(host, &provider)?;
    pv.committed_wh = pv
        .committed_wh
        .checked_add(c.quantity)
        .ok_or(MarketError::Overflow("committed energy"))?;
    ledger::put_vehicle(host, &provider, &pv);
    let trade = Trade {
        id: trade_id,
        buy_order: c.buy,
        sell_order: c.sell,
        consumer,
        provider,
        meeting_point: c.meeting_point,
        quantity_wh: c.quantity,
        price: c.price,
        energy_cost: c.energy_cost,
        fee: c.fee,
        consumer_travel: c.consumer_travel,
        provider_travel: c.provider_travel,
        status: TradeStatus::Matched,
        matched_at: host.block_height(),
        dispute_reason: None,
    };
    ledger::put_trade(host, &trade);
    ledger::index_trade(host, &trade);
    ledger::add_traded_wh(host, trade.quantity_wh)?;
    host.emit(&{
        let mut e = trade_json(&trade);
        e["type"] = json!("tradeMatched");
        e
    });
    new.remaining_wh -= c.quantity;
    resting.remaining_wh -= c.quantity;
    if resting.remaining_wh == 0 {
        ledger::delete_order(host, &resting)?;
        host.emit(&json!({"type": "orderFilled", "orderId": resting.id, "owner": resting.owner}));
    } else {
        ledger::update_order(host, &resting);
        if resting.side == Side::Buy {
            // Its bound (travel cost / remaining) rose: keep the key tight.
            let v = ledger::vehicle(host, &resting.owner)?;
            book::rekey(host, &resting, &v, meeting_points)?;
        }
    }
    Ok(())
}

fn consumer_trade(
    host: &impl Host,
    id: u64,
    client: &str,
    needed: TradeStatus,
) -> Result<Trade, MarketError> {
    let t = ledger::trade(host, id)?;
    if t.consumer != client {
        return Err(MarketError::NotYourTrade(id));
    }
    if t.status != needed {
        return Err(MarketError::TradeNotOpen {
            id,
            status: t.status.as_str(),
            needed: needed.as_str(),
        });
    }
    Ok(t)
}

/// Closes an open trade with `status`: takes EC + F out of the consumer's escrow (returned,
/// for the caller to pay out), releases the provider's committed energy and both parties'
/// open-trade counts, and stores the trade.
fn close(host: &mut impl Host, t: &mut Trade, status: TradeStatus) -> Result<u64, MarketError> {
    let pay = t.energy_cost + t.fee;
    let mut ca = account(host, &t.consumer)?;
    ca.escrow = ca
        .escrow
        .checked_sub(pay)
        .ok_or_else(|| MarketError::CorruptState(format!("escrow of trade {} missing", t.id)))?;
    ca.open_trades = ca.open_trades.saturating_sub(1);
    put_account(host, &t.consumer, &ca);
    let mut pa = account(host, &t.provider)?;
    pa.open_trades = pa.open_trades.saturating_sub(1);
    put_account(host, &t.provider, &pa);
    let mut pv = ledger::vehicle(host, &t.provider)?;
    pv.committed_wh = pv.committed_wh.saturating_sub(t.quantity_wh);
    ledger::put_vehicle(host, &t.provider, &pv);
    t.status = status;
    ledger::put_trade(host, t);
    Ok(pay)
}

fn credit(
    host: &mut impl Host,
    id: &str,
    amount: u64,
    what: &'static str,
) -> Result<(), MarketError> {
    let mut a = account(host, id)?;
    a.balance = a
        .balance
        .checked_add(amount)
        .ok_or(MarketError::Overflow(what))?;
    put_account(host, id, &a);
    Ok(())
}

/// Pays out an open trade: the provider gets EC - F, the treasury 2F, the escrow is released.
fn settle(host: &mut impl Host, mut t: Trade) -> Result<(), MarketError> {
    close(host, &mut t, TradeStatus::Settled)?;
    credit(host, &t.provider, t.energy_cost - t.fee, "provider payout")?;
    let treasury = ledger::params(host)?.treasury;
    credit(host, &treasury, 2 * t.fee, "treasury")?;
    host.emit(&json!({
        "type": "tradeSettled", "tradeId": t.id, "consumer": t.consumer, "provider": t.provider,
        "providerReceives": (t.energy_cost - t.fee).to_string(), "treasuryReceives": (2 * t.fee).to_string(),
    }));
    Ok(())
}

/// Returns the escrow to the consumer; nobody pays a fee.
fn refund(host: &mut impl Host, mut t: Trade) -> Result<(), MarketError> {
    let pay = close(host, &mut t, TradeStatus::Refunded)?;
    credit(host, &t.consumer, pay, "refund")?;
    host.emit(&json!({"type": "tradeRefunded", "tradeId": t.id, "consumer": t.consumer, "provider": t.provider, "amount": pay.to_string()}));
    Ok(())
}

fn remove_client(host: &mut impl Host, id: &str) -> Result<(), MarketError> {
    let acct = account(host, id)?;
    if id == ledger::params(host)?.treasury {
        return Err(MarketError::ClientBusy(
            "the treasury cannot be removed".into(),
        ));
    }
    if acct.balance != 0 || acct.escrow != 0 || acct.open_trades != 0 {
        return Err(MarketError::ClientBusy(format!(
            "client '{id}' still has a balance of {} µcr, escrow of {} µcr and {} open trade(s)",
            acct.balance, acct.escrow, acct.open_trades
        )));
    }
    for order_id in ledger::orders_of(host, id)? {
        let o = ledger::order(host, order_id)?;
        ledger::delete_order(host, &o)?;
        host.emit(&json!({"type": "orderRemoved", "orderId": order_id, "owner": id, "reason": "client removed"}));
    }
    host.remove(&key(VEHICLE_PREFIX, id.as_bytes()));
    host.remove(&key(KEY_PREFIX, &acct.owner));
    host.remove(&key(ACCOUNT_PREFIX, id.as_bytes()));
    host.emit(&json!({"type": "clientRemoved", "clientId": id}));
    Ok(())
}

/// Decodes an entry input (`method`, `args`) and executes it: the Wasm `v2v_call` body,
/// shared with native callers so both builds run the same bytes through the same path.
pub fn execute_raw(host: &mut impl Host, input: &[u8]) -> Result<Vec<u8>, MarketError> {
    let (method, args) = v2v_abi::host::decode_entry_input(input)
        .map_err(|e| MarketError::BadArguments(e.to_string()))?;
    let call = MarketCall::decode(&method, args).map_err(|e| match e {
        v2v_abi::call::CallDecodeError::UnknownMethod(m) => MarketError::UnknownMethod(m),
        v2v_abi::call::CallDecodeError::Args(e) => MarketError::BadArguments(e.to_string()),
    })?;
    execute(host, &call).map(|()| Vec::new())
}

/// Decodes a query input (`method`, JSON `args`) and answers it with JSON bytes.
pub fn query_raw(host: &impl Host, input: &[u8]) -> Result<Vec<u8>, MarketError> {
    let (method, args) = v2v_abi::host::decode_entry_input(input)
        .map_err(|e| MarketError::BadArguments(e.to_string()))?;
    let args: Value = if args.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(args).map_err(|e| MarketError::BadArguments(e.to_string()))?
    };
    let out = crate::views::query(host, &method, &args)?;
    Ok(out.to_string().into_bytes())
}
