//! `v2v wallet`: builds, signs and submits market transactions, then watches them to finality
//! (`author_submitAndWatchTransaction`); reads
//! accounts, vehicles, orders, trades and the market over JSON-RPC.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};
use v2v_abi::MarketCall;
use v2v_crypto::{KeyFile, Keypair};
use v2v_primitives::{Hash, UnsignedTransaction};
use v2v_rpc_client::{
    AuthorApiClient, Finalized, HttpClient, MarketApiClient, StateApiClient, SystemApiClient,
    TxStatus, WsClient, submit_and_watch_with,
};

use crate::amount::{format_credits, parse_credits};

#[derive(Debug, Args)]
pub struct RpcTarget {
    /// The node's JSON-RPC URL.
    #[arg(long, default_value = "http://127.0.0.1:9944", global = true)]
    pub rpc: String,
}

impl RpcTarget {
    pub fn client(&self) -> anyhow::Result<HttpClient> {
        Ok(v2v_rpc_client::connect_http(&self.rpc)?)
    }

    /// A WebSocket client to the same port (subscriptions): `http://` becomes `ws://`.
    pub async fn ws_client(&self) -> anyhow::Result<WsClient> {
        Ok(v2v_rpc_client::connect_ws(&self.rpc).await?)
    }
}

/// How a signed command submits its transaction (shared by `wallet` and `operator`).
#[derive(Debug, Args)]
pub struct SubmitOptions {
    /// Padding bytes added to the transaction's memo (payload-size experiments).
    #[arg(long, default_value_t = 0, global = true)]
    pub memo_bytes: usize,
    /// Return after submission instead of waiting for finality.
    #[arg(long, global = true)]
    pub no_wait: bool,
    /// Print the signed transaction (hex, with the account's next nonce) instead of
    /// submitting it: for `author_submitTransaction` elsewhere, or offline review.
    #[arg(long, global = true)]
    pub sign_only: bool,
    /// How long to wait for finality, in seconds.
    #[arg(long, default_value_t = 60, global = true, value_name = "SECONDS")]
    pub wait_timeout: u64,
}

#[derive(Debug, Args)]
pub struct WalletArgs {
    #[command(flatten)]
    target: RpcTarget,
    /// The account's key file.
    #[arg(long, global = true)]
    key: Option<PathBuf>,
    #[command(flatten)]
    submit: SubmitOptions,
    #[command(subcommand)]
    command: WalletCommand,
}

/// Buy or sell, on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SideArg {
    Buy,
    Sell,
}

impl SideArg {
    fn as_str(self) -> &'static str {
        match self {
            SideArg::Buy => "buy",
            SideArg::Sell => "sell",
        }
    }
}

