//! The RPC backend: answers the API from the store, the executor and the mempool.

use std::sync::Arc;

use serde_json::value::RawValue;

use tokio::sync::broadcast;
use v2v_executor::UpgradeOutcome;
use v2v_primitives::{Block, Hash, Header, PublicKey, Receipt, SignedTransaction};
use v2v_rpc::{
    Backend, BackendError, ChainInfo, ContractInfo, FinalizedBlock, Health, PeerInfo,
    PendingUpgradeInfo, SubmitError, UpgradeInfo, ValidatorInfo,
};
use v2v_storage::{Store, TxLocation};

use crate::Shared;

pub(crate) struct NodeBackend(pub Arc<Shared>);

fn internal(e: impl std::fmt::Display) -> BackendError {
    BackendError::Internal(e.to_string())
}

impl Backend for NodeBackend {
    fn health(&self) -> Health {
        let h = self.0.finalized();
        Health {
            peers: self.0.connected().len() as u32,
            is_syncing: false,
            best_height: h,
            finalized_height: h,
        }
    }

    fn chain_info(&self) -> ChainInfo {
        let s = &self.0.spec;
        ChainInfo {
            name: s.name.clone(),
            id: s.id.clone(),
            genesis_hash: self.0.genesis_hash,
            engine: s.consensus.engine.as_str().into(),
            validators: s.validators.len() as u32,
            contract_version: self.0.contract().active.version,
        }
    }

    fn finalized_head(&self) -> Result<(u64, Hash), BackendError> {
        self.0
            .store
            .head()
            .map_err(internal)?
            .ok_or_else(|| internal("no head"))
    }

    fn hash_at(&self, height: u64) -> Result<Option<Hash>, BackendError> {
        self.0.store.hash_at(height).map_err(internal)
    }

    fn block_by_hash(&self, hash: &Hash) -> Result<Option<(Block, Vec<Receipt>)>, BackendError> {
        let Some(block) = self.0.store.block(hash).map_err(internal)? else {
            return Ok(None);
        };
        let mut receipts = Vec::with_capacity(block.txs.len());
        for index in 0..block.txs.len() as u32 {
            let at = TxLocation {
                height: block.header.height,
                index,
            };
            receipts.push(
                self.0
                    .store
                    .receipt(at)
                    .map_err(internal)?
                    .ok_or_else(|| internal(format!("receipt {index} of block {hash} missing")))?,
            );
        }
        Ok(Some((block, receipts)))
    }

    fn certificate(&self, hash: &Hash) -> Result<Option<Vec<u8>>, BackendError> {
        self.0.store.certificate(hash).map_err(internal)
    }

    fn submit(&self, bytes: Vec<u8>) -> Result<Hash, SubmitError> {
        let tx = self.0.admit(&bytes)?;
        if let Some(net) = &self.0.net {
            net.gossip(bytes);
        }
        Ok(tx.hash())
    }

    fn next_nonce(&self, who: &PublicKey) -> u64 {
        let finalized = self.0.store.nonce(who).unwrap_or(0);
        self.0.mempool().pending_next_nonce(who, finalized)
    }

    fn transaction(
        &self,
        hash: &Hash,
    ) -> Result<Option<(u64, u32, SignedTransaction, Receipt)>, BackendError> {
        let Some(at) = self.0.store.tx_location(hash).map_err(internal)? else {
            return Ok(None);
        };
        let block = self
            .0
            .store
            .block_at(at.height)
            .map_err(internal)?
            .ok_or_else(|| internal(format!("block {} missing", at.height)))?;
        let tx = block
            .txs
            .get(at.index as usize)
            .cloned()
            .ok_or_else(|| internal("tx index points past the block"))?;
        let receipt = self
            .0
            .store
            .receipt(at)
            .map_err(internal)?
            .ok_or_else(|| internal("receipt missing"))?;
        Ok(Some((at.height, at.index, tx, receipt)))
    }

    fn query(
        &self,
        method: &str,
        args_json: &str,
        at_height: Option<u64>,
    ) -> Result<serde_json::Value, BackendError> {
        let head = self.0.finalized();
        if let Some(h) = at_height
            && h != head
        {
            return Err(BackendError::StateUnavailable(h));
        }
        self.0
            .executor()
            .query(method, args_json, head)
            .map_err(|e| match e {
                v2v_executor::ExecutorError::Query(m) => BackendError::Query(m),
                other => BackendError::Internal(other.to_string()),
            })
    }

    fn subscribe_heads(&self) -> broadcast::Receiver<Header> {
        self.0.heads.subscribe()
    }

