//! The committed contract Wasm must be exactly what the contract's source builds to.

use std::process::Command;

#[test]
fn committed_contract_matches_a_fresh_build() {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("wasm32-unknown-unknown"))
        .unwrap_or(false);
    if !installed {
        eprintln!("skipped: the wasm32-unknown-unknown target is not installed");
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/build-contract.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg("--check")
        .output()
        .expect("run scripts/build-contract.sh");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
