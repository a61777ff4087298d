//! `v2v dev` and `v2v node`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use v2v_chain_spec::ChainSpec;
use v2v_crypto::{KeyFile, Keypair, ValidatorKeyFile};
use v2v_rpc::RpcConfig;
use v2v_service::{MempoolLimits, NodeConfig, Role, RunningNode};

use crate::amount::format_credits;

#[derive(Debug, Args)]
pub struct RpcArgs {
    /// JSON-RPC port (HTTP and WebSocket); 0 picks a free port.
    #[arg(long, default_value_t = 9944)]
    rpc_port: u16,
    /// Listen on all interfaces instead of 127.0.0.1.
    #[arg(long)]
    rpc_external: bool,
}

impl RpcArgs {
    fn config(&self) -> RpcConfig {
        let mut c = RpcConfig::local(self.rpc_port);
        if self.rpc_external {
            c.addr.set_ip(std::net::IpAddr::from([0, 0, 0, 0]));
        }
        c
    }
}

#[derive(Debug, Args)]
pub struct DevArgs {
    /// Keep the chain here (it persists across restarts); default: a temporary directory
    /// removed on exit.
    #[arg(long)]
    base_path: Option<PathBuf>,
    /// The consensus engine of the one dev validator (every engine runs with n = 1; the
    /// chain, the contract and the wallet are the same whichever runs).
    #[arg(long, value_enum, default_value = "solo")]
    engine: crate::spec_cmd::Engine,
    #[command(flatten)]
    rpc: RpcArgs,
}

#[derive(Debug, Args)]
pub struct NodeArgs {
    /// The chain spec (JSON).
    #[arg(long)]
    chain: PathBuf,
    /// Where the node keeps its database.
    #[arg(long)]
    base_path: PathBuf,
    /// This validator's key file (from `v2v chain-spec build` or `v2v key generate
    /// --validator`), or, for a full node listed in the spec's `fullNodes`, its account key
    /// file (`v2v key generate`).
    #[arg(long)]
    key_file: PathBuf,
    /// Where the validator network listens (a multiaddr such as /ip4/0.0.0.0/tcp/30333);
    /// default: this validator's address in the chain spec.
    #[arg(long)]
    listen: Option<String>,
    /// When this many blocks behind the others, install a peer's state snapshot (taken at a
    /// certified height) instead of replaying every block.
    #[arg(long, default_value_t = 1024)]
    snapshot_after: u64,
    #[command(flatten)]
    rpc: RpcArgs,
}

async fn run_until_stopped(node: RunningNode) -> anyhow::Result<()> {
    wait_for_signal().await;
    eprintln!("shutting down...");
    let height = node.shutdown().await?;
    eprintln!("stopped cleanly at finalized height {height}");
    Ok(())
}

pub(crate) async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

fn write_dev_keys(dir: &Path) -> anyhow::Result<Vec<(String, Keypair, PathBuf, u64)>> {
    let (_, operator, clients) = v2v_chain_spec::dev();
    let mut out = Vec::new();
    for acct in std::iter::once(operator).chain(clients) {
        let path = dir.join(format!("{}.json", acct.name));
        KeyFile::from_keypair(&acct.key).write(&path)?;
        out.push((acct.name, acct.key, path, acct.balance));
    }
    Ok(out)
}

pub async fn dev(args: DevArgs) -> anyhow::Result<()> {
    let engine = v2v_chain_spec::EngineKind::from(args.engine);
    let (spec, _, _) = v2v_chain_spec::dev_with_engine(engine)?;
    let temp;
    let base = match &args.base_path {
        Some(p) => p.clone(),
        None => {
            temp = tempfile::Builder::new().prefix("v2v-dev-").tempdir()?;
            temp.path().to_path_buf()
        }
    };
    std::fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
    let keys = write_dev_keys(&base.join("keys"))?;
    // The node writes its spec there.
    let spec_path = base.join(v2v_service::SPEC_FILE);
    let validator = v2v_chain_spec::dev_validator_secrets(engine)?;
    let node = v2v_service::start(NodeConfig {
        spec,
        base_path: base.clone(),
        role: Role::Validator(validator),
        rpc: args.rpc.config(),
        mempool: MempoolLimits::default(),
        listen: None,
        snapshot_after: 1024,
    })
    .await?;
    println!(
        "V2V development chain (one validator, engine {})",
        engine.as_str()
    );
    println!(
        "  base path:    {}{}",
        base.display(),
        if args.base_path.is_none() {
            " (temporary)"
        } else {
            ""
        }
    );
    println!("  chain spec:   {}", spec_path.display());
    println!("  genesis hash: {}", node.genesis_hash);
    println!("  head height:  {}", node.head_height);
    println!("  RPC:          http://{0}  ws://{0}", node.rpc_addr);
    println!("  dev accounts (well-known keys: never use them for anything real):");
    for (name, key, path, balance) in &keys {
        let role = if name == "operator" {
            "operator".to_string()
        } else {
            format!("client '{name}', {} credits", format_credits(*balance))
        };
        println!(
            "    {name:<9} {}  {role}\n              key file: {}",
            key.public(),
            path.display()
        );
    }
    println!("Press Ctrl-C to stop.");
    run_until_stopped(node).await
}

pub async fn node(args: NodeArgs) -> anyhow::Result<()> {
    let spec = ChainSpec::load(&args.chain)?;
    // A validator key file makes a validator; a plain account key file, listed in the
    // spec's fullNodes, a full node.
    let role = match ValidatorKeyFile::read(&args.key_file) {
        Ok(vkf) => Role::Validator(vkf.secrets()?),
        Err(validator_err) => match KeyFile::read(&args.key_file) {
            Ok(key) => Role::Full(key),
            Err(_) => {
                return Err(anyhow::Error::new(validator_err)
                    .context(format!("reading key file {}", args.key_file.display())));
            }
        },
    };
    let full = matches!(role, Role::Full(_));
    let listen = match &args.listen {
        Some(a) => Some(a.parse().with_context(|| format!("--listen {a}"))?),
        None => None,
    };
    let node = v2v_service::start(NodeConfig {
        spec,
        base_path: args.base_path.clone(),
        role,
        rpc: args.rpc.config(),
        mempool: MempoolLimits::default(),
        listen,
        snapshot_after: args.snapshot_after,
    })
    .await?;
    if full {
        println!("full node: following the validators");
    }
    println!("genesis hash: {}", node.genesis_hash);
    println!("head height:  {}", node.head_height);
    println!("RPC:          http://{0}  ws://{0}", node.rpc_addr);
    run_until_stopped(node).await
}
