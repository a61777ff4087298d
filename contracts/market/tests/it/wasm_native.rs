//! The committed Wasm contract (`v2v_chain_spec::MARKET_WASM`, run by `v2v_runtime`) and the
//! native build give the same result, the same events and the same storage (hence the same
//! state root) for the same random transaction sequences, and answer queries alike.

use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{Value, json};
use v2v_abi::MarketCall;
use v2v_abi::genesis::GenesisMarket;
use v2v_abi::host::encode_entry_input;
use v2v_runtime::{CallContext, Contract, ContractStorage, Entry, Limits, Runtime};

use crate::props::{
    Native, Participants, Scenario, client_key, config, genesis, resolve, scenario,
};
use crate::reference::Reference;

struct Wasm {
    runtime: Runtime,
    contract: Arc<Contract>,
    storage: ContractStorage,
}

impl Wasm {
    /// Runs genesis; returns the contract and the events `v2v_init` emitted.
    fn new(g: &GenesisMarket) -> Result<(Self, Vec<Value>), String> {
        let runtime = Runtime::new(Limits::default()).map_err(|e| e.to_string())?;
        let contract = runtime
            .load(v2v_chain_spec::MARKET_WASM)
            .map_err(|e| format!("the committed Wasm does not load: {e}"))?;
        let mut w = Wasm {
            runtime,
            contract,
            storage: ContractStorage::new(),
        };
        let input = serde_json::to_vec(g).map_err(|e| e.to_string())?;
        let (_, events) = w
            .run(Entry::Init, [0; 32], 0, input)
            .map_err(|e| format!("Wasm init failed: {e}"))?;
        Ok((w, events))
    }

    /// Runs an entry point; applies the writes on success. Returns the output and the events.
    fn run(
        &mut self,
        entry: Entry,
        caller: [u8; 32],
        height: u64,
        input: Vec<u8>,
    ) -> Result<(Vec<u8>, Vec<Value>), String> {
        let ctx = CallContext {
            caller,
            height,
            timestamp: 1_700_000_000_000 + height * 1000,
        };
        let storage = std::mem::take(&mut self.storage);
        let (storage, outcome) = self.runtime.run(&self.contract, storage, ctx, entry, input);
        self.storage = storage;
        let out = outcome.result.map_err(|e| e.to_string())?;
        for (k, v) in outcome.writes {
            match v {
                Some(v) => self.storage.insert(k, v),
                None => self.storage.remove(&k),
            };
        }
        let events = outcome
            .events
            .iter()
            .map(|e| serde_json::from_str(e).map_err(|err| format!("event {e} is not JSON: {err}")))
            .collect::<Result<Vec<Value>, String>>()?;
        Ok((out, events))
    }

    fn query(&mut self, method: &str, args: &Value) -> Result<Value, String> {
        let args = serde_json::to_vec(args).map_err(|e| e.to_string())?;
        let (out, _) = self.run(Entry::Query, [0; 32], 0, encode_entry_input(method, &args))?;
        serde_json::from_slice(&out).map_err(|e| format!("query output is not JSON: {e}"))
    }
}

/// Describes the first difference between two storage maps.
fn storage_diff(native: &BTreeMap<Vec<u8>, Vec<u8>>, wasm: &ContractStorage) -> Option<String> {
    let show = |k: &[u8]| String::from_utf8_lossy(k).into_owned();
    for (k, v) in native {
        match wasm.get(k) {
            None => return Some(format!("key {:?} only in native storage", show(k))),
            Some(w) if w != v.as_slice() => {
                return Some(format!(
                    "key {:?}: native {:?}, wasm {:?}",
                    show(k),
                    String::from_utf8_lossy(v),
                    String::from_utf8_lossy(w)
                ));
            }
            Some(_) => {}
        }
    }
    wasm.keys()
        .find(|k| !native.contains_key(*k))
        .map(|k| format!("key {:?} only in Wasm storage", show(k)))
}

fn compare_queries(what: &str, native: &Native, wasm: &mut Wasm) -> Result<(), TestCaseError> {
    let queries = [
        ("supply", json!({})),
        ("params", json!({})),
        ("meetingPoints", json!({})),
        ("orders", json!({"limit": 1000})),
        ("trades", json!({"limit": 1000})),
        ("account", json!({"clientId": "c00"})),
        ("vehicle", json!({"clientId": "c01"})),
        ("account", json!({"clientId": "treasury"})),
    ];
    for (method, args) in queries {
        let n = native.query(method, args.clone());
        let w = wasm.query(method, &args);
        prop_assert_eq!(
            &n,
            &w,
            "{}: query {} {} differs (left native, right Wasm)",
            what,
            method,
            args
        );
    }
    Ok(())
}

fn run_both(s: &Scenario) -> Result<(), TestCaseError> {
    let g = genesis(s);
    let mut native = Native::new(&g);
    let (mut wasm, init_events) = Wasm::new(&g).map_err(TestCaseError::fail)?;
    prop_assert_eq!(
        &native.host.events,
        &init_events,
        "genesis events differ (left native, right Wasm)"
    );
    prop_assert!(
        storage_diff(&native.host.storage, &wasm.storage).is_none(),
        "genesis storage differs: {:?}",
        storage_diff(&native.host.storage, &wasm.storage)
    );
    // The reference only picks meaningful ids and amounts here.
    let mut reference = Reference::new(&g).map_err(TestCaseError::fail)?;
    let mut participants = Participants::from_genesis(&g);
    let links = s
        .clients
        .iter()
        .enumerate()
        .filter_map(|(i, (_, v))| v.as_ref().map(|v| (client_key(i), v.call(i))));
    let links: Vec<([u8; 32], MarketCall)> = links.collect();
    let mut step = 0usize;
    let mut ops = s.ops.iter();
    loop {
        let (signer, call) = if step < links.len() {
            links[step].clone()
        } else {
            match ops.next() {
                Some(op) => resolve(op, &reference, &participants, step),
                None => break,
            }
        };
        let height = 1 + step as u64 / 4;
        let what = format!(
            "call #{step} {}",
            serde_json::to_string(&call).unwrap_or_default()
        );
        let input = encode_entry_input(call.method(), &call.encode_args());
        let n = native.exec_raw(signer, height, &input);
        let w = wasm
            .run(Entry::Call, signer, height, input)
            .map(|(_, events)| events);
        prop_assert_eq!(
            &n,
            &w,
            "{}: result or events differ (left native, right Wasm)",
            &what
        );
        if n.is_ok() {
            participants.note(signer, &call);
        }
        let _ = reference.apply(signer, height, &call);
        if let Some(d) = storage_diff(&native.host.storage, &wasm.storage) {
            return Err(TestCaseError::fail(format!("{what}: storage differs: {d}")));
        }
        if step % 50 == 49 {
            compare_queries(&what, &native, &mut wasm)?;
        }
        step += 1;
    }
    compare_queries("at the end", &native, &mut wasm)
}

#[test]
fn committed_wasm_declares_the_source_version() {
    let runtime = Runtime::new(Limits::default()).unwrap();
    let contract = runtime.load(v2v_chain_spec::MARKET_WASM).unwrap();
    assert_eq!(contract.version(), v2v_market::VERSION);
}

proptest! {
    #![proptest_config(config(8))]

    #[test]
    fn wasm_and_native_agree(s in scenario(8..30, 5..30, 150..250)) {
        run_both(&s)?;
    }
}
