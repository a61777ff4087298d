//! The node's side of the validator network: who each validator is on the network, and
//! sending engine messages and proposals to them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use v2v_network::{NetworkHandle, PeerId};

use crate::metrics::Metrics;
use crate::wire::{Direct, MAX_GOSSIP_BATCH, encode_tx_batch};

/// How long a transaction from a client may wait for the next gossip batch.
pub const GOSSIP_FLUSH: Duration = Duration::from_millis(5);
/// A gossip batch is cut at this many bytes of transactions (a larger transaction goes alone).
pub const GOSSIP_BATCH_BYTES: usize = 256 * 1024;

pub(crate) struct Net {
    pub handle: NetworkHandle,
    /// Each validator's network identity, by validator index (ours included).
    pub validators: Vec<PeerId>,
    pub metrics: Arc<Metrics>,
    /// Transactions from our clients waiting for the next gossip batch.
    pub outbox: Mutex<Vec<Vec<u8>>>,
    /// Wakes the gossip flusher when the outbox gets a transaction.
    pub outbox_filled: tokio::sync::Notify,
}

impl Net {
    pub fn index_of(&self, peer: &PeerId) -> Option<u32> {
        self.validators
            .iter()
            .position(|p| p == peer)
            .map(|i| i as u32)
    }

    fn others(&self) -> impl Iterator<Item = &PeerId> {
        let me = self.handle.local_peer_id();
        self.validators.iter().filter(move |p| **p != me)
    }

    /// To one validator (the collector, say): never to everyone.
    pub fn send(&self, to: u32, message: Direct) {
        if let Some(peer) = self.validators.get(to as usize)
            && *peer != self.handle.local_peer_id()
        {
            let bytes = message.encode();
            self.count(&message, bytes.len());
            self.handle.send(*peer, bytes);
        }
    }

    fn count(&self, message: &Direct, len: usize) {
        let m = &self.metrics;
        let (messages, bytes) = match message {
            Direct::Engine(_) => (&m.engine_messages, &m.engine_bytes),
            Direct::Block(_) => (&m.block_messages, &m.block_bytes),
        };
        Metrics::add(messages, 1);
        Metrics::add(bytes, len);
    }

    /// Queues a transaction for the next gossip batch ([`Net::flush_gossip`]).
    pub fn gossip(&self, tx: Vec<u8>) {
        self.outbox
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(tx);
        self.outbox_filled.notify_one();
    }

    /// Publishes the queued transactions, in batches of at most [`GOSSIP_BATCH_BYTES`].
    pub fn flush_gossip(&self) {
        let txs = std::mem::take(&mut *self.outbox.lock().unwrap_or_else(|p| p.into_inner()));
        let mut start = 0;
        while start < txs.len() {
            let mut end = start;
            let mut bytes = 0;
            while end < txs.len()
                && (end == start || bytes + txs[end].len() <= GOSSIP_BATCH_BYTES)
                && end - start < MAX_GOSSIP_BATCH as usize
            {
                bytes += txs[end].len();
                end += 1;
            }
            let batch = encode_tx_batch(&txs[start..end]);
            Metrics::add(&self.metrics.gossip_messages, 1);
            Metrics::add(&self.metrics.gossip_bytes, batch.len());
            self.handle.gossip(batch);
            start = end;
        }
    }

    /// To every other validator.
    pub fn broadcast(&self, message: Direct) {
        let bytes = message.encode();
        for peer in self.others() {
            self.count(&message, bytes.len());
            self.handle.send(*peer, bytes.clone());
        }
    }

    /// The validators to ask for blocks, starting with `first` and then the others in
    /// order (the first may be down or lying).
    pub fn sources(&self, first: Option<u32>) -> Vec<PeerId> {
        let me = self.handle.local_peer_id();
        let mut out: Vec<PeerId> = first
            .and_then(|i| self.validators.get(i as usize).copied())
            .into_iter()
            .filter(|p| *p != me)
            .collect();
        for p in self.others() {
            if !out.contains(p) {
                out.push(*p);
            }
        }
        out
    }
}
