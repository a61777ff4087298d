//! `docs/openrpc.json` against the server itself (the module `start` serves, no network): the
//! same method names, and for every method the documented parameters, by name, in order, and
//! no more.
//!
//! The parameters are probed through the server's own parameter parsing: a "poison" value (an
//! array nested deeper than serde_json's recursion limit) fails to parse as any type, even as
//! `serde_json::Value`, and an object key that is not a parameter is skipped without being
//! parsed. So, for the documented parameter `name` at position `i`:
//! - by position (valid values before it, the poison at `i`) the server must fail to parse;
//! - by name (`{ name: poison }`) it must fail with the same message, which names the type it
//!   expected: the server has a parameter called `name` (or its snake_case form) of the type
//!   it reads at position `i`;
//! - with the poison after the last documented parameter it must not fail to parse: it has no
//!   more parameters.
//!
//! Not detected: two parameters of the same JSON type swapped. The unsubscribe methods are
//! jsonrpsee's own (one positional subscription id) and only checked for their entry.

mod common;

use std::collections::BTreeSet;

use jsonrpsee::RpcModule;
use serde_json::{Value, json};
use v2v_rpc::{OPENRPC_JSON, RpcConfig, module};

use common::TestBackend;

const POISON_DEPTH: usize = 200;

fn poison() -> String {
    "[".repeat(POISON_DEPTH) + &"]".repeat(POISON_DEPTH)
}

fn document() -> Value {
    serde_json::from_str(OPENRPC_JSON).expect("docs/openrpc.json is JSON")
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => {
            let name = r
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("{r}: refs point into components.schemas"));
            &doc["components"]["schemas"][name]
        }
        None => schema,
    }
}

/// A value the schema accepts: its first example, or the simplest value of its type.
fn example(doc: &Value, schema: &Value) -> Value {
    let s = resolve(doc, schema);
    if let Some(e) = s["examples"].get(0) {
        return e.clone();
    }
    match s["type"].as_str() {
        Some("integer" | "number") => json!(0),
        Some("string") => json!("x"),
        Some("boolean") => json!(false),
        Some("array") => json!([]),
        Some("object") => json!({}),
        _ => Value::Null,
    }
}

/// Every `$ref` in the document names a schema of `components.schemas`.
fn check_refs(doc: &Value, v: &Value) {
    match v {
        Value::Object(o) => {
            if let Some(r) = o.get("$ref") {
                let r = r.as_str().expect("$ref is a string");
                assert!(
                    resolve(doc, v).is_object(),
                    "{r} does not resolve in components.schemas"
                );
            }
            o.values().for_each(|x| check_refs(doc, x));
        }
        Value::Array(a) => a.iter().for_each(|x| check_refs(doc, x)),
        _ => {}
    }
}

async fn call(m: &RpcModule<()>, method: &str, params: &str) -> Value {
    let req = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{method}","params":{params}}}"#);
    let (resp, _notifications) = m
        .raw_json_request(&req, 16)
        .await
        .unwrap_or_else(|e| panic!("{method}: {e}"));
    serde_json::from_str(resp.get()).expect("a JSON response")
}

/// The parse failure of a response, without its position: jsonrpsee's "Invalid params" error
/// (-32602 with the serde message as data). The server's own -32602 errors carry no data.
fn parse_failure(resp: &Value) -> Option<String> {
    let e = &resp["error"];
    if e["code"] != -32602 {
        return None;
    }
    let data = e["data"].as_str()?;
    Some(match data.find(" at line ") {
        Some(i) => data[..i].to_string(),
        None => data.to_string(),
    })
}

fn positional(values: &[Value], then: &str) -> String {
    let mut items: Vec<String> = values.iter().map(Value::to_string).collect();
    items.push(then.to_string());
    format!("[{}]", items.join(","))
}

fn normalized(name: &str) -> String {
    name.replace('_', "").to_lowercase()
}

#[test]
fn the_document_is_openrpc_with_this_version_and_resolvable_refs() {
    let doc = document();
    assert_eq!(doc["openrpc"], "1.2.6");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(doc["info"]["title"].is_string());
    assert!(doc["components"]["schemas"].is_object());
    for name in [
        "Header",
        "Block",
        "Receipt",
        "TxStatus",
        "TradeEvent",
        "ContractInfo",
    ] {
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "schema {name}"
        );
    }
    check_refs(&doc, &doc);
    for m in doc["methods"].as_array().expect("methods") {
        let name = m["name"].as_str().expect("a method name");
        assert!(m["summary"].is_string(), "{name}: summary");
        assert!(m["result"]["name"].is_string(), "{name}: result name");
        assert!(m["result"]["schema"].is_object(), "{name}: result schema");
        for p in m["params"].as_array().expect("params") {
            assert!(p["name"].is_string(), "{name}: param name");
            assert!(p["required"].is_boolean(), "{name}: param required");
            assert!(p["schema"].is_object(), "{name}: param schema");
        }
    }
}

