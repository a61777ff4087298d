//! Read-only queries and the JSON views of records (`docs/market.md`, "Queries").

use serde_json::{Value, json};
use v2v_abi::Side;
use v2v_abi::genesis::{parse_hex_array, to_hex};

use crate::ledger;
use crate::state::*;
use crate::{Host, MarketError};

const DEFAULT_PAGE: u64 = 100;
const MAX_PAGE: u64 = 1000;

pub fn order_json(o: &Order) -> Value {
    let mut v = json!({
        "id": o.id,
        "owner": o.owner,
        "side": match o.side { Side::Buy => "buy", Side::Sell => "sell" },
        "amountWh": o.amount_wh,
        "remainingWh": o.remaining_wh,
        "placedAt": o.placed_at,
    });
    match o.side {
        Side::Sell => v["price"] = json!(o.price.to_string()),
        Side::Buy => v["maxUnitCost"] = json!(o.max_unit_cost.map(|u| u.to_string())),
    }
    v
}

fn travel_json(t: &Travel) -> Value {
    json!({"distanceM": t.distance_m, "energyWh": t.energy_wh, "cost": t.cost.to_string()})
}

pub fn trade_json(t: &Trade) -> Value {
    let mut v = json!({
        "id": t.id,
        "buyOrder": t.buy_order,
        "sellOrder": t.sell_order,
        "consumer": t.consumer,
        "provider": t.provider,
        "meetingPoint": {"id": t.meeting_point.0, "x": t.meeting_point.1, "y": t.meeting_point.2},
        "quantityWh": t.quantity_wh,
        "price": t.price.to_string(),
        "energyCost": t.energy_cost.to_string(),
        "fee": t.fee.to_string(),
        "consumerTravel": travel_json(&t.consumer_travel),
        "providerTravel": travel_json(&t.provider_travel),
        "status": t.status.as_str(),
        "matchedAt": t.matched_at,
    });
    if let Some(r) = &t.dispute_reason {
        v["disputeReason"] = json!(r);
    }
    v
}

fn account_json(id: &str, a: &Account) -> Value {
    json!({
        "clientId": id,
        "publicKey": to_hex(&a.owner),
        "balance": a.balance.to_string(),
        "escrow": a.escrow.to_string(),
    })
}

fn str_arg<'a>(args: &'a Value, name: &str) -> Result<&'a str, MarketError> {
    args.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| MarketError::BadArguments(format!("missing string argument '{name}'")))
}

fn u64_arg(args: &Value, name: &str) -> Result<Option<u64>, MarketError> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(|| {
            MarketError::BadArguments(format!("'{name}' must be a non-negative integer"))
        }),
        Some(Value::String(s)) => s.parse().map(Some).map_err(|_| {
            MarketError::BadArguments(format!("'{name}' must be a non-negative integer"))
        }),
        Some(_) => Err(MarketError::BadArguments(format!(
            "'{name}' must be a non-negative integer"
        ))),
    }
}

fn key_arg(args: &Value) -> Result<[u8; 32], MarketError> {
    parse_hex_array::<32>(str_arg(args, "publicKey")?)
        .ok_or_else(|| MarketError::BadArguments("publicKey is not 32 bytes of hex".into()))
}

fn page_limit(args: &Value) -> Result<u64, MarketError> {
    Ok(u64_arg(args, "limit")?
        .unwrap_or(DEFAULT_PAGE)
        .clamp(1, MAX_PAGE))
}

/// Walks an index of ids (`prefix` + ... + id BE) from `cursor` (exclusive), ascending.
fn page_ids(
    host: &impl Host,
    prefix: &[u8],
    cursor: Option<u64>,
    limit: u64,
    mut keep: impl FnMut(u64) -> Result<bool, MarketError>,
) -> Result<(Vec<u64>, Option<u64>), MarketError> {
    let mut out = Vec::new();
    let mut after: Option<Vec<u8>> = cursor.map(|c| key(prefix, &c.to_be_bytes()));
    while let Some(k) = host.next_key(prefix, after.as_deref()) {
        let id = trailing_id(&k)?;
        after = Some(k);
        if keep(id)? {
            if out.len() as u64 == limit {
                return Ok((out.clone(), out.last().copied()));
            }
            out.push(id);
        }
    }
    Ok((out, None))
}