#[derive(Debug, Subcommand)]
enum WalletCommand {
    /// Register this key as client CLIENT_ID.
    Register { client_id: String },
    /// Deposit AMOUNT credits (up to 6 decimals).
    Deposit { amount: String },
    /// Withdraw AMOUNT credits from the available balance.
    Withdraw { amount: String },
    /// Show an account: CLIENT_ID, or this key's own.
    Account { client_id: Option<String> },
    /// Show this key's next nonce.
    Nonce,
    /// Link (or replace) this client's vehicle. Energy in Wh, positions in metres, prices in
    /// µcr per Wh (integers).
    LinkVehicle {
        /// The vehicle's id (free text, at most 256 bytes).
        #[arg(long)]
        vehicle_id: String,
        /// Battery capacity, Wh.
        #[arg(long)]
        capacity_wh: u64,
        /// Current charge, Wh (at most the capacity).
        #[arg(long)]
        charge_wh: u64,
        /// Position east, metres.
        #[arg(long, allow_negative_numbers = true)]
        x: i64,
        /// Position north, metres.
        #[arg(long, allow_negative_numbers = true)]
        y: i64,
        /// Consumption, Wh per km driven (at least 1).
        #[arg(long)]
        efficiency_wh_per_km: u32,
        /// What the energy now in the battery cost, µcr per Wh (prices this vehicle's travel
        /// to a meeting point).
        #[arg(long)]
        energy_price: u64,
    },
    /// Report this vehicle's charge, position and energy price; omitted values keep the
    /// vehicle's current ones.
    Telemetry {
        /// Current charge, Wh.
        #[arg(long)]
        charge_wh: Option<u64>,
        /// Position east, metres.
        #[arg(long, allow_negative_numbers = true)]
        x: Option<i64>,
        /// Position north, metres.
        #[arg(long, allow_negative_numbers = true)]
        y: Option<i64>,
        /// What the energy in the battery cost, µcr per Wh.
        #[arg(long)]
        energy_price: Option<u64>,
    },
    /// Show a vehicle: CLIENT_ID's, or this key's own.
    Vehicle { client_id: Option<String> },
    /// Place a buy order for AMOUNT_WH Wh (then matched against the resting sell orders).
    Buy {
        /// Energy to buy, Wh (at most the battery's free capacity).
        amount_wh: u64,
        /// Most you will pay per Wh all in (energy, your travel and the fee), µcr per Wh
        /// (an integer; 1 credit = 1 000 000 µcr). Default: no limit.
        #[arg(long, value_name = "UCR_PER_WH")]
        max_unit_cost: Option<u64>,
    },
    /// Place a sell order for AMOUNT_WH Wh (then matched against the resting buy orders).
    Sell {
        /// Energy to sell, Wh (at most the battery's charge).
        amount_wh: u64,
        /// Asking price, µcr per Wh (an integer; 1 credit = 1 000 000 µcr).
        #[arg(long, visible_alias = "price", value_name = "UCR_PER_WH")]
        price_ucr_per_wh: u64,
    },
    /// Cancel one of this client's resting orders.
    Cancel { order_id: u64 },
    /// List this client's resting orders (or everyone's, with --all).
    Orders {
        /// Every client's orders, not only this key's.
        #[arg(long)]
        all: bool,
        /// Only buy or only sell orders.
        #[arg(long, value_enum)]
        side: Option<SideArg>,
    },
    /// Show the market: parameters, meeting points and the order book.
    Market,
    /// List this client's trades (as consumer or provider), or everyone's with --all.
    Trades {
        /// Every trade, not only this key's.
        #[arg(long)]
        all: bool,
    },
    /// Show one trade in full.
    Trade { trade_id: u64 },
    /// As the consumer, confirm that the energy was delivered: the trade settles.
    Confirm { trade_id: u64 },
    /// As the consumer, dispute a trade; an operator resolves it.
    Dispute { trade_id: u64, reason: String },
}

pub fn load_key(path: &Option<PathBuf>) -> anyhow::Result<Keypair> {
    let path = path.as_ref().context("this command needs --key FILE")?;
    KeyFile::read(path).with_context(|| format!("reading key {}", path.display()))
}

