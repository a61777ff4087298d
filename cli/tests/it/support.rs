//! Starting and stopping `v2v` processes in tests, with cleanup on every path.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_v2v");

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
        let mut child = Command::new(BIN)
            .args(["dev", "--rpc-port", "0", "--base-path"])
            .arg(base)
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn v2v dev");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let (err_tx, err_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = err_tx.send(line);
            }
        });
        let (out_tx, out_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = out_tx.send(line);
            }
        });
        let mut node = DevNode {
            child: Some(child),
            rpc_url: String::new(),
            genesis_hash: String::new(),
            stderr: err_rx,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while node.rpc_url.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = out_rx.recv_timeout(left).unwrap_or_else(|_| {
                panic!(
                    "v2v dev did not print its RPC URL: {:?}",
                    node.drain_stderr()
                )
            });
            if let Some(rest) = line.trim().strip_prefix("genesis hash:") {
                node.genesis_hash = rest.trim().to_string();
            }
            if let Some(rest) = line.trim().strip_prefix("RPC:") {
                let url = rest.split_whitespace().next().expect("url");
                node.rpc_url = url.to_string();
            }
        }
        node
    }

    pub fn drain_stderr(&self) -> Vec<String> {
        self.stderr.try_iter().collect()
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
