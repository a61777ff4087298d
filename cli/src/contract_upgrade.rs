//! `v2v contract deploy` and `v2v contract dry-run`: live upgrades of the market contract.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use serde::Serialize;
use v2v_abi::{DEPLOY_METHOD, DeployContract};
use v2v_chain_spec::ChainSpec;
use v2v_executor::{BlockLimits, Executor, Mode, UpgradeOutcome, runtime_for};
use v2v_primitives::{Block, Hash, Header, PublicKey, Receipt, SignedTransaction};
use v2v_rpc_client::{
    BlockId, ChainApiClient, HttpClient, ReceiptJson, StateApiClient, SystemApiClient,
};
use v2v_runtime::{Limits, Runtime};

use crate::wallet::{Call, RpcTarget, SubmitOptions, load_key, submit_call};

#[derive(Debug, Args)]
pub struct DeployArgs {
    #[command(flatten)]
    target: RpcTarget,
    /// The new contract's Wasm (it must declare a greater version than the one in force).
    #[arg(long)]
    wasm: PathBuf,
    /// An operator's key file (one of the chain spec's operators).
    #[arg(long)]
    key: Option<PathBuf>,
    /// The first block the new code executes; default: the block after the deployment's.
    #[arg(long, value_name = "H")]
    at_height: Option<u64>,
    #[command(flatten)]
    submit: SubmitOptions,
}

#[derive(Debug, Args)]
pub struct DryRunArgs {
    #[command(flatten)]
    target: RpcTarget,
    /// The new contract's Wasm.
    #[arg(long)]
    wasm: PathBuf,
    /// Replay the finalized blocks from this height to the head against the new code (as
    /// if it had activated at this height, migration included).
    #[arg(long, value_name = "H")]
    from_height: u64,
}

/// Reads contract code and checks it as a node would (compiles under the deterministic
/// configuration, imports and exports, size); returns it with its version and hash.
fn read_code(path: &Path) -> anyhow::Result<(Vec<u8>, u32, Hash)> {
    let wasm = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let runtime = Runtime::new(Limits::default())?;
    let contract = runtime
        .load(&wasm)
        .with_context(|| format!("{} is not a valid contract", path.display()))?;
    Ok((wasm, contract.version(), Hash(contract.code_hash())))
}

