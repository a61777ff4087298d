//! The market calls a transaction can carry: a method name and its canonically encoded
//! arguments. The byte layout of each method's arguments is in `docs/transactions.md`.

use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

use crate::codec::{DecodeError, Reader, Writer};

/// Longest method name, in bytes.
pub const MAX_METHOD_LEN: usize = 64;
/// Longest client id, in bytes.
pub const MAX_CLIENT_ID_LEN: usize = 64;

/// Longest free-text field (dispute and adjustment reasons, vehicle ids), in bytes.
pub const MAX_TEXT_LEN: usize = 256;

/// Buy or sell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Buy,
    Sell,
}

/// How the operator resolves a disputed trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Resolution {
    /// Pay the provider as if the consumer had confirmed.
    Settle,
    /// Return the escrow to the consumer; the provider's fee is waived.
    Refund,
}

/// A typed market call. `method()` is the name carried in the transaction, `encode_args()`
/// its argument bytes (layouts in `docs/transactions.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", content = "args", rename_all = "camelCase")]
pub enum MarketCall {
    /// Registers the signer as client `client_id`.
    #[serde(rename_all = "camelCase")]
    Register { client_id: String },
    /// Links the signer's vehicle (one per client; linking again replaces it when the client
    /// has no open orders or trades).
    #[serde(rename_all = "camelCase")]
    LinkVehicle {
        vehicle_id: String,
        #[serde(with = "crate::call::dec_u64")]
        capacity_wh: u64,
        #[serde(with = "crate::call::dec_u64")]
        charge_wh: u64,
        x: i64,
        y: i64,
        /// Wh consumed per km driven.
        efficiency_wh_per_km: u32,
        /// µcr per Wh paid for the energy now in the battery.
        #[serde(with = "crate::call::dec_u64")]
        energy_price: u64,
    },
    /// Reports the vehicle's battery, position and the price of the energy it holds.
    #[serde(rename_all = "camelCase")]
    Telemetry {
        #[serde(with = "crate::call::dec_u64")]
        charge_wh: u64,
        x: i64,
        y: i64,
        #[serde(with = "crate::call::dec_u64")]
        energy_price: u64,
    },
    /// Credits the signer's client account with `amount` µcr.
    Deposit {
        #[serde(with = "crate::call::dec_u64")]
        amount: u64,
    },
    /// Debits `amount` µcr from the signer's available (unescrowed) balance.
    Withdraw {
        #[serde(with = "crate::call::dec_u64")]
        amount: u64,
    },
    /// Places a buy order for `amount_wh`, optionally capped at `max_unit_cost` µcr per Wh.
    #[serde(rename_all = "camelCase")]
    Buy {
        #[serde(with = "crate::call::dec_u64")]
        amount_wh: u64,
        #[serde(default, with = "crate::call::opt_dec_u64")]
        max_unit_cost: Option<u64>,
    },
    /// Places a sell order for `amount_wh` at `price` µcr per Wh.
    #[serde(rename_all = "camelCase")]
    Sell {
        #[serde(with = "crate::call::dec_u64")]
        amount_wh: u64,
        #[serde(with = "crate::call::dec_u64")]
        price: u64,
    },
    /// Cancels one of the signer's resting orders.
    #[serde(rename_all = "camelCase")]
    Cancel { order_id: u64 },
    /// The consumer confirms delivery: the trade settles.
    #[serde(rename_all = "camelCase")]
    Confirm { trade_id: u64 },
    /// The consumer disputes delivery; the operator resolves.
    #[serde(rename_all = "camelCase")]
    Dispute { trade_id: u64, reason: String },
    /// Operator: registers client `client_id` for `public_key` (0x hex in JSON).
    #[serde(rename_all = "camelCase")]
    RegisterClient {
        client_id: String,
        #[serde(with = "crate::call::hex32")]
        public_key: [u8; 32],
    },
    /// Operator: removes a client with no money, escrow or open trades; its orders go.
    #[serde(rename_all = "camelCase")]
    RemoveClient { client_id: String },
    /// Operator: adds `delta` µcr (negative: removes) to a client's balance, with a reason.
    #[serde(rename_all = "camelCase")]
    AdjustFunds {
        client_id: String,
        delta: i64,
        reason: String,
    },
    /// Operator: removes any resting order.
    #[serde(rename_all = "camelCase")]
    RemoveOrder { order_id: u64, reason: String },
    /// Operator: adds a meeting point.
    #[serde(rename_all = "camelCase")]
    AddMeetingPoint { id: u32, x: i64, y: i64 },
    /// Operator: removes a meeting point (open trades keep theirs).
    #[serde(rename_all = "camelCase")]
    RemoveMeetingPoint { id: u32 },
    /// Operator: sets the fee rate (µcr per Wh, charged to each side) for future matches.
    #[serde(rename_all = "camelCase")]
    SetFee {
        #[serde(with = "crate::call::dec_u64")]
        fee_rate: u64,
    },
    /// Operator: resolves a disputed trade.
    #[serde(rename_all = "camelCase")]
    Resolve {
        trade_id: u64,
        resolution: Resolution,
    },
}