pub async fn run(args: WalletArgs) -> anyhow::Result<()> {
    let client = args.target.client()?;
    let call = match &args.command {
        WalletCommand::Register { client_id } => MarketCall::Register {
            client_id: client_id.clone(),
        },
        WalletCommand::Deposit { amount } => MarketCall::Deposit {
            amount: parse_credits(amount)?,
        },
        WalletCommand::Withdraw { amount } => MarketCall::Withdraw {
            amount: parse_credits(amount)?,
        },
        WalletCommand::Account { client_id } => {
            let account = match client_id {
                Some(id) => client.get_account(id.clone()).await?,
                None => own_account(&client, &load_key(&args.key)?).await?,
            };
            print_account(&account);
            return Ok(());
        }
        WalletCommand::Nonce => {
            let key = load_key(&args.key)?;
            println!("{}", client.next_nonce(key.public().to_hex()).await?);
            return Ok(());
        }
        WalletCommand::LinkVehicle {
            vehicle_id,
            capacity_wh,
            charge_wh,
            x,
            y,
            efficiency_wh_per_km,
            energy_price,
        } => MarketCall::LinkVehicle {
            vehicle_id: vehicle_id.clone(),
            capacity_wh: *capacity_wh,
            charge_wh: *charge_wh,
            x: *x,
            y: *y,
            efficiency_wh_per_km: *efficiency_wh_per_km,
            energy_price: *energy_price,
        },
        WalletCommand::Telemetry {
            charge_wh,
            x,
            y,
            energy_price,
        } => {
            let (charge_wh, x, y, energy_price) = match (charge_wh, x, y, energy_price) {
                (Some(c), Some(x), Some(y), Some(p)) => (*c, *x, *y, *p),
                _ => {
                    // Fill the omitted values from the vehicle as the chain has it.
                    let key = load_key(&args.key)?;
                    let id = own_client_id(&client, &key).await?;
                    let v = client
                        .get_vehicle(id.clone())
                        .await
                        .with_context(|| format!("reading {id}'s vehicle"))?;
                    let cur = |k: &str| {
                        num_u64(&v[k]).with_context(|| format!("the vehicle's {k} is missing: {v}"))
                    };
                    let cur_i = |k: &str| {
                        num_i64(&v[k]).with_context(|| format!("the vehicle's {k} is missing: {v}"))
                    };
                    (
                        charge_wh.map_or_else(|| cur("chargeWh"), Ok)?,
                        x.map_or_else(|| cur_i("x"), Ok)?,
                        y.map_or_else(|| cur_i("y"), Ok)?,
                        energy_price.map_or_else(|| cur("energyPrice"), Ok)?,
                    )
                }
            };
            MarketCall::Telemetry {
                charge_wh,
                x,
                y,
                energy_price,
            }
        }
        WalletCommand::Vehicle { client_id } => {
            let id = match client_id {
                Some(id) => id.clone(),
                None => own_client_id(&client, &load_key(&args.key)?).await?,
            };
            print_vehicle(&client.get_vehicle(id).await?);
            return Ok(());
        }
        WalletCommand::Buy {
            amount_wh,
            max_unit_cost,
        } => MarketCall::Buy {
            amount_wh: *amount_wh,
            max_unit_cost: *max_unit_cost,
        },
        WalletCommand::Sell {
            amount_wh,
            price_ucr_per_wh,
        } => MarketCall::Sell {
            amount_wh: *amount_wh,
            price: *price_ucr_per_wh,
        },
        WalletCommand::Cancel { order_id } => MarketCall::Cancel {
            order_id: *order_id,
        },
        WalletCommand::Orders { all, side } => {
            let mut filter = json!({});
            if !all {
                let id = own_client_id(&client, &load_key(&args.key)?).await?;
                filter["owner"] = json!(id);
            }
            if let Some(s) = side {
                filter["side"] = json!(s.as_str());
            }
            let orders = fetch_all(&client, List::Orders, filter).await?;
            if orders.is_empty() {
                println!("no resting orders");
            } else {
                print_orders(&orders);
            }
            return Ok(());
        }
        WalletCommand::Market => {
            print_market(&client).await?;
            return Ok(());
        }
        WalletCommand::Trades { all } => {
            let (filter, me) = if *all {
                (json!({}), None)
            } else {
                let id = own_client_id(&client, &load_key(&args.key)?).await?;
                (json!({ "owner": id }), Some(id))
            };
            let trades = fetch_all(&client, List::Trades, filter).await?;
            if trades.is_empty() {
                println!("no trades");
            } else {
                print_trades(&trades, me.as_deref());
            }
            return Ok(());
        }
        WalletCommand::Trade { trade_id } => {
            let t = client.get_trade(*trade_id).await?;
            println!("{}", serde_json::to_string_pretty(&t)?);
            return Ok(());
        }
        WalletCommand::Confirm { trade_id } => MarketCall::Confirm {
            trade_id: *trade_id,
        },
        WalletCommand::Dispute { trade_id, reason } => MarketCall::Dispute {
            trade_id: *trade_id,
            reason: reason.clone(),
        },
    };
    let key = load_key(&args.key)?;
    submit_and_wait(&args.target, &key, &call, &args.submit).await
}

/// This key's account, or an error saying it is not registered.
async fn own_account(client: &HttpClient, key: &Keypair) -> anyhow::Result<Value> {
    let args = json!({ "publicKey": key.public().to_hex() });
    let a = client
        .query("accountByKey".into(), Some(args), None)
        .await?;
    if a.is_null() {
        bail!("{} is not a registered client", key.public());
    }
    Ok(a)
}

/// The client id this key is registered as.
pub async fn own_client_id(client: &HttpClient, key: &Keypair) -> anyhow::Result<String> {
    let a = own_account(client, key).await?;
    a["clientId"]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("the account has no clientId: {a}"))
}

#[derive(Debug, Clone, Copy)]
enum List {
    Orders,
    Trades,
}

