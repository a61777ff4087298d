//! The host role: what a node does with each engine output (the network, timers, durable
//! state, block building and checking, state sync), and the events that feed back.

use std::sync::Arc;

use rand::Rng;
use v2v_consensus::{Input, Output, Proposal, ValidatorIndex};
use v2v_primitives::Hash;

use super::{BlockInfo, MAX_SYNC_ATTEMPTS, Partition, Simulation, TraceEntry, TraceEvent, us};
use crate::behaviour::{Behaviour, conflicting_payload, invalid_share_payload};
use crate::events::Event;
use crate::report::{Invariant, Violation};

impl Simulation {
    fn alive(&self, replica: usize, epoch: u64) -> bool {
        let r = &self.replicas[replica];
        r.up && r.epoch == epoch
    }

    fn partitioned(&self, a: usize, b: usize) -> bool {
        self.partition
            .as_ref()
            .is_some_and(|p| p.group_of[a] != p.group_of[b])
    }

    pub(super) fn handle_event(&mut self, event: Event) -> Result<(), Violation> {
        match event {
            Event::Start { replica } => self.start(replica),
            Event::Deliver {
                from,
                to,
                epoch,
                payload,
            } => {
                if !self.alive(to, epoch) {
                    self.stats.dropped_down += 1;
                    return Ok(());
                }
                if self.partitioned(from as usize, to) {
                    self.stats.dropped_partition += 1;
                    return Ok(());
                }
                self.stats.delivered += 1;
                for instance in 0..self.replicas[to].instances.len() {
                    let input = Input::Message {
                        from,
                        payload: payload.to_vec(),
                    };
                    self.feed(to, instance, input)?;
                }
                Ok(())
            }
            Event::Timer {
                replica,
                instance,
                epoch,
                id,
                generation,
            } => {
                if !self.alive(replica, epoch) {
                    return Ok(());
                }
                let timers = &mut self.replicas[replica].instances[instance].timers;
                if timers.get(&id) != Some(&generation) {
                    return Ok(());
                }
                timers.remove(&id);
                self.stats.timers_fired += 1;
                self.feed(replica, instance, Input::Timeout(id))
            }
            Event::BuildDone {
                replica,
                instance,
                epoch,
                height,
                view,
            } => {
                if !self.alive(replica, epoch) {
                    return Ok(());
                }
                self.block_counter += 1;
                let block_hash = self.block_hash(replica, instance, height, view);
                self.blocks.insert(
                    block_hash,
                    BlockInfo {
                        height,
                        ready_us: self.now,
                    },
                );
                self.stats.proposals_built += 1;
                let proposal = Proposal {
                    height,
                    view,
                    block_hash,
                };
                self.feed(replica, instance, Input::ProposalReady(proposal))
            }
            Event::VerifyDone {
                replica,
                instance,
                epoch,
                height,
                view,
                block_hash,
            } => {
                if !self.alive(replica, epoch) {
                    return Ok(());
                }
                // The node has the block if somebody built it, and it "executes" if it was
                // built for this height (the sim does not model parent links).
                let valid = self
                    .blocks
                    .get(&block_hash)
                    .is_some_and(|b| b.height == height);
                let input = Input::ProposalVerified {
                    height,
                    view,
                    block_hash,
                    valid,
                };
                self.feed(replica, instance, input)
            }
            Event::SyncDone {
                replica,
                instance,
                epoch,
                peer,
                up_to_height,
                attempt,
            } => self.sync(replica, instance, epoch, peer, up_to_height, attempt),
            Event::Crash { replica } => {
                let r = &mut self.replicas[replica];
                if !r.up {
                    return Ok(());
                }
                r.up = false;
                r.epoch += 1;
                for instance in &mut r.instances {
                    instance.engine = None;
                    instance.timers.clear();
                }
                self.digest.event(self.now, b"crash", replica as u64);
                self.record(replica, 0, TraceEvent::Crash);
                Ok(())
            }
            Event::Recover { replica } => {
                if self.replicas[replica].up {
                    return Ok(());
                }
                self.digest.event(self.now, b"recover", replica as u64);
                self.record(replica, 0, TraceEvent::Recover);
                let r = &mut self.replicas[replica];
                r.up = true;
                r.epoch += 1;
                if r.behaviour != Behaviour::Silent {
                    for i in 0..r.instances.len() {
                        let engine = (self.factory)(&self.config.engine, r.config.clone())
                            .map_err(|e| Violation {
                                time_us: self.now,
                                replica: replica as ValidatorIndex,
                                invariant: Invariant::Engine,
                                description: format!("cannot rebuild the engine: {e}"),
                            })?;
                        r.instances[i].engine = Some(engine);
                    }
                }
                self.start(replica)
            }
            Event::PartitionStart { id, groups } => {
                let n = self.replicas.len();
                // Unlisted replicas get a group of their own (numbers past the listed ones).
                let mut group_of: Vec<usize> = (0..n).map(|r| groups.len() + r).collect();
                for (g, members) in groups.iter().enumerate() {
                    for &m in members {
                        if let Some(slot) = group_of.get_mut(m as usize) {
                            *slot = g;
                        }
                    }
                }
                let mut what = b"partition".to_vec();
                for g in &group_of {
                    what.extend_from_slice(&(*g as u64).to_le_bytes());
                }
                self.digest.event(self.now, &what, id);
                self.partition = Some(Partition { id, group_of });
                Ok(())
            }
            Event::PartitionHeal { id } => {
                if self.partition.as_ref().is_some_and(|p| p.id == id) {
                    self.digest.event(self.now, b"heal", id);
                    self.partition = None;
                }
                Ok(())
            }
        }
    }

