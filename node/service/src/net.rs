//! The node's side of the validator network: who each validator is on the network, and
//! sending engine messages and proposals to them.

use v2v_network::{NetworkHandle, PeerId};

use crate::wire::Direct;

pub(crate) struct Net {
    pub handle: NetworkHandle,
    /// Each validator's network identity, by validator index (ours included).
    pub validators: Vec<PeerId>,
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
            self.handle.send(*peer, message.encode());
        }
    }

    /// To every other validator.
    pub fn broadcast(&self, message: Direct) {
        let bytes = message.encode();
        for peer in self.others() {
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
