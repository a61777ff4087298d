//! The result of executing one transaction.

use serde::{Deserialize, Serialize};
use v2v_abi::{Reader, Writer};

use crate::transaction::TxError;

/// Recorded for every transaction in a block, successful or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    pub success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Events emitted by the contract, each a JSON object (empty on failure).
    pub events: Vec<String>,
    pub fuel_used: u64,
}

impl Receipt {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.bool(self.success);
        match &self.error {
            None => w.u8(0),
            Some(e) => w.u8(1).str(e),
        };
        w.u32(self.events.len() as u32);
        for e in &self.events {
            w.str(e);
        }
        w.u64(self.fuel_used);
        w.finish()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, TxError> {
        let mut r = Reader::new(bytes);
        let success = r.bool("success")?;
        let error = match r.u8("error")? {
            0 => None,
            _ => Some(r.string("error", usize::MAX)?),
        };
        let n = r.u32("events")? as usize;
        let mut events = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            events.push(r.string("event", usize::MAX)?);
        }
        let fuel_used = r.u64("fuelUsed")?;
        r.finish()?;
        Ok(Receipt {
            success,
            error,
            events,
            fuel_used,
        })
    }
}
