//! One-shot commands: keys and chain specs.

use crate::support::run;

#[test]
fn key_generate_and_inspect() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.json");
    let p = path.to_str().unwrap();
    let (ok, out, err) = run(&["key", "generate", "--out", p]);
    assert!(ok, "{err}");
    let pk = out
        .lines()
        .next()
        .unwrap()
        .trim_start_matches("public key: ")
        .to_string();
    let (ok, out, _) = run(&["key", "inspect", p]);
    assert!(ok);
    assert_eq!(out.trim(), pk);
    let (ok, _, err) = run(&["key", "generate", "--out", p]);
    assert!(!ok && err.contains("refusing to overwrite"), "{err}");
    let (ok, _, err) = run(&["key", "inspect", "/nonexistent/key.json"]);
    assert!(!ok && err.contains("error:"), "{err}");
}

#[test]
fn chain_spec_build_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("local.json");
    let keys = dir.path().join("keys");
    let (ok, out, err) = run(&[
        "chain-spec",
        "build",
        "--preset",
        "local",
        "--validators",
        "4",
        "--engine",
        "sbft",
        "--keys-dir",
        keys.to_str().unwrap(),
        "--out",
        spec.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let built_hash = out
        .lines()
        .find_map(|l| l.strip_prefix("genesis hash:"))
        .unwrap()
        .trim()
        .to_string();
    for i in 0..4 {
        assert!(keys.join(format!("validator-{i}.json")).exists());
    }
    let (ok, out, err) = run(&["chain-spec", "verify", spec.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains(&built_hash), "{out}");
    assert!(out.contains("sbft"));

    // A tampered spec is refused with a reason.
    let text = std::fs::read_to_string(&spec).unwrap();
    let tampered = text.replacen("\"feeRate\": \"10\"", "\"feeRate\": \"11\"", 1);
    assert_ne!(text, tampered);
    std::fs::write(&spec, &tampered).unwrap();
    let (ok, out2, _) = run(&["chain-spec", "verify", spec.to_str().unwrap()]);
    assert!(ok);
    assert!(
        !out2.contains(&built_hash),
        "a different genesis must give a different hash"
    );
    let broken = text.replacen("\"codeHash\": \"0x", "\"codeHash\": \"0x00", 1);
    std::fs::write(&spec, broken).unwrap();
    let (ok, _, err) = run(&["chain-spec", "verify", spec.to_str().unwrap()]);
    assert!(!ok && err.contains("codeHash"), "{err}");

    // The dev preset is the same chain every time.
    let dev1 = dir.path().join("dev1.json");
    let dev2 = dir.path().join("dev2.json");
    let (ok, o1, _) = run(&[
        "chain-spec",
        "build",
        "--preset",
        "dev",
        "--out",
        dev1.to_str().unwrap(),
    ]);
    assert!(ok);
    let (ok, o2, _) = run(&[
        "chain-spec",
        "build",
        "--preset",
        "dev",
        "--out",
        dev2.to_str().unwrap(),
    ]);
    assert!(ok);
    assert_eq!(o1.lines().last(), o2.lines().last());
}
