//! `v2v contract exec`: runs a sequence of market transactions locally, with no network and no
//! database, against a chain spec's genesis state (format: `docs/contract-exec.md`).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde::Serialize;
use serde_json::Value;
use v2v_abi::MarketCall;
use v2v_chain_spec::ChainSpec;
use v2v_crypto::{KeyFile, Keypair};
use v2v_executor::{BlockLimits, Executor, Mode, runtime_for};
use v2v_primitives::{Hash, Header, UnsignedTransaction};
use v2v_rpc_client::ReceiptJson;

#[derive(Debug, Subcommand)]
pub enum ContractCommand {
    /// Execute transactions (JSON lines) against a chain spec's genesis, locally: one block
    /// per transaction, nonces assigned per signer. Prints one JSON receipt per transaction,
    /// then the final state root and height.
    Exec(ExecArgs),
    /// Deploy new contract code on a running chain (an operator transaction): it is checked
    /// like genesis code, must declare a greater version, and takes over at --at-height
    /// (default: the next block), after running its migration if it has one. Waits for that
    /// height and reports the outcome.
    Deploy(DeployArgs),
    /// Replay the finalized blocks from --from-height to the head against new contract code
    /// (replaying the chain from genesis with the node's spec) and print every receipt that
    /// would differ, as JSON lines, then a summary line.
    DryRun(DryRunArgs),
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The chain spec whose genesis state the transactions start from.
    #[arg(long)]
    chain: PathBuf,
    /// Run this contract Wasm instead of the spec's (its version is read from the module).
    #[arg(long)]
    wasm: Option<PathBuf>,
    /// The transactions, one JSON object per line (`-` reads standard input):
    /// {"signer": "alice" | "operator" | "path/to/key.json", "call": {"method": ..., "args": {...}}, "memo"?: "..."}
    #[arg(long)]
    txs: PathBuf,
}

pub use crate::contract_upgrade::{DeployArgs, DryRunArgs};

/// One parsed input line.
#[derive(Debug)]
struct TxLine {
    /// 1-based line number in the input.
    line: usize,
    signer: String,
    key: Keypair,
    call: MarketCall,
    memo: Vec<u8>,
}

/// The printed result of one transaction.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct TxOutput<'a> {
    index: usize,
    signer: &'a str,
    method: &'a str,
    success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    events: Vec<Value>,
    fuel_used: u64,
}

/// The printed final line.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct FinalOutput {
    state_root: Hash,
    height: u64,
}

pub async fn run(cmd: ContractCommand) -> anyhow::Result<()> {
    match cmd {
        ContractCommand::Exec(args) => exec(args),
        ContractCommand::Deploy(args) => crate::contract_upgrade::deploy(args).await,
        ContractCommand::DryRun(args) => crate::contract_upgrade::dry_run(args).await,
    }
}

/// The keys a signer can be named by: the dev preset's accounts.
fn named_signers() -> BTreeMap<String, Keypair> {
    let (_, operator, clients) = v2v_chain_spec::dev();
    std::iter::once(operator)
        .chain(clients)
        .map(|a| (a.name, a.key))
        .collect()
}

/// Parses every line before anything runs, so that a bad line stops the run with nothing
/// executed. Key-file paths are relative to the input file's directory.
fn parse_lines(text: &str, base_dir: &Path) -> anyhow::Result<Vec<TxLine>> {
    let named = named_signers();
    let names = named.keys().cloned().collect::<Vec<_>>().join(", ");
    let mut files: BTreeMap<PathBuf, Keypair> = BTreeMap::new();
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let parsed = (|| -> anyhow::Result<TxLine> {
            let v: Value = serde_json::from_str(raw).context("not valid JSON")?;
            let obj = v
                .as_object()
                .context("expected a JSON object {\"signer\", \"call\", \"memo\"?}")?;
            if let Some(k) = obj
                .keys()
                .find(|k| !["signer", "call", "memo"].contains(&k.as_str()))
            {
                bail!("unknown field '{k}' (expected signer, call and optionally memo)");
            }
            let signer = obj
                .get("signer")
                .and_then(Value::as_str)
                .context("missing \"signer\": a dev account name or a key-file path")?
                .to_string();
            let call_json = obj
                .get("call")
                .context("missing \"call\": {\"method\": ..., \"args\": {...}}")?;
            let call: MarketCall = serde_json::from_value(call_json.clone()).map_err(|e| {
                anyhow::anyhow!("call {call_json} is not a market call: {e} (see docs/market.md)")
            })?;
            let memo = match obj.get("memo") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::String(s)) => s.as_bytes().to_vec(),
                Some(other) => bail!("\"memo\" must be a string, got {other}"),
            };
            let key = match named.get(&signer) {
                Some(k) => k.clone(),
                None => {
                    let path = base_dir.join(&signer);
                    if !path.is_file() {
                        bail!(
                            "unknown signer '{signer}': not a dev account ({names}) and no key file at {}",
                            path.display()
                        );
                    }
                    match files.get(&path) {
                        Some(k) => k.clone(),
                        None => {
                            let k = KeyFile::read(&path).with_context(|| {
                                format!("signer '{signer}': reading key file {}", path.display())
                            })?;
                            files.insert(path, k.clone());
                            k
                        }
                    }
                }
            };
            Ok(TxLine {
                line,
                signer,
                key,
                call,
                memo,
            })
        })();
        out.push(parsed.with_context(|| format!("line {line}"))?);
    }
    Ok(out)
}

