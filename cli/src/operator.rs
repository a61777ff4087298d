//! `v2v operator`: the market operator's transactions (signed with an operator key listed in
//! the chain spec), submitted like the wallet's.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use v2v_abi::{MarketCall, Resolution};
use v2v_crypto::{KeyFile, PublicKey};

use crate::amount::parse_credits;
use crate::wallet::{RpcTarget, SubmitOptions, load_key, submit_and_wait};

#[derive(Debug, Args)]
pub struct OperatorArgs {
    #[command(flatten)]
    target: RpcTarget,
    /// The operator's key file (its public key must be one of the chain spec's operators).
    #[arg(long, global = true)]
    key: Option<PathBuf>,
    #[command(flatten)]
    submit: SubmitOptions,
    #[command(subcommand)]
    command: OperatorCommand,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ResolutionArg {
    /// Pay the provider as if the consumer had confirmed.
    Settle,
    /// Return the escrow to the consumer; no fee.
    Refund,
}

#[derive(Debug, Subcommand)]
enum OperatorCommand {
    /// Register client CLIENT_ID for a key: PUBLIC_KEY is 0x + 64 hex digits or a key file.
    RegisterClient {
        client_id: String,
        public_key: String,
    },
    /// Remove a client with no balance, escrow or open trades (its resting orders go too).
    RemoveClient { client_id: String },
    /// Add DELTA credits to a client's balance (negative removes; up to 6 decimals).
    AdjustFunds {
        client_id: String,
        /// Credits, e.g. 12.5 or -3.
        #[arg(allow_hyphen_values = true)]
        delta: String,
        /// Why (recorded in the event; required).
        #[arg(long)]
        reason: String,
    },
    /// Remove any resting order.
    RemoveOrder {
        order_id: u64,
        /// Why (recorded in the event).
        #[arg(long)]
        reason: String,
    },
    /// Add meeting point ID at (X, Y) metres.
    AddMeetingPoint {
        id: u32,
        #[arg(allow_negative_numbers = true)]
        x: i64,
        #[arg(allow_negative_numbers = true)]
        y: i64,
    },
    /// Remove a meeting point (open trades keep their copy).
    RemoveMeetingPoint { id: u32 },
    /// Set the fee rate for future matches: µcr per Wh (an integer), charged to each side.
    SetFee {
        #[arg(value_name = "UCR_PER_WH")]
        fee_rate: u64,
    },
    /// Resolve a disputed trade: settle (pay the provider) or refund (the consumer).
    Resolve {
        trade_id: u64,
        #[arg(value_enum)]
        resolution: ResolutionArg,
    },
}

/// Signed credits ("-3.5") as µcr.
fn parse_signed_credits(s: &str) -> anyhow::Result<i64> {
    let s = s.trim();
    let (negative, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let micro = parse_credits(digits)?;
    let micro = i64::try_from(micro).with_context(|| format!("'{s}' credits are too large"))?;
    Ok(if negative { -micro } else { micro })
}

/// A public key given as hex, or read from a key file.
fn parse_public_key(s: &str) -> anyhow::Result<[u8; 32]> {
    if let Ok(pk) = PublicKey::from_hex(s) {
        return Ok(pk.0);
    }
    let path = Path::new(s);
    if path.exists() {
        let k = KeyFile::read(path).with_context(|| format!("reading key {s}"))?;
        return Ok(k.public().0);
    }
    bail!("'{s}' is neither a public key (0x + 64 hex digits) nor a key file")
}

pub async fn run(args: OperatorArgs) -> anyhow::Result<()> {
    let call = match args.command {
        OperatorCommand::RegisterClient {
            client_id,
            public_key,
        } => MarketCall::RegisterClient {
            client_id,
            public_key: parse_public_key(&public_key)?,
        },
        OperatorCommand::RemoveClient { client_id } => MarketCall::RemoveClient { client_id },
        OperatorCommand::AdjustFunds {
            client_id,
            delta,
            reason,
        } => MarketCall::AdjustFunds {
            client_id,
            delta: parse_signed_credits(&delta)?,
            reason,
        },
        OperatorCommand::RemoveOrder { order_id, reason } => {
            MarketCall::RemoveOrder { order_id, reason }
        }
        OperatorCommand::AddMeetingPoint { id, x, y } => MarketCall::AddMeetingPoint { id, x, y },
        OperatorCommand::RemoveMeetingPoint { id } => MarketCall::RemoveMeetingPoint { id },
        OperatorCommand::SetFee { fee_rate } => MarketCall::SetFee { fee_rate },
        OperatorCommand::Resolve {
            trade_id,
            resolution,
        } => MarketCall::Resolve {
            trade_id,
            resolution: match resolution {
                ResolutionArg::Settle => Resolution::Settle,
                ResolutionArg::Refund => Resolution::Refund,
            },
        },
    };
    let key = load_key(&args.key)?;
    submit_and_wait(&args.target, &key, &call, &args.submit).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_credits() {
        assert_eq!(parse_signed_credits("12.5").ok(), Some(12_500_000));
        assert_eq!(parse_signed_credits("-3").ok(), Some(-3_000_000));
        assert_eq!(parse_signed_credits("+0.000001").ok(), Some(1));
        assert!(parse_signed_credits("--3").is_err());
        assert!(parse_signed_credits("-").is_err());
        assert!(parse_signed_credits("9300000000000").is_err());
    }

    #[test]
    fn public_keys() {
        let k = v2v_crypto::Keypair::from_name("alice");
        assert_eq!(
            parse_public_key(&k.public().to_hex()).ok(),
            Some(k.public().0)
        );
        assert!(parse_public_key("0x12").is_err());
        assert!(parse_public_key("/nonexistent/key.json").is_err());
    }
}