    fn start(&mut self, replica: usize) -> Result<(), Violation> {
        for instance in 0..self.replicas[replica].instances.len() {
            let inst = &self.replicas[replica].instances[instance];
            let input = Input::Start {
                next_height: inst.chain.len() as u64 + 1,
                persisted: inst.durable.clone(),
            };
            self.feed(replica, instance, input)?;
        }
        Ok(())
    }

    fn record(&mut self, replica: usize, instance: usize, event: TraceEvent) {
        if self.config.record_trace {
            self.trace.push(TraceEntry {
                time_us: self.now,
                replica: replica as ValidatorIndex,
                instance,
                event,
            });
        }
    }

    fn block_hash(&self, replica: usize, instance: usize, height: u64, view: u64) -> Hash {
        let mut data = Vec::with_capacity(48);
        for v in [
            self.config.seed,
            replica as u64,
            instance as u64,
            height,
            view,
            self.block_counter,
        ] {
            data.extend_from_slice(&v.to_le_bytes());
        }
        Hash::digest(b"v2v/sim/block", &data)
    }

    /// Hands `input` to one engine and carries out what it returns, in order.
    fn feed(&mut self, replica: usize, instance: usize, input: Input) -> Result<(), Violation> {
        if self.replicas[replica].instances[instance].engine.is_none() {
            return Ok(());
        }
        self.digest.input(self.now, replica, instance, &input);
        if self.config.record_trace {
            self.record(replica, instance, TraceEvent::Input(input.clone()));
        }
        let Some(engine) = self.replicas[replica].instances[instance].engine.as_mut() else {
            return Ok(());
        };
        let outputs = engine.handle(input);
        for output in outputs {
            self.carry_out(replica, instance, output)?;
        }
        Ok(())
    }

