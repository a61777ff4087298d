//! An in-memory [`Backend`] for the server's tests: a chain of synthetic blocks that the test
//! finalizes one by one, announced on broadcast channels of a chosen (small) capacity. Only
//! the headers are kept (blocks read back have no transactions).

#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use serde_json::json;
use tokio::sync::broadcast;
use v2v_primitives::{
    Block, Hash, Header, Keypair, PublicKey, Receipt, SignedTransaction, UnsignedTransaction,
};
use v2v_rpc::{
    Backend, BackendError, ChainInfo, ContractInfo, FinalizedBlock, Health, PeerInfo, SubmitError,
    ValidatorInfo,
};

pub struct TestBackend {
    blocks: broadcast::Sender<Arc<FinalizedBlock>>,
    heads: broadcast::Sender<Header>,
    chain: Mutex<Vec<Header>>,
    key: Keypair,
}

fn header(height: u64, parent_hash: Hash) -> Header {
    Header {
        height,
        parent_hash,
        state_root: Hash([1; 32]),
        tx_root: Hash([2; 32]),
        proposer: PublicKey([3; 32]),
        view: height,
        timestamp: 1_700_000_000_000 + height * 1000,
    }
}

impl TestBackend {
    /// A chain at genesis whose broadcasts hold `buffer` blocks (and heads).
    pub fn new(buffer: usize) -> Arc<Self> {
        let (blocks, _) = broadcast::channel(buffer);
        let (heads, _) = broadcast::channel(buffer);
        Arc::new(Self {
            blocks,
            heads,
            chain: Mutex::new(vec![header(0, Hash([0; 32]))]),
            key: Keypair::from_name("alice"),
        })
    }

    /// Finalizes the next block: one transaction whose receipt holds a `tradeMatched` event
    /// for trade id = the block's height, with `padding` bytes of extra event data (to make
    /// notifications large). Announces it; returns its height.
    pub fn finalize_trade_block(&self, padding: usize) -> u64 {
        let mut chain = self.chain.lock().expect("test backend lock");
        let parent = chain.last().expect("genesis").clone();
        let height = parent.height + 1;
        let tx = UnsignedTransaction {
            chain_id: Hash([9; 32]),
            signer: self.key.public(),
            nonce: height,
            method: "buy".into(),
            args: vec![],
            memo: vec![],
        }
        .sign(&self.key);
        let event = json!({
            "type": "tradeMatched",
            "id": height,
            "consumer": "alice",
            "provider": "bob",
            "padding": "x".repeat(padding),
        });
        let fb = Arc::new(FinalizedBlock {
            block: Block {
                header: header(height, parent.hash()),
                txs: vec![tx],
            },
            receipts: vec![Receipt {
                success: true,
                error: None,
                events: vec![event.to_string()],
                fuel_used: 1,
            }],
        });
        chain.push(fb.block.header.clone());
        // No receiver is not an error: nobody listens yet.
        let _ = self.heads.send(fb.block.header.clone());
        let _ = self.blocks.send(fb);
        height
    }

    fn find(&self, hash: &Hash) -> Option<Header> {
        let chain = self.chain.lock().expect("test backend lock");
        chain.iter().find(|h| h.hash() == *hash).cloned()
    }

    /// How many subscriptions listen to finalized blocks (a subscription's task holds one
    /// receiver until it ends).
    pub fn block_listeners(&self) -> usize {
        self.blocks.receiver_count()
    }

    /// How many subscriptions listen to finalized heads.
    pub fn head_listeners(&self) -> usize {
        self.heads.receiver_count()
    }
}

impl Backend for TestBackend {
    fn health(&self) -> Health {
        let h = self.finalized_head().map(|(h, _)| h).unwrap_or(0);
        Health {
            peers: 0,
            is_syncing: false,
            best_height: h,
            finalized_height: h,
        }
    }

    fn chain_info(&self) -> ChainInfo {
        ChainInfo {
            name: "test".into(),
            id: "v2v-test".into(),
            genesis_hash: header(0, Hash([0; 32])).hash(),
            engine: "solo".into(),
            validators: 1,
            contract_version: 1,
        }
    }

    fn finalized_head(&self) -> Result<(u64, Hash), BackendError> {
        let chain = self.chain.lock().expect("test backend lock");
        let h = chain.last().expect("genesis");
        Ok((h.height, h.hash()))
    }

    fn hash_at(&self, height: u64) -> Result<Option<Hash>, BackendError> {
        let chain = self.chain.lock().expect("test backend lock");
        Ok(chain.get(height as usize).map(Header::hash))
    }

    fn block_by_hash(&self, hash: &Hash) -> Result<Option<(Block, Vec<Receipt>)>, BackendError> {
        Ok(self.find(hash).map(|header| {
            let block = Block {
                header,
                txs: vec![],
            };
            (block, vec![])
        }))
    }

    fn certificate(&self, hash: &Hash) -> Result<Option<Vec<u8>>, BackendError> {
        Ok(self.find(hash).map(|_| vec![]))
    }

    fn submit(&self, _bytes: Vec<u8>) -> Result<Hash, SubmitError> {
        Err(SubmitError::ShuttingDown)
    }

    fn next_nonce(&self, _who: &PublicKey) -> u64 {
        0
    }

    fn transaction(
        &self,
        _hash: &Hash,
    ) -> Result<Option<(u64, u32, SignedTransaction, Receipt)>, BackendError> {
        Ok(None)
    }

    fn query(
        &self,
        method: &str,
        _args_json: &str,
        _at_height: Option<u64>,
    ) -> Result<serde_json::Value, BackendError> {
        Err(BackendError::Query(format!("no contract: {method}")))
    }

    fn subscribe_heads(&self) -> broadcast::Receiver<Header> {
        self.heads.subscribe()
    }

    fn contract(&self) -> ContractInfo {
        ContractInfo {
            code_hash: Hash([4; 32]),
            version: 1,
            deployed_at: 0,
            deploy_tx: None,
            pending: None,
            history: vec![],
        }
    }

    fn chain_spec(&self) -> Result<Box<serde_json::value::RawValue>, BackendError> {
        serde_json::value::RawValue::from_string(r#"{"name": "test"}"#.into())
            .map_err(|e| BackendError::Internal(e.to_string()))
    }

    fn subscribe_blocks(&self) -> broadcast::Receiver<Arc<FinalizedBlock>> {
        self.blocks.subscribe()
    }

    fn is_pending(&self, _hash: &Hash) -> bool {
        false
    }

    fn pending(&self, _limit: usize) -> Vec<SignedTransaction> {
        vec![]
    }

    fn peers(&self) -> Vec<PeerInfo> {
        vec![]
    }

    fn validators(&self) -> Vec<ValidatorInfo> {
        vec![]
    }

    fn history(
        &self,
        _who: &PublicKey,
        _before: Option<(u64, u32)>,
        _limit: usize,
    ) -> Result<Vec<(u64, u32)>, BackendError> {
        Ok(vec![])
    }

    fn tx_count(&self) -> Result<u64, BackendError> {
        Ok(0)
    }
}