/// Every item of a paged list (`market_getOrders` or `market_getTrades`), following
/// `nextCursor` until the end.
async fn fetch_all(client: &HttpClient, list: List, filter: Value) -> anyhow::Result<Vec<Value>> {
    let (field, name) = match list {
        List::Orders => ("orders", "market_getOrders"),
        List::Trades => ("trades", "market_getTrades"),
    };
    let mut out = Vec::new();
    let mut cursor: Option<Value> = None;
    loop {
        let mut f = filter.clone();
        f["limit"] = json!(1000);
        if let Some(c) = &cursor {
            f["cursor"] = c.clone();
        }
        let page = match list {
            List::Orders => client.get_orders(Some(f)).await,
            List::Trades => client.get_trades(Some(f)).await,
        }
        .context(name)?;
        let items = page[field]
            .as_array()
            .with_context(|| format!("{name} returned no '{field}' list: {page}"))?;
        out.extend(items.iter().cloned());
        match &page["nextCursor"] {
            Value::Null => return Ok(out),
            next if items.is_empty() || Some(next) == cursor.as_ref() => {
                bail!("{name} returned a cursor that does not advance: {next}")
            }
            next => cursor = Some(next.clone()),
        }
    }
}

/// A u64 given as a JSON number or a decimal string.
pub fn num_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// An i64 given as a JSON number or a decimal string.
pub fn num_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// A JSON value as plain text (strings without quotes; "?" when absent).
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "?".into(),
        other => other.to_string(),
    }
}

/// µcr (number or string) as credits.
fn credits(v: &Value) -> String {
    num_u64(v).map(format_credits).unwrap_or_else(|| text(v))
}

fn print_account(a: &Value) {
    println!("client:     {}", text(&a["clientId"]));
    println!("public key: {}", text(&a["publicKey"]));
    println!("balance:    {} credits", credits(&a["balance"]));
    println!("escrow:     {} credits", credits(&a["escrow"]));
}

fn print_vehicle(v: &Value) {
    println!("client:      {}", text(&v["clientId"]));
    println!("vehicle:     {}", text(&v["vehicleId"]));
    println!(
        "battery:     {} / {} Wh ({} Wh committed to open trades)",
        text(&v["chargeWh"]),
        text(&v["capacityWh"]),
        text(&v["committedWh"])
    );
    println!("position:    ({}, {}) m", text(&v["x"]), text(&v["y"]));
    println!("efficiency:  {} Wh/km", text(&v["efficiencyWhPerKm"]));
    println!("energy cost: {} µcr/Wh", text(&v["energyPrice"]));
}

/// The order's price column: a sell's asking price or a buy's cap.
fn order_price(o: &Value) -> String {
    if o["side"] == "sell" {
        format!("{} µcr/Wh", text(&o["price"]))
    } else {
        match &o["maxUnitCost"] {
            Value::Null => "any".into(),
            v => format!("≤ {} µcr/Wh", text(v)),
        }
    }
}

fn print_orders(orders: &[Value]) {
    println!(
        "{:>6}  {:<4}  {:<16}  {:>10}  {:>10}  {:<14}  {:>6}",
        "ORDER", "SIDE", "OWNER", "AMOUNT Wh", "LEFT Wh", "PRICE", "BLOCK"
    );
    for o in orders {
        println!(
            "{:>6}  {:<4}  {:<16}  {:>10}  {:>10}  {:<14}  {:>6}",
            text(&o["id"]),
            text(&o["side"]),
            text(&o["owner"]),
            text(&o["amountWh"]),
            text(&o["remainingWh"]),
            order_price(o),
            text(&o["placedAt"]),
        );
    }
}