    /// The host role: what a node does with each output.
    fn carry_out(
        &mut self,
        replica: usize,
        instance: usize,
        output: Output,
    ) -> Result<(), Violation> {
        self.digest.output(self.now, replica, instance, &output);
        if self.config.record_trace {
            self.record(replica, instance, TraceEvent::Output(output.clone()));
        }
        let epoch = self.replicas[replica].epoch;
        match output {
            Output::Send { to, payload } => self.send(replica, instance, &[to], payload),
            Output::Broadcast { payload } => {
                let others: Vec<ValidatorIndex> = (0..self.replicas.len())
                    .filter(|&r| r != replica)
                    .map(|r| r as ValidatorIndex)
                    .collect();
                self.send(replica, instance, &others, payload);
            }
            Output::SetTimer { id, after_ms } => {
                self.timer_generation += 1;
                let generation = self.timer_generation;
                self.replicas[replica].instances[instance]
                    .timers
                    .insert(id, generation);
                self.queue.push(
                    self.now.saturating_add(us(after_ms)),
                    Event::Timer {
                        replica,
                        instance,
                        epoch,
                        id,
                        generation,
                    },
                );
            }
            Output::CancelTimer { id } => {
                self.replicas[replica].instances[instance]
                    .timers
                    .remove(&id);
            }
            Output::Persist { state } => {
                self.replicas[replica].instances[instance].durable = Some(state);
            }
            Output::RequestProposal { height, view } => {
                self.queue.push(
                    self.now + self.config.build_delay_us,
                    Event::BuildDone {
                        replica,
                        instance,
                        epoch,
                        height,
                        view,
                    },
                );
            }
            Output::VerifyProposal {
                height,
                view,
                block_hash,
                ..
            } => {
                self.queue.push(
                    self.now + self.config.verify_delay_us,
                    Event::VerifyDone {
                        replica,
                        instance,
                        epoch,
                        height,
                        view,
                        block_hash,
                    },
                );
            }
            Output::Sync { peer, up_to_height } => {
                self.queue.push(
                    self.now + self.config.sync_delay_us,
                    Event::SyncDone {
                        replica,
                        instance,
                        epoch,
                        peer,
                        up_to_height,
                        attempt: 0,
                    },
                );
            }
            Output::Faulty { validator, .. } => {
                *self
                    .faulty
                    .entry((replica as ValidatorIndex, validator))
                    .or_insert(0) += 1;
            }
            Output::Commit {
                height,
                block_hash,
                certificate,
            } => {
                self.store(replica, instance, height, block_hash, certificate, false)?;
            }
        }
        Ok(())
    }

    /// Sends `payload` from one engine to `recipients` through the faulty replica's
    /// distortions and then the link model.
    fn send(
        &mut self,
        replica: usize,
        instance: usize,
        recipients: &[ValidatorIndex],
        payload: Vec<u8>,
    ) {
        let n = self.replicas.len();
        let behaviour = self.replicas[replica].behaviour;
        let twins = self.replicas[replica].instances.len() > 1;
        let extra_us = match behaviour {
            Behaviour::Slow { extra_ms } => us(extra_ms),
            _ => 0,
        };
        let payload: Arc<[u8]> = payload.into();
        // The distorted payload, computed once per output and only if needed.
        let mut altered: Option<Option<Arc<[u8]>>> = None;
        // A conflicting voter splits a broadcast by halves; a message to one peer (a share
        // for the collector, say) is replaced half of the time.
        let single = recipients.len() == 1;
        let coin = behaviour == Behaviour::ConflictingVotes && single && self.rng.gen_bool(0.5);
        for &to in recipients {
            let to = to as usize;
            if to >= n {
                continue;
            }
            let second_half = Self::second_half(n, replica, to);
            if twins && usize::from(second_half) != instance {
                continue;
            }
            let distort = match behaviour {
                Behaviour::ConflictingVotes => {
                    if single {
                        coin
                    } else {
                        second_half
                    }
                }
                Behaviour::InvalidShares => true,
                _ => false,
            };
            let body = if distort {
                let config = &self.replicas[replica].config;
                let altered = altered.get_or_insert_with(|| {
                    let changed = if behaviour == Behaviour::ConflictingVotes {
                        conflicting_payload(&payload, config, &mut self.rng)
                    } else {
                        invalid_share_payload(&payload, config)
                    };
                    changed.map(Arc::from)
                });
                altered.clone().unwrap_or_else(|| payload.clone())
            } else {
                payload.clone()
            };
            self.transmit(replica, to, body, extra_us);
        }
    }

    /// Whether `to` is in the second half of `from`'s peers (by index): the half that gets an
    /// equivocator's second engine and a conflicting voter's conflicting votes.
    fn second_half(n: usize, from: usize, to: usize) -> bool {
        let position = if to > from { to - 1 } else { to };
        position >= n.saturating_sub(1) / 2
    }

