//! Error codes: stable numbers that clients can match on; the message says what happened.

use jsonrpsee::types::ErrorObjectOwned;
use v2v_primitives::TxError;

use crate::backend::{BackendError, SubmitError};

/// Every application error code the server returns (JSON-RPC's own codes, such as -32602
/// for invalid parameters, are used as the specification defines them).
pub mod codes {
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
    /// A contract deployment refused by its stateful checks (signer, code, version,
    /// activation height, migration).
    pub const TX_REJECTED: i32 = 1011;
    pub const NOT_FOUND: i32 = 2001;
    pub const INVALID_PARAMS: i32 = -32602;
    pub const QUERY_FAILED: i32 = 3001;
    pub const STATE_UNAVAILABLE: i32 = 3002;
    pub const INTERNAL: i32 = 5000;
}

pub fn error(code: i32, message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(code, message.into(), None::<()>)
}

impl From<SubmitError> for ErrorObjectOwned {
    fn from(e: SubmitError) -> Self {
        let code = match &e {
            SubmitError::Invalid(t) => match t {
                TxError::TooLarge { .. } => codes::TX_TOO_LARGE,
                TxError::Undecodable(_) => codes::TX_UNDECODABLE,
                TxError::UnsupportedVersion(_) => codes::TX_UNSUPPORTED_VERSION,
                TxError::BadSignature => codes::TX_BAD_SIGNATURE,
                TxError::WrongChain { .. } => codes::TX_WRONG_CHAIN,
            },
            SubmitError::StaleNonce { .. } => codes::TX_STALE_NONCE,
            SubmitError::NonceTooFar { .. } => codes::TX_NONCE_TOO_FAR,
            SubmitError::Duplicate(_) => codes::TX_DUPLICATE,
            SubmitError::MempoolFull(_) => codes::MEMPOOL_FULL,
            SubmitError::ShuttingDown => codes::SHUTTING_DOWN,
            SubmitError::Rejected(_) => codes::TX_REJECTED,
        };
        error(code, e.to_string())
    }
}

impl From<BackendError> for ErrorObjectOwned {
    fn from(e: BackendError) -> Self {
        let code = match &e {
            BackendError::NotFound(_) => codes::NOT_FOUND,
            BackendError::Query(_) => codes::QUERY_FAILED,
            BackendError::StateUnavailable(_) => codes::STATE_UNAVAILABLE,
            BackendError::Internal(_) => codes::INTERNAL,
        };
        error(code, e.to_string())
    }
}