async fn print_market(client: &HttpClient) -> anyhow::Result<()> {
    let params = client.get_params().await.context("market_getParams")?;
    let points = client
        .get_meeting_points()
        .await
        .context("market_getMeetingPoints")?;
    let orders = fetch_all(client, List::Orders, json!({})).await?;
    println!(
        "fee rate:  {} µcr/Wh (charged to each side of a trade)",
        text(&params["feeRate"])
    );
    println!(
        "treasury:  {} ({} credits)",
        text(&params["treasury"]),
        credits(&params["treasuryBalance"])
    );
    let points = points.as_array().cloned().unwrap_or_default();
    println!("meeting points ({}):", points.len());
    for p in &points {
        println!(
            "  {:>4}  ({}, {}) m",
            text(&p["id"]),
            text(&p["x"]),
            text(&p["y"])
        );
    }
    // The book: sells by ascending price, buys by descending cap (no cap first); ties by id.
    let mut sells: Vec<&Value> = orders.iter().filter(|o| o["side"] == "sell").collect();
    let mut buys: Vec<&Value> = orders.iter().filter(|o| o["side"] == "buy").collect();
    sells.sort_by_key(|o| (num_u64(&o["price"]).unwrap_or(u64::MAX), num_u64(&o["id"])));
    buys.sort_by_key(|o| {
        (
            std::cmp::Reverse(num_u64(&o["maxUnitCost"]).unwrap_or(u64::MAX)),
            num_u64(&o["id"]),
        )
    });
    for (name, side) in [("sell orders", sells), ("buy orders", buys)] {
        println!("{name} ({}):", side.len());
        if !side.is_empty() {
            print_orders(&side.into_iter().cloned().collect::<Vec<_>>());
        }
    }
    Ok(())
}

fn print_trades(trades: &[Value], me: Option<&str>) {
    println!(
        "{:>5}  {:<22}  {:<20}  {:>8}  {:>7}  {:>12}  {:>10}  STATUS",
        "TRADE",
        if me.is_some() {
            "COUNTERPARTY"
        } else {
            "CONSUMER <- PROVIDER"
        },
        "MEETING POINT",
        "Wh",
        "µcr/Wh",
        "ENERGY cr",
        "FEE cr",
    );
    for t in trades {
        let who = match me {
            Some(me) if t["consumer"] == me => format!("{} (you buy)", text(&t["provider"])),
            Some(_) => format!("{} (you sell)", text(&t["consumer"])),
            None => format!("{} <- {}", text(&t["consumer"]), text(&t["provider"])),
        };
        let mp = &t["meetingPoint"];
        println!(
            "{:>5}  {:<22}  {:<20}  {:>8}  {:>7}  {:>12}  {:>10}  {}",
            text(&t["id"]),
            who,
            format!(
                "#{} ({}, {})",
                text(&mp["id"]),
                text(&mp["x"]),
                text(&mp["y"])
            ),
            text(&t["quantityWh"]),
            text(&t["price"]),
            credits(&t["energyCost"]),
            credits(&t["fee"]),
            text(&t["status"]),
        );
    }
}

/// One event on one line: a sentence for the trade events, else its type and then its
/// fields as `key=value`.
pub fn describe_event(e: &Value) -> String {
    match e["type"].as_str() {
        Some("tradeMatched") => {
            let mp = &e["meetingPoint"];
            return format!(
                "tradeMatched: trade {} — {} buys {} Wh from {} at {} µcr/Wh, meeting point #{} ({}, {}); energy {} credits, fee {} credits each side",
                text(&e["id"]),
                text(&e["consumer"]),
                text(&e["quantityWh"]),
                text(&e["provider"]),
                text(&e["price"]),
                text(&mp["id"]),
                text(&mp["x"]),
                text(&mp["y"]),
                credits(&e["energyCost"]),
                credits(&e["fee"]),
            );
        }
        Some("tradeSettled") => {
            return format!(
                "tradeSettled: trade {} — {} receives {} credits, the treasury {} credits",
                text(&e["tradeId"]),
                text(&e["provider"]),
                credits(&e["providerReceives"]),
                credits(&e["treasuryReceives"]),
            );
        }
        _ => {}
    }
    match e.as_object() {
        Some(fields) => {
            let mut out = text(&e["type"]);
            for (k, v) in fields {
                if k != "type" {
                    out.push_str(&format!(" {k}={}", text(v)));
                }
            }
            out
        }
        None => text(e),
    }
}

/// What a transaction carries: a method and its argument bytes (a market call, or a call the
/// node executes itself such as a contract deployment).
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub args: Vec<u8>,
}

impl From<&MarketCall> for Call {
    fn from(c: &MarketCall) -> Self {
        Call {
            method: c.method().into(),
            args: c.encode_args(),
        }
    }
}

