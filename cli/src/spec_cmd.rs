//! `v2v chain-spec build | verify`.

use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};
use v2v_chain_spec::{ChainSpec, EngineKind};
use v2v_executor::{Executor, runtime_for};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Preset {
    Dev,
    Local,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Engine {
    Solo,
    Pbft,
    Linear,
    Sbft,
}

impl From<Engine> for EngineKind {
    fn from(e: Engine) -> Self {
        match e {
            Engine::Solo => EngineKind::Solo,
            Engine::Pbft => EngineKind::Pbft,
            Engine::Linear => EngineKind::Linear,
            Engine::Sbft => EngineKind::Sbft,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum SpecCommand {
    /// Write a chain spec from a preset (and, for `local`, fresh keys for every validator).
    Build {
        #[arg(long, value_enum)]
        preset: Preset,
        /// Number of validators (`local` only).
        #[arg(long, default_value_t = 1)]
        validators: usize,
        /// Consensus engine (`local` only); default: solo for one validator, pbft otherwise.
        #[arg(long, value_enum)]
        engine: Option<Engine>,
        /// Where `local` writes the validator, operator and client keys.
        #[arg(long, default_value = "keys")]
        keys_dir: PathBuf,
        /// First validator's p2p port (`local` only); the others follow.
        #[arg(long, default_value_t = 30333)]
        base_port: u16,
        #[arg(long)]
        out: PathBuf,
    },
    /// Check a chain spec (keys, proofs of possession, contract hash, genesis) and print its
    /// genesis hash.
    Verify { file: PathBuf },
}

pub fn run(cmd: SpecCommand) -> anyhow::Result<()> {
    match cmd {
        SpecCommand::Build {
            preset,
            validators,
            engine,
            keys_dir,
            base_port,
            out,
        } => {
            let spec = match preset {
                Preset::Dev => v2v_chain_spec::dev().0,
                Preset::Local => {
                    let engine = engine.map(EngineKind::from).unwrap_or(if validators == 1 {
                        EngineKind::Solo
                    } else {
                        EngineKind::Pbft
                    });
                    let (spec, keys) =
                        v2v_chain_spec::local(validators, engine, base_port, &keys_dir)?;
                    for p in &keys.validators {
                        println!("validator key: {}", p.display());
                    }
                    println!("operator key:  {}", keys.operator.display());
                    for p in &keys.clients {
                        println!("client key:    {}", p.display());
                    }
                    spec
                }
            };
            spec.save(&out)?;
            println!("chain spec:    {}", out.display());
            println!("genesis hash:  {}", genesis_hash(&spec)?);
        }
        SpecCommand::Verify { file } => {
            let spec = ChainSpec::load(&file)?;
            let hash = genesis_hash(&spec)?;
            println!("{}: valid", file.display());
            println!("  name:         {} ({})", spec.name, spec.id);
            println!("  engine:       {}", spec.consensus.engine.as_str());
            println!("  validators:   {}", spec.validators.len());
            println!(
                "  contract:     version {} {}",
                spec.contract.version, spec.contract.code_hash
            );
            println!("  genesis hash: {hash}");
        }
    }
    Ok(())
}

fn genesis_hash(spec: &ChainSpec) -> anyhow::Result<v2v_primitives::Hash> {
    let (_, genesis) = Executor::genesis(spec, runtime_for(spec)?)?;
    Ok(genesis.hash())
}
