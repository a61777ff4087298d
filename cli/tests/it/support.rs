//! Starting and stopping `v2v` processes in tests, with cleanup on every path.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_v2v");

/// A node process that printed its RPC URL.
struct Serving {
    child: Child,
    rpc_url: String,
    genesis_hash: String,
}

/// Spawns a `v2v dev` or `v2v node` command (RUST_LOG=info), hands every stderr line to
/// `on_stderr`, and waits (at most 60 s) until stdout shows the RPC URL.
fn spawn_serving(mut cmd: Command, on_stderr: impl FnMut(String) + Send + 'static) -> Serving {
    let mut on_stderr = on_stderr;
    let mut child = cmd
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn v2v");
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let (seen_tx, seen_rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = seen_tx.send(line.clone());
            on_stderr(line);
        }
    });
    let (out_tx, out_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = out_tx.send(line);
        }
    });
    let (mut rpc_url, mut genesis_hash) = (String::new(), String::new());
    let deadline = Instant::now() + Duration::from_secs(60);
    while rpc_url.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = out_rx.recv_timeout(left) else {
            let _ = child.kill();
            let errors: Vec<String> = seen_rx.try_iter().collect();
            panic!("v2v did not print its RPC URL: {errors:?}");
        };
        if let Some(rest) = line.trim().strip_prefix("genesis hash:") {
            genesis_hash = rest.trim().to_string();
        }
        if let Some(rest) = line.trim().strip_prefix("RPC:") {
            rpc_url = rest.split_whitespace().next().expect("url").to_string();
        }
    }
    Serving {
        child,
        rpc_url,
        genesis_hash,
    }
}

/// A running `v2v dev` process; killed if the test ends without stopping it.
pub struct DevNode {
    child: Option<Child>,
    pub rpc_url: String,
    pub genesis_hash: String,
    stderr: mpsc::Receiver<String>,
}

impl DevNode {
    /// Starts `v2v dev` on a free loopback port and waits until it serves RPC.
    pub fn start(base: &Path) -> DevNode {
        Self::start_with(base, &[])
    }

    /// Like [`DevNode::start`], with extra arguments (e.g. `--engine sbft`).
    pub fn start_with(base: &Path, extra: &[&str]) -> DevNode {
        let mut cmd = Command::new(BIN);
        cmd.args(["dev", "--rpc-port", "0", "--base-path"])
            .arg(base)
            .args(extra);
        let (err_tx, err_rx) = mpsc::channel();
        let started = spawn_serving(cmd, move |line| {
            let _ = err_tx.send(line);
        });
        DevNode {
            child: Some(started.child),
            rpc_url: started.rpc_url,
            genesis_hash: started.genesis_hash,
            stderr: err_rx,
        }
    }

    /// Sends SIGINT (Ctrl-C) and waits for a clean exit; returns the process's stderr.
    pub fn interrupt(mut self) -> Vec<String> {
        let mut child = self.child.take().expect("running");
        let status = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                let lines: Vec<String> = self.stderr.iter().collect();
                assert!(status.success(), "v2v dev exited with {status}: {lines:?}");
                return lines;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("v2v dev did not stop within 30 s of Ctrl-C");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for DevNode {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs `v2v ARGS` to completion (bounded) and returns (success, stdout, stderr).
pub fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN).args(args).output().expect("run v2v");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A `v2v node` process; killed (SIGKILL) if the test ends without stopping it.
pub struct NodeProcess {
    child: Option<Child>,
    pub rpc_url: String,
    pub genesis_hash: String,
    stderr: std::sync::Arc<std::sync::Mutex<std::collections::VecDeque<String>>>,
}

impl NodeProcess {
    /// Starts `v2v node` and waits until it serves RPC.
    pub fn start(spec: &Path, base: &Path, key: &Path, rpc_port: u16) -> NodeProcess {
        Self::start_with(spec, base, key, rpc_port, &[])
    }

    /// Like [`NodeProcess::start`], with extra arguments (e.g. `--snapshot-after 2`).
    pub fn start_with(
        spec: &Path,
        base: &Path,
        key: &Path,
        rpc_port: u16,
        extra: &[&str],
    ) -> NodeProcess {
        let mut cmd = Command::new(BIN);
        cmd.arg("node")
            .arg("--chain")
            .arg(spec)
            .arg("--base-path")
            .arg(base)
            .arg("--key-file")
            .arg(key)
            .args(["--rpc-port", &rpc_port.to_string()])
            .args(extra);
        let recent = std::sync::Arc::new(std::sync::Mutex::new(std::collections::VecDeque::new()));
        let sink = recent.clone();
        let started = spawn_serving(cmd, move |line| {
            let mut q = sink.lock().unwrap();
            q.push_back(line);
            if q.len() > 400 {
                q.pop_front();
            }
        });
        NodeProcess {
            child: Some(started.child),
            rpc_url: started.rpc_url,
            genesis_hash: started.genesis_hash,
            stderr: recent,
        }
    }

    /// The last lines the node wrote to stderr.
    pub fn recent_stderr(&self) -> Vec<String> {
        self.stderr.lock().unwrap().iter().cloned().collect()
    }

    /// kill -9: no chance to flush anything.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Starts `v2v ARGS` and reads its stdout until a line contains `needle`; returns the
/// process and the lines read. The process is killed if the line does not come in time.
pub fn run_until_line(args: &[&str], needle: &str, within: Duration) -> (Child, Vec<String>) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn v2v");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + within;
    let mut lines = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let done = line.contains(needle);
                lines.push(line);
                if done {
                    return (child, lines);
                }
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("v2v {args:?} did not print {needle:?}: {lines:?}");
            }
        }
    }
}

/// An HTTP JSON-RPC client with a 20 s request timeout.
pub fn client(url: &str) -> v2v_rpc_client::jsonrpsee::http_client::HttpClient {
    v2v_rpc_client::jsonrpsee::http_client::HttpClientBuilder::default()
        .request_timeout(Duration::from_secs(20))
        .build(url)
        .unwrap()
}

/// `call` signed by `key` for chain `chain`, with `memo` padding bytes: the encoded bytes.
pub fn signed(
    key: &v2v_primitives::Keypair,
    chain: v2v_primitives::Hash,
    nonce: u64,
    call: &v2v_abi::MarketCall,
    memo: usize,
) -> Vec<u8> {
    v2v_primitives::UnsignedTransaction {
        chain_id: chain,
        signer: key.public(),
        nonce,
        method: call.method().into(),
        args: call.encode_args(),
        memo: vec![7u8; memo],
    }
    .sign(key)
    .encoded()
    .to_vec()
}

/// 0x-prefixed lowercase hex.
pub fn hex(b: &[u8]) -> String {
    let digits: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("0x{digits}")
}

/// Runs `v2v ARGS` with a deadline (killed past it); returns (success, stdout, stderr).
pub fn v2v(args: &[&str]) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (out_path, err_path) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("spawn v2v");
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("v2v {args:?} did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (
        status.success(),
        std::fs::read_to_string(out_path).unwrap(),
        std::fs::read_to_string(err_path).unwrap(),
    )
}

/// `v2v ARGS`, which must succeed; returns its stdout.
pub fn v2v_ok(args: &[&str]) -> String {
    let (ok, out, err) = v2v(args);
    assert!(ok, "v2v {args:?} failed:\nstdout: {out}\nstderr: {err}");
    out
}
