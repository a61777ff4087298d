//! What a collector-engine replica persists before it sends a share, a proposal or a view
//! change, so that after a crash it never signs two different blocks at one (height, view),
//! keeps its lock, and does not return to a view it left (PBFT §4.4: a replica that asked for
//! view v + 1 takes no part in view v any more).

use v2v_abi::{DecodeError, Reader, Writer};
use v2v_primitives::Hash;

use super::messages::PrepareCertificate;
use crate::Certificate;

/// First byte of the encoding.
const VERSION: u8 = 1;

/// The last block this replica signed a share (or a proposal) for. Heights and views only
/// grow, so one record is enough to never sign a second block at the same (height, view).
/// In SBFT it is also the highest fast-path share at `height` (both shares are signed
/// together).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Signed {
    pub height: u64,
    pub view: u64,
    pub block_hash: Hash,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Persisted {
    pub view: u64,
    /// `false` while a view change to `view` is under way.
    pub active: bool,
    /// The first height the current view may propose (the new-view's height).
    pub view_start_height: u64,
    /// Consecutive view changes that failed (the view-change timeout doubles with each).
    pub failed_view_changes: u32,
    pub lock: Option<PrepareCertificate>,
    pub signed: Option<Signed>,
    /// The last commit certificate known: proves the replica's height in a view change.
    pub last_certificate: Option<Certificate>,
}

impl Persisted {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(320);
        w.u8(VERSION)
            .u64(self.view)
            .bool(self.active)
            .u64(self.view_start_height)
            .u32(self.failed_view_changes);
        match &self.lock {
            Some(l) => {
                w.u8(1);
                l.write(&mut w);
            }
            None => {
                w.u8(0);
            }
        }
        match &self.signed {
            Some(s) => w.u8(1).u64(s.height).u64(s.view).fixed(&s.block_hash.0),
            None => w.u8(0),
        };
        match &self.last_certificate {
            Some(c) => w.u8(1).fixed(&c.encode()),
            None => w.u8(0),
        };
        w.finish()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let version = r.u8("version")?;
        if version != VERSION {
            return Err(DecodeError::InvalidTag {
                what: "persisted state version",
                tag: version,
            });
        }
        let view = r.u64("view")?;
        let active = r.bool("active")?;
        let view_start_height = r.u64("viewStartHeight")?;
        let failed_view_changes = r.u32("failedViewChanges")?;
        let lock = match r.bool("lock")? {
            true => Some(PrepareCertificate::read(&mut r)?),
            false => None,
        };
        let signed = match r.bool("signed")? {
            true => Some(Signed {
                height: r.u64("signedHeight")?,
                view: r.u64("signedView")?,
                block_hash: Hash(r.array("signedBlockHash")?),
            }),
            false => None,
        };
        let last_certificate = match r.bool("lastCertificate")? {
            true => Some(Certificate::read(&mut r).map_err(|_| DecodeError::Invalid {
                what: "lastCertificate",
                reason: "undecodable",
            })?),
            false => None,
        };
        r.finish()?;
        Ok(Self {
            view,
            active,
            view_start_height,
            failed_view_changes,
            lock,
            signed,
            last_certificate,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::Proof;
    use v2v_crypto::BlsSignature;

    #[test]
    fn round_trips_and_rejects_other_versions() {
        let full = Persisted {
            view: 7,
            active: false,
            view_start_height: 12,
            failed_view_changes: 2,
            lock: Some(PrepareCertificate {
                height: 13,
                view: 6,
                block_hash: Hash([3; 32]),
                signature: BlsSignature([4; 96]),
            }),
            signed: Some(Signed {
                height: 13,
                view: 6,
                block_hash: Hash([3; 32]),
            }),
            last_certificate: Some(Certificate {
                height: 12,
                view: 5,
                block_hash: Hash([5; 32]),
                proof: Proof::Threshold {
                    fast: false,
                    signature: BlsSignature([6; 96]),
                },
            }),
        };
        let empty = Persisted {
            view: 0,
            active: true,
            view_start_height: 0,
            failed_view_changes: 0,
            lock: None,
            signed: None,
            last_certificate: None,
        };
        for p in [full, empty] {
            let bytes = p.encode();
            assert_eq!(Persisted::decode(&bytes).unwrap(), p);
            let mut other = bytes.clone();
            other[0] = 2;
            assert!(Persisted::decode(&other).is_err());
            assert!(Persisted::decode(&bytes[..bytes.len() - 1]).is_err());
        }
    }
}
