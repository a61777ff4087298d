//! Errors of the network layer.

use libp2p::{Multiaddr, PeerId};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum NetworkError {
    /// A configured public key is not a valid ed25519 point.
    #[error("invalid ed25519 public key")]
    InvalidPublicKey,
    /// The identity seed could not be turned into a keypair.
    #[error("invalid identity seed: {0}")]
    InvalidIdentity(String),
    /// Building the transport or the protocols failed (a configuration problem).
    #[error("network setup failed: {0}")]
    Setup(String),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: Multiaddr, reason: String },
    /// The peer is not connected (or not allowed); requests fail fast instead of waiting.
    #[error("peer {0} is not connected")]
    NotConnected(PeerId),
    /// The payload is larger than the configured limit.
    #[error("payload of {size} bytes exceeds the limit of {max} bytes")]
    TooLarge { size: usize, max: usize },
    /// No response within the request timeout.
    #[error("request timed out")]
    Timeout,
    /// The connection closed before the response arrived.
    #[error("connection closed before the response arrived")]
    ConnectionClosed,
    /// The peer answered with an error, refused the stream or did not answer (e.g. it dropped
    /// the request).
    #[error("request failed: {0}")]
    RequestFailed(String),
    /// The network task has stopped (shutdown or all handles dropped).
    #[error("network stopped")]
    Stopped,
}