pub async fn deploy(args: DeployArgs) -> anyhow::Result<()> {
    let (wasm, version, code_hash) = read_code(&args.wasm)?;
    let key = load_key(&args.key)?;
    let client = args.target.client()?;
    let before = client
        .get_contract()
        .await
        .context("reading the contract")?;
    if !args.submit.sign_only {
        println!(
            "deploying version {version} (code {code_hash}, {} bytes) over version {}",
            wasm.len(),
            before.version
        );
    }
    let call = Call {
        method: DEPLOY_METHOD.into(),
        args: DeployContract {
            wasm,
            activate_at: args.at_height,
        }
        .encode(),
    };
    let Some(done) = submit_call(&args.target, &key, &call, &args.submit).await? else {
        return Ok(());
    };
    // Wait for the activation height, then report what happened there.
    let activate_at = args.at_height.unwrap_or(done.height + 1);
    println!("waiting for block {activate_at}, where the new code takes over");
    let deadline = Instant::now() + Duration::from_secs(args.submit.wait_timeout);
    loop {
        let info = client.get_contract().await?;
        if let Some(u) = info.history.iter().find(|u| u.deploy_tx == done.hash) {
            if u.outcome == "activated" {
                println!(
                    "version {} is in force from block {} (code {})",
                    u.version, u.activate_at, u.code_hash
                );
                return Ok(());
            }
            bail!(
                "the upgrade failed at block {}: {}; version {} stays in force",
                u.activate_at,
                u.error.as_deref().unwrap_or("unknown error"),
                info.version
            );
        }
        if Instant::now() >= deadline {
            bail!(
                "block {activate_at} was not finalized within {} s: `v2v chain contract` shows the upgrade once it is",
                args.submit.wait_timeout
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// One receipt that differs between the code in force and the new code.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Difference {
    height: u64,
    index: usize,
    tx: Hash,
    signer: PublicKey,
    method: String,
    current: ReceiptJson,
    new: ReceiptJson,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct DryRunSummary {
    from_height: u64,
    to_height: u64,
    transactions: usize,
    differing: usize,
    new_version: u32,
    /// `activated`, or `failed` with the migration's error (nothing else was replayed then).
    migration: String,
}

/// A finalized block, rebuilt from `chain_getBlock` and checked against its hash.
async fn fetch_block(
    client: &HttpClient,
    height: u64,
) -> anyhow::Result<(Block, Vec<ReceiptJson>)> {
    let b = client
        .get_block(Some(BlockId::Height(height)))
        .await
        .with_context(|| format!("reading block {height}"))?;
    let h = &b.header;
    let header = Header {
        height: h.height,
        parent_hash: h.parent_hash,
        state_root: h.state_root,
        tx_root: h.tx_root,
        proposer: PublicKey::from_hex(&h.proposer)
            .map_err(|e| anyhow::anyhow!("block {height}: proposer: {e}"))?,
        view: h.view,
        timestamp: h.timestamp,
    };
    let txs = b
        .transactions
        .iter()
        .map(|t| {
            let raw = hex::decode(t.raw.trim_start_matches("0x"))?;
            Ok(SignedTransaction::decode(&raw, usize::MAX)?)
        })
        .collect::<anyhow::Result<Vec<_>>>()
        .with_context(|| format!("block {height}: transactions"))?;
    if header.hash() != h.hash {
        bail!(
            "block {height} does not hash to what the node says ({})",
            h.hash
        );
    }
    Ok((Block { header, txs }, b.receipts))
}

fn same(a: &Receipt, b: &Receipt) -> bool {
    a.success == b.success && a.error == b.error && a.events == b.events
}

/// Replays the chain from genesis (the node's own spec) to the head: blocks before
/// `from_height` with the code they ran, the rest twice, with the code in force and with the
/// new code staged to take over at `from_height`. Prints every receipt that differs (success,
/// error or events; fuel always differs between builds), then a summary.
pub async fn dry_run(args: DryRunArgs) -> anyhow::Result<()> {
    let (wasm, version, _) = read_code(&args.wasm)?;
    let client = args.target.client()?;
    let spec = ChainSpec::from_json(
        client
            .chain_spec()
            .await
            .context("reading the node's chain spec")?
            .get(),
    )
    .context("the node's chain spec")?;
    let head = client.get_header(None).await?.height;
    if args.from_height == 0 || args.from_height > head {
        bail!(
            "--from-height must be between 1 and the finalized head ({head}), got {}",
            args.from_height
        );
    }
    let (mut current, genesis) = Executor::genesis(&spec, runtime_for(&spec)?)?;
    let chain = client.chain().await?;
    if genesis.hash() != chain.genesis_hash {
        bail!("the node's spec does not give its genesis: refusing to replay");
    }
    let limits = BlockLimits {
        max_txs: usize::MAX,
        max_bytes: usize::MAX,
    };
    eprintln!(
        "replaying {} blocks with the code they ran, then blocks {}..={head} with both",
        args.from_height - 1,
        args.from_height
    );
    for height in 1..args.from_height {
        let (block, _) = fetch_block(&client, height).await?;
        current
            .execute(block.header, block.txs, Mode::Verify, limits)
            .with_context(|| format!("replaying block {height}"))?;
    }
    let mut new = current.clone();
    new.stage_upgrade(wasm, args.from_height)?;
    let (mut transactions, mut differing) = (0, 0);
    let mut migration = None;
    for height in args.from_height..=head {
        let (block, _) = fetch_block(&client, height).await?;
        let theirs = new
            .execute(block.header.clone(), block.txs.clone(), Mode::Build, limits)
            .with_context(|| format!("block {height} with the new code"))?;
        if migration.is_none() {
            let status = new.contract_status();
            let last = status
                .history
                .last()
                .context("the staged upgrade left no record")?;
            if last.outcome == UpgradeOutcome::Failed {
                migration = Some(format!(
                    "failed: {}",
                    last.error.as_deref().unwrap_or("unknown error")
                ));
                break;
            }
            migration = Some("activated".into());
        }
        let ours = current
            .execute(block.header, block.txs, Mode::Verify, limits)
            .with_context(|| format!("replaying block {height}"))?;
        for (index, (tx, (a, b))) in ours
            .block
            .txs
            .iter()
            .zip(ours.receipts.iter().zip(&theirs.receipts))
            .enumerate()
        {
            transactions += 1;
            if !same(a, b) {
                differing += 1;
                let d = Difference {
                    height,
                    index,
                    tx: tx.hash(),
                    signer: tx.tx.signer,
                    method: tx.tx.method.clone(),
                    current: ReceiptJson::from(a),
                    new: ReceiptJson::from(b),
                };
                println!("{}", serde_json::to_string(&d)?);
            }
        }
        if theirs.block.txs.len() != ours.block.txs.len() {
            bail!("block {height}: the new code's replay left transactions out");
        }
    }
    let summary = DryRunSummary {
        from_height: args.from_height,
        to_height: head,
        transactions,
        differing,
        new_version: version,
        migration: migration.unwrap_or_default(),
    };
    println!("{}", serde_json::to_string(&summary)?);
    Ok(())
}
