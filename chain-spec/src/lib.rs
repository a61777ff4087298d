//! Chain specifications: the JSON document (`docs/chain-spec.md`) that defines a chain —
//! its consensus engine and parameters, validators, operators, genesis market state and the
//! market contract's Wasm — plus the built-in `dev` and `local` presets.
#![forbid(unsafe_code)]

mod presets;
mod spec;

pub use presets::{
    DevAccount, LocalKeys, dev, dev_validator_keys, dev_validator_secrets, dev_with_engine, local,
    local_at,
};
pub use spec::{
    ChainSpec, ConsensusParams, ContractSpec, EngineKind, ExecutionParams, FullNodeSpec,
    GenesisSpec, SpecError, ThresholdKeySpec, ThresholdSpec, ValidatorSpec,
};

/// The market contract built from `contracts/market` (rebuilt by `scripts/build-contract.sh`).
pub const MARKET_WASM: &[u8] = include_bytes!("../wasm/v2v_market.wasm");
