//! Blocks on their way to the chain: building a proposal, checking someone else's, and
//! finalizing one. Every execution runs on the finalized head and leaves the executor's
//! state there (a dry run): the state that RPC queries read is always the finalized one, and
//! a finalized block's writes are installed from its record.
//!
//! Lock order: the executor, then the mempool. The store's head and the executor's state
//! change together under the executor lock, so a check of "the parent is the head" made
//! under it holds for the execution that follows.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::{debug, info};
use v2v_consensus::Certificate;
use v2v_executor::{BlockLimits, Mode, Skipped};
use v2v_primitives::{Block, Hash, Header};
use v2v_rpc::FinalizedBlock;
use v2v_storage::{BlockCommit, Store};

use crate::Shared;
use crate::metrics::{Metrics, Stage};

/// A block executed on the head, with everything the store needs once it is final
/// (the certificate aside).
pub(crate) type Candidate = BlockCommit;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn limits(shared: &Shared) -> BlockLimits {
    let c = &shared.spec.consensus;
    BlockLimits {
        max_txs: c.max_block_txs as usize,
        max_bytes: c.max_block_bytes as usize,
    }
}

/// The finalized head: height and hash.
pub(crate) fn head(shared: &Shared) -> Result<(u64, Hash), String> {
    shared
        .store
        .head()
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "the database has no head".to_string())
}

/// The finalized head block: the parent of the next one.
fn head_block(shared: &Shared) -> Result<Block, String> {
    let (_, hash) = head(shared)?;
    shared
        .store
        .block(&hash)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("head block {hash} missing"))
}

/// Builds and dry-runs our proposal for `height` on the head, from the mempool. Stale
/// transactions (their nonce is used) leave the mempool.
pub(crate) fn build(shared: &Shared, height: u64, view: u64) -> Result<Candidate, String> {
    let out = shared
        .metrics
        .time(Stage::Build, 0, || build_on_head(shared, height, view));
    if let Ok(c) = &out {
        shared.metrics.add_items(Stage::Build, c.block.txs.len());
    }
    out
}

fn build_on_head(shared: &Shared, height: u64, view: u64) -> Result<Candidate, String> {
    let mut executor = shared.executor();
    let parent = head_block(shared)?;
    let (head_height, head_hash) = (parent.header.height, parent.hash());
    if head_height + 1 != height {
        return Err(format!(
            "asked for height {height} but the head is {head_height}"
        ));
    }
    let c = &shared.spec.consensus;
    let txs = shared.mempool().candidates(c.max_block_txs as usize * 2);
    let header = Header {
        height,
        parent_hash: head_hash,
        state_root: Hash::ZERO,
        tx_root: Hash::ZERO,
        proposer: shared.key.public(),
        view,
        // Never before the parent: block times are monotonic whatever the local clock does.
        timestamp: now_ms().max(parent.header.timestamp),
    };
    let (record, skipped) = executor
        .dry_run(header, txs, Mode::Build, limits(shared))
        .map_err(|e| e.to_string())?;
    let mut pool = shared.mempool();
    for s in skipped {
        if let Skipped::Stale(h) = s {
            pool.remove(&h);
        }
    }
    Ok(record)
}

/// Checks a block someone else made, as the next block on our head: it links to the head,
/// its proposer is a validator, its time does not go backwards, every transaction is for
/// this chain and correctly signed (those already in our mempool were checked on the way
/// in), and executing it gives the roots in its header.
pub(crate) fn verify(shared: &Shared, block: Block) -> Result<Candidate, String> {
    let n = block.txs.len();
    shared
        .metrics
        .time(Stage::Verify, n, || verify_on_head(shared, block))
}

fn verify_on_head(shared: &Shared, block: Block) -> Result<Candidate, String> {
    let mut executor = shared.executor();
    let parent = head_block(shared)?;
    let (head_height, head_hash) = (parent.header.height, parent.hash());
    let h = &block.header;
    if h.height != head_height + 1 || h.parent_hash != head_hash {
        return Err(format!(
            "block {} (parent {}) does not extend the head {head_height} ({head_hash})",
            h.height, h.parent_hash
        ));
    }
    if shared.validators.index_of(&h.proposer).is_none() {
        return Err(format!("proposer {} is not a validator", h.proposer));
    }
    if h.timestamp < parent.header.timestamp {
        return Err(format!(
            "timestamp {} is before the parent's {}",
            h.timestamp, parent.header.timestamp
        ));
    }
    if !block.tx_root_matches() {
        return Err("the transaction root does not match the transactions".into());
    }
    let c = &shared.spec.consensus;
    if block.txs.len() > c.max_block_txs as usize {
        return Err(format!(
            "{} transactions, the limit is {}",
            block.txs.len(),
            c.max_block_txs
        ));
    }
    let bytes: usize = block.txs.iter().map(|t| t.encoded().len()).sum();
    if bytes > c.max_block_bytes as usize {
        return Err(format!(
            "{bytes} bytes of transactions, the limit is {}",
            c.max_block_bytes
        ));
    }
    {
        let pool = shared.mempool();
        for tx in &block.txs {
            let max = shared.spec.max_tx_len(&tx.tx.method);
            if tx.encoded().len() > max {
                return Err(format!(
                    "transaction {} is {} bytes, the limit is {max}",
                    tx.hash(),
                    tx.encoded().len()
                ));
            }
            if tx.tx.chain_id != shared.genesis_hash {
                return Err(format!("transaction {} is for another chain", tx.hash()));
            }
            if !pool.contains(&tx.hash()) && tx.verify_signature().is_err() {
                return Err(format!("transaction {} has a bad signature", tx.hash()));
            }
        }
    }
    let (record, _) = executor
        .dry_run(block.header, block.txs, Mode::Verify, limits(shared))
        .map_err(|e| e.to_string())?;
    Ok(record)
}

