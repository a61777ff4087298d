//! `v2v chain`: heads, blocks, transactions and contract queries.

use clap::{Args, Subcommand};
use v2v_primitives::Hash;
use v2v_rpc_client::{BlockId, ChainApiClient, StateApiClient, TxApiClient};

use crate::wallet::RpcTarget;

#[derive(Debug, Args)]
pub struct ChainArgs {
    #[command(flatten)]
    target: RpcTarget,
    #[command(subcommand)]
    command: ChainCommand,
}

#[derive(Debug, Subcommand)]
enum ChainCommand {
    /// The finalized head's header.
    Head,
    /// A block (by height or 0x hash) with its transactions and receipts.
    Block { at: String },
    /// A finalized transaction and its receipt.
    Tx { hash: String },
    /// The market contract in force, the upgrade waiting for its height, and every upgrade.
    Contract,
    /// Run a read-only contract query, e.g. `query params` or `query account '{"clientId":"alice"}'`.
    Query {
        method: String,
        args: Option<String>,
    },
}

fn block_id(s: &str) -> anyhow::Result<BlockId> {
    if let Ok(h) = s.parse::<u64>() {
        return Ok(BlockId::Height(h));
    }
    Hash::from_hex(s)
        .map(BlockId::Hash)
        .ok_or_else(|| anyhow::anyhow!("'{s}' is neither a height nor a 0x block hash"))
}

fn print(v: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

pub async fn run(args: ChainArgs) -> anyhow::Result<()> {
    let client = args.target.client()?;
    match args.command {
        ChainCommand::Head => print(&client.get_header(None).await?),
        ChainCommand::Block { at } => print(&client.get_block(Some(block_id(&at)?)).await?),
        ChainCommand::Tx { hash } => {
            let h = Hash::from_hex(&hash)
                .ok_or_else(|| anyhow::anyhow!("'{hash}' is not a 0x hash"))?;
            print(&client.get_by_hash(h).await?)
        }
        ChainCommand::Contract => print(&client.get_contract().await?),
        ChainCommand::Query { method, args } => {
            let args = match args {
                Some(a) => Some(
                    serde_json::from_str(&a)
                        .map_err(|e| anyhow::anyhow!("arguments are not JSON: {e}"))?,
                ),
                None => None,
            };
            print(&client.query(method, args, None).await?)
        }
    }
}
