//! Every way a market call can be rejected. The message is what the receipt records.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarketError {
    UnknownMethod(String),
    BadArguments(String),
    UnknownClient(String),
    NotRegistered,
    NotOperator,
    AlreadyRegistered(String),
    ClientIdTaken(String),
    InvalidClientId(String),
    ZeroAmount,
    InsufficientFunds {
        available: u64,
        requested: u64,
    },
    Overflow(&'static str),
    NoVehicle(String),
    InvalidVehicle(String),
    InvalidOrder(String),
    UnknownOrder(u64),
    NotYourOrder(u64),
    UnknownTrade(u64),
    NotYourTrade(u64),
    TradeNotOpen {
        id: u64,
        status: &'static str,
        needed: &'static str,
    },
    UnknownMeetingPoint(u32),
    MeetingPointExists(u32),
    OutOfBounds(String),
    ClientBusy(String),
    EmptyReason,
    InvalidGenesis(String),
    CorruptState(String),
    /// The migration of an upgrade refused to run.
    Migration(String),
}

impl fmt::Display for MarketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MarketError::UnknownMethod(m) => write!(f, "unknown method '{m}'"),
            MarketError::BadArguments(e) => write!(f, "bad arguments: {e}"),
            MarketError::UnknownClient(c) => write!(f, "unknown client '{c}'"),
            MarketError::NotRegistered => write!(f, "the signer is not a registered client"),
            MarketError::NotOperator => write!(f, "the signer is not an operator"),
            MarketError::AlreadyRegistered(c) => {
                write!(f, "the key is already registered as client '{c}'")
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
            MarketError::NoVehicle(c) => write!(f, "client '{c}' has no linked vehicle"),
            MarketError::InvalidVehicle(why) => write!(f, "invalid vehicle data: {why}"),
            MarketError::InvalidOrder(why) => write!(f, "invalid order: {why}"),
            MarketError::UnknownOrder(id) => write!(f, "no resting order {id}"),
            MarketError::NotYourOrder(id) => write!(f, "order {id} belongs to another client"),
            MarketError::UnknownTrade(id) => write!(f, "no trade {id}"),
            MarketError::NotYourTrade(id) => {
                write!(f, "only the consumer of trade {id} may do this")
            }
            MarketError::TradeNotOpen { id, status, needed } => {
                write!(f, "trade {id} is {status}, it must be {needed}")
            }
            MarketError::UnknownMeetingPoint(id) => write!(f, "no meeting point {id}"),
            MarketError::MeetingPointExists(id) => write!(f, "meeting point {id} already exists"),
            MarketError::OutOfBounds(what) => write!(f, "{what} is out of bounds"),
            MarketError::ClientBusy(why) => write!(f, "{why}"),
            MarketError::EmptyReason => write!(f, "a reason is required"),
            MarketError::InvalidGenesis(e) => write!(f, "invalid genesis: {e}"),
            MarketError::CorruptState(e) => write!(f, "corrupt contract state: {e}"),
            MarketError::Migration(e) => write!(f, "migration failed: {e}"),
        }
    }
}

impl std::error::Error for MarketError {}