/// Answers a read-only query. `args` is a JSON object (or null).
pub fn query(host: &impl Host, method: &str, args: &Value) -> Result<Value, MarketError> {
    match method {
        "account" => {
            let id = str_arg(args, "clientId")?;
            Ok(account_json(id, &ledger::account(host, id)?))
        }
        "accountByKey" => match ledger::client_of(host, &key_arg(args)?)? {
            Some(id) => Ok(account_json(&id, &ledger::account(host, &id)?)),
            None => Ok(Value::Null),
        },
        "vehicle" => {
            let id = str_arg(args, "clientId")?;
            ledger::account(host, id)?;
            let v = ledger::vehicle(host, id)?;
            Ok(json!({
                "clientId": id, "vehicleId": v.vehicle_id, "capacityWh": v.capacity_wh,
                "chargeWh": v.charge_wh, "x": v.x, "y": v.y, "efficiencyWhPerKm": v.efficiency,
                "energyPrice": v.energy_price.to_string(), "committedWh": v.committed_wh,
            }))
        }
        "order" => {
            let id = u64_arg(args, "id")?
                .ok_or_else(|| MarketError::BadArguments("missing 'id'".into()))?;
            Ok(order_json(&ledger::order(host, id)?))
        }
        "orders" => {
            let side = match args.get("side").and_then(Value::as_str) {
                None => None,
                Some("buy") => Some(Side::Buy),
                Some("sell") => Some(Side::Sell),
                Some(other) => {
                    return Err(MarketError::BadArguments(format!(
                        "side '{other}': use buy or sell"
                    )));
                }
            };
            let owner = args.get("owner").and_then(Value::as_str);
            let limit = page_limit(args)?;
            let cursor = u64_arg(args, "cursor")?;
            let prefix = match owner {
                Some(o) => client_prefix(OWNER_ORDER_PREFIX, o),
                None => ORDER_PREFIX.to_vec(),
            };
            let mut orders = Vec::new();
            let (_, next) = page_ids(host, &prefix, cursor, limit, |id| {
                let o = ledger::order(host, id)?;
                let keep = side.is_none_or(|s| s == o.side);
                if keep && (orders.len() as u64) < limit {
                    orders.push(order_json(&o));
                }
                Ok(keep)
            })?;
            Ok(json!({"orders": orders, "nextCursor": next}))
        }
        "trade" => {
            let id = u64_arg(args, "id")?
                .ok_or_else(|| MarketError::BadArguments("missing 'id'".into()))?;
            Ok(trade_json(&ledger::trade(host, id)?))
        }
        "trades" => {
            let limit = page_limit(args)?;
            let cursor = u64_arg(args, "cursor")?;
            let prefix = match args.get("owner").and_then(Value::as_str) {
                Some(o) => client_prefix(OWNER_TRADE_PREFIX, o),
                None => TRADE_PREFIX.to_vec(),
            };
            let (ids, next) = page_ids(host, &prefix, cursor, limit, |_| Ok(true))?;
            let trades = ids
                .into_iter()
                .map(|id| ledger::trade(host, id).map(|t| trade_json(&t)))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(json!({"trades": trades, "nextCursor": next}))
        }
        "meetingPoints" => Ok(Value::Array(
            ledger::meeting_points(host)?
                .into_iter()
                .map(|(id, x, y)| json!({"id": id, "x": x, "y": y}))
                .collect(),
        )),
        "params" => {
            let p = ledger::params(host)?;
            let treasury = ledger::account(host, &p.treasury)?;
            Ok(json!({
                "feeRate": p.fee_rate.to_string(),
                "treasury": p.treasury,
                "treasuryBalance": treasury.balance.to_string(),
                "nextOrderId": p.next_order_id,
                "nextTradeId": p.next_trade_id,
                "tradedWh": ledger::traded_wh(host)?.to_string(),
            }))
        }
        "supply" => {
            let (mut balances, mut escrow) = (0u128, 0u128);
            let mut cursor: Option<Vec<u8>> = None;
            while let Some(k) = host.next_key(ACCOUNT_PREFIX, cursor.as_deref()) {
                let a = Account::decode(
                    &host
                        .get(&k)
                        .ok_or_else(|| MarketError::CorruptState("account vanished".into()))?,
                )?;
                balances += u128::from(a.balance);
                escrow += u128::from(a.escrow);
                cursor = Some(k);
            }
            Ok(json!({
                "balances": balances.to_string(),
                "escrow": escrow.to_string(),
                "total": (balances + escrow).to_string(),
            }))
        }
        "isOperator" => Ok(Value::Bool(ledger::is_operator(host, &key_arg(args)?))),
        "version" => Ok(json!(crate::VERSION)),
        #[cfg(feature = "next-version")]
        "migration" => crate::migrate::migration_json(host),
        other => Err(MarketError::UnknownMethod(other.into())),
    }
}
