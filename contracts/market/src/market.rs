//! The market's entry points: genesis, transactions and read-only queries.

use serde_json::{Value, json};
use v2v_abi::MarketCall;
use v2v_abi::genesis::{GenesisMarket, parse_hex_array, to_hex};

use crate::state::{
    ACCOUNT_PREFIX, Account, KEY_PREFIX, MEETING_POINT_PREFIX, OPERATOR_PREFIX, PARAMS_KEY, Params,
    key,
};
use crate::{Host, MarketError};

/// The treasury has no key: nobody can sign for it.
const NO_OWNER: [u8; 32] = [0u8; 32];

/// Writes the genesis market state.
pub fn init(host: &mut impl Host, genesis: &GenesisMarket) -> Result<(), MarketError> {
    let bad = |m: String| MarketError::InvalidGenesis(m);
    validate_client_id(&genesis.treasury).map_err(|e| bad(format!("treasury: {e}")))?;
    host.set(
        PARAMS_KEY,
        &Params {
            fee_rate: genesis.fee_rate,
            treasury: genesis.treasury.clone(),
        }
        .encode(),
    );
    put_account(
        host,
        &genesis.treasury,
        &Account {
            owner: NO_OWNER,
            balance: 0,
            escrow: 0,
        },
    );
    for op in &genesis.operators {
        let pk = parse_hex_array::<32>(op).ok_or_else(|| bad(format!("operator key {op}")))?;
        host.set(&key(OPERATOR_PREFIX, &pk), &[]);
    }
    for mp in &genesis.meeting_points {
        let k = key(MEETING_POINT_PREFIX, &mp.id.to_be_bytes());
        if host.get(&k).is_some() {
            return Err(bad(format!("meeting point {} appears twice", mp.id)));
        }
        let mut v = Vec::with_capacity(16);
        v.extend_from_slice(&mp.x.to_le_bytes());
        v.extend_from_slice(&mp.y.to_le_bytes());
        host.set(&k, &v);
    }
    for c in &genesis.clients {
        let pk = parse_hex_array::<32>(&c.public_key)
            .ok_or_else(|| bad(format!("client {} public key", c.id)))?;
        register_client(host, &c.id, pk).map_err(|e| bad(format!("client {}: {e}", c.id)))?;
        let mut acct = get_account(host, &c.id)?;
        acct.balance = c.balance;
        put_account(host, &c.id, &acct);
    }
    Ok(())
}

/// Executes one transaction's call on behalf of `host.caller()`.
pub fn execute(host: &mut impl Host, call: &MarketCall) -> Result<(), MarketError> {
    match call {
        MarketCall::Register { client_id } => {
            let signer = host.caller();
            register_client(host, client_id, signer)?;
            host.emit(&json!({
                "type": "clientRegistered",
                "clientId": client_id,
                "publicKey": to_hex(&signer),
            }));
            Ok(())
        }
        MarketCall::Deposit { amount } => {
            let (id, mut acct) = signer_account(host)?;
            if *amount == 0 {
                return Err(MarketError::ZeroAmount);
            }
            acct.balance = acct
                .balance
                .checked_add(*amount)
                .ok_or(MarketError::Overflow("deposit"))?;
            put_account(host, &id, &acct);
            host.emit(&json!({
                "type": "deposited",
                "clientId": id,
                "amount": amount.to_string(),
                "balance": acct.balance.to_string(),
            }));
            Ok(())
        }
        MarketCall::Withdraw { amount } => {
            let (id, mut acct) = signer_account(host)?;
            if *amount == 0 {
                return Err(MarketError::ZeroAmount);
            }
            if acct.balance < *amount {
                return Err(MarketError::InsufficientFunds {
                    available: acct.balance,
                    requested: *amount,
                });
            }
            acct.balance -= *amount;
            put_account(host, &id, &acct);
            host.emit(&json!({
                "type": "withdrawn",
                "clientId": id,
                "amount": amount.to_string(),
                "balance": acct.balance.to_string(),
            }));
            Ok(())
        }
    }
}

