//! Every way a market call can be rejected. The message is what the receipt records.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarketError {
    UnknownMethod(String),
    BadArguments(String),
    UnknownClient(String),
    NotRegistered,
    AlreadyRegistered(String),
    ClientIdTaken(String),
    InvalidClientId(String),
    ZeroAmount,
    InsufficientFunds { available: u64, requested: u64 },
    Overflow(&'static str),
    InvalidGenesis(String),
    CorruptState(String),
}

impl fmt::Display for MarketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MarketError::UnknownMethod(m) => write!(f, "unknown method '{m}'"),
            MarketError::BadArguments(e) => write!(f, "bad arguments: {e}"),
            MarketError::UnknownClient(c) => write!(f, "unknown client '{c}'"),
            MarketError::NotRegistered => {
                write!(f, "the signer is not a registered client")
            }
            MarketError::AlreadyRegistered(c) => {
                write!(f, "the signer is already registered as client '{c}'")
            }
            MarketError::ClientIdTaken(c) => write!(f, "client id '{c}' is taken"),
            MarketError::InvalidClientId(why) => write!(f, "invalid client id: {why}"),
            MarketError::ZeroAmount => write!(f, "the amount must be positive"),
            MarketError::InsufficientFunds {
                available,
                requested,
            } => write!(
                f,
                "insufficient funds: {requested} µcr requested, {available} µcr available"
            ),
            MarketError::Overflow(what) => write!(f, "arithmetic overflow in {what}"),
            MarketError::InvalidGenesis(e) => write!(f, "invalid genesis: {e}"),
            MarketError::CorruptState(e) => write!(f, "corrupt contract state: {e}"),
        }
    }
}

impl std::error::Error for MarketError {}
