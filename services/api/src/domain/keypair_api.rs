//! Keypairs (Nova's `os-keypairs` and `KeypairAPI`): names are unique per
//! user; an imported key is parsed and fingerprinted here, a missing key is
//! generated here (below 2.92), and the conductor decides on uniqueness and
//! the per-user quota.

use std::sync::Arc;

use base64::Engine;
use md5::{Digest, Md5};
use novalog_schemas::events::Keypair;
use novalog_schemas::{CatalogEvent, Event};

use crate::auth::Context;
use crate::domain::Domain;
use crate::domain::intents::Intent;
use crate::error::ApiError;
use crate::projection::verdicts::Verdict;

pub const TYPE_SSH: &str = "ssh";
pub const TYPE_X509: &str = "x509";

/// Nova's `InvalidKeypair`: 400 `Keypair data is invalid: <reason>`.
pub fn invalid(reason: &str) -> ApiError {
    ApiError::bad_request(format!("Keypair data is invalid: {reason}"))
}

fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Nova's `_validate_new_key_pair` name check: letters, digits, `_`, `-`
/// and spaces, and from 2.92 also `@` and `.`.
pub fn check_name(name: &str, version: crate::microversion::ApiVersion) -> Result<(), ApiError> {
    let more = version.at_least(2, 92);
    let safe = name.chars().all(|c| {
        c.is_ascii_alphanumeric()
            || matches!(c, '_' | '-' | ' ')
            || (more && matches!(c, '@' | '.'))
    });
    if !safe {
        return Err(invalid("Keypair name contains unsafe characters"));
    }
    Ok(())
}

/// The fingerprint of an OpenSSH public key line as Nova computes it: the
/// MD5 of the key blob, colon-separated. The key must parse as one of the
/// algorithms OpenSSH knows (rsa, dsa, ecdsa, ed25519).
pub fn ssh_fingerprint(public_key: &str) -> Result<String, ApiError> {
    let bad = || invalid("failed to generate fingerprint");
    let key = ssh_key::PublicKey::from_openssh(public_key.trim()).map_err(|_| bad())?;
    let blob = key.to_bytes().map_err(|_| bad())?;
    Ok(colon_hex(&Md5::digest(&blob)))
}

/// The fingerprint of a PEM x509 certificate as Nova computes it: the SHA-1
/// of its DER bytes, colon-separated.
pub fn x509_fingerprint(pem: &str) -> Result<String, ApiError> {
    let bad = || invalid("failed to generate X509 fingerprint");
    let body: String = pem
        .lines()
        .map(str::trim)
        .skip_while(|l| *l != "-----BEGIN CERTIFICATE-----")
        .skip(1)
        .take_while(|l| *l != "-----END CERTIFICATE-----")
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|_| bad())?;
    // A certificate is a DER SEQUENCE of at least its three parts.
    if der.len() < 16 || der[0] != 0x30 {
        return Err(bad());
    }
    Ok(colon_hex(&sha1::Sha1::digest(&der)))
}

/// A new ssh keypair: (public key line, private key in OpenSSH's format).
/// Nova generates RSA-2048; this generates Ed25519, which every OpenSSH
/// since 6.5 accepts.
pub fn generate_ssh() -> Result<(String, String), ApiError> {
    let fail = |e: ssh_key::Error| {
        tracing::error!(error = %e, "keypair generation failed");
        ApiError::internal(
            "Unexpected API Error. Please report this at http://bugs.launchpad.net/nova/ and attach the Nova API log if possible.",
        )
    };
    let mut rng = ssh_key::rand_core::OsRng;
    let mut private =
        ssh_key::PrivateKey::random(&mut rng, ssh_key::Algorithm::Ed25519).map_err(fail)?;
    private.set_comment("Generated-by-Nova");
    let public = private.public_key().to_openssh().map_err(fail)?;
    let pem = private.to_openssh(ssh_key::LineEnding::LF).map_err(fail)?;
    Ok((public, pem.to_string()))
}