/// Answers a read-only query. `args` is a JSON object (or null).
pub fn query(host: &impl Host, method: &str, args: &Value) -> Result<Value, MarketError> {
    match method {
        "account" => {
            let id = str_arg(args, "clientId")?;
            let acct = get_account(host, id)?;
            Ok(account_json(id, &acct))
        }
        "accountByKey" => {
            let pk_hex = str_arg(args, "publicKey")?;
            let pk = parse_hex_array::<32>(pk_hex).ok_or_else(|| {
                MarketError::BadArguments("publicKey is not 32 bytes of hex".into())
            })?;
            match client_of(host, &pk)? {
                Some(id) => {
                    let acct = get_account(host, &id)?;
                    Ok(account_json(&id, &acct))
                }
                None => Ok(Value::Null),
            }
        }
        "params" => {
            let p = params(host)?;
            let treasury = get_account(host, &p.treasury)?;
            Ok(json!({
                "feeRate": p.fee_rate.to_string(),
                "treasury": p.treasury,
                "treasuryBalance": treasury.balance.to_string(),
            }))
        }
        "meetingPoints" => {
            let mut out = Vec::new();
            let mut cursor: Option<Vec<u8>> = None;
            while let Some(k) = host.next_key(MEETING_POINT_PREFIX, cursor.as_deref()) {
                let v = host
                    .get(&k)
                    .ok_or_else(|| MarketError::CorruptState("meeting point vanished".into()))?;
                let id = k
                    .get(MEETING_POINT_PREFIX.len()..)
                    .and_then(|s| <[u8; 4]>::try_from(s).ok())
                    .map(u32::from_be_bytes)
                    .ok_or_else(|| MarketError::CorruptState("meeting point key".into()))?;
                let (x, y) = decode_point(&v)?;
                out.push(json!({ "id": id, "x": x, "y": y }));
                cursor = Some(k);
            }
            Ok(Value::Array(out))
        }
        "isOperator" => {
            let pk_hex = str_arg(args, "publicKey")?;
            let pk = parse_hex_array::<32>(pk_hex).ok_or_else(|| {
                MarketError::BadArguments("publicKey is not 32 bytes of hex".into())
            })?;
            Ok(Value::Bool(host.get(&key(OPERATOR_PREFIX, &pk)).is_some()))
        }
        "version" => Ok(json!(crate::VERSION)),
        other => Err(MarketError::UnknownMethod(other.into())),
    }
}

fn account_json(id: &str, acct: &Account) -> Value {
    json!({
        "clientId": id,
        "publicKey": to_hex(&acct.owner),
        "balance": acct.balance.to_string(),
        "escrow": acct.escrow.to_string(),
    })
}

fn str_arg<'a>(args: &'a Value, name: &str) -> Result<&'a str, MarketError> {
    args.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| MarketError::BadArguments(format!("missing string argument '{name}'")))
}

fn decode_point(v: &[u8]) -> Result<(i64, i64), MarketError> {
    let bad = || MarketError::CorruptState("meeting point value".into());
    let x = v
        .get(0..8)
        .and_then(|s| <[u8; 8]>::try_from(s).ok())
        .ok_or_else(bad)?;
    let y = v
        .get(8..16)
        .and_then(|s| <[u8; 8]>::try_from(s).ok())
        .ok_or_else(bad)?;
    Ok((i64::from_le_bytes(x), i64::from_le_bytes(y)))
}