impl MarketCall {
    /// The method name carried in the transaction.
    pub fn method(&self) -> &'static str {
        match self {
            MarketCall::Register { .. } => "register",
            MarketCall::LinkVehicle { .. } => "linkVehicle",
            MarketCall::Telemetry { .. } => "telemetry",
            MarketCall::Deposit { .. } => "deposit",
            MarketCall::Withdraw { .. } => "withdraw",
            MarketCall::Buy { .. } => "buy",
            MarketCall::Sell { .. } => "sell",
            MarketCall::Cancel { .. } => "cancel",
            MarketCall::Confirm { .. } => "confirm",
            MarketCall::Dispute { .. } => "dispute",
            MarketCall::RegisterClient { .. } => "registerClient",
            MarketCall::RemoveClient { .. } => "removeClient",
            MarketCall::AdjustFunds { .. } => "adjustFunds",
            MarketCall::RemoveOrder { .. } => "removeOrder",
            MarketCall::AddMeetingPoint { .. } => "addMeetingPoint",
            MarketCall::RemoveMeetingPoint { .. } => "removeMeetingPoint",
            MarketCall::SetFee { .. } => "setFee",
            MarketCall::Resolve { .. } => "resolve",
        }
    }

    /// The canonical argument bytes.
    pub fn encode_args(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match self {
            MarketCall::Register { client_id } | MarketCall::RemoveClient { client_id } => {
                w.str(client_id);
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
                w.str(vehicle_id)
                    .u64(*capacity_wh)
                    .u64(*charge_wh)
                    .i64(*x)
                    .i64(*y)
                    .u32(*efficiency_wh_per_km)
                    .u64(*energy_price);
            }
            MarketCall::Telemetry {
                charge_wh,
                x,
                y,
                energy_price,
            } => {
                w.u64(*charge_wh).i64(*x).i64(*y).u64(*energy_price);
            }
            MarketCall::Deposit { amount } | MarketCall::Withdraw { amount } => {
                w.u64(*amount);
            }
            MarketCall::Buy {
                amount_wh,
                max_unit_cost,
            } => {
                w.u64(*amount_wh).option_u64(*max_unit_cost);
            }
            MarketCall::Sell { amount_wh, price } => {
                w.u64(*amount_wh).u64(*price);
            }
            MarketCall::Cancel { order_id } => {
                w.u64(*order_id);
            }
            MarketCall::Confirm { trade_id } => {
                w.u64(*trade_id);
            }
            MarketCall::Dispute { trade_id, reason } => {
                w.u64(*trade_id).str(reason);
            }
            MarketCall::RegisterClient {
                client_id,
                public_key,
            } => {
                w.str(client_id).fixed(public_key);
            }
            MarketCall::AdjustFunds {
                client_id,
                delta,
                reason,
            } => {
                w.str(client_id).i64(*delta).str(reason);
            }
            MarketCall::RemoveOrder { order_id, reason } => {
                w.u64(*order_id).str(reason);
            }
            MarketCall::AddMeetingPoint { id, x, y } => {
                w.u32(*id).i64(*x).i64(*y);
            }
            MarketCall::RemoveMeetingPoint { id } => {
                w.u32(*id);
            }
            MarketCall::SetFee { fee_rate } => {
                w.u64(*fee_rate);
            }
            MarketCall::Resolve {
                trade_id,
                resolution,
            } => {
                w.u64(*trade_id).u8(match resolution {
                    Resolution::Settle => 0,
                    Resolution::Refund => 1,
                });
            }
        }
        w.finish()
    }

    /// Decodes a method name and its argument bytes.
    pub fn decode(method: &str, args: &[u8]) -> Result<Self, CallDecodeError> {
        let mut r = Reader::new(args);
        let id = |r: &mut Reader<'_>| r.string("clientId", MAX_CLIENT_ID_LEN);
        let text = |r: &mut Reader<'_>, what| r.string(what, MAX_TEXT_LEN);
        let call = match method {
            "register" => MarketCall::Register {
                client_id: id(&mut r)?,
            },
            "linkVehicle" => MarketCall::LinkVehicle {
                vehicle_id: text(&mut r, "vehicleId")?,
                capacity_wh: r.u64("capacityWh")?,
                charge_wh: r.u64("chargeWh")?,
                x: r.i64("x")?,
                y: r.i64("y")?,
                efficiency_wh_per_km: r.u32("efficiencyWhPerKm")?,
                energy_price: r.u64("energyPrice")?,
            },
            "telemetry" => MarketCall::Telemetry {
                charge_wh: r.u64("chargeWh")?,
                x: r.i64("x")?,
                y: r.i64("y")?,
                energy_price: r.u64("energyPrice")?,
            },
            "deposit" => MarketCall::Deposit {
                amount: r.u64("amount")?,
            },
            "withdraw" => MarketCall::Withdraw {
                amount: r.u64("amount")?,
            },
            "buy" => MarketCall::Buy {
                amount_wh: r.u64("amountWh")?,
                max_unit_cost: r.option_u64("maxUnitCost")?,
            },
            "sell" => MarketCall::Sell {
                amount_wh: r.u64("amountWh")?,
                price: r.u64("price")?,
            },
            "cancel" => MarketCall::Cancel {
                order_id: r.u64("orderId")?,
            },
            "confirm" => MarketCall::Confirm {
                trade_id: r.u64("tradeId")?,
            },
            "dispute" => MarketCall::Dispute {
                trade_id: r.u64("tradeId")?,
                reason: text(&mut r, "reason")?,
            },
            "registerClient" => MarketCall::RegisterClient {
                client_id: id(&mut r)?,
                public_key: r.array("publicKey")?,
            },
            "removeClient" => MarketCall::RemoveClient {
                client_id: id(&mut r)?,
            },
            "adjustFunds" => MarketCall::AdjustFunds {
                client_id: id(&mut r)?,
                delta: r.i64("delta")?,
                reason: text(&mut r, "reason")?,
            },
            "removeOrder" => MarketCall::RemoveOrder {
                order_id: r.u64("orderId")?,
                reason: text(&mut r, "reason")?,
            },
            "addMeetingPoint" => MarketCall::AddMeetingPoint {
                id: r.u32("id")?,
                x: r.i64("x")?,
                y: r.i64("y")?,
            },
            "removeMeetingPoint" => MarketCall::RemoveMeetingPoint { id: r.u32("id")? },
            "setFee" => MarketCall::SetFee {
                fee_rate: r.u64("feeRate")?,
            },
            "resolve" => MarketCall::Resolve {
                trade_id: r.u64("tradeId")?,
                resolution: match r.u8("resolution")? {
                    0 => Resolution::Settle,
                    1 => Resolution::Refund,
                    tag => {
                        return Err(DecodeError::InvalidTag {
                            what: "resolution",
                            tag,
                        }
                        .into());
                    }
                },
            },
            other => return Err(CallDecodeError::UnknownMethod(other.into())),
        };
        r.finish()?;
        Ok(call)
    }
}

