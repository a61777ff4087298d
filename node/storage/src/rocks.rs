//! The RocksDB store: one column family per kind of record, one `WriteBatch` per block.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use rocksdb::{ColumnFamily, ColumnFamilyDescriptor, DB, IteratorMode, Options, WriteBatch};
use v2v_primitives::{Block, Hash, PublicKey, Receipt};

use crate::{
    BlockCommit, Result, StateEntry, Store, StoreError, TxLocation, check_above, check_extends,
    decode_block, decode_receipt,
};

const CF_BLOCKS: &str = "blocks"; // block hash -> encoded block
const CF_HEIGHTS: &str = "heights"; // height (u64 BE) -> block hash
const CF_CERTS: &str = "certificates"; // block hash -> encoded certificate
const CF_TXS: &str = "txs"; // tx hash -> height (u64 BE) ++ index (u32 BE)
const CF_RECEIPTS: &str = "receipts"; // height (u64 BE) ++ index (u32 BE) -> receipt
const CF_STATE: &str = "state"; // contract key -> value
const CF_NONCES: &str = "nonces"; // public key -> next nonce (u64 LE)
const CF_META: &str = "meta"; // "head" -> height (u64 BE) ++ hash; "accumulator" -> bytes
const CF_HISTORY: &str = "history"; // signer public key ++ height (u64 BE) ++ index (u32 BE) -> empty
const ALL_CFS: [&str; 9] = [
    CF_BLOCKS,
    CF_HEIGHTS,
    CF_CERTS,
    CF_TXS,
    CF_RECEIPTS,
    CF_STATE,
    CF_NONCES,
    CF_META,
    CF_HISTORY,
];
const HEAD_KEY: &[u8] = b"head";
const ACCUMULATOR_KEY: &[u8] = b"accumulator";
const ENGINE_KEY: &[u8] = b"engine";
const BASE_KEY: &[u8] = b"base";
const TX_COUNT_KEY: &[u8] = b"txcount";

/// A block's writes, assembled but not yet applied. Dropping it writes nothing.
pub struct PreparedCommit {
    batch: WriteBatch,
    block: Block,
}

impl std::fmt::Debug for PreparedCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PreparedCommit(height {})", self.block.header.height)
    }
}

pub struct RocksStore {
    db: DB,
    /// Serializes commits so that the head check and the write are one step.
    commit_lock: Mutex<()>,
}

impl std::fmt::Debug for RocksStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RocksStore({})", self.db.path().display())
    }
}

fn db_err(e: rocksdb::Error) -> StoreError {
    StoreError::Db(e.into_string())
}

fn location_key(height: u64, index: u32) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..8].copy_from_slice(&height.to_be_bytes());
    k[8..].copy_from_slice(&index.to_be_bytes());
    k
}

fn fixed<const N: usize>(bytes: &[u8], what: &str) -> Result<[u8; N]> {
    <[u8; N]>::try_from(bytes)
        .map_err(|_| StoreError::Corrupt(format!("{what}: expected {N} bytes")))
}

