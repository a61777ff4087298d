//! The safety invariants, checked as each finalized block is stored.

use v2v_consensus::{Certificate, Proof, ValidatorIndex};
use v2v_primitives::Hash;

use super::Simulation;
use crate::report::{CommitRecord, Invariant, Violation};

impl Simulation {
    pub(super) fn certificate_ok(
        &mut self,
        certificate: &Certificate,
        height: u64,
        hash: &Hash,
    ) -> bool {
        let mut key = blake3::Hasher::new();
        key.update(&height.to_le_bytes());
        key.update(&hash.0);
        key.update(&certificate.encode());
        let key = *key.finalize().as_bytes();
        if self.verified.contains(&key) {
            return true;
        }
        let ok = certificate.verify(&self.validators, height, hash).is_ok();
        if ok {
            self.verified.insert(key);
        }
        ok
    }

    /// Checks a finalized block against the invariants and stores it.
    pub(super) fn store(
        &mut self,
        replica: usize,
        instance: usize,
        height: u64,
        block_hash: Hash,
        certificate: Certificate,
        synced: bool,
    ) -> Result<(), Violation> {
        let now = self.now;
        let violation = move |invariant, description: String| Violation {
            time_us: now,
            replica: replica as ValidatorIndex,
            invariant,
            description,
        };
        let how = if synced { "synced" } else { "committed" };
        let chain = &self.replicas[replica].instances[instance].chain;
        let head = chain.len() as u64;
        if height != head + 1 {
            let detail = match chain.get((height.max(1) - 1) as usize) {
                Some(old) if height >= 1 && old.block_hash == block_hash => {
                    format!("height {height} again (same block {block_hash})")
                }
                Some(old) if height >= 1 => format!(
                    "height {height} again with block {block_hash}, replacing {}",
                    old.block_hash
                ),
                _ => format!("height {height} while its head is {head}"),
            };
            return Err(violation(Invariant::NoRewrite, format!("{how} {detail}")));
        }
        if !synced && !self.certificate_ok(&certificate, height, &block_hash) {
            let reason = certificate
                .verify(&self.validators, height, &block_hash)
                .err()
                .map_or_else(|| "rejected".to_string(), |e| e.to_string());
            return Err(violation(
                Invariant::Certificate,
                format!(
                    "committed {block_hash} at height {height} with a bad certificate: {reason}"
                ),
            ));
        }
        let ready_us = match self.blocks.get(&block_hash) {
            Some(b) if b.height == height => b.ready_us,
            Some(b) => {
                return Err(violation(
                    Invariant::UnknownBlock,
                    format!(
                        "{how} {block_hash} at height {height}, but it was built for height {}",
                        b.height
                    ),
                ));
            }
            None => {
                return Err(violation(
                    Invariant::UnknownBlock,
                    format!("{how} {block_hash} at height {height}, which nobody built"),
                ));
            }
        };
        // Byzantine replicas run the real engine (only what they send is distorted), so their
        // commits carry real certificates too: two valid certificates for different blocks
        // at one height break safety whoever holds them.
        let correct = !self.replicas[replica].behaviour.is_byzantine();
        match self.decided.get(&height) {
            Some(&(decided, by)) if decided != block_hash => {
                let invariant = if correct && !self.replicas[by].behaviour.is_byzantine() {
                    Invariant::Agreement
                } else {
                    Invariant::ConflictingCertificates
                };
                return Err(violation(
                    invariant,
                    format!(
                        "{how} {block_hash} at height {height}, but replica {by} finalized {decided}"
                    ),
                ));
            }
            Some(_) => {}
            None => {
                self.decided.insert(height, (block_hash, replica));
            }
        }
        if correct && !synced {
            self.latencies_us.push(self.now.saturating_sub(ready_us));
            let kind = match certificate.proof {
                Proof::Threshold { fast: true, .. } => 0,
                Proof::Threshold { fast: false, .. } => 1,
                Proof::Signatures(_) => 2,
            };
            self.certificate_kinds[kind] += 1;
        }
        self.replicas[replica].instances[instance]
            .chain
            .push(CommitRecord {
                time_us: self.now,
                height,
                block_hash,
                certificate,
                synced,
            });
        Ok(())
    }
}
