//! Starting the server: the modules merged into one, with limits.

use std::net::SocketAddr;
use std::sync::Arc;

use jsonrpsee::RpcModule;
use jsonrpsee::server::{BatchRequestConfig, Server, ServerConfig, ServerHandle};
use serde_json::json;
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
            // A contract deployment carries up to 1 MiB of code, 2 MiB as hex.
            max_request_bytes: 4 * 1024 * 1024,
            max_response_bytes: 16 * 1024 * 1024,
            max_connections: 256,
            max_subscriptions_per_connection: 64,
            max_batch_len: 64,
        }
    }
}

/// Builds the module with every method, plus `rpc_methods`.
pub fn module(
    backend: Arc<dyn Backend>,
) -> Result<RpcModule<()>, jsonrpsee::core::RegisterMethodError> {
    let api = Api::new(backend);
    let mut m = RpcModule::new(());
    m.merge(SystemApiServer::into_rpc(api.clone()))?;
    m.merge(ChainApiServer::into_rpc(api.clone()))?;
    m.merge(AuthorApiServer::into_rpc(api.clone()))?;
    m.merge(TxApiServer::into_rpc(api.clone()))?;
    m.merge(StateApiServer::into_rpc(api.clone()))?;
    m.merge(MarketApiServer::into_rpc(api.clone()))?;
    m.merge(ExplorerApiServer::into_rpc(api))?;
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