impl RocksStore {
    /// Opens (or creates) the store in `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        let cfs = ALL_CFS
            .iter()
            .map(|name| ColumnFamilyDescriptor::new(*name, Options::default()));
        let db = DB::open_cf_descriptors(&opts, path, cfs).map_err(db_err)?;
        Ok(Self {
            db,
            commit_lock: Mutex::new(()),
        })
    }

    fn cf(&self, name: &str) -> Result<&ColumnFamily> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| StoreError::Corrupt(format!("column family {name} missing")))
    }

    fn get(&self, cf: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.db.get_cf(self.cf(cf)?, key).map_err(db_err)
    }

    /// Assembles a block's batch without writing it.
    pub fn prepare(&self, c: &BlockCommit) -> Result<PreparedCommit> {
        let mut batch = WriteBatch::default();
        let hash = c.block.hash();
        let height = c.block.header.height;
        batch.put_cf(self.cf(CF_BLOCKS)?, hash.0, c.block.encode());
        batch.put_cf(self.cf(CF_HEIGHTS)?, height.to_be_bytes(), hash.0);
        batch.put_cf(self.cf(CF_CERTS)?, hash.0, &c.certificate);
        let (txs, receipts) = (self.cf(CF_TXS)?, self.cf(CF_RECEIPTS)?);
        let history = self.cf(CF_HISTORY)?;
        for (i, (tx, r)) in c.block.txs.iter().zip(&c.receipts).enumerate() {
            let loc = location_key(height, i as u32);
            batch.put_cf(txs, tx.hash().0, loc);
            batch.put_cf(receipts, loc, r.encode());
            let mut k = tx.tx.signer.0.to_vec();
            k.extend_from_slice(&loc);
            batch.put_cf(history, k, []);
        }
        let state = self.cf(CF_STATE)?;
        for (k, v) in &c.contract_writes {
            match v {
                Some(v) => batch.put_cf(state, k, v),
                None => batch.delete_cf(state, k),
            }
        }
        let nonces = self.cf(CF_NONCES)?;
        for (k, n) in &c.nonce_writes {
            batch.put_cf(nonces, k.0, n.to_le_bytes());
        }
        let meta = self.cf(CF_META)?;
        batch.put_cf(meta, ACCUMULATOR_KEY, &c.accumulator);
        let count = self.tx_count()? + c.block.txs.len() as u64;
        batch.put_cf(meta, TX_COUNT_KEY, count.to_be_bytes());
        let mut head = height.to_be_bytes().to_vec();
        head.extend_from_slice(&hash.0);
        batch.put_cf(meta, HEAD_KEY, head);
        Ok(PreparedCommit {
            batch,
            block: c.block.clone(),
        })
    }

    /// Applies a prepared batch atomically, after checking it still extends the head.
    pub fn write(&self, p: PreparedCommit) -> Result<()> {
        let _guard = self.commit_lock.lock().unwrap_or_else(|e| e.into_inner());
        check_extends(self.head()?, &p.block)?;
        self.db.write(p.batch).map_err(db_err)
    }

    /// Flushes memtables to disk (used before a clean shutdown).
    pub fn flush(&self) -> Result<()> {
        for cf in ALL_CFS {
            self.db.flush_cf(self.cf(cf)?).map_err(db_err)?;
        }
        Ok(())
    }
}

impl Store for RocksStore {
    fn head(&self) -> Result<Option<(u64, Hash)>> {
        match self.get(CF_META, HEAD_KEY)? {
            None => Ok(None),
            Some(v) if v.len() == 40 => Ok(Some((
                u64::from_be_bytes(fixed(&v[..8], "head height")?),
                Hash(fixed(&v[8..], "head hash")?),
            ))),
            Some(_) => Err(StoreError::Corrupt("head pointer".into())),
        }
    }

    fn block(&self, hash: &Hash) -> Result<Option<Block>> {
        self.get(CF_BLOCKS, &hash.0)?
            .map(|b| decode_block(&b))
            .transpose()
    }

    fn hash_at(&self, height: u64) -> Result<Option<Hash>> {
        self.get(CF_HEIGHTS, &height.to_be_bytes())?
            .map(|v| fixed(&v, "height index").map(Hash))
            .transpose()
    }

    fn certificate(&self, hash: &Hash) -> Result<Option<Vec<u8>>> {
        self.get(CF_CERTS, &hash.0)
    }

    fn tx_location(&self, tx: &Hash) -> Result<Option<TxLocation>> {
        match self.get(CF_TXS, &tx.0)? {
            None => Ok(None),
            Some(v) if v.len() == 12 => Ok(Some(TxLocation {
                height: u64::from_be_bytes(fixed(&v[..8], "tx index")?),
                index: u32::from_be_bytes(fixed(&v[8..], "tx index")?),
            })),
            Some(_) => Err(StoreError::Corrupt("tx index".into())),
        }
    }

    fn receipt(&self, at: TxLocation) -> Result<Option<Receipt>> {
        self.get(CF_RECEIPTS, &location_key(at.height, at.index))?
            .map(|v| decode_receipt(&v))
            .transpose()
    }

