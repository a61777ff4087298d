//! Every application error code the server returns: stable numbers that clients can match on;
//! the message says what happened. (JSON-RPC's own codes, such as -32602 for invalid
//! parameters, are used as the specification defines them.)

pub const TX_TOO_LARGE: i32 = 1001;
pub const TX_UNDECODABLE: i32 = 1002;
pub const TX_UNSUPPORTED_VERSION: i32 = 1003;
pub const TX_BAD_SIGNATURE: i32 = 1004;
pub const TX_WRONG_CHAIN: i32 = 1005;
pub const TX_STALE_NONCE: i32 = 1006;
pub const TX_NONCE_TOO_FAR: i32 = 1007;
pub const TX_DUPLICATE: i32 = 1008;
pub const MEMPOOL_FULL: i32 = 1009;
pub const SHUTTING_DOWN: i32 = 1010;
/// A contract deployment refused by its stateful checks (signer, code, version, activation
/// height, migration).
pub const TX_REJECTED: i32 = 1011;
pub const NOT_FOUND: i32 = 2001;
pub const INVALID_PARAMS: i32 = -32602;
pub const QUERY_FAILED: i32 = 3001;
pub const STATE_UNAVAILABLE: i32 = 3002;
/// The answer would exceed the server's response limit (a chain spec with a large genesis
/// storage).
pub const RESPONSE_TOO_LARGE: i32 = 3003;
pub const INTERNAL: i32 = 5000;