/// What a create asks for, validated.
#[derive(Debug, Clone)]
pub struct KeypairCreate {
    pub name: String,
    pub key_type: String,
    pub public_key: Option<String>,
    pub user_id: String,
    /// The request's microversion (name rules changed in 2.92).
    pub version: crate::microversion::ApiVersion,
}

/// What a create made: the keypair, and the private key if generated.
pub struct Created {
    pub keypair: Keypair,
    pub private_key: Option<String>,
}

/// Only the owner, or an administrator, acts on a user's keypairs
/// (`os_compute_api:os-keypairs:<action>`, `user_id:%(user_id)s`).
pub fn authorize(ctx: &Context, action: &str, user_id: &str) -> Result<(), ApiError> {
    if ctx.is_admin || ctx.user_id == user_id {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "Policy doesn't allow os_compute_api:os-keypairs:{action} to be performed."
        )))
    }
}

pub async fn create(
    app: &Domain,
    ctx: &Context,
    request_id: &str,
    req: KeypairCreate,
) -> Result<Created, ApiError> {
    authorize(ctx, "create", &req.user_id)?;
    check_name(&req.name, req.version)?;
    let (public_key, fingerprint, private_key) = match (&req.public_key, req.key_type.as_str()) {
        (Some(k), TYPE_X509) => (k.clone(), x509_fingerprint(k)?, None),
        (Some(k), _) => (k.clone(), ssh_fingerprint(k)?, None),
        (None, TYPE_X509) => {
            return Err(invalid(
                "generating x509 keypairs is not supported; import a certificate with public_key",
            ));
        }
        (None, _) => {
            let (public, private) = generate_ssh()?;
            let fp = ssh_fingerprint(&public)?;
            (public, fp, Some(private))
        }
    };
    if app.projection.keypair(&req.user_id, &req.name).is_some() {
        return Err(ApiError::conflict(format!(
            "Key pair '{}' already exists.",
            req.name
        )));
    }
    let keypair = Keypair {
        name: req.name,
        user_id: req.user_id,
        project_id: ctx.project_id.clone(),
        public_key,
        fingerprint,
        key_type: req.key_type,
        created_at_ms: 0,
        id: 0,
    };
    let intent = Intent {
        aggregate_id: crate::projection::keypair_key(&keypair.user_id, &keypair.name),
        event: Event::Intent(novalog_schemas::Intent::KeypairCreateRequested(Box::new(
            keypair.clone(),
        ))),
    };
    match decide(app, ctx, request_id, intent).await? {
        Verdict::Accepted(event) => match *event {
            Event::Catalog(CatalogEvent::KeypairCreated(k)) => Ok(Created {
                keypair: *k,
                private_key,
            }),
            _ => Ok(Created {
                keypair,
                private_key,
            }),
        },
        Verdict::Rejected(r) => Err(r.into()),
    }
}

/// The keypair `name` of `user_id`, or Nova's 404.
pub fn find(app: &Domain, user_id: &str, name: &str) -> Result<Arc<Keypair>, ApiError> {
    app.projection
        .keypair(user_id, name)
        .ok_or_else(|| ApiError::not_found(format!("Keypair {name} not found for user {user_id}")))
}

pub async fn delete(
    app: &Domain,
    ctx: &Context,
    request_id: &str,
    user_id: &str,
    name: &str,
) -> Result<(), ApiError> {
    authorize(ctx, "delete", user_id)?;
    find(app, user_id, name)?;
    let intent = Intent {
        aggregate_id: crate::projection::keypair_key(user_id, name),
        event: Event::Intent(novalog_schemas::Intent::KeypairDeleteRequested {
            user_id: user_id.to_owned(),
            name: name.to_owned(),
        }),
    };
    match decide(app, ctx, request_id, intent).await? {
        Verdict::Accepted(_) => Ok(()),
        Verdict::Rejected(r) => Err(r.into()),
    }
}

/// Keypair intents are keyed by the caller's project, like every intent.
async fn decide(
    app: &Domain,
    ctx: &Context,
    request_id: &str,
    intent: Intent,
) -> Result<Verdict, ApiError> {
    let verdicts = app
        .intents
        .submit(ctx, request_id, &ctx.project_id, vec![intent])
        .await?;
    verdicts
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::unavailable("No verdict on the keypair."))
}

