//! The migration entry point run once when this code takes over from an older version
//! (`v2v_abi::host::export::MIGRATE`).
//!
//! Version 1 is the first version, so the default build has nothing to migrate and exports no
//! migration. The upgrade fixtures (features `next-version` and `failing-migration`) export
//! one: the first records where it came from (and refuses deposits below one credit, a change
//! of behaviour the upgrade tests look for), the second always refuses.

use crate::{Host, MarketError};

/// Where the `next-version` fixture records its migration: previous version (u32) then the
/// height it ran at (u64), big-endian.
#[cfg(feature = "next-version")]
pub const MIGRATION_KEY: &[u8] = b"mg";

/// The `next-version` fixture's change of behaviour: deposits below one credit are refused.
/// (The default build accepts any positive deposit.)
pub fn check_deposit(amount: u64) -> Result<(), MarketError> {
    #[cfg(feature = "next-version")]
    if amount < 1_000_000 {
        return Err(MarketError::BadArguments(format!(
            "deposits below 1 credit are refused from version 2 (got {amount} µcr)"
        )));
    }
    let _ = amount;
    Ok(())
}

/// Runs the migration from version `from`.
pub fn migrate(host: &mut impl Host, from: u32) -> Result<(), MarketError> {
    if from >= crate::VERSION {
        return Err(MarketError::Migration(format!(
            "cannot migrate from version {from} to version {}",
            crate::VERSION
        )));
    }
    if cfg!(feature = "failing-migration") {
        return Err(MarketError::Migration(
            "this build refuses every migration (test fixture)".into(),
        ));
    }
    #[cfg(feature = "next-version")]
    {
        let mut record = from.to_be_bytes().to_vec();
        record.extend_from_slice(&host.block_height().to_be_bytes());
        host.set(MIGRATION_KEY, &record);
    }
    let _ = host;
    Ok(())
}

/// The `migration` query of the `next-version` fixture: `{ from, atHeight }`, or null.
#[cfg(feature = "next-version")]
pub fn migration_json(host: &impl Host) -> Result<serde_json::Value, MarketError> {
    let Some(v) = host.get(MIGRATION_KEY) else {
        return Ok(serde_json::Value::Null);
    };
    let bad = || MarketError::CorruptState("migration record".into());
    let from = u32::from_be_bytes(v.get(..4).ok_or_else(bad)?.try_into().map_err(|_| bad())?);
    let at = u64::from_be_bytes(
        v.get(4..12)
            .ok_or_else(bad)?
            .try_into()
            .map_err(|_| bad())?,
    );
    Ok(serde_json::json!({ "from": from, "atHeight": at }))
}