    fn contract_entries(&self) -> Box<dyn Iterator<Item = Result<StateEntry>> + '_> {
        match self.cf(CF_STATE) {
            Ok(cf) => Box::new(
                self.db
                    .iterator_cf(cf, IteratorMode::Start)
                    .map(|item| item.map_err(db_err)),
            ),
            Err(e) => Box::new(std::iter::once(Err(e))),
        }
    }

    fn nonces(&self) -> Result<BTreeMap<PublicKey, u64>> {
        let mut out = BTreeMap::new();
        for item in self
            .db
            .iterator_cf(self.cf(CF_NONCES)?, IteratorMode::Start)
        {
            let (k, v) = item.map_err(db_err)?;
            out.insert(
                PublicKey(fixed(&k, "nonce key")?),
                u64::from_le_bytes(fixed(&v, "nonce")?),
            );
        }
        Ok(out)
    }

    fn accumulator(&self) -> Result<Option<Vec<u8>>> {
        self.get(CF_META, ACCUMULATOR_KEY)
    }

    fn nonce(&self, who: &PublicKey) -> Result<u64> {
        match self.get(CF_NONCES, &who.0)? {
            None => Ok(0),
            Some(v) => Ok(u64::from_le_bytes(fixed(&v, "nonce")?)),
        }
    }

    fn save_engine_state(&self, state: &[u8]) -> Result<()> {
        let mut opts = rocksdb::WriteOptions::default();
        // Votes must survive a crash before they are sent: fsync.
        opts.set_sync(true);
        self.db
            .put_cf_opt(self.cf(CF_META)?, ENGINE_KEY, state, &opts)
            .map_err(db_err)
    }

    fn engine_state(&self) -> Result<Option<Vec<u8>>> {
        self.get(CF_META, ENGINE_KEY)
    }

    fn commit(&self, c: &BlockCommit) -> Result<()> {
        let p = self.prepare(c)?;
        self.write(p)
    }

    fn preload_state(&self, entries: &mut dyn Iterator<Item = (&[u8], &[u8])>) -> Result<()> {
        const CHUNK: usize = 4096;
        let _guard = self.commit_lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((height, _)) = self.head()? {
            return Err(StoreError::NotEmpty(height));
        }
        let state = self.cf(CF_STATE)?;
        let mut batch = WriteBatch::default();
        for item in self.db.iterator_cf(state, IteratorMode::Start) {
            let (k, _) = item.map_err(db_err)?;
            batch.delete_cf(state, k);
            if batch.len() >= CHUNK {
                self.db.write(std::mem::take(&mut batch)).map_err(db_err)?;
            }
        }
        for (k, v) in entries {
            batch.put_cf(state, k, v);
            if batch.len() >= CHUNK {
                self.db.write(std::mem::take(&mut batch)).map_err(db_err)?;
            }
        }
        self.db.write(batch).map_err(db_err)
    }

    fn install_snapshot(&self, c: &BlockCommit) -> Result<()> {
        let mut p = self.prepare(c)?;
        p.batch.put_cf(
            self.cf(CF_META)?,
            BASE_KEY,
            c.block.header.height.to_be_bytes(),
        );
        let _guard = self.commit_lock.lock().unwrap_or_else(|e| e.into_inner());
        check_above(self.head()?, &p.block)?;
        self.db.write(p.batch).map_err(db_err)
    }

    fn history(
        &self,
        who: &PublicKey,
        before: Option<TxLocation>,
        limit: usize,
    ) -> Result<Vec<TxLocation>> {
        let mut from = who.0.to_vec();
        match before {
            Some(at) => from.extend_from_slice(&location_key(at.height, at.index)),
            None => from.extend_from_slice(&[0xff; 12]),
        }
        let mode = IteratorMode::From(&from, rocksdb::Direction::Reverse);
        let mut out = Vec::new();
        for item in self.db.iterator_cf(self.cf(CF_HISTORY)?, mode) {
            let (k, _) = item.map_err(db_err)?;
            if out.len() >= limit || k.len() != 44 || k[..32] != who.0 {
                break;
            }
            let at = TxLocation {
                height: u64::from_be_bytes(fixed(&k[32..40], "history key")?),
                index: u32::from_be_bytes(fixed(&k[40..], "history key")?),
            };
            // `From` includes the start key itself: the cursor is exclusive.
            if Some(at) != before {
                out.push(at);
            }
        }
        Ok(out)
    }

    fn tx_count(&self) -> Result<u64> {
        match self.get(CF_META, TX_COUNT_KEY)? {
            None => Ok(0),
            Some(v) => Ok(u64::from_be_bytes(fixed(&v, "tx count")?)),
        }
    }

    fn history_base(&self) -> Result<u64> {
        match self.get(CF_META, BASE_KEY)? {
            None => Ok(0),
            Some(v) => Ok(u64::from_be_bytes(fixed(&v, "history base")?)),
        }
    }
}
