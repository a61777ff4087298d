//! Starting the server: the modules merged into one, with limits.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use jsonrpsee::RpcModule;
use jsonrpsee::core::RegisterMethodError;
use jsonrpsee::server::{BatchRequestConfig, Server, ServerConfig, ServerHandle};
use serde_json::{Value, json};
use thiserror::Error;
use v2v_rpc_api::{
    AuthorApiServer, ChainApiServer, ExplorerApiServer, MarketApiServer, StateApiServer,
    SystemApiServer, TxApiServer,
};

use crate::api::Api;
use crate::backend::Backend;

/// Server limits.
#[derive(Debug, Clone)]
pub struct RpcConfig {
    pub addr: SocketAddr,
    pub max_request_bytes: u32,
    pub max_response_bytes: u32,
    pub max_connections: u32,
    pub max_subscriptions_per_connection: u32,
    pub max_batch_len: u32,
    /// Messages queued per connection for a client that has not read them yet; past that, the
    /// connection's sends wait (at least 1).
    pub message_buffer_capacity: u32,
    /// How long a subscription's message may wait for room in that queue before the server
    /// gives up on the subscriber: a last short try at a `dropped` event, then the
    /// subscription is closed.
    pub subscription_send_timeout: Duration,
}

/// The default [`RpcConfig::subscription_send_timeout`].
pub const SUBSCRIPTION_SEND_TIMEOUT: Duration = Duration::from_secs(5);

impl RpcConfig {
    pub fn local(port: u16) -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            // A contract deployment carries up to 1 MiB of code, 2 MiB as hex.
            max_request_bytes: 4 * 1024 * 1024,
            max_response_bytes: 16 * 1024 * 1024,
            max_connections: 256,
            max_subscriptions_per_connection: 64,
            max_batch_len: 64,
            message_buffer_capacity: 1024,
            subscription_send_timeout: SUBSCRIPTION_SEND_TIMEOUT,
        }
    }
}

/// The OpenRPC document of this API (`docs/openrpc.json`), served by `rpc_discover`.
pub const OPENRPC_JSON: &str = include_str!("../../../docs/openrpc.json");

/// Why the module could not be built.
#[derive(Debug, Error)]
pub enum ModuleError {
    #[error(transparent)]
    Register(#[from] RegisterMethodError),
    #[error("the embedded OpenRPC document is not valid JSON: {0}")]
    OpenRpc(#[from] serde_json::Error),
}

/// Why the server did not start.
#[derive(Debug, Error)]
pub enum StartError {
    #[error(transparent)]
    Module(#[from] ModuleError),
    #[error("message_buffer_capacity must be at least 1")]
    NoMessageBuffer,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The OpenRPC document, parsed (once per module).
fn openrpc_document(json: &str) -> Result<Value, ModuleError> {
    Ok(serde_json::from_str(json)?)
}

/// Builds the module with every method, plus `rpc_methods` (the names of every method and
/// subscription served) and `rpc_discover` (the OpenRPC document).
pub fn module(backend: Arc<dyn Backend>, config: &RpcConfig) -> Result<RpcModule<()>, ModuleError> {
    let openrpc = openrpc_document(OPENRPC_JSON)?;
    let api = Api::new(backend, config.subscription_send_timeout);
    let mut m = RpcModule::new(());
    m.merge(SystemApiServer::into_rpc(api.clone()))?;
    m.merge(ChainApiServer::into_rpc(api.clone()))?;
    m.merge(AuthorApiServer::into_rpc(api.clone()))?;
    m.merge(TxApiServer::into_rpc(api.clone()))?;
    m.merge(StateApiServer::into_rpc(api.clone()))?;
    m.merge(MarketApiServer::into_rpc(api.clone()))?;
    m.merge(ExplorerApiServer::into_rpc(api))?;
    m.register_method("rpc_discover", move |_, _, _| openrpc.clone())?;
    let mut names: Vec<String> = m.method_names().map(String::from).collect();
    names.push("rpc_methods".into());
    names.sort();
    m.register_method("rpc_methods", move |_, _, _| json!({ "methods": names }))?;
    Ok(m)
}

/// Starts the server; it runs until the handle is stopped. Returns the bound address.
pub async fn start(
    config: &RpcConfig,
    backend: Arc<dyn Backend>,
) -> Result<(SocketAddr, ServerHandle), StartError> {
    if config.message_buffer_capacity == 0 {
        return Err(StartError::NoMessageBuffer);
    }
    let module = module(backend, config)?;
    let server_config = ServerConfig::builder()
        .max_request_body_size(config.max_request_bytes)
        .max_response_body_size(config.max_response_bytes)
        .max_connections(config.max_connections)
        .max_subscriptions_per_connection(config.max_subscriptions_per_connection)
        .set_batch_request_config(BatchRequestConfig::Limit(config.max_batch_len))
        .set_message_buffer_capacity(config.message_buffer_capacity)
        .build();
    let server = Server::builder()
        .set_config(server_config)
        .build(config.addr)
        .await?;
    let addr = server.local_addr()?;
    Ok((addr, server.start(module)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_document_parses_and_a_broken_one_is_an_error() {
        assert!(openrpc_document(OPENRPC_JSON).is_ok());
        assert!(matches!(
            openrpc_document("{\"openrpc\":"),
            Err(ModuleError::OpenRpc(_))
        ));
    }
}
