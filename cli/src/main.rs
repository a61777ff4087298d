//! `v2v`: runs nodes and dev chains, builds chain specs, and acts as wallet and explorer.
//! A thin dispatcher: each subcommand lives in its own module.

mod amount;
mod bench_book;
mod bench_cmd;
mod bench_ladder;
mod bench_plot;
mod chain_cmd;
mod contract_cmd;
mod contract_upgrade;
mod node_cmd;
mod operator;
mod spec_cmd;
mod testnet_cmd;
mod wallet;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// The V2V energy-trading chain.
#[derive(Debug, Parser)]
#[command(name = "v2v", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a single-validator development chain (dev preset, well-known keys).
    Dev(node_cmd::DevArgs),
    /// Run a node from a chain spec.
    Node(node_cmd::NodeArgs),
    /// Run a local network of validators on 127.0.0.1, one process each.
    Testnet(testnet_cmd::TestnetArgs),
    /// Measure throughput and latency of local validator networks (use a release build).
    Bench(bench_cmd::BenchArgs),
    /// Draw SVG charts from `v2v bench` results files (several runs together).
    #[command(name = "bench-plot")]
    BenchPlot(bench_plot::PlotArgs),
    /// Build or verify chain specs.
    #[command(name = "chain-spec", subcommand)]
    ChainSpec(spec_cmd::SpecCommand),
    /// Generate and inspect keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Wallet: accounts, vehicles, orders and trades over JSON-RPC.
    Wallet(wallet::WalletArgs),
    /// Operator: clients, funds, orders, meeting points, the fee and disputes over JSON-RPC.
    Operator(operator::OperatorArgs),
    /// Contract code: run transactions locally against a spec's genesis (no network), deploy
    /// an upgrade on a running chain, or dry-run one against its finalized blocks.
    #[command(subcommand)]
    Contract(contract_cmd::ContractCommand),
    /// Explorer: heads, blocks, transactions and contract queries over JSON-RPC.
    Chain(chain_cmd::ChainArgs),
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Generate an ed25519 account key (or, with --validator NAME, a validator key with BLS).
    Generate {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, value_name = "NAME")]
        validator: Option<String>,
    },
    /// Print the public key of a key file.
    Inspect { file: PathBuf },
}

fn key_command(cmd: KeyCommand) -> anyhow::Result<()> {
    use v2v_crypto::{BlsKeypair, KeyFile, Keypair, ValidatorKeyFile};
    match cmd {
        KeyCommand::Generate { out, validator } => {
            if out.exists() {
                anyhow::bail!("{} exists: refusing to overwrite a key", out.display());
            }
            let k = Keypair::generate();
            match validator {
                Some(name) => {
                    ValidatorKeyFile::new(&name, &k, &BlsKeypair::generate()).write(&out)?
                }
                None => KeyFile::from_keypair(&k).write(&out)?,
            }
            println!("public key: {}", k.public());
            println!("written to: {}", out.display());
        }
        KeyCommand::Inspect { file } => {
            let k = KeyFile::read(&file)?;
            println!("{}", k.public());
        }
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Dev(a) => node_cmd::dev(a).await,
            Command::Node(a) => node_cmd::node(a).await,
            Command::Testnet(a) => testnet_cmd::testnet(a).await,
            Command::Bench(a) => bench_cmd::bench(a).await,
            Command::BenchPlot(a) => bench_plot::plot_command(a),
            Command::ChainSpec(c) => spec_cmd::run(c),
            Command::Key(c) => key_command(c),
            Command::Wallet(a) => wallet::run(a).await,
            Command::Operator(a) => operator::run(a).await,
            Command::Contract(c) => contract_cmd::run(c).await,
            Command::Chain(a) => chain_cmd::run(a).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