#[tokio::test]
async fn the_document_lists_every_method_served_and_nothing_else() {
    let doc = document();
    let m = module(TestBackend::new(8), &RpcConfig::local(0)).expect("module");
    let served: BTreeSet<&str> = m.method_names().collect();
    let methods = doc["methods"].as_array().expect("methods");
    let documented: BTreeSet<&str> = methods
        .iter()
        .map(|m| m["name"].as_str().expect("a method name"))
        .collect();
    assert_eq!(documented.len(), methods.len(), "a method documented twice");
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let not_served: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty() && not_served.is_empty(),
        "served but not in docs/openrpc.json: {undocumented:?}; documented but not served: {not_served:?}"
    );

    // rpc_methods lists the same names, rpc_discover serves the document.
    let listed = call(&m, "rpc_methods", "[]").await;
    let listed: BTreeSet<&str> = listed["result"]["methods"]
        .as_array()
        .expect("rpc_methods")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(listed, served);
    assert_eq!(call(&m, "rpc_discover", "[]").await["result"], doc);

    // Subscriptions name their notification and an unsubscribe method that points back.
    for s in methods.iter().filter(|m| m["x-unsubscribe"].is_string()) {
        let name = s["name"].as_str().unwrap_or_default();
        let unsub = s["x-unsubscribe"].as_str().unwrap_or_default();
        assert!(served.contains(unsub), "{name}: {unsub} is not served");
        assert!(s["x-notification"]["name"].is_string(), "{name}");
        let entry = methods.iter().find(|m| m["name"] == unsub);
        assert_eq!(
            entry.map(|e| &e["x-unsubscribe-of"]),
            Some(&json!(name)),
            "{unsub}"
        );
    }
}

#[tokio::test]
async fn the_documented_parameters_are_the_servers() {
    let doc = document();
    let m = module(TestBackend::new(8), &RpcConfig::local(0)).expect("module");
    let poison = poison();
    for method in doc["methods"].as_array().expect("methods") {
        let name = method["name"].as_str().expect("a method name");
        let params = method["params"].as_array().expect("params");
        if method["x-unsubscribe-of"].is_string() {
            let names: Vec<_> = params.iter().map(|p| &p["name"]).collect();
            assert_eq!(names, [&json!("subscription")], "{name}");
            continue;
        }
        let names: Vec<&str> = params
            .iter()
            .map(|p| p["name"].as_str().expect("a param name"))
            .collect();
        let values: Vec<Value> = params
            .iter()
            .map(|p| match p["required"].as_bool() {
                Some(true) => example(&doc, &p["schema"]),
                _ => Value::Null,
            })
            .collect();

        for (i, pname) in names.iter().enumerate() {
            let by_position = parse_failure(
                &call(&m, name, &positional(&values[..i], &poison)).await,
            )
            .unwrap_or_else(|| {
                panic!(
                    "{name}: the server reads no parameter at position {i} (documented: {pname})"
                )
            });
            let by_name =
                parse_failure(&call(&m, name, &format!(r#"{{"{pname}":{poison}}}"#)).await);
            assert_eq!(
                by_name.as_deref(),
                Some(by_position.as_str()),
                "{name}: the server's parameter at position {i} is not `{pname}` (by name: {by_name:?}, by position: {by_position})"
            );
        }
        let extra = call(&m, name, &positional(&values, &poison)).await;
        assert_eq!(
            parse_failure(&extra),
            None,
            "{name}: given the documented {names:?} (values {values:?}) and one more, the server \
             fails to parse: it has an undocumented parameter, or refuses a documented value"
        );

        // The first required parameter is the first one the server misses.
        let missing = parse_failure(&call(&m, name, "{}").await);
        let first_required = params.iter().find(|p| p["required"] == true);
        match (first_required, missing) {
            (None, None) => {}
            (Some(p), Some(msg)) => {
                let pname = p["name"].as_str().unwrap_or_default();
                let field = msg
                    .strip_prefix("missing field `")
                    .and_then(|r| r.strip_suffix('`'))
                    .unwrap_or_else(|| panic!("{name}: {msg}"));
                assert_eq!(normalized(field), normalized(pname), "{name}");
            }
            (p, msg) => panic!("{name}: documented first required {p:?}, the server: {msg:?}"),
        }
    }
}

#[tokio::test]
async fn subscriptions_notify_under_their_documented_names() {
    let doc = document();
    let backend = TestBackend::new(8);
    let m = module(backend.clone(), &RpcConfig::local(0)).expect("module");
    for s in doc["methods"]
        .as_array()
        .expect("methods")
        .iter()
        .filter(|m| m["x-notification"].is_object())
    {
        let name = s["name"].as_str().expect("a method name");
        let params: Vec<Value> = s["params"]
            .as_array()
            .expect("params")
            .iter()
            .map(|p| match p["required"].as_bool() {
                Some(true) => example(&doc, &p["schema"]),
                _ => Value::Null,
            })
            .collect();
        let req = json!({ "jsonrpc": "2.0", "id": 1, "method": name, "params": params });
        let (resp, mut notifications) = m
            .raw_json_request(&req.to_string(), 16)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let resp: Value = serde_json::from_str(resp.get()).expect("a JSON response");
        assert!(
            resp["result"].is_number() || resp["result"].is_string(),
            "{name}: {resp}"
        );
        // Something to report: a finalized block with a trade (the test backend refuses
        // every submitted transaction, which is reported too).
        backend.finalize_trade_block(0);
        let first = tokio::time::timeout(std::time::Duration::from_secs(5), notifications.recv())
            .await
            .unwrap_or_else(|_| panic!("{name}: no notification within 5 s"))
            .unwrap_or_else(|| panic!("{name}: closed without a notification"));
        let first: Value = serde_json::from_str(first.get()).expect("a JSON notification");
        assert_eq!(
            first["method"], s["x-notification"]["name"],
            "{name}: {first}"
        );
    }
}
