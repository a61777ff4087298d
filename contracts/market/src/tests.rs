//! Hand-computed scenarios of the market rules. The randomized comparison against an
//! independent brute-force reference is in `tests/it/`.

use serde_json::{Value, json};
use v2v_abi::genesis::{GenesisClient, GenesisMarket, GenesisMeetingPoint, to_hex};
use v2v_abi::{MarketCall as C, Resolution};

use crate::{MarketError, MemoryHost, execute, init, query};

const OPERATOR: [u8; 32] = [9; 32];

fn key_of(name: &str) -> [u8; 32] {
    let mut k = [0u8; 32];
    k[..name.len()].copy_from_slice(name.as_bytes());
    k
}

/// Meeting points 1 at (0,0), 2 at (10 km, 0); fee 2 µcr/Wh; clients with 10 000 credits.
fn market(clients: &[&str]) -> MemoryHost {
    let mut h = MemoryHost::default();
    init(
        &mut h,
        &GenesisMarket {
            fee_rate: 2,
            treasury: "treasury".into(),
            operators: vec![to_hex(&OPERATOR)],
            meeting_points: vec![
                GenesisMeetingPoint { id: 1, x: 0, y: 0 },
                GenesisMeetingPoint {
                    id: 2,
                    x: 10_000,
                    y: 0,
                },
            ],
            clients: clients
                .iter()
                .map(|c| GenesisClient {
                    id: (*c).into(),
                    public_key: to_hex(&key_of(c)),
                    balance: 10_000_000_000,
                })
                .collect(),
        },
    )
    .unwrap();
    h
}

/// Runs a call as `who` with transaction semantics: a failed call leaves no writes.
fn run(h: &mut MemoryHost, who: &str, call: C) -> Result<(), MarketError> {
    h.caller = if who == "operator" {
        OPERATOR
    } else {
        key_of(who)
    };
    let before = h.storage.clone();
    let r = execute(h, &call);
    if r.is_err() {
        h.storage = before;
    }
    r
}

fn car(h: &mut MemoryHost, who: &str, charge: u64, x: i64, y: i64, price: u64) {
    run(
        h,
        who,
        C::LinkVehicle {
            vehicle_id: format!("{who}-car"),
            capacity_wh: 80_000,
            charge_wh: charge,
            x,
            y,
            efficiency_wh_per_km: 200,
            energy_price: price,
        },
    )
    .unwrap();
}

fn q(h: &MemoryHost, method: &str, args: Value) -> Value {
    query(h, method, &args).unwrap()
}

fn balance(h: &MemoryHost, who: &str) -> (u64, u64) {
    let a = q(h, "account", json!({"clientId": who}));
    (
        a["balance"].as_str().unwrap().parse().unwrap(),
        a["escrow"].as_str().unwrap().parse().unwrap(),
    )
}

