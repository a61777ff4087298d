//! The contract's storage layout and the canonical encoding of each record.
//!
//! | key | value |
//! |---|---|
//! | `p` | [`Params`] |
//! | `o/` + operator public key (32 bytes) | empty |
//! | `a/` + client id | [`Account`] |
//! | `k/` + public key (32 bytes) | client id (UTF-8) |
//! | `m/` + meeting point id (u32 big-endian) | x (i64 LE), y (i64 LE) |

use v2v_abi::{Reader, Writer};

use crate::MarketError;

pub const PARAMS_KEY: &[u8] = b"p";
pub const OPERATOR_PREFIX: &[u8] = b"o/";
pub const ACCOUNT_PREFIX: &[u8] = b"a/";
pub const KEY_PREFIX: &[u8] = b"k/";
pub const MEETING_POINT_PREFIX: &[u8] = b"m/";

pub fn key(prefix: &[u8], suffix: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + suffix.len());
    k.extend_from_slice(prefix);
    k.extend_from_slice(suffix);
    k
}

/// Market-wide parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    /// µcr per Wh traded, charged to each side.
    pub fee_rate: u64,
    /// Client id of the treasury account.
    pub treasury: String,
}

impl Params {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u64(self.fee_rate).str(&self.treasury);
        w.finish()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, MarketError> {
        let mut r = Reader::new(bytes);
        let p = Params {
            fee_rate: r.u64("feeRate").map_err(corrupt)?,
            treasury: r.string("treasury", 64).map_err(corrupt)?,
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
}

impl Account {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.fixed(&self.owner).u64(self.balance).u64(self.escrow);
        w.finish()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, MarketError> {
        let mut r = Reader::new(bytes);
        let a = Account {
            owner: r.array("owner").map_err(corrupt)?,
            balance: r.u64("balance").map_err(corrupt)?,
            escrow: r.u64("escrow").map_err(corrupt)?,
        };
        r.finish().map_err(corrupt)?;
        Ok(a)
    }
}

fn corrupt(e: v2v_abi::DecodeError) -> MarketError {
    MarketError::CorruptState(e.to_string())
}