/// Signs `call` and submits it through `author_submitAndWatchTransaction` (WebSocket on the
/// same port), printing the events of the receipt once it is finalized. A transaction refused,
/// dropped or executed with an error is an error. With `--no-wait` it returns after
/// submission; with `--sign-only` it prints the signed transaction instead.
pub async fn submit_and_wait(
    target: &RpcTarget,
    key: &Keypair,
    call: &MarketCall,
    opts: &SubmitOptions,
) -> anyhow::Result<()> {
    submit_call(target, key, &Call::from(call), opts)
        .await
        .map(drop)
}

/// [`submit_and_wait`] for any call; returns where it was finalized (`None` with `--no-wait`
/// or `--sign-only`).
pub async fn submit_call(
    target: &RpcTarget,
    key: &Keypair,
    call: &Call,
    opts: &SubmitOptions,
) -> anyhow::Result<Option<Finalized>> {
    let client = target.client()?;
    let hex = sign_next(&client, key, call, opts.memo_bytes).await?;
    if opts.sign_only {
        println!("{hex}");
        return Ok(None);
    }
    if opts.no_wait {
        let hash = client.submit_transaction(hex).await?;
        println!("submitted {} ({hash})", call.method);
        return Ok(None);
    }
    let ws = target.ws_client().await?;
    let timeout = Duration::from_secs(opts.wait_timeout);
    let done = submit_and_watch_with(&ws, hex, timeout, |event| {
        if let TxStatus::Accepted { hash } = event {
            println!("submitted {} ({hash})", call.method);
        }
    })
    .await?;
    println!("finalized in block {} (index {})", done.height, done.index);
    if !done.receipt.success {
        bail!(
            "the transaction failed: {}",
            done.receipt.error.as_deref().unwrap_or("unknown error")
        );
    }
    for e in &done.receipt.events {
        println!("  event: {}", describe_event(e));
    }
    Ok(Some(done))
}

/// `call` signed for the node's chain with the account's next nonce, as hex.
async fn sign_next(
    client: &HttpClient,
    key: &Keypair,
    call: &Call,
    memo_bytes: usize,
) -> anyhow::Result<String> {
    let chain = client.chain().await.context("reading the chain id")?;
    let nonce = client.next_nonce(key.public().to_hex()).await?;
    Ok(signed_hex(key, chain.genesis_hash, nonce, call, memo_bytes))
}

/// `call` signed by `key` with `nonce` for chain `chain`, with a memo of `memo_bytes` zero
/// bytes, as the 0x-hex that `author_submitTransaction` takes.
pub fn signed_hex(
    key: &Keypair,
    chain: Hash,
    nonce: u64,
    call: &Call,
    memo_bytes: usize,
) -> String {
    let tx = UnsignedTransaction {
        chain_id: chain,
        signer: key.public(),
        nonce,
        method: call.method.clone(),
        args: call.args.clone(),
        memo: vec![0u8; memo_bytes],
    }
    .sign(key);
    format!("0x{}", hex_encode(tx.encoded()))
}

pub fn hex_encode(b: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    b.iter()
        .flat_map(|x| [D[(x >> 4) as usize] as char, D[(x & 15) as usize] as char])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_read_as_sentences() {
        let matched = json!({"type": "tradeMatched", "id": 1, "consumer": "alice", "provider": "bob",
            "quantityWh": 5000, "price": "300", "meetingPoint": {"id": 2, "x": 2000, "y": -5},
            "energyCost": "1500000", "fee": "50000"});
        assert_eq!(
            describe_event(&matched),
            "tradeMatched: trade 1 — alice buys 5000 Wh from bob at 300 µcr/Wh, meeting point #2 (2000, -5); energy 1.500000 credits, fee 0.050000 credits each side"
        );
        let other = json!({"type": "deposited", "clientId": "erin", "amount": "5"});
        assert_eq!(describe_event(&other), "deposited amount=5 clientId=erin");
        assert_eq!(describe_event(&json!("raw")), "raw");
    }

    #[test]
    fn numbers_as_numbers_or_strings() {
        assert_eq!(num_u64(&json!("18446744073709551615")), Some(u64::MAX));
        assert_eq!(num_u64(&json!(7)), Some(7));
        assert_eq!(num_u64(&json!(-7)), None);
        assert_eq!(num_i64(&json!(-7)), Some(-7));
        assert_eq!(num_i64(&json!("x")), None);
        assert_eq!(credits(&json!("1500000")), "1.500000");
        assert_eq!(credits(&Value::Null), "?");
    }
}