/// Why a call could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallDecodeError {
    UnknownMethod(String),
    Args(DecodeError),
}

impl From<DecodeError> for CallDecodeError {
    fn from(e: DecodeError) -> Self {
        CallDecodeError::Args(e)
    }
}

impl core::fmt::Display for CallDecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CallDecodeError::UnknownMethod(m) => write!(f, "unknown method '{m}'"),
            CallDecodeError::Args(e) => write!(f, "bad arguments: {e}"),
        }
    }
}

/// Serializes a `u64` as a decimal string (JSON numbers lose precision above 2^53) and
/// accepts either a string or a number.
pub mod dec_u64 {
    use alloc::string::{String, ToString};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum StrOrNum {
            S(String),
            N(u64),
        }
        match StrOrNum::deserialize(d)? {
            StrOrNum::N(n) => Ok(n),
            StrOrNum::S(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// `Option<u64>` as an optional decimal string.
pub mod opt_dec_u64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(x) => super::dec_u64::serialize(x, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        #[derive(serde::Deserialize)]
        struct W(#[serde(with = "super::dec_u64")] u64);
        Ok(Option::<W>::deserialize(d)?.map(|w| w.0))
    }
}

/// 32 bytes as 0x-prefixed hex.
pub mod hex32 {
    use alloc::string::String;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::genesis::to_hex(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = String::deserialize(d)?;
        crate::genesis::parse_hex_array::<32>(&s)
            .ok_or_else(|| serde::de::Error::custom("expected 0x + 64 hex digits"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_round_trip_in_binary_and_json() {
        let calls = [
            MarketCall::Register {
                client_id: "alice".into(),
            },
            MarketCall::LinkVehicle {
                vehicle_id: "car-1".into(),
                capacity_wh: 60_000,
                charge_wh: 30_000,
                x: -5,
                y: 7,
                efficiency_wh_per_km: 150,
                energy_price: 300,
            },
            MarketCall::Telemetry {
                charge_wh: 1,
                x: i64::MIN,
                y: i64::MAX,
                energy_price: 2,
            },
            MarketCall::Deposit { amount: u64::MAX },
            MarketCall::Withdraw { amount: 1 },
            MarketCall::Buy {
                amount_wh: 10,
                max_unit_cost: Some(400),
            },
            MarketCall::Buy {
                amount_wh: 10,
                max_unit_cost: None,
            },
            MarketCall::Sell {
                amount_wh: 10,
                price: 250,
            },
            MarketCall::Cancel { order_id: 3 },
            MarketCall::Confirm { trade_id: 4 },
            MarketCall::Dispute {
                trade_id: 4,
                reason: "no show".into(),
            },
            MarketCall::RegisterClient {
                client_id: "zoe".into(),
                public_key: [5; 32],
            },
            MarketCall::RemoveClient {
                client_id: "zoe".into(),
            },
            MarketCall::AdjustFunds {
                client_id: "zoe".into(),
                delta: -9,
                reason: "penalty".into(),
            },
            MarketCall::RemoveOrder {
                order_id: 1,
                reason: "spam".into(),
            },
            MarketCall::AddMeetingPoint { id: 9, x: 1, y: 2 },
            MarketCall::RemoveMeetingPoint { id: 9 },
            MarketCall::SetFee { fee_rate: 12 },
            MarketCall::Resolve {
                trade_id: 4,
                resolution: Resolution::Refund,
            },
        ];
        for call in calls {
            let back = MarketCall::decode(call.method(), &call.encode_args()).unwrap();
            assert_eq!(back, call);
        }
        assert!(matches!(
            MarketCall::decode("nope", &[]),
            Err(CallDecodeError::UnknownMethod(_))
        ));
        assert!(matches!(
            MarketCall::decode("deposit", &[1, 2]),
            Err(CallDecodeError::Args(_))
        ));
    }
}
