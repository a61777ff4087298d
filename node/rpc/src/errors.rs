//! Errors as JSON-RPC error objects, with the codes of [`v2v_rpc_api::codes`].

use jsonrpsee::types::ErrorObjectOwned;
use v2v_primitives::TxError;
pub use v2v_rpc_api::codes;

use crate::backend::{BackendError, SubmitError};

/// An error object with an application code and a message.
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
            BackendError::TooLarge(_) => codes::RESPONSE_TOO_LARGE,
            BackendError::Internal(_) => codes::INTERNAL,
        };
        error(code, e.to_string())
    }
}