fn total(h: &MemoryHost) -> u128 {
    q(h, "supply", Value::Null)["total"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn a_whole_trade_with_exact_figures() {
    let mut h = market(&["alice", "bob"]);
    let supply = total(&h);
    // Bob (provider) 3 km east of meeting point 1; Alice (consumer) 1 km north of it.
    car(&mut h, "bob", 50_000, 3_000, 0, 100);
    car(&mut h, "alice", 10_000, 0, 1_000, 300);
    run(
        &mut h,
        "bob",
        C::Sell {
            amount_wh: 20_000,
            price: 250,
        },
    )
    .unwrap();
    run(
        &mut h,
        "alice",
        C::Buy {
            amount_wh: 5_000,
            max_unit_cost: None,
        },
    )
    .unwrap();
    let t = q(&h, "trade", json!({"id": 1}));
    // Meeting point 1: d_C = 1000 m -> TE_C = 200 Wh, TC_C = 60 000 µcr; d_P = 3000 m ->
    // TE_P = 600 Wh, TC_P = 60 000. Point 2: d_C = 10 049 m -> TE_C = 2009 Wh (more than
    // nothing), so point 1 has the smaller unit cost.
    assert_eq!(t["meetingPoint"]["id"], 1);
    assert_eq!(t["quantityWh"], 5_000);
    assert_eq!(t["energyCost"], "1250000");
    assert_eq!(t["fee"], "10000");
    assert_eq!(
        t["consumerTravel"],
        json!({"distanceM": 1000, "energyWh": 200, "cost": "60000"})
    );
    assert_eq!(
        t["providerTravel"],
        json!({"distanceM": 3000, "energyWh": 600, "cost": "60000"})
    );
    assert_eq!(t["status"], "matched");
    assert_eq!(
        balance(&h, "alice"),
        (10_000_000_000 - 1_260_000, 1_260_000)
    );
    let v = q(&h, "vehicle", json!({"clientId": "bob"}));
    assert_eq!(v["committedWh"], 5_000);
    let sell = q(&h, "order", json!({"id": 1}));
    assert_eq!(sell["remainingWh"], 15_000);
    assert!(
        query(&h, "order", &json!({"id": 2})).is_err(),
        "the filled buy left the book"
    );

    // Only the consumer confirms; then the provider is paid EC - F and the treasury 2F.
    assert_eq!(
        run(&mut h, "bob", C::Confirm { trade_id: 1 }),
        Err(MarketError::NotYourTrade(1))
    );
    run(&mut h, "alice", C::Confirm { trade_id: 1 }).unwrap();
    assert_eq!(balance(&h, "alice"), (10_000_000_000 - 1_260_000, 0));
    assert_eq!(balance(&h, "bob"), (10_000_000_000 + 1_240_000, 0));
    assert_eq!(balance(&h, "treasury"), (20_000, 0));
    assert_eq!(
        q(&h, "vehicle", json!({"clientId": "bob"}))["committedWh"],
        0
    );
    assert_eq!(total(&h), supply, "money is conserved");
    assert!(matches!(
        run(&mut h, "alice", C::Confirm { trade_id: 1 }),
        Err(MarketError::TradeNotOpen { .. })
    ));
}

#[test]
fn the_cheapest_unit_cost_wins_over_the_cheapest_price() {
    let mut h = market(&["alice", "bob", "carol"]);
    car(&mut h, "alice", 10_000, 0, 0, 300);
    // Bob sells cheaper but only 100 Wh: the consumer's travel (0 here) is spread over less,
    // and his own travel is far; Carol sells 1 µcr/Wh dearer.
    car(&mut h, "bob", 60_000, 9_000, 0, 100);
    car(&mut h, "carol", 60_000, 1_000, 0, 100);
    run(
        &mut h,
        "bob",
        C::Sell {
            amount_wh: 1_000,
            price: 200,
        },
    )
    .unwrap();
    run(
        &mut h,
        "carol",
        C::Sell {
            amount_wh: 1_000,
            price: 201,
        },
    )
    .unwrap();
    // Alice at meeting point 1: TC_C = 0 there, so UC = price + fee: Bob's 202 beats 203.
    run(
        &mut h,
        "alice",
        C::Buy {
            amount_wh: 1_000,
            max_unit_cost: None,
        },
    )
    .unwrap();
    let t = q(&h, "trade", json!({"id": 1}));
    assert_eq!(t["provider"], "bob");
    // Bob meets at point 2 (1 km from him) or 1 (9 km): UC is equal only if Alice's travel is;
    // it is not (point 2 is 10 km from her), so point 1.
    assert_eq!(t["meetingPoint"]["id"], 1);
}

#[test]
fn ties_go_to_the_larger_unit_profit_then_the_older_order() {
    let mut h = market(&["alice", "bob", "carol", "dave"]);
    car(&mut h, "alice", 10_000, 0, 0, 300);
    // Same price; Bob is nearer to point 1 (larger UP); Carol and Dave identical but Carol older.
    car(&mut h, "carol", 60_000, 2_000, 0, 100);
    car(&mut h, "dave", 60_000, 2_000, 0, 100);
    car(&mut h, "bob", 60_000, 500, 0, 100);
    run(
        &mut h,
        "carol",
        C::Sell {
            amount_wh: 1_000,
            price: 200,
        },
    )
    .unwrap();
    run(
        &mut h,
        "dave",
        C::Sell {
            amount_wh: 1_000,
            price: 200,
        },
    )
    .unwrap();
    run(
        &mut h,
        "bob",
        C::Sell {
            amount_wh: 1_000,
            price: 200,
        },
    )
    .unwrap();
    run(
        &mut h,
        "alice",
        C::Buy {
            amount_wh: 3_000,
            max_unit_cost: None,
        },
    )
    .unwrap();
    let providers: Vec<Value> = (1..=3)
        .map(|i| q(&h, "trade", json!({"id": i}))["provider"].clone())
        .collect();
    assert_eq!(providers, vec![json!("bob"), json!("carol"), json!("dave")]);
}

#[test]
fn infeasible_candidates_are_skipped_and_a_rest_rests() {
    let mut h = market(&["alice", "bob", "carol"]);
    // Bob cannot reach any meeting point: 100 Wh of charge, 5 km away, 200 Wh/km.
    car(&mut h, "bob", 1_100, 0, 5_000, 100);
    car(&mut h, "carol", 60_000, 0, 100, 100);
    car(&mut h, "alice", 10_000, 0, 0, 300);
    run(
        &mut h,
        "bob",
        C::Sell {
            amount_wh: 1_000,
            price: 100,
        },
    )
    .unwrap();
    // Carol's price is below her travel cost + fee: UP < 0 at every point.
    run(
        &mut h,
        "carol",
        C::Sell {
            amount_wh: 100,
            price: 1,
        },
    )
    .unwrap();
    run(
        &mut h,
        "alice",
        C::Buy {
            amount_wh: 2_000,
            max_unit_cost: None,
        },
    )
    .unwrap();
    assert!(
        query(&h, "trade", &json!({"id": 1})).is_err(),
        "nothing is feasible"
    );
    let buys = q(&h, "orders", json!({"side": "buy"}));
    assert_eq!(buys["orders"][0]["remainingWh"], 2_000);
    assert!(matches!(
        run(&mut h, "carol", C::Cancel { order_id: 3 }),
        Err(MarketError::NotYourOrder(3))
    ));
    run(&mut h, "alice", C::Cancel { order_id: 3 }).unwrap();
    assert!(matches!(
        run(&mut h, "alice", C::Cancel { order_id: 3 }),
        Err(MarketError::UnknownOrder(3))
    ));
}

#[test]
fn the_buyers_unit_cost_limit_is_exact() {
    let mut h = market(&["alice", "bob"]);
    car(&mut h, "alice", 10_000, 0, 0, 300);
    car(&mut h, "bob", 60_000, 0, 0, 100);
    run(
        &mut h,
        "bob",
        C::Sell {
            amount_wh: 1_000,
            price: 200,
        },
    )
    .unwrap();
    // At meeting point 1 both travel 0 m: UC = 200 + fee 2 = 202 exactly.
    run(
        &mut h,
        "alice",
        C::Buy {
            amount_wh: 500,
            max_unit_cost: Some(201),
        },
    )
    .unwrap();
    assert!(
        query(&h, "trade", &json!({"id": 1})).is_err(),
        "201 < 202: no match"
    );
    run(
        &mut h,
        "alice",
        C::Buy {
            amount_wh: 500,
            max_unit_cost: Some(202),
        },
    )
    .unwrap();
    assert_eq!(q(&h, "trade", json!({"id": 1}))["quantityWh"], 500);
}

#[test]
fn partial_fills_across_several_sells() {
    let mut h = market(&["alice", "bob", "carol"]);
    car(&mut h, "alice", 0, 0, 0, 300);
    car(&mut h, "bob", 60_000, 0, 0, 100);
    car(&mut h, "carol", 60_000, 0, 0, 100);
    run(
        &mut h,
        "bob",
        C::Sell {
            amount_wh: 3_000,
            price: 200,
        },
    )
    .unwrap();
    run(
        &mut h,
        "carol",
        C::Sell {
            amount_wh: 3_000,
            price: 210,
        },
    )
    .unwrap();
    run(
        &mut h,
        "alice",
        C::Buy {
            amount_wh: 4_000,
            max_unit_cost: None,
        },
    )
    .unwrap();
    let t1 = q(&h, "trade", json!({"id": 1}));
    let t2 = q(&h, "trade", json!({"id": 2}));
    assert_eq!(
        (t1["provider"].clone(), t1["quantityWh"].clone()),
        (json!("bob"), json!(3_000))
    );
    assert_eq!(
        (t2["provider"].clone(), t2["quantityWh"].clone()),
        (json!("carol"), json!(1_000))
    );
    let sells = q(&h, "orders", json!({"side": "sell"}));
    assert_eq!(sells["orders"].as_array().unwrap().len(), 1);
    assert_eq!(sells["orders"][0]["remainingWh"], 2_000);
    let mine = q(&h, "trades", json!({"owner": "alice"}));
    assert_eq!(mine["trades"].as_array().unwrap().len(), 2);
}

#[test]
fn a_new_sell_matches_resting_buys() {
    let mut h = market(&["alice", "bob", "erin"]);
    car(&mut h, "alice", 1_000, 0, 2_000, 300);
    car(&mut h, "erin", 1_000, 0, 100, 300);
    car(&mut h, "bob", 60_000, 0, 0, 100);
    run(
        &mut h,
        "alice",
        C::Buy {
            amount_wh: 1_000,
            max_unit_cost: None,
        },
    )
    .unwrap();
    run(
        &mut h,
        "erin",
        C::Buy {
            amount_wh: 1_000,
            max_unit_cost: None,
        },
    )
    .unwrap();
    run(
        &mut h,
        "bob",
        C::Sell {
            amount_wh: 1_500,
            price: 200,
        },
    )
    .unwrap();
    // Erin travels 100 m (TE 20 Wh), Alice 2 km: Erin first, then Alice gets the rest.
    let t1 = q(&h, "trade", json!({"id": 1}));
    let t2 = q(&h, "trade", json!({"id": 2}));
    assert_eq!(
        (t1["consumer"].clone(), t1["quantityWh"].clone()),
        (json!("erin"), json!(1_000))
    );
    assert_eq!(
        (t2["consumer"].clone(), t2["quantityWh"].clone()),
        (json!("alice"), json!(500))
    );
}

#[test]
fn disputes_refunds_and_operator_powers() {
    let mut h = market(&["alice", "bob"]);
    let supply = total(&h);
    car(&mut h, "alice", 0, 0, 0, 300);
    car(&mut h, "bob", 60_000, 0, 0, 100);
    run(
        &mut h,
        "bob",
        C::Sell {
            amount_wh: 1_000,
            price: 200,
        },
    )
    .unwrap();
    run(
        &mut h,
        "alice",
        C::Buy {
            amount_wh: 1_000,
            max_unit_cost: None,
        },
    )
    .unwrap();
    assert_eq!(
        run(
            &mut h,
            "alice",
            C::Dispute {
                trade_id: 1,
                reason: " ".into()
            }
        ),
        Err(MarketError::EmptyReason)
    );
    run(
        &mut h,
        "alice",
        C::Dispute {
            trade_id: 1,
            reason: "no energy arrived".into(),
        },
    )
    .unwrap();
    assert!(run(&mut h, "alice", C::Confirm { trade_id: 1 }).is_err());
    assert_eq!(
        run(
            &mut h,
            "bob",
            C::Resolve {
                trade_id: 1,
                resolution: Resolution::Refund
            }
        ),
        Err(MarketError::NotOperator)
    );
    run(
        &mut h,
        "operator",
        C::Resolve {
            trade_id: 1,
            resolution: Resolution::Refund,
        },
    )
    .unwrap();
    assert_eq!(balance(&h, "alice"), (10_000_000_000, 0));
    assert_eq!(balance(&h, "treasury"), (0, 0));
    assert_eq!(q(&h, "trade", json!({"id": 1}))["status"], "refunded");
    assert!(
        run(
            &mut h,
            "operator",
            C::Resolve {
                trade_id: 1,
                resolution: Resolution::Settle
            }
        )
        .is_err()
    );
    assert_eq!(total(&h), supply);

    run(
        &mut h,
        "operator",
        C::AdjustFunds {
            client_id: "bob".into(),
            delta: -5,
            reason: "late".into(),
        },
    )
    .unwrap();
    assert_eq!(total(&h), supply - 5);
    assert!(matches!(
        run(
            &mut h,
            "operator",
            C::AdjustFunds {
                client_id: "bob".into(),
                delta: i64::MIN,
                reason: "x".into()
            }
        ),
        Err(MarketError::InsufficientFunds { .. })
    ));
    run(&mut h, "operator", C::SetFee { fee_rate: 0 }).unwrap();
    assert_eq!(q(&h, "params", Value::Null)["feeRate"], "0");
    run(&mut h, "operator", C::AddMeetingPoint { id: 7, x: 1, y: 1 }).unwrap();
    assert_eq!(
        run(&mut h, "operator", C::AddMeetingPoint { id: 7, x: 1, y: 1 }),
        Err(MarketError::MeetingPointExists(7))
    );
    assert!(
        run(
            &mut h,
            "operator",
            C::AddMeetingPoint {
                id: 8,
                x: i64::MAX,
                y: 1
            }
        )
        .is_err()
    );
    run(&mut h, "operator", C::RemoveMeetingPoint { id: 7 }).unwrap();
    assert_eq!(
        q(&h, "meetingPoints", Value::Null)
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        run(&mut h, "alice", C::SetFee { fee_rate: 1 }),
        Err(MarketError::NotOperator)
    );

    // Removal needs an empty account.
    assert!(matches!(
        run(
            &mut h,
            "operator",
            C::RemoveClient {
                client_id: "alice".into()
            }
        ),
        Err(MarketError::ClientBusy(_))
    ));
    run(
        &mut h,
        "alice",
        C::Withdraw {
            amount: 10_000_000_000,
        },
    )
    .unwrap();
    run(
        &mut h,
        "operator",
        C::RemoveClient {
            client_id: "alice".into(),
        },
    )
    .unwrap();
    assert!(query(&h, "account", &json!({"clientId": "alice"})).is_err());
    run(
        &mut h,
        "operator",
        C::RegisterClient {
            client_id: "alice2".into(),
            public_key: key_of("alice"),
        },
    )
    .unwrap();
}

#[test]
fn order_placement_checks() {
    let mut h = market(&["alice"]);
    assert_eq!(
        run(
            &mut h,
            "alice",
            C::Buy {
                amount_wh: 1,
                max_unit_cost: None
            }
        ),
        Err(MarketError::NoVehicle("alice".into()))
    );
    car(&mut h, "alice", 70_000, 0, 0, 300);
    assert!(matches!(
        run(
            &mut h,
            "alice",
            C::Buy {
                amount_wh: 10_001,
                max_unit_cost: None
            }
        ),
        Err(MarketError::InvalidOrder(_))
    ));
    assert!(matches!(
        run(
            &mut h,
            "alice",
            C::Sell {
                amount_wh: 70_001,
                price: 1
            }
        ),
        Err(MarketError::InvalidOrder(_))
    ));
    assert!(matches!(
        run(
            &mut h,
            "alice",
            C::Sell {
                amount_wh: 1,
                price: 0
            }
        ),
        Err(MarketError::InvalidOrder(_))
    ));
    assert_eq!(
        run(
            &mut h,
            "alice",
            C::Sell {
                amount_wh: 0,
                price: 1
            }
        ),
        Err(MarketError::ZeroAmount)
    );
    run(
        &mut h,
        "alice",
        C::Sell {
            amount_wh: 1,
            price: 1,
        },
    )
    .unwrap();
    // A vehicle cannot be swapped under a resting order; telemetry is checked.
    assert!(matches!(
        run(
            &mut h,
            "alice",
            C::LinkVehicle {
                vehicle_id: "x".into(),
                capacity_wh: 1,
                charge_wh: 1,
                x: 0,
                y: 0,
                efficiency_wh_per_km: 1,
                energy_price: 1
            }
        ),
        Err(MarketError::ClientBusy(_))
    ));
    assert!(matches!(
        run(
            &mut h,
            "alice",
            C::Telemetry {
                charge_wh: 80_001,
                x: 0,
                y: 0,
                energy_price: 1
            }
        ),
        Err(MarketError::InvalidVehicle(_))
    ));
    assert!(matches!(
        query(&h, "order", &json!({"id": "x"})),
        Err(MarketError::BadArguments(_))
    ));
}

#[test]
fn telemetry_moves_resting_buys_in_the_grid() {
    let mut h = market(&["alice", "erin", "bob"]);
    car(&mut h, "alice", 5_000, 0, 3_000, 300);
    car(&mut h, "erin", 5_000, 0, 5_000, 300);
    car(&mut h, "bob", 60_000, 0, 0, 100);
    run(
        &mut h,
        "alice",
        C::Buy {
            amount_wh: 1_000,
            max_unit_cost: None,
        },
    )
    .unwrap();
    run(
        &mut h,
        "erin",
        C::Buy {
            amount_wh: 1_000,
            max_unit_cost: None,
        },
    )
    .unwrap();
    // Erin drives next to meeting point 1: she is now the cheaper consumer to serve.
    run(
        &mut h,
        "erin",
        C::Telemetry {
            charge_wh: 4_000,
            x: 10,
            y: 10,
            energy_price: 300,
        },
    )
    .unwrap();
    run(
        &mut h,
        "bob",
        C::Sell {
            amount_wh: 1_000,
            price: 200,
        },
    )
    .unwrap();
    let t = q(&h, "trade", json!({"id": 1}));
    assert_eq!(t["consumer"], "erin");
    assert_eq!(t["consumerTravel"]["distanceM"], 14);
    // Cancelling after a move finds the order where telemetry re-filed it.
    run(
        &mut h,
        "alice",
        C::Telemetry {
            charge_wh: 4_000,
            x: -7_500,
            y: 0,
            energy_price: 1,
        },
    )
    .unwrap();
    run(&mut h, "alice", C::Cancel { order_id: 1 }).unwrap();
    let cells: Vec<_> = h
        .storage
        .keys()
        .filter(|k| {
            [&b"bc/"[..], b"bg/", b"bl/", b"br/", b"bk/", b"be/"]
                .contains(&k.get(..3).unwrap_or(&[]))
        })
        .collect();
    assert!(
        cells.is_empty(),
        "no index entry outlives its order: {cells:?}"
    );
}

#[test]
fn a_meeting_point_added_under_resting_buys_is_searched_until_their_keys_catch_up() {
    let fillers: Vec<String> = (0..70).map(|i| format!("f{i}")).collect();
    let mut names: Vec<&str> = fillers.iter().map(String::as_str).collect();
    names.extend(["alice", "erin", "bob"]);
    let mut h = market(&names);
    // Seventy buys far from everything, placed first: the meeting-point change re-keys the
    // oldest 64 of them, not Alice's and Erin's.
    for (i, f) in fillers.iter().enumerate() {
        car(&mut h, f, 5_000, -20_000, i as i64 * 100, 300);
        let buy = C::Buy {
            amount_wh: 1_000,
            max_unit_cost: None,
        };
        run(&mut h, f, buy).unwrap();
    }
    // Alice 100 m from point 1; Erin 7 km from both points.
    car(&mut h, "alice", 5_000, 0, 100, 300);
    car(&mut h, "erin", 5_000, 5_000, 5_000, 300);
    for who in ["alice", "erin"] {
        let buy = C::Buy {
            amount_wh: 1_000,
            max_unit_cost: None,
        };
        run(&mut h, who, buy).unwrap();
    }
    // A new point right where Erin is: her keyed bound (7 km of travel) is now far too high.
    let add = C::AddMeetingPoint {
        id: 3,
        x: 5_000,
        y: 5_000,
    };
    run(&mut h, "operator", add).unwrap();
    let stale = |h: &MemoryHost| {
        h.storage
            .keys()
            .filter(|k| k.starts_with(b"be/") && k[3..11] == 0u64.to_be_bytes())
            .count()
    };
    assert_eq!(stale(&h), 8, "70 + 2 buys, 64 re-keyed by the change");
    car(&mut h, "bob", 60_000, 0, 0, 100);
    let sell = C::Sell {
        amount_wh: 1_000,
        price: 200,
    };
    run(&mut h, "bob", sell).unwrap();
    // Erin at point 3 (no travel: UC 202) beats Alice at point 1 (UC 208).
    let t = q(&h, "trade", json!({"id": 1}));
    assert_eq!(t["consumer"], "erin");
    assert_eq!(t["meetingPoint"]["id"], 3);
    // Erin's buy is filled and each placement re-keys four old buys: one more order and none
    // is left.
    assert_eq!(stale(&h), 3);
    let sell = C::Sell {
        amount_wh: 500,
        price: 100_000,
    };
    run(&mut h, "bob", sell).unwrap();
    assert_eq!(stale(&h), 0);
}
