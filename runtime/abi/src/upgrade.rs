//! Contract upgrades: the system call that deploys new market contract code.
//!
//! A transaction whose method is [`DEPLOY_METHOD`] is executed by the node itself, never by
//! the contract: only an operator may send it, and its code must pass the same validation as
//! genesis code and declare a strictly greater version. The layout of its arguments is in
//! `docs/transactions.md`.

use alloc::vec::Vec;

use crate::codec::{DecodeError, Reader, Writer};

/// The method name of a deployment. The `system.` prefix is reserved for calls the node
/// executes itself: a contract never sees them.
pub const DEPLOY_METHOD: &str = "system.deployContract";

/// A payload-only transaction: no arguments, no contract call, nothing but the signer's nonce
/// changes. Its memo is the payload (benchmarks of the ordering layer alone).
pub const MEMO_METHOD: &str = "system.memo";

/// Whether a method is reserved for the node (a contract call may not use it).
pub fn is_system_method(method: &str) -> bool {
    method.starts_with("system.")
}

/// The arguments of [`DEPLOY_METHOD`]: the new code and when it takes over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployContract {
    /// The Wasm module.
    pub wasm: Vec<u8>,
    /// The height of the first block the new code executes; `None` = the block after the one
    /// that includes the deployment.
    pub activate_at: Option<u64>,
}

impl DeployContract {
    /// `wasm` (u32 length + bytes) then `activate_at` (option u64).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(4 + self.wasm.len() + 9);
        w.bytes(&self.wasm).option_u64(self.activate_at);
        w.finish()
    }

    pub fn decode(args: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(args);
        let wasm = r.bytes("wasm", usize::MAX)?.to_vec();
        let activate_at = r.option_u64("activateAt")?;
        r.finish()?;
        Ok(Self { wasm, activate_at })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_truncation() {
        let d = DeployContract {
            wasm: alloc::vec![0, 97, 115, 109, 1, 0, 0, 0],
            activate_at: Some(42),
        };
        let bytes = d.encode();
        assert_eq!(DeployContract::decode(&bytes), Ok(d.clone()));
        assert!(DeployContract::decode(&bytes[..bytes.len() - 1]).is_err());
        let none = DeployContract {
            activate_at: None,
            ..d
        };
        assert_eq!(DeployContract::decode(&none.encode()), Ok(none));
        assert!(is_system_method(DEPLOY_METHOD));
        assert!(!is_system_method("placeOrder"));
    }
}