/// Client ids: 1 to 64 bytes of lowercase ASCII letters, digits, `-`, `_` and `.`.
fn validate_client_id(id: &str) -> Result<(), MarketError> {
    if id.is_empty() || id.len() > v2v_abi::call::MAX_CLIENT_ID_LEN {
        return Err(MarketError::InvalidClientId(format!(
            "'{id}' must be 1 to {} bytes",
            v2v_abi::call::MAX_CLIENT_ID_LEN
        )));
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
    {
        return Err(MarketError::InvalidClientId(format!(
            "'{id}' may only hold a-z, 0-9, '-', '_' and '.'"
        )));
    }
    Ok(())
}

fn register_client(host: &mut impl Host, id: &str, owner: [u8; 32]) -> Result<(), MarketError> {
    validate_client_id(id)?;
    if let Some(existing) = client_of(host, &owner)? {
        return Err(MarketError::AlreadyRegistered(existing));
    }
    if host.get(&key(ACCOUNT_PREFIX, id.as_bytes())).is_some() {
        return Err(MarketError::ClientIdTaken(id.into()));
    }
    put_account(
        host,
        id,
        &Account {
            owner,
            balance: 0,
            escrow: 0,
        },
    );
    host.set(&key(KEY_PREFIX, &owner), id.as_bytes());
    Ok(())
}

fn params(host: &impl Host) -> Result<Params, MarketError> {
    let raw = host
        .get(PARAMS_KEY)
        .ok_or_else(|| MarketError::CorruptState("parameters missing".into()))?;
    Params::decode(&raw)
}

fn client_of(host: &impl Host, pk: &[u8; 32]) -> Result<Option<String>, MarketError> {
    match host.get(&key(KEY_PREFIX, pk)) {
        None => Ok(None),
        Some(raw) => String::from_utf8(raw)
            .map(Some)
            .map_err(|_| MarketError::CorruptState("client id not UTF-8".into())),
    }
}

fn get_account(host: &impl Host, id: &str) -> Result<Account, MarketError> {
    let raw = host
        .get(&key(ACCOUNT_PREFIX, id.as_bytes()))
        .ok_or_else(|| MarketError::UnknownClient(id.into()))?;
    Account::decode(&raw)
}

fn put_account(host: &mut impl Host, id: &str, acct: &Account) {
    host.set(&key(ACCOUNT_PREFIX, id.as_bytes()), &acct.encode());
}

fn signer_account(host: &impl Host) -> Result<(String, Account), MarketError> {
    let id = client_of(host, &host.caller())?.ok_or(MarketError::NotRegistered)?;
    let acct = get_account(host, &id)?;
    Ok((id, acct))
}

/// Decodes an entry input (`method`, `args`) and executes it: the Wasm `v2v_call` body,
/// shared with native callers so both builds run the same bytes through the same path.
pub fn execute_raw(host: &mut impl Host, input: &[u8]) -> Result<Vec<u8>, MarketError> {
    let (method, args) = v2v_abi::host::decode_entry_input(input)
        .map_err(|e| MarketError::BadArguments(e.to_string()))?;
    let call = MarketCall::decode(&method, args).map_err(|e| match e {
        v2v_abi::call::CallDecodeError::UnknownMethod(m) => MarketError::UnknownMethod(m),
        v2v_abi::call::CallDecodeError::Args(e) => MarketError::BadArguments(e.to_string()),
    })?;
    execute(host, &call).map(|()| Vec::new())
}

/// Decodes a query input (`method`, JSON `args`) and answers it with JSON bytes.
pub fn query_raw(host: &impl Host, input: &[u8]) -> Result<Vec<u8>, MarketError> {
    let (method, args) = v2v_abi::host::decode_entry_input(input)
        .map_err(|e| MarketError::BadArguments(e.to_string()))?;
    let args: Value = if args.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(args).map_err(|e| MarketError::BadArguments(e.to_string()))?
    };
    let out = query(host, &method, &args)?;
    Ok(out.to_string().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryHost;
    use v2v_abi::genesis::{GenesisClient, GenesisMeetingPoint};

    fn genesis() -> GenesisMarket {
        GenesisMarket {
            fee_rate: 2,
            treasury: "treasury".into(),
            operators: vec![to_hex(&[9u8; 32])],
            meeting_points: vec![
                GenesisMeetingPoint { id: 2, x: -5, y: 7 },
                GenesisMeetingPoint { id: 1, x: 0, y: 0 },
            ],
            clients: vec![GenesisClient {
                id: "alice".into(),
                public_key: to_hex(&[1u8; 32]),
                balance: 1_000,
            }],
        }
    }

    #[test]
    fn register_deposit_withdraw() {
        let mut h = MemoryHost::default();
        init(&mut h, &genesis()).unwrap();
        h.caller = [2u8; 32];
        let reg = MarketCall::Register {
            client_id: "bob".into(),
        };
        execute(&mut h, &reg).unwrap();
        assert_eq!(
            execute(&mut h, &reg),
            Err(MarketError::AlreadyRegistered("bob".into()))
        );
        execute(&mut h, &MarketCall::Deposit { amount: 500 }).unwrap();
        assert_eq!(
            execute(&mut h, &MarketCall::Withdraw { amount: 501 }),
            Err(MarketError::InsufficientFunds {
                available: 500,
                requested: 501
            })
        );
        execute(&mut h, &MarketCall::Withdraw { amount: 200 }).unwrap();
        let acct = query(&h, "account", &json!({"clientId": "bob"})).unwrap();
        assert_eq!(acct["balance"], "300");
        assert_eq!(h.events.len(), 3);

        h.caller = [3u8; 32];
        assert_eq!(
            execute(
                &mut h,
                &MarketCall::Register {
                    client_id: "alice".into()
                }
            ),
            Err(MarketError::ClientIdTaken("alice".into()))
        );
        assert_eq!(
            execute(&mut h, &MarketCall::Deposit { amount: 1 }),
            Err(MarketError::NotRegistered)
        );
        assert!(matches!(
            execute(
                &mut h,
                &MarketCall::Register {
                    client_id: "Bad Id".into()
                }
            ),
            Err(MarketError::InvalidClientId(_))
        ));
    }

    #[test]
    fn deposit_overflow_is_an_error() {
        let mut h = MemoryHost::default();
        init(&mut h, &genesis()).unwrap();
        h.caller = [1u8; 32];
        assert_eq!(
            execute(&mut h, &MarketCall::Deposit { amount: u64::MAX }),
            Err(MarketError::Overflow("deposit"))
        );
    }

    #[test]
    fn queries() {
        let mut h = MemoryHost::default();
        init(&mut h, &genesis()).unwrap();
        let mps = query(&h, "meetingPoints", &Value::Null).unwrap();
        assert_eq!(mps, json!([{"id":1,"x":0,"y":0},{"id":2,"x":-5,"y":7}]));
        let p = query(&h, "params", &Value::Null).unwrap();
        assert_eq!(p["feeRate"], "2");
        let a = query(
            &h,
            "accountByKey",
            &json!({"publicKey": to_hex(&[1u8; 32])}),
        )
        .unwrap();
        assert_eq!(a["clientId"], "alice");
        assert_eq!(a["balance"], "1000");
        assert_eq!(
            query(&h, "isOperator", &json!({"publicKey": to_hex(&[9u8; 32])})).unwrap(),
            json!(true)
        );
        assert!(matches!(
            query(&h, "account", &json!({"clientId": "zed"})),
            Err(MarketError::UnknownClient(_))
        ));
        assert!(matches!(
            query(&h, "nope", &Value::Null),
            Err(MarketError::UnknownMethod(_))
        ));
    }
}