    /// The link model: partition, loss, duplication, latency, jitter, reordering, size.
    fn transmit(&mut self, from: usize, to: usize, payload: Arc<[u8]>, extra_us: u64) {
        self.stats.messages_sent += 1;
        self.stats.bytes_sent += payload.len() as u64;
        if self.partitioned(from, to) {
            self.stats.dropped_partition += 1;
            return;
        }
        let link = self.config.link;
        if link.loss_ppm > 0 && self.rng.gen_range(0..1_000_000) < link.loss_ppm {
            self.stats.lost += 1;
            return;
        }
        let copies =
            if link.duplicate_ppm > 0 && self.rng.gen_range(0..1_000_000) < link.duplicate_ppm {
                self.stats.duplicated += 1;
                2
            } else {
                1
            };
        for _ in 0..copies {
            let mut delay = link.latency_us;
            if link.jitter_us > 0 {
                let offset = self.rng.gen_range(0..=2 * link.jitter_us);
                delay = (delay + offset).saturating_sub(link.jitter_us);
            }
            if link.reorder_ppm > 0 && self.rng.gen_range(0..1_000_000) < link.reorder_ppm {
                delay += self.rng.gen_range(0..=link.reorder_extra_us);
            }
            delay += link.per_byte_ns.saturating_mul(payload.len() as u64) / 1_000;
            delay += extra_us;
            let event = Event::Deliver {
                from: from as ValidatorIndex,
                to,
                epoch: self.replicas[to].epoch,
                payload: payload.clone(),
            };
            self.queue.push(self.now + delay, event);
        }
    }

    /// The node answers `Output::Sync`: fetches finalized blocks with their certificates from
    /// the named peer if it can reach it and the peer is ahead, otherwise from the reachable
    /// replica furthest ahead, verifies each certificate, stores the block and feeds
    /// `Input::Synced`, up to the source's head. Retries later if it got less than asked.
    fn sync(
        &mut self,
        replica: usize,
        instance: usize,
        epoch: u64,
        peer: ValidatorIndex,
        up_to_height: u64,
        attempt: u32,
    ) -> Result<(), Violation> {
        if !self.alive(replica, epoch) {
            return Ok(());
        }
        let head = self.replicas[replica].instances[instance].chain.len() as u64;
        if head >= up_to_height {
            return Ok(());
        }
        if let Some(source) = self.sync_source(replica, peer as usize, head) {
            self.stats.syncs_served += 1;
            loop {
                let head = self.replicas[replica].instances[instance].chain.len();
                let Some(record) = self.replicas[source].instances[0].chain.get(head) else {
                    break;
                };
                let (height, block_hash, certificate) =
                    (record.height, record.block_hash, record.certificate.clone());
                if !self.certificate_ok(&certificate, height, &block_hash) {
                    break;
                }
                self.store(
                    replica,
                    instance,
                    height,
                    block_hash,
                    certificate.clone(),
                    true,
                )?;
                self.stats.blocks_synced += 1;
                let input = Input::Synced {
                    height,
                    block_hash,
                    certificate,
                };
                self.feed(replica, instance, input)?;
                if self.replicas[replica].instances[instance].engine.is_none() {
                    break;
                }
            }
        }
        let head = self.replicas[replica].instances[instance].chain.len() as u64;
        if head < up_to_height && attempt < MAX_SYNC_ATTEMPTS {
            let pause = self.config.sync_delay_us.max(1) << attempt.min(8);
            self.queue.push(
                self.now + pause,
                Event::SyncDone {
                    replica,
                    instance,
                    epoch,
                    peer,
                    up_to_height,
                    attempt: attempt + 1,
                },
            );
        }
        Ok(())
    }

    fn sync_source(&self, replica: usize, peer: usize, head: u64) -> Option<usize> {
        let serves = |r: usize| {
            r != replica
                && self.replicas[r].up
                && self.replicas[r].behaviour != Behaviour::Silent
                && !self.partitioned(replica, r)
                && self.replicas[r].head() > head
        };
        if peer < self.replicas.len() && serves(peer) {
            return Some(peer);
        }
        (0..self.replicas.len())
            .filter(|&r| serves(r))
            // Furthest ahead; the lowest index among equals.
            .max_by_key(|&r| (self.replicas[r].head(), std::cmp::Reverse(r)))
    }
}
