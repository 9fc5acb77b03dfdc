//! Self-contained tokens: the claims as JSON, signed with HMAC-SHA256,
//! `nv1.<base64url(claims)>.<base64url(mac)>`. Nothing is stored: any API
//! process holding the key validates a token by its signature and expiry.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::IdentityError;

const PREFIX: &str = "nv1.";
const KEY_FILE: &str = "token.key";

/// What a token asserts. Times are milliseconds since the epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    #[serde(rename = "u")]
    pub user_id: String,
    /// `None`: an unscoped or a domain-scoped token.
    #[serde(rename = "p", default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    /// The domain of a domain-scoped token (never with `project_id`).
    #[serde(rename = "d", default, skip_serializing_if = "Option::is_none")]
    pub domain_id: Option<String>,
    /// Role names on the project or domain (empty when unscoped).
    #[serde(rename = "r", default)]
    pub roles: Vec<String>,
    #[serde(rename = "m")]
    pub methods: Vec<String>,
    #[serde(rename = "i")]
    pub issued_at: i64,
    #[serde(rename = "e")]
    pub expires_at: i64,
    /// This token's audit id, then that of the token it was rescoped from.
    #[serde(rename = "a")]
    pub audit_ids: Vec<String>,
    /// The application credential the token was issued for: its roles
    /// bound the token's, and the token dies with it.
    #[serde(rename = "c", default, skip_serializing_if = "Option::is_none")]
    pub app_cred: Option<String>,
    /// The user's token epoch when issued: a password change or a
    /// disabling moves it on and so revokes the token (keystone's
    /// revocation by user).
    #[serde(rename = "g", default)]
    pub user_epoch: u64,
}

/// Why a token is not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed token")]
    Malformed,
    #[error("bad token signature")]
    BadSignature,
    #[error("token expired")]
    Expired,
    /// Revoked, or its user no longer has a role on its project.
    #[error("token revoked")]
    Revoked,
}

/// A fresh keystone-style audit id: 16 random bytes, base64url.
pub fn audit_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Signs and checks tokens with one key.
pub struct Signer {
    key: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

impl Signer {
    pub fn new(key: impl Into<Vec<u8>>) -> Self {
        Signer { key: key.into() }
    }

    /// The configured secret, else the key kept in `dir/token.key`
    /// (created with 32 random bytes on first use, readable by the owner
    /// only).
    pub fn load(secret: &str, dir: &Path) -> Result<Signer, IdentityError> {
        if !secret.is_empty() {
            return Ok(Signer::new(secret.as_bytes()));
        }
        let path = dir.join(KEY_FILE);
        let io = |e: std::io::Error| IdentityError::Key(format!("{}: {e}", path.display()));
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let key = URL_SAFE_NO_PAD
                    .decode(text.trim())
                    .map_err(|e| IdentityError::Key(format!("{}: {e}", path.display())))?;
                if key.len() < 16 {
                    return Err(IdentityError::Key(format!(
                        "{}: key too short",
                        path.display()
                    )));
                }
                Ok(Signer::new(key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                use std::io::Write as _;
                use std::os::unix::fs::OpenOptionsExt as _;
                let mut key = [0u8; 32];
                rand::rng().fill_bytes(&mut key);
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .map_err(io)?;
                file.write_all(URL_SAFE_NO_PAD.encode(key).as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(io)?;
                Ok(Signer::new(key))
            }
            Err(e) => Err(io(e)),
        }
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes keys of any length")
    }

    pub fn sign(&self, claims: &Claims) -> String {
        let payload = serde_json::to_vec(claims).expect("claims serialise");
        let signed = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(payload));
        let mut mac = self.mac();
        mac.update(signed.as_bytes());
        let tag = mac.finalize().into_bytes();
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// The claims of a token this key signed that has not expired at `now_ms`.
    pub fn verify(&self, token: &str, now_ms: i64) -> Result<Claims, TokenError> {
        let token = token.trim();
        let (signed, tag) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let payload = signed.strip_prefix(PREFIX).ok_or(TokenError::Malformed)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| TokenError::Malformed)?;
        let mut mac = self.mac();
        mac.update(signed.as_bytes());
        mac.verify_slice(&tag)
            .map_err(|_| TokenError::BadSignature)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed)?;
        if claims.expires_at <= now_ms {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(expires_at: i64) -> Claims {
        Claims {
            user_id: "u1".into(),
            project_id: Some("p1".into()),
            domain_id: None,
            roles: vec!["member".into()],
            methods: vec!["password".into()],
            issued_at: 1_000,
            expires_at,
            audit_ids: vec![audit_id()],
            app_cred: None,
            user_epoch: 0,
        }
    }

    #[test]
    fn signed_tokens_verify_until_they_expire() {
        let s = Signer::new(b"k".to_vec());
        let c = claims(10_000);
        let t = s.sign(&c);
        assert!(t.starts_with("nv1."));
        assert_eq!(s.verify(&t, 9_999), Ok(c));
        assert_eq!(s.verify(&t, 10_000), Err(TokenError::Expired));
    }

    #[test]
    fn tampered_or_foreign_tokens_are_refused() {
        let s = Signer::new(b"k".to_vec());
        let t = s.sign(&claims(10_000));
        assert_eq!(
            Signer::new(b"other".to_vec()).verify(&t, 0),
            Err(TokenError::BadSignature)
        );
        // Same signature, claims naming another user.
        let (_, tag) = t.rsplit_once('.').unwrap();
        let mut forged = claims(10_000);
        forged.user_id = "admin".into();
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        assert_eq!(
            s.verify(&format!("nv1.{payload}.{tag}"), 0),
            Err(TokenError::BadSignature)
        );
        assert_eq!(s.verify("admin:admin", 0), Err(TokenError::Malformed));
        assert_eq!(s.verify("", 0), Err(TokenError::Malformed));
    }

    #[test]
    fn a_generated_key_survives_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let t = Signer::load("", dir.path()).unwrap().sign(&claims(10_000));
        assert!(Signer::load("", dir.path()).unwrap().verify(&t, 0).is_ok());
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        let configured = Signer::load("secret", dir.path()).unwrap();
        assert_eq!(configured.verify(&t, 0), Err(TokenError::BadSignature));
    }
}
