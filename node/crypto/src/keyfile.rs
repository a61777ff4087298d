//! Key files: JSON, written with owner-only permissions.
//!
//! An account key file: `{ "type": "ed25519", "publicKey": "0x..", "secretSeed": "0x.." }`.
//! A validator key file adds the BLS key:
//! `{ "type": "validator", "name", "ed25519": {publicKey, secretSeed}, "bls": {publicKey, secretKey, proofOfPossession} }`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{BlsKeypair, CryptoError, Keypair, hex_array, to_hex};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyFile {
    #[serde(rename = "type")]
    pub kind: String,
    pub public_key: String,
    pub secret_seed: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlsKeyFile {
    pub public_key: String,
    pub secret_key: String,
    pub proof_of_possession: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidatorKeyFile {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub ed25519: KeyFile,
    pub bls: BlsKeyFile,
    /// The validator's shares of the chain's threshold keys (Linear BFT, SBFT), as dealt when
    /// the chain spec was built.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<ThresholdSharesFile>,
}

/// Secret threshold shares, 0x + 64 hex digits each.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThresholdSharesFile {
    /// Share of the slow-path key (t = quorum).
    pub slow: String,
    /// Share of the SBFT fast-path key (t = n - c).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fast: Option<String>,
}

/// Everything a validator signs with.
#[derive(Debug, Clone)]
pub struct ValidatorSecrets {
    pub ed25519: Keypair,
    pub bls: BlsKeypair,
    pub slow_share: Option<BlsKeypair>,
    pub fast_share: Option<BlsKeypair>,
}

fn io_err(path: &Path, reason: impl ToString) -> CryptoError {
    CryptoError::KeyFile {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

fn write_private(path: &Path, json: &str) -> Result<(), CryptoError> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(|e| io_err(path, e))?;
    }
    std::fs::write(path, json).map_err(|e| io_err(path, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| io_err(path, e))?;
    }
    Ok(())
}

impl KeyFile {
    pub fn from_keypair(k: &Keypair) -> Self {
        Self {
            kind: "ed25519".into(),
            public_key: k.public().to_hex(),
            secret_seed: to_hex(&k.seed()),
        }
    }

    pub fn keypair(&self) -> Result<Keypair, CryptoError> {
        let k = Keypair::from_seed(hex_array(&self.secret_seed, "ed25519 secret seed")?);
        if k.public().to_hex() != self.public_key.to_lowercase() {
            return Err(CryptoError::Invalid {
                what: "key file",
                reason: "public key does not match the secret seed".into(),
            });
        }
        Ok(k)
    }

    pub fn write(&self, path: &Path) -> Result<(), CryptoError> {
        let json = serde_json::to_string_pretty(self).map_err(|e| io_err(path, e))?;
        write_private(path, &json)
    }

    /// Reads an account key file, or the ed25519 part of a validator key file.
    pub fn read(path: &Path) -> Result<Keypair, CryptoError> {
        let text = std::fs::read_to_string(path).map_err(|e| io_err(path, e))?;
        if let Ok(v) = serde_json::from_str::<ValidatorKeyFile>(&text) {
            return v.ed25519.keypair();
        }
        let f: KeyFile = serde_json::from_str(&text).map_err(|e| io_err(path, e))?;
        f.keypair()
    }
}

impl ValidatorKeyFile {
    pub fn new(name: &str, ed: &Keypair, bls: &BlsKeypair) -> Self {
        Self {
            kind: "validator".into(),
            name: name.into(),
            ed25519: KeyFile::from_keypair(ed),
            bls: BlsKeyFile {
                public_key: to_hex(&bls.public().0),
                secret_key: to_hex(&bls.secret_bytes()),
                proof_of_possession: to_hex(&bls.proof_of_possession().0),
            },
            threshold: None,
        }
    }

    /// Adds threshold shares (secret keys of the dealt shares).
    pub fn with_shares(mut self, slow: &BlsKeypair, fast: Option<&BlsKeypair>) -> Self {
        self.threshold = Some(ThresholdSharesFile {
            slow: to_hex(&slow.secret_bytes()),
            fast: fast.map(|f| to_hex(&f.secret_bytes())),
        });
        self
    }

    /// All the validator's keys, threshold shares included when the file has them.
    pub fn secrets(&self) -> Result<ValidatorSecrets, CryptoError> {
        let (ed25519, bls) = self.keys()?;
        let share =
            |hex: &str| BlsKeypair::from_secret_bytes(&hex_array(hex, "threshold share secret")?);
        let (slow_share, fast_share) = match &self.threshold {
            None => (None, None),
            Some(t) => (
                Some(share(&t.slow)?),
                t.fast.as_deref().map(share).transpose()?,
            ),
        };
        Ok(ValidatorSecrets {
            ed25519,
            bls,
            slow_share,
            fast_share,
        })
    }

    pub fn keys(&self) -> Result<(Keypair, BlsKeypair), CryptoError> {
        let ed = self.ed25519.keypair()?;
        let bls =
            BlsKeypair::from_secret_bytes(&hex_array(&self.bls.secret_key, "BLS secret key")?)?;
        if to_hex(&bls.public().0) != self.bls.public_key.to_lowercase() {
            return Err(CryptoError::Invalid {
                what: "validator key file",
                reason: "BLS public key does not match the secret key".into(),
            });
        }
        Ok((ed, bls))
    }

    pub fn write(&self, path: &Path) -> Result<(), CryptoError> {
        let json = serde_json::to_string_pretty(self).map_err(|e| io_err(path, e))?;
        write_private(path, &json)
    }

    pub fn read(path: &Path) -> Result<Self, CryptoError> {
        let text = std::fs::read_to_string(path).map_err(|e| io_err(path, e))?;
        serde_json::from_str(&text).map_err(|e| io_err(path, e))
    }
}
