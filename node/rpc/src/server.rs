//! Starting the server: the modules merged into one, with limits.

use std::net::SocketAddr;
use std::sync::Arc;

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
}

impl RpcConfig {
    pub fn local(port: u16) -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            max_request_bytes: 1024 * 1024,
            max_response_bytes: 16 * 1024 * 1024,
            max_connections: 256,
            max_subscriptions_per_connection: 64,
            max_batch_len: 64,
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

/// Builds the module with every method, plus `rpc_methods` (the names of every method and
/// subscription served) and `rpc_discover` (the OpenRPC document).
pub fn module(backend: Arc<dyn Backend>) -> Result<RpcModule<()>, ModuleError> {
    let api = Api::new(backend);
    let mut m = RpcModule::new(());
    m.merge(SystemApiServer::into_rpc(api.clone()))?;
    m.merge(ChainApiServer::into_rpc(api.clone()))?;
    m.merge(AuthorApiServer::into_rpc(api.clone()))?;
    m.merge(TxApiServer::into_rpc(api.clone()))?;
    m.merge(StateApiServer::into_rpc(api.clone()))?;
    m.merge(MarketApiServer::into_rpc(api.clone()))?;
    m.merge(ExplorerApiServer::into_rpc(api))?;
    let openrpc: Value = serde_json::from_str(OPENRPC_JSON)?;
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
) -> std::io::Result<(SocketAddr, ServerHandle)> {
    let server_config = ServerConfig::builder()
        .max_request_body_size(config.max_request_bytes)
        .max_response_body_size(config.max_response_bytes)
        .max_connections(config.max_connections)
        .max_subscriptions_per_connection(config.max_subscriptions_per_connection)
        .set_batch_request_config(BatchRequestConfig::Limit(config.max_batch_len))
        .build();
    let server = Server::builder()
        .set_config(server_config)
        .build(config.addr)
        .await?;
    let addr = server.local_addr()?;
    let module = module(backend).map_err(std::io::Error::other)?;
    Ok((addr, server.start(module)))
}
