//! Keypairs (Nova's `os-keypairs`): per user, created and deleted on the
//! `catalog` topic. The API validated the key and computed its fingerprint;
//! the conductor decides on uniqueness and the per-user quota.

use novalog_schemas::events::Keypair;
use novalog_schemas::{CatalogEvent, Envelope, Event, Rejection};

use crate::core::{Conductor, Dest, Emit, emit};

/// Nova's `[quota] key_pairs` default.
pub const MAX_KEYPAIRS_PER_USER: usize = 100;

/// The catalog key of a keypair: names are unique per user only.
pub fn key(user_id: &str, name: &str) -> String {
    format!("{user_id}/{name}")
}

/// Only the owner or an administrator acts on a user's keypairs.
fn may_act(env: &Envelope, user_id: &str) -> bool {
    env.meta.actor.is_admin() || env.meta.actor.user_id == user_id
}

pub(crate) fn on_create(c: &mut Conductor, env: &Envelope, k: &Keypair, now_ms: i64) -> Vec<Emit> {
    let id = key(&k.user_id, &k.name);
    if !may_act(env, &k.user_id) {
        return vec![Conductor::reject(
            env,
            id,
            Rejection::forbidden(
                "Policy doesn't allow os_compute_api:os-keypairs:create to be performed.",
            ),
        )];
    }
    if c.keypairs.contains_key(&id) {
        return vec![Conductor::reject(
            env,
            id,
            Rejection::conflict(format!("Key pair '{}' already exists.", k.name)),
        )];
    }
    let owned = c
        .keypairs
        .values()
        .filter(|x| x.user_id == k.user_id)
        .count();
    if owned >= MAX_KEYPAIRS_PER_USER {
        return vec![Conductor::reject(
            env,
            id,
            Rejection::over_quota("Quota exceeded, too many key pairs."),
        )];
    }
    // Ids are not reused while the newest keypair lives (Nova's are
    // autoincrement; deleting the newest and creating again may reuse).
    let next_id = c.keypairs.values().map(|x| x.id).max().unwrap_or(0) + 1;
    let keypair = Keypair {
        created_at_ms: now_ms,
        id: next_id,
        ..k.clone()
    };
    c.keypairs.insert(id.clone(), keypair.clone());
    vec![emit(
        Dest::Catalog,
        k.user_id.clone(),
        &env.meta,
        "keypair-created",
        id,
        Event::Catalog(CatalogEvent::KeypairCreated(Box::new(keypair))),
    )]
}

pub(crate) fn on_delete(c: &mut Conductor, env: &Envelope, user_id: &str, name: &str) -> Vec<Emit> {
    let id = key(user_id, name);
    if !may_act(env, user_id) {
        return vec![Conductor::reject(
            env,
            id,
            Rejection::forbidden(
                "Policy doesn't allow os_compute_api:os-keypairs:delete to be performed.",
            ),
        )];
    }
    if c.keypairs.remove(&id).is_none() {
        return vec![Conductor::reject(
            env,
            id,
            Rejection::not_found(format!("Keypair {name} not found for user {user_id}")),
        )];
    }
    vec![emit(
        Dest::Catalog,
        user_id.to_owned(),
        &env.meta,
        "keypair-deleted",
        id,
        Event::Catalog(CatalogEvent::KeypairDeleted {
            user_id: user_id.to_owned(),
            name: name.to_owned(),
        }),
    )]
}
