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

/// A typed market call. `method()` is the name carried in the transaction, `encode_args()`
/// its argument bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", content = "args", rename_all = "camelCase")]
pub enum MarketCall {
    /// Registers the signer as client `client_id`.
    #[serde(rename_all = "camelCase")]
    Register { client_id: String },
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
}

impl MarketCall {
    /// The method name carried in the transaction.
    pub fn method(&self) -> &'static str {
        match self {
            MarketCall::Register { .. } => "register",
            MarketCall::Deposit { .. } => "deposit",
            MarketCall::Withdraw { .. } => "withdraw",
        }
    }

    /// The canonical argument bytes.
    pub fn encode_args(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match self {
            MarketCall::Register { client_id } => {
                w.str(client_id);
            }
            MarketCall::Deposit { amount } | MarketCall::Withdraw { amount } => {
                w.u64(*amount);
            }
        }
        w.finish()
    }

    /// Decodes a method name and its argument bytes.
    pub fn decode(method: &str, args: &[u8]) -> Result<Self, CallDecodeError> {
        let mut r = Reader::new(args);
        let call = match method {
            "register" => MarketCall::Register {
                client_id: r.string("clientId", MAX_CLIENT_ID_LEN)?,
            },
            "deposit" => MarketCall::Deposit {
                amount: r.u64("amount")?,
            },
            "withdraw" => MarketCall::Withdraw {
                amount: r.u64("amount")?,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_round_trip_in_binary_and_json() {
        let calls = [
            MarketCall::Register {
                client_id: "alice".into(),
            },
            MarketCall::Deposit { amount: u64::MAX },
            MarketCall::Withdraw { amount: 1 },
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