/// Finalizes a candidate: one store batch with its certificate, then the executor's state,
/// the mempool and the head subscribers.
pub(crate) fn finalize(
    shared: &Shared,
    record: Candidate,
    certificate: Vec<u8>,
) -> Result<(), String> {
    let n = record.block.txs.len();
    shared
        .metrics
        .time(Stage::Commit, n, || commit(shared, record, certificate))?;
    Metrics::add(&shared.metrics.finalized_blocks, 1);
    Metrics::add(&shared.metrics.finalized_txs, n);
    Ok(())
}

fn commit(shared: &Shared, mut record: Candidate, certificate: Vec<u8>) -> Result<(), String> {
    let header = record.block.header.clone();
    {
        let mut executor = shared.executor();
        record.certificate = certificate;
        shared
            .store
            .commit(&record)
            .map_err(|e| format!("writing block {}: {e}", header.height))?;
        // The store holds the block: if installing its state failed, the executor would
        // disagree with the database, so this is fatal for block production (a restart
        // reloads the state from the database).
        executor
            .apply(&record)
            .map_err(|e| format!("installing the state of block {}: {e}", header.height))?;
        if touches_upgrade_records(&record) {
            let status = executor.contract_status();
            if let Some(p) = &status.pending {
                info!(version = p.version, activate_at = p.activate_at, code_hash = %p.code_hash, "contract upgrade deployed");
            }
            if let Some(last) = status
                .history
                .last()
                .filter(|r| r.activate_at == header.height)
            {
                info!(version = last.version, outcome = ?last.outcome, error = ?last.error, "contract upgrade at this height");
            }
            *shared.contract() = status;
        }
        let mut pool = shared.mempool();
        for tx in &record.block.txs {
            pool.remove(&tx.hash());
        }
    }
    shared
        .finalized_height
        .store(header.height, Ordering::Release);
    if record.block.txs.is_empty() {
        debug!(height = header.height, hash = %header.hash(), "finalized empty block");
    } else {
        info!(
            height = header.height,
            txs = record.block.txs.len(),
            hash = %header.hash(),
            "finalized"
        );
    }
    shared
        .last_proposed()
        .insert(header.proposer, header.height);
    let _ = shared.heads.send(header);
    let _ = shared.blocks.send(Arc::new(FinalizedBlock {
        block: record.block,
        receipts: record.receipts,
    }));
    Ok(())
}

/// Whether a block wrote the node's own keys (the contract code and upgrade records).
fn touches_upgrade_records(record: &Candidate) -> bool {
    record
        .contract_writes
        .iter()
        .any(|(k, _)| k.first() == Some(&v2v_abi::host::RESERVED_KEY_PREFIX))
}

/// Why a snapshot was not installed.
pub(crate) enum SnapshotError {
    /// The peer's snapshot does not hold up: ignore it (and ask someone else).
    Refused(String),
    /// The store took it but the executor could not follow: the node must stop (a restart
    /// reloads the state from the store).
    Fatal(String),
}

/// Installs a state snapshot taken at a certified block above our head: the certificate
/// must verify against the spec's validators and the state must hash to the block's state
/// root. Returns the block's height, hash and certificate.
pub(crate) fn install_snapshot(
    shared: &Shared,
    snapshot: crate::wire::Snapshot,
) -> Result<(u64, Hash, Certificate), SnapshotError> {
    use SnapshotError::{Fatal, Refused};
    let max_tx = shared.spec.max_decode_len();
    let block = Block::decode(&snapshot.block, max_tx).map_err(|e| Refused(e.to_string()))?;
    let certificate =
        Certificate::decode(&snapshot.certificate).map_err(|e| Refused(e.to_string()))?;
    let (height, hash) = (block.header.height, block.hash());
    certificate
        .verify(&shared.validators, height, &hash)
        .map_err(|e| Refused(format!("certificate of block {height}: {e}")))?;
    let header = block.header.clone();
    {
        let mut executor = shared.executor();
        let (head, _) = head(shared).map_err(Fatal)?;
        if height <= head {
            return Err(Refused(format!("snapshot at {height}, our head is {head}")));
        }
        let record = executor
            .snapshot_record(
                block,
                snapshot.certificate,
                snapshot.contract,
                snapshot.nonces,
            )
            .map_err(|e| Refused(e.to_string()))?;
        shared
            .store
            .install_snapshot(&record)
            .map_err(|e| Refused(format!("storing the snapshot: {e}")))?;
        executor
            .apply(&record)
            .map_err(|e| Fatal(format!("installing the snapshot's state: {e}")))?;
        *shared.contract() = executor.contract_status();
    }
    shared.finalized_height.store(height, Ordering::Release);
    info!(height, %hash, "installed a state snapshot");
    let _ = shared.heads.send(header);
    Ok((height, hash, certificate))
}
