//! A running blake3 digest of everything that happened: every input an engine received and
//! every output it returned, with the instant and the replica. Two runs with the same seed
//! must end with the same digest (alto's determinism test).

use v2v_consensus::{Input, Output, TimerId};

#[derive(Clone)]
pub(crate) struct Digest(blake3::Hasher);

impl Default for Digest {
    fn default() -> Self {
        Digest(blake3::Hasher::new_derive_key(
            "v2v consensus simulator digest v1",
        ))
    }
}

impl Digest {
    pub(crate) fn finish_hex(&self) -> String {
        self.0.finalize().to_hex().to_string()
    }

    fn u8(&mut self, v: u8) -> &mut Self {
        self.0.update(&[v]);
        self
    }

    fn u64(&mut self, v: u64) -> &mut Self {
        self.0.update(&v.to_le_bytes());
        self
    }

    fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.u64(b.len() as u64);
        self.0.update(b);
        self
    }

    fn timer(&mut self, id: &TimerId) -> &mut Self {
        match *id {
            TimerId::Round { height, view } => self.u8(1).u64(height).u64(view),
            TimerId::ViewChange { view } => self.u8(2).u64(view),
            TimerId::FastPath { height, view } => self.u8(3).u64(height).u64(view),
        }
    }

    /// A host event that is not an engine input (crash, recovery, partition).
    pub(crate) fn event(&mut self, time: u64, what: &[u8], replica: u64) {
        self.u8(0).u64(time).bytes(what).u64(replica);
    }

    pub(crate) fn input(&mut self, time: u64, replica: usize, instance: usize, input: &Input) {
        self.u8(1)
            .u64(time)
            .u64(replica as u64)
            .u64(instance as u64);
        match input {
            Input::Start {
                next_height,
                persisted,
            } => {
                self.u8(1).u64(*next_height);
                match persisted {
                    Some(p) => self.u8(1).bytes(p),
                    None => self.u8(0),
                };
            }
            Input::Message { from, payload } => {
                self.u8(2).u64(u64::from(*from)).bytes(payload);
            }
            Input::Timeout(id) => {
                self.u8(3).timer(id);
            }
            Input::ProposalReady(p) => {
                self.u8(4).u64(p.height).u64(p.view).bytes(&p.block_hash.0);
            }
            Input::ProposalVerified {
                height,
                view,
                block_hash,
                valid,
            } => {
                self.u8(5)
                    .u64(*height)
                    .u64(*view)
                    .bytes(&block_hash.0)
                    .u8(u8::from(*valid));
            }
            Input::Synced {
                height,
                block_hash,
                certificate,
            } => {
                self.u8(6)
                    .u64(*height)
                    .bytes(&block_hash.0)
                    .bytes(&certificate.encode());
            }
        }
    }

    pub(crate) fn output(&mut self, time: u64, replica: usize, instance: usize, output: &Output) {
        self.u8(2)
            .u64(time)
            .u64(replica as u64)
            .u64(instance as u64);
        match output {
            Output::Send { to, payload } => {
                self.u8(1).u64(u64::from(*to)).bytes(payload);
            }
            Output::Broadcast { payload } => {
                self.u8(2).bytes(payload);
            }
            Output::SetTimer { id, after_ms } => {
                self.u8(3).timer(id).u64(*after_ms);
            }
            Output::CancelTimer { id } => {
                self.u8(4).timer(id);
            }
            Output::Persist { state } => {
                self.u8(5).bytes(state);
            }
            Output::RequestProposal { height, view } => {
                self.u8(6).u64(*height).u64(*view);
            }
            Output::VerifyProposal {
                height,
                view,
                block_hash,
                proposer,
            } => {
                self.u8(7)
                    .u64(*height)
                    .u64(*view)
                    .bytes(&block_hash.0)
                    .u64(u64::from(*proposer));
            }
            Output::Sync { peer, up_to_height } => {
                self.u8(8).u64(u64::from(*peer)).u64(*up_to_height);
            }
            Output::Faulty { validator, reason } => {
                self.u8(9)
                    .u64(u64::from(*validator))
                    .bytes(reason.as_bytes());
            }
            Output::Commit {
                height,
                block_hash,
                certificate,
            } => {
                self.u8(10)
                    .u64(*height)
                    .bytes(&block_hash.0)
                    .bytes(&certificate.encode());
            }
        }
    }
}
