//! Remote console tokens, as Nova's consoleauth keeps them: the API makes a
//! random token and hands it to the caller once; the log (like Nova's
//! `console_auth_tokens` table) holds only its sha256, with the instance,
//! the host and port the console proxy connects to, and when it expires.
//! The conductor issues a token ([`crate::InstanceEvent::ConsoleTokenIssued`]);
//! the API and the console proxy fold the issued tokens and forget them when
//! they expire or their instance is deleted.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The console type `novnc` (the only one Novalog serves).
pub const NOVNC: &str = "novnc";

/// An issued token, as the log and the projections keep it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsoleToken {
    pub instance_id: Uuid,
    /// sha256 of the token, lowercase hex ([`hash_token`]).
    pub token_hash: String,
    /// `novnc`.
    pub console_type: String,
    /// The compute host the instance is on.
    pub host: String,
    /// Where the guest's VNC display listens (Nova's token `host`).
    pub address: String,
    pub port: u32,
    /// Wall-clock milliseconds after which the token no longer works.
    pub expires_at_ms: i64,
}

impl ConsoleToken {
    /// Whether the token still works at `now_ms` (Nova's `validate`: an
    /// expired token is as unknown as one never issued).
    pub fn is_valid_at(&self, now_ms: i64) -> bool {
        now_ms < self.expires_at_ms
    }
}

/// The hash a token is kept under: sha256, lowercase hex (Nova's
/// `ConsoleAuthToken._get_token_hash`).
pub fn hash_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Where a guest's VNC display listens on its host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsoleEndpoint {
    pub address: String,
    pub port: u16,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_kept_as_its_sha256_in_hex() {
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_ne!(hash_token("abc"), hash_token("abd"));
    }

    #[test]
    fn a_token_works_until_it_expires() {
        let t = ConsoleToken {
            instance_id: Uuid::nil(),
            token_hash: hash_token("t"),
            console_type: NOVNC.into(),
            host: "h".into(),
            address: "127.0.0.1".into(),
            port: 5900,
            expires_at_ms: 1_000,
        };
        assert!(t.is_valid_at(999));
        assert!(!t.is_valid_at(1_000));
        assert!(!t.is_valid_at(5_000));
    }
}
