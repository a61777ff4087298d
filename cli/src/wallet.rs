//! `v2v wallet`: builds, signs and submits market transactions, then waits for finality.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use v2v_abi::MarketCall;
use v2v_crypto::{KeyFile, Keypair};
use v2v_primitives::{Hash, UnsignedTransaction};
use v2v_rpc::jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use v2v_rpc::{
    AuthorApiClient, MarketApiClient, StateApiClient, SystemApiClient, TxApiClient, TxLookup,
};

use crate::amount::{format_credits, parse_credits};

#[derive(Debug, Args)]
pub struct RpcTarget {
    /// The node's JSON-RPC URL.
    #[arg(long, default_value = "http://127.0.0.1:9944", global = true)]
    pub rpc: String,
}

impl RpcTarget {
    pub fn client(&self) -> anyhow::Result<HttpClient> {
        HttpClientBuilder::default()
            .request_timeout(Duration::from_secs(30))
            .build(&self.rpc)
            .with_context(|| format!("connecting to {}", self.rpc))
    }
}

#[derive(Debug, Args)]
pub struct WalletArgs {
    #[command(flatten)]
    target: RpcTarget,
    /// The account's key file.
    #[arg(long, global = true)]
    key: Option<PathBuf>,
    /// Padding bytes added to the transaction's memo (payload-size experiments).
    #[arg(long, default_value_t = 0, global = true)]
    memo_bytes: usize,
    /// Return after submission instead of waiting for finality.
    #[arg(long, global = true)]
    no_wait: bool,
    #[command(subcommand)]
    command: WalletCommand,
}

#[derive(Debug, Subcommand)]
enum WalletCommand {
    /// Register this key as client CLIENT_ID.
    Register { client_id: String },
    /// Deposit AMOUNT credits (up to 6 decimals).
    Deposit { amount: String },
    /// Withdraw AMOUNT credits from the available balance.
    Withdraw { amount: String },
    /// Show an account: CLIENT_ID, or this key's own.
    Account { client_id: Option<String> },
    /// Show this key's next nonce.
    Nonce,
}

fn load_key(path: &Option<PathBuf>) -> anyhow::Result<Keypair> {
    let path = path.as_ref().context("this command needs --key FILE")?;
    KeyFile::read(path).with_context(|| format!("reading key {}", path.display()))
}

pub async fn run(args: WalletArgs) -> anyhow::Result<()> {
    let client = args.target.client()?;
    let call = match &args.command {
        WalletCommand::Register { client_id } => MarketCall::Register {
            client_id: client_id.clone(),
        },
        WalletCommand::Deposit { amount } => MarketCall::Deposit {
            amount: parse_credits(amount)?,
        },
        WalletCommand::Withdraw { amount } => MarketCall::Withdraw {
            amount: parse_credits(amount)?,
        },
        WalletCommand::Account { client_id } => {
            let account = match client_id {
                Some(id) => client.get_account(id.clone()).await?,
                None => {
                    let key = load_key(&args.key)?;
                    let args = serde_json::json!({ "publicKey": key.public().to_hex() });
                    let a = client
                        .query("accountByKey".into(), Some(args), None)
                        .await?;
                    if a.is_null() {
                        bail!("{} is not a registered client", key.public());
                    }
                    a
                }
            };
            print_account(&account);
            return Ok(());
        }
        WalletCommand::Nonce => {
            let key = load_key(&args.key)?;
            println!("{}", client.next_nonce(key.public().to_hex()).await?);
            return Ok(());
        }
    };
    let key = load_key(&args.key)?;
    let hash = submit(&client, &key, &call, args.memo_bytes).await?;
    println!("submitted {} ({})", call.method(), hash);
    if args.no_wait {
        return Ok(());
    }
    let found = wait_finalized(&client, hash, Duration::from_secs(60)).await?;
    println!(
        "finalized in block {} (index {})",
        found.height, found.index
    );
    if found.receipt.success {
        for e in &found.receipt.events {
            println!("  event: {e}");
        }
        Ok(())
    } else {
        bail!(
            "the transaction failed: {}",
            found
                .receipt
                .error
                .unwrap_or_else(|| "unknown error".into())
        )
    }
}

fn print_account(a: &serde_json::Value) {
    let money = |k: &str| {
        a[k].as_str()
            .and_then(|s| s.parse::<u64>().ok())
            .map(format_credits)
            .unwrap_or_else(|| "?".into())
    };
    println!("client:     {}", a["clientId"].as_str().unwrap_or("?"));
    println!("public key: {}", a["publicKey"].as_str().unwrap_or("?"));
    println!("balance:    {} credits", money("balance"));
    println!("escrow:     {} credits", money("escrow"));
}

/// Signs `call` with the account's next nonce and submits it.
pub async fn submit(
    client: &HttpClient,
    key: &Keypair,
    call: &MarketCall,
    memo_bytes: usize,
) -> anyhow::Result<Hash> {
    let chain = client.chain().await.context("reading the chain id")?;
    let nonce = client.next_nonce(key.public().to_hex()).await?;
    let tx = UnsignedTransaction {
        chain_id: chain.genesis_hash,
        signer: key.public(),
        nonce,
        method: call.method().into(),
        args: call.encode_args(),
        memo: vec![0u8; memo_bytes],
    }
    .sign(key);
    let hex = format!("0x{}", hex_encode(tx.encoded()));
    Ok(client.submit_transaction(hex).await?)
}

pub fn hex_encode(b: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    b.iter()
        .flat_map(|x| [D[(x >> 4) as usize] as char, D[(x & 15) as usize] as char])
        .collect()
}

/// Polls until the transaction is in a finalized block.
pub async fn wait_finalized(
    client: &HttpClient,
    hash: Hash,
    timeout: Duration,
) -> anyhow::Result<TxLookup> {
    let start = Instant::now();
    loop {
        match client.get_by_hash(hash).await {
            Ok(found) => return Ok(found),
            Err(e) if start.elapsed() < timeout => {
                let not_found = matches!(&e, v2v_rpc::jsonrpsee::core::ClientError::Call(o) if o.code() == v2v_rpc::codes::NOT_FOUND);
                if !not_found {
                    return Err(e.into());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(_) => bail!("transaction {hash} was not finalized within {timeout:?}"),
        }
    }
}
