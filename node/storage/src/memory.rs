//! The in-memory twin of [`crate::RocksStore`].

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use v2v_primitives::{Block, Hash, PublicKey, Receipt};

use crate::{BlockCommit, Result, StateEntry, Store, TxLocation, check_above, check_extends};

#[derive(Debug, Default)]
struct Inner {
    blocks: BTreeMap<Hash, Block>,
    heights: BTreeMap<u64, Hash>,
    certs: BTreeMap<Hash, Vec<u8>>,
    txs: BTreeMap<Hash, TxLocation>,
    receipts: BTreeMap<(u64, u32), Receipt>,
    state: BTreeMap<Vec<u8>, Vec<u8>>,
    nonces: BTreeMap<PublicKey, u64>,
    accumulator: Option<Vec<u8>>,
    head: Option<(u64, Hash)>,
    engine: Option<Vec<u8>>,
    base: u64,
    history: std::collections::BTreeSet<(PublicKey, u64, u32)>,
    tx_count: u64,
}

#[derive(Debug, Default)]
pub struct MemStore {
    inner: Mutex<Inner>,
}

impl MemStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Commits mutate under the lock without panicking paths; recover from poisoning.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Store for MemStore {
    fn preload_state(&self, entries: &mut dyn Iterator<Item = (&[u8], &[u8])>) -> Result<()> {
        let mut inner = self.lock();
        if let Some((height, _)) = inner.head {
            return Err(crate::StoreError::NotEmpty(height));
        }
        inner.state = entries.map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
        Ok(())
    }

    fn head(&self) -> Result<Option<(u64, Hash)>> {
        Ok(self.lock().head)
    }

    fn block(&self, hash: &Hash) -> Result<Option<Block>> {
        Ok(self.lock().blocks.get(hash).cloned())
    }

    fn hash_at(&self, height: u64) -> Result<Option<Hash>> {
        Ok(self.lock().heights.get(&height).copied())
    }

    fn certificate(&self, hash: &Hash) -> Result<Option<Vec<u8>>> {
        Ok(self.lock().certs.get(hash).cloned())
    }

    fn tx_location(&self, tx: &Hash) -> Result<Option<TxLocation>> {
        Ok(self.lock().txs.get(tx).copied())
    }

    fn receipt(&self, at: TxLocation) -> Result<Option<Receipt>> {
        Ok(self.lock().receipts.get(&(at.height, at.index)).cloned())
    }

    fn contract_entries(&self) -> Box<dyn Iterator<Item = Result<StateEntry>> + '_> {
        let entries: Vec<_> = self
            .lock()
            .state
            .iter()
            .map(|(k, v)| Ok((k.clone().into(), v.clone().into())))
            .collect();
        Box::new(entries.into_iter())
    }

    fn nonces(&self) -> Result<BTreeMap<PublicKey, u64>> {
        Ok(self.lock().nonces.clone())
    }

    fn accumulator(&self) -> Result<Option<Vec<u8>>> {
        Ok(self.lock().accumulator.clone())
    }

    fn nonce(&self, who: &PublicKey) -> Result<u64> {
        Ok(self.lock().nonces.get(who).copied().unwrap_or(0))
    }

    fn save_engine_state(&self, state: &[u8]) -> Result<()> {
        self.lock().engine = Some(state.to_vec());
        Ok(())
    }

    fn engine_state(&self) -> Result<Option<Vec<u8>>> {
        Ok(self.lock().engine.clone())
    }

    fn commit(&self, c: &BlockCommit) -> Result<()> {
        let mut g = self.lock();
        check_extends(g.head, &c.block)?;
        Self::apply(&mut g, c);
        Ok(())
    }

    fn install_snapshot(&self, c: &BlockCommit) -> Result<()> {
        let mut g = self.lock();
        check_above(g.head, &c.block)?;
        Self::apply(&mut g, c);
        g.base = c.block.header.height;
        Ok(())
    }

    fn history_base(&self) -> Result<u64> {
        Ok(self.lock().base)
    }

    fn history(
        &self,
        who: &PublicKey,
        before: Option<TxLocation>,
        limit: usize,
    ) -> Result<Vec<TxLocation>> {
        let end = before.map_or((*who, u64::MAX, u32::MAX), |b| (*who, b.height, b.index));
        let g = self.lock();
        let out: Vec<TxLocation> = g
            .history
            .range((*who, 0, 0)..=end)
            .rev()
            .map(|&(_, height, index)| TxLocation { height, index })
            .filter(|&at| Some(at) != before)
            .take(limit)
            .collect();
        Ok(out)
    }

    fn tx_count(&self) -> Result<u64> {
        Ok(self.lock().tx_count)
    }
}

impl MemStore {
    fn apply(g: &mut Inner, c: &BlockCommit) {
        let hash = c.block.hash();
        let height = c.block.header.height;
        for (i, (tx, r)) in c.block.txs.iter().zip(&c.receipts).enumerate() {
            let loc = TxLocation {
                height,
                index: i as u32,
            };
            g.txs.insert(tx.hash(), loc);
            g.receipts.insert((height, i as u32), r.clone());
            g.history.insert((tx.tx.signer, height, i as u32));
        }
        for (k, v) in &c.contract_writes {
            match v {
                Some(v) => g.state.insert(k.clone(), v.clone()),
                None => g.state.remove(k),
            };
        }
        for (k, n) in &c.nonce_writes {
            g.nonces.insert(*k, *n);
        }
        g.blocks.insert(hash, c.block.clone());
        g.heights.insert(height, hash);
        g.certs.insert(hash, c.certificate.clone());
        g.accumulator = Some(c.accumulator.clone());
        g.tx_count += c.block.txs.len() as u64;
        g.head = Some((height, hash));
    }
}
