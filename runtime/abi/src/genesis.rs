//! The genesis market state, passed as JSON from the chain spec to the contract's `v2v_init`.

use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// Genesis market state: everything the contract needs to start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GenesisMarket {
    /// Platform fee, µcr per Wh traded, charged to each side.
    #[serde(with = "crate::call::dec_u64")]
    pub fee_rate: u64,
    /// Client id of the operator's treasury account (receives fees).
    pub treasury: String,
    /// Operator public keys (0x-prefixed hex ed25519).
    pub operators: Vec<String>,
    /// Fixed meeting points.
    #[serde(default)]
    pub meeting_points: Vec<GenesisMeetingPoint>,
    /// Optional pre-registered, pre-funded clients.
    #[serde(default)]
    pub clients: Vec<GenesisClient>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GenesisMeetingPoint {
    pub id: u32,
    /// Metres east.
    pub x: i64,
    /// Metres north.
    pub y: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GenesisClient {
    pub id: String,
    /// 0x-prefixed hex ed25519 public key.
    pub public_key: String,
    /// Opening balance in µcr.
    #[serde(with = "crate::call::dec_u64")]
    pub balance: u64,
}

/// Parses `0x`-prefixed (or bare) hex into exactly `N` bytes.
pub fn parse_hex_array<const N: usize>(s: &str) -> Option<[u8; N]> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    if s.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
        let hi = (chunk[0] as char).to_digit(16)?;
        let lo = (chunk[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// Lowercase `0x`-prefixed hex.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(2 + bytes.len() * 2);
    s.push_str("0x");
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let b = [0u8, 1, 0xab, 0xff];
        assert_eq!(to_hex(&b), "0x0001abff");
        assert_eq!(parse_hex_array::<4>("0x0001abff"), Some(b));
        assert_eq!(parse_hex_array::<4>("0001ABFF"), Some(b));
        assert_eq!(parse_hex_array::<4>("0x0001ab"), None);
        assert_eq!(parse_hex_array::<2>("zz00"), None);
    }
}