#[cfg(test)]
mod tests {
    use super::*;

    // From Nova's functional samples (`keypairs-import-post-req.json`).
    const RSA: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDx8nkQv/zgGgB4rMYmIf+6A4l6Rr+o/6lHBQdW5aYd44bd8JttDCE/F/pNRr0lRE+PiqSPO8nDPHw0010JeMH9gYgnnFlyY3/OcJ02RhIPyyxYpv9FhY+2YiUkpwFOcLImyrxEsYXpD/0d3ac30bNH6Sw9JD9UZHYcpSxsIbECHw== Generated-by-Nova";

    #[test]
    fn fingerprints_are_novas() {
        // Nova's sample response for this key.
        assert_eq!(
            ssh_fingerprint(RSA).unwrap(),
            "1e:2c:9b:56:79:4b:45:77:f9:ca:7a:98:2c:b0:d5:3c"
        );
        let e = ssh_fingerprint("ssh-rsa AAAAnotakey").unwrap_err();
        assert_eq!(
            e.message,
            "Keypair data is invalid: failed to generate fingerprint"
        );
        assert!(ssh_fingerprint("").is_err());
        assert!(ssh_fingerprint("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA==").is_err());
    }

    #[test]
    fn generated_keys_parse_and_fingerprint() {
        let (public, private) = generate_ssh().unwrap();
        assert!(public.starts_with("ssh-ed25519 "), "{public}");
        assert!(public.ends_with(" Generated-by-Nova"));
        assert!(private.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
        let fp = ssh_fingerprint(&public).unwrap();
        assert_eq!(fp.len(), 47);
        assert_ne!(generate_ssh().unwrap().0, public);
    }

    #[test]
    fn names_are_checked_like_novas() {
        use crate::microversion::ApiVersion;
        let v = ApiVersion::new(2, 61);
        assert!(check_name("my key_1-a", v).is_ok());
        assert_eq!(
            check_name("bad/name", v).unwrap_err().message,
            "Keypair data is invalid: Keypair name contains unsafe characters"
        );
        assert!(check_name("me@host.example", v).is_err());
        assert!(check_name("me@host.example", ApiVersion::new(2, 92)).is_ok());
    }

    // A self-signed certificate made with `openssl req -x509`; openssl's
    // `-fingerprint -sha1` of it, lowercased.
    pub(crate) const CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBezCCASGgAwIBAgIURBrpRCMDHP6MEaPkJVPyXiE6nEYwCgYIKoZIzj0EAwIw
EjEQMA4GA1UEAwwHbm92YWxvZzAgFw0yNjExMjIwNjM3MThaGA8yMTI2MTAyOTA2
MzcxOFowEjEQMA4GA1UEAwwHbm92YWxvZzBZMBMGByqGSM49AgEGCCqGSM49AwEH
A0IABM/WJmDpGSSSg1FOV50L8cjlmzO3wu2Uw+dAjDb7eLhcWpN38YLeIZbEO+5y
T5hRVFuwaQsWro50t0RLf/MdtfGjUzBRMB0GA1UdDgQWBBSP5H9zfr+uARxBoE+P
d6EUuYfkwjAfBgNVHSMEGDAWgBSP5H9zfr+uARxBoE+Pd6EUuYfkwjAPBgNVHRMB
Af8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIQD2kZsTVjsug95YkZC4YY36auZ/
XkXgs+U3SaEoWM6g1QIgMe6B+VnmmPaJ/yVyya4jnxLtvw2ALTd1/9R83sngUYc=
-----END CERTIFICATE-----
";

    #[test]
    fn x509_fingerprints_are_the_sha1_of_the_certificate() {
        assert_eq!(
            x509_fingerprint(CERT).unwrap(),
            "3f:97:12:6b:a7:9c:65:f2:dc:4b:af:fd:4d:4a:0e:88:e1:cf:0f:53"
        );
        assert!(x509_fingerprint("not a cert").is_err());
    }
}
