//! `v2v testnet`: a local network of validators, each a separate `v2v node` process on
//! 127.0.0.1 with its own database, p2p port and RPC port.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;

#[derive(Debug, Args)]
pub struct TestnetArgs {
    /// Number of validators.
    #[arg(long, default_value_t = 4)]
    validators: usize,
    /// The consensus engine.
    #[arg(long, value_enum, default_value = "pbft")]
    engine: crate::spec_cmd::Engine,
    /// Keep the spec, keys, databases and logs here (they persist, and a second run with
    /// the same directory resumes the same chain); default: a temporary directory removed
    /// on exit.
    #[arg(long)]
    base_dir: Option<PathBuf>,
    /// RPC ports: this one for validator-0, the next for validator-1, and so on; default:
    /// free ports.
    #[arg(long)]
    base_rpc_port: Option<u16>,
}

/// `n` distinct free TCP ports on 127.0.0.1 (all held until all are picked).
pub(crate) fn free_ports(n: usize) -> anyhow::Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .context("picking free ports")?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

pub(crate) struct Validator {
    pub name: String,
    pub rpc_port: u16,
    pub log: PathBuf,
    pub child: Child,
}

/// A validator dropped while still running (a bench or testnet interrupted mid-way) is
/// killed rather than left behind.
impl Drop for Validator {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Asks every child to stop (SIGTERM, so each flushes its database), then kills those that
/// have not stopped after a grace period.
pub(crate) fn stop_all(validators: &mut [Validator]) {
    for v in validators.iter() {
        let _ = Command::new("kill")
            .args(["-TERM", &v.child.id().to_string()])
            .status();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    for v in validators.iter_mut() {
        loop {
            match v.child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = v.child.kill();
                    let _ = v.child.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

pub(crate) fn spawn_validator(
    exe: &Path,
    base: &Path,
    spec: &Path,
    key: &Path,
    name: &str,
    rpc_port: u16,
) -> anyhow::Result<Validator> {
    let log = base.join(format!("{name}.log"));
    let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let err = out.try_clone()?;
    let child = Command::new(exe)
        .arg("node")
        .arg("--chain")
        .arg(spec)
        .arg("--base-path")
        .arg(base.join(name))
        .arg("--key-file")
        .arg(key)
        .arg("--rpc-port")
        .arg(rpc_port.to_string())
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    Ok(Validator {
        name: name.to_string(),
        rpc_port,
        log,
        child,
    })
}

pub async fn testnet(args: TestnetArgs) -> anyhow::Result<()> {
    let n = args.validators;
    anyhow::ensure!((1..=128).contains(&n), "--validators: choose 1 to 128");
    let engine = v2v_chain_spec::EngineKind::from(args.engine);
    let temp;
    let base = match &args.base_dir {
        Some(p) => p.clone(),
        None => {
            temp = tempfile::Builder::new().prefix("v2v-testnet-").tempdir()?;
            temp.path().to_path_buf()
        }
    };
    std::fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
    let spec_path = base.join("chain-spec.json");
    let keys_dir = base.join("keys");
    let ports_path = base.join("rpc-ports.json");
    let (spec, rpc_ports) = if spec_path.exists() {
        // Resume: the same spec, keys and ports.
        let spec = v2v_chain_spec::ChainSpec::load(&spec_path)?;
        let ports: Vec<u16> = serde_json::from_str(
            &std::fs::read_to_string(&ports_path)
                .with_context(|| format!("reading {}", ports_path.display()))?,
        )?;
        anyhow::ensure!(
            spec.validators.len() == ports.len(),
            "{} does not match {}",
            ports_path.display(),
            spec_path.display()
        );
        (spec, ports)
    } else {
        std::fs::create_dir_all(&keys_dir)?;
        let ports = free_ports(2 * n)?;
        let (spec, _) = v2v_chain_spec::local_at(engine, &ports[..n], &keys_dir)?;
        spec.save(&spec_path)?;
        let rpc_ports = match args.base_rpc_port {
            Some(base) => (0..n)
                .map(|i| {
                    u16::try_from(i)
                        .ok()
                        .and_then(|i| base.checked_add(i))
                        .context("--base-rpc-port: the port range overflows")
                })
                .collect::<anyhow::Result<Vec<u16>>>()?,
            None => ports[n..].to_vec(),
        };
        std::fs::write(&ports_path, serde_json::to_string(&rpc_ports)?)?;
        (spec, rpc_ports)
    };
    let exe = std::env::current_exe().context("finding the v2v executable")?;
    let mut validators = Vec::with_capacity(n);
    for (i, v) in spec.validators.iter().enumerate() {
        let key = keys_dir.join(format!("{}.json", v.name));
        match spawn_validator(&exe, &base, &spec_path, &key, &v.name, rpc_ports[i]) {
            Ok(v) => validators.push(v),
            Err(e) => {
                stop_all(&mut validators);
                return Err(e);
            }
        }
    }
    println!(
        "V2V local testnet: {} validators, engine {}",
        spec.validators.len(),
        spec.consensus.engine.as_str()
    );
    println!("  base dir:   {}", base.display());
    println!("  chain spec: {}", spec_path.display());
    println!(
        "  keys:       {} (operator.json, alice.json, bob.json, charlie.json)",
        keys_dir.display()
    );
    for v in &validators {
        println!(
            "  {:<12} RPC http://127.0.0.1:{}  log {}",
            v.name,
            v.rpc_port,
            v.log.display(),
        );
    }
    println!("Press Ctrl-C to stop them all.");
    // Run until a signal. A validator that exits (killed, say) is reported; the others go
    // on, as a real network would.
    let signal = crate::node_cmd::wait_for_signal();
    tokio::pin!(signal);
    let mut reported = std::collections::BTreeSet::new();
    loop {
        tokio::select! {
            _ = &mut signal => break,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        for v in validators.iter_mut() {
            if let Ok(Some(status)) = v.child.try_wait()
                && reported.insert(v.name.clone())
            {
                eprintln!("{} exited ({status}); see {}", v.name, v.log.display());
            }
        }
        if reported.len() == validators.len() {
            anyhow::bail!("every validator exited");
        }
    }
    eprintln!("stopping the validators...");
    stop_all(&mut validators);
    eprintln!("all validators stopped");
    Ok(())
}