    fn contract(&self) -> ContractInfo {
        let status = self.0.contract();
        ContractInfo {
            code_hash: status.active.code_hash,
            version: status.active.version,
            deployed_at: status.active.activated_at,
            deploy_tx: status.active.deploy_tx,
            pending: status.pending.as_ref().map(|p| PendingUpgradeInfo {
                version: p.version,
                code_hash: p.code_hash,
                code_bytes: p.code_bytes,
                deployed_at: p.deployed_at,
                activate_at: p.activate_at,
                deploy_tx: p.deploy_tx,
                deployer: p.deployer.to_hex(),
            }),
            history: status
                .history
                .iter()
                .map(|u| UpgradeInfo {
                    version: u.version,
                    code_hash: u.code_hash,
                    deployed_at: u.deployed_at,
                    activate_at: u.activate_at,
                    deploy_tx: u.deploy_tx,
                    deployer: u.deployer.to_hex(),
                    previous_version: u.previous_version,
                    outcome: match u.outcome {
                        UpgradeOutcome::Activated => "activated".into(),
                        UpgradeOutcome::Failed => "failed".into(),
                    },
                    error: u.error.clone(),
                })
                .collect(),
        }
    }

    fn metrics(&self) -> v2v_rpc::NodeMetrics {
        self.0.metrics.snapshot()
    }

    fn chain_spec(&self) -> Result<Box<RawValue>, BackendError> {
        let path = &self.0.spec_file;
        let failed = |e: &dyn std::fmt::Display| {
            BackendError::Internal(format!("reading the chain spec {}: {e}", path.display()))
        };
        let len = std::fs::metadata(path).map_err(|e| failed(&e))?.len();
        // The JSON-RPC envelope around it takes a few more bytes.
        if len.saturating_add(1024) > self.0.spec_response_limit {
            return Err(BackendError::TooLarge(format!(
                "the chain spec is {len} bytes, over the RPC response limit of {} bytes; copy {} from the node instead",
                self.0.spec_response_limit,
                path.display()
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|e| failed(&e))?;
        RawValue::from_string(text).map_err(|e| failed(&e))
    }

    fn subscribe_blocks(&self) -> broadcast::Receiver<Arc<FinalizedBlock>> {
        self.0.blocks.subscribe()
    }

    fn is_pending(&self, hash: &Hash) -> bool {
        self.0.mempool().contains(hash)
    }

    fn pending(&self, limit: usize) -> Vec<SignedTransaction> {
        self.0.mempool().candidates(limit)
    }

    fn peers(&self) -> Vec<PeerInfo> {
        let spec = &self.0.spec;
        let known = spec
            .validators
            .iter()
            .map(|v| (v.ed25519, "validator", &v.name))
            .chain(
                spec.full_nodes
                    .iter()
                    .map(|f| (f.ed25519, "fullNode", &f.name)),
            );
        let mut by_peer = std::collections::BTreeMap::new();
        for (key, role, name) in known {
            if let Ok(p) = v2v_network::peer_id_of(&key.0) {
                by_peer.insert(p, (role, name.clone()));
            }
        }
        self.0
            .connected()
            .iter()
            .map(|p| {
                let (role, name) = by_peer
                    .get(p)
                    .cloned()
                    .unwrap_or(("unknown", String::new()));
                PeerInfo {
                    peer_id: p.to_string(),
                    role: role.into(),
                    name,
                }
            })
            .collect()
    }

    fn validators(&self) -> Vec<ValidatorInfo> {
        let connected = self.0.connected().clone();
        let last = self.0.last_proposed().clone();
        let me = self.0.key.public();
        self.0
            .spec
            .validators
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let is_connected = v.ed25519 == me
                    || v2v_network::peer_id_of(&v.ed25519.0).is_ok_and(|p| connected.contains(&p));
                ValidatorInfo {
                    index: i as u32,
                    name: v.name.clone(),
                    ed25519: v.ed25519.to_hex(),
                    bls: v.bls.clone(),
                    address: v.address.clone(),
                    connected: is_connected,
                    last_seen_height: last.get(&v.ed25519).copied(),
                }
            })
            .collect()
    }

    fn history(
        &self,
        who: &PublicKey,
        before: Option<(u64, u32)>,
        limit: usize,
    ) -> Result<Vec<(u64, u32)>, BackendError> {
        let before = before.map(|(height, index)| TxLocation { height, index });
        Ok(self
            .0
            .store
            .history(who, before, limit)
            .map_err(internal)?
            .into_iter()
            .map(|at| (at.height, at.index))
            .collect())
    }

    fn tx_count(&self) -> Result<u64, BackendError> {
        self.0.store.tx_count().map_err(internal)
    }
}