fn exec(args: ExecArgs) -> anyhow::Result<()> {
    let mut spec = ChainSpec::load(&args.chain)?;
    let (text, base_dir) = if args.txs.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading transactions from standard input")?;
        (s, PathBuf::from("."))
    } else {
        let s = std::fs::read_to_string(&args.txs)
            .with_context(|| format!("reading {}", args.txs.display()))?;
        let dir = args.txs.parent().map(Path::to_path_buf).unwrap_or_default();
        (s, dir)
    };
    let lines = parse_lines(&text, &base_dir)
        .with_context(|| format!("transactions file {}", args.txs.display()))?;

    let runtime = runtime_for(&spec)?;
    if let Some(path) = &args.wasm {
        let wasm = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let contract = runtime
            .load(&wasm)
            .with_context(|| format!("loading contract {}", path.display()))?;
        spec.contract.wasm = v2v_crypto::to_hex(&wasm);
        spec.contract.code_hash = v2v_crypto::to_hex(&contract.code_hash());
        spec.contract.version = contract.version();
    }
    let (mut exec, genesis) = Executor::genesis(&spec, runtime).context("building genesis")?;
    let chain_id = genesis.hash();
    let proposer = spec
        .validators
        .first()
        .map(|v| v.ed25519)
        .unwrap_or_default();
    let limits = BlockLimits {
        max_txs: spec.consensus.max_block_txs as usize,
        max_bytes: spec.consensus.max_block_bytes as usize,
    };
    let max_tx_bytes = spec.consensus.max_tx_bytes as usize;
    let mut parent = genesis;

    for (index, l) in lines.iter().enumerate() {
        let signer = l.key.public();
        let tx = UnsignedTransaction {
            chain_id,
            signer,
            nonce: exec.state().next_nonce(&signer),
            method: l.call.method().into(),
            args: l.call.encode_args(),
            memo: l.memo.clone(),
        }
        .sign(&l.key);
        let print = |o: &TxOutput<'_>| -> anyhow::Result<()> {
            println!("{}", serde_json::to_string(o)?);
            Ok(())
        };
        if tx.encoded().len() > max_tx_bytes {
            // A node refuses it before execution: no block, no nonce.
            print(&TxOutput {
                index,
                signer: &l.signer,
                method: l.call.method(),
                success: false,
                error: Some(format!(
                    "not executed: the transaction is {} bytes, the chain spec's maxTxBytes is {max_tx_bytes}",
                    tx.encoded().len()
                )),
                events: vec![],
                fuel_used: 0,
            })?;
            continue;
        }
        let height = parent.height + 1;
        let header = Header {
            height,
            parent_hash: parent.hash(),
            state_root: Hash::ZERO,
            tx_root: Hash::ZERO,
            proposer,
            view: 0,
            timestamp: spec
                .genesis
                .timestamp
                .saturating_add(height.saturating_mul(spec.consensus.block_interval_ms)),
        };
        let executed = exec
            .execute(header, vec![tx], Mode::Build, limits)
            .with_context(|| format!("line {}: executing", l.line))?;
        let Some(receipt) = executed.receipts.first() else {
            bail!(
                "line {}: the transaction was left out of its block: {:?}",
                l.line,
                executed.skipped
            );
        };
        let receipt = ReceiptJson::from(receipt);
        print(&TxOutput {
            index,
            signer: &l.signer,
            method: l.call.method(),
            success: receipt.success,
            error: receipt.error,
            events: receipt.events,
            fuel_used: receipt.fuel_used,
        })?;
        parent = executed.block.header;
    }
    println!(
        "{}",
        serde_json::to_string(&FinalOutput {
            state_root: exec.state().root(),
            height: parent.height,
        })?
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        format!("{:#}", parse_lines(text, Path::new(".")).unwrap_err())
    }

    #[test]
    fn parses_and_rejects_lines() {
        let ok = parse_lines(
            "{\"signer\":\"alice\",\"call\":{\"method\":\"deposit\",\"args\":{\"amount\":\"5\"}}}\n\n\
             {\"signer\":\"operator\",\"call\":{\"method\":\"setFee\",\"args\":{\"feeRate\":3}},\"memo\":\"x\"}\n",
            Path::new("."),
        );
        let ok = ok.unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[1].line, 3);
        assert_eq!(ok[1].memo, b"x");
        assert_eq!(ok[1].call, MarketCall::SetFee { fee_rate: 3 });

        let e = err(
            "{\"signer\":\"dave\",\"call\":{\"method\":\"deposit\",\"args\":{\"amount\":\"5\"}}}",
        );
        assert!(
            e.contains("line 1") && e.contains("unknown signer 'dave'"),
            "{e}"
        );
        let e = err("\n{not json");
        assert!(e.contains("line 2") && e.contains("not valid JSON"), "{e}");
        let e = err("{\"signer\":\"bob\",\"call\":{\"method\":\"fly\",\"args\":{}}}");
        assert!(
            e.contains("line 1") && e.contains("not a market call"),
            "{e}"
        );
        let e = err("{\"signer\":\"bob\"}");
        assert!(e.contains("missing \"call\""), "{e}");
        let e = err("{\"signer\":\"bob\",\"call\":{},\"extra\":1}");
        assert!(e.contains("unknown field 'extra'"), "{e}");
        let e = err("[1]");
        assert!(e.contains("expected a JSON object"), "{e}");
    }
}
