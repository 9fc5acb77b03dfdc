//! Catalog intents: flavors and images, accepted onto the `catalog` topic.

use novalog_schemas::{Envelope, Event, Flavor, Image};
use uuid::Uuid;

use crate::core::{Conductor, Dest, Emit, emit};

pub(crate) fn on_flavor_create(c: &mut Conductor, env: &Envelope, f: &Flavor) -> Vec<Emit> {
    if !env.meta.actor.is_admin() && env.meta.actor.roles.iter().all(|r| r != "service") {
        return vec![Conductor::reject(
            env,
            f.id.clone(),
            403,
            "Policy doesn't allow os_compute_api:os-flavor-manage:create to be performed.".into(),
        )];
    }
    if c.flavors.contains_key(&f.id) {
        return vec![Conductor::reject(
            env,
            f.id.clone(),
            409,
            format!("Flavor with ID {} already exists.", f.id),
        )];
    }
    if c.flavors.values().any(|x| x.name == f.name) {
        return vec![Conductor::reject(
            env,
            f.id.clone(),
            409,
            format!("Flavor with name {} already exists.", f.name),
        )];
    }
    c.flavors.insert(f.id.clone(), f.clone());
    c.mark_flavor(&f.id);
    vec![emit(
        Dest::Catalog,
        f.id.clone(),
        &env.meta,
        "flavor-created",
        f.id.clone(),
        Event::FlavorCreated(f.clone()),
    )]
}

pub(crate) fn on_image_create(c: &mut Conductor, env: &Envelope, i: &Image) -> Vec<Emit> {
    if c.images.contains_key(&i.id) {
        return vec![Conductor::reject(
            env,
            i.id.to_string(),
            409,
            format!("Image with identifier {} already exists.", i.id),
        )];
    }
    record_image(
        c,
        env,
        i.clone(),
        "image-created",
        Event::ImageCreated(i.clone()),
    )
}

/// Keeps `image` as the catalog's version of it and announces the change.
fn record_image(
    c: &mut Conductor,
    env: &Envelope,
    image: Image,
    step: &str,
    event: Event,
) -> Vec<Emit> {
    let id = image.id;
    c.images.insert(id, image);
    c.mark_image(id);
    vec![emit(
        Dest::Catalog,
        id.to_string(),
        &env.meta,
        step,
        id.to_string(),
        event,
    )]
}

/// An image the intent may change: known and not deleted.
fn live_image<'a>(c: &'a Conductor, id: &Uuid) -> Option<&'a Image> {
    c.images.get(id).filter(|i| i.status != "deleted")
}

/// Only the image's owner (or an administrator) changes it; the API
/// checked the same before asking.
fn may_modify(env: &Envelope, i: &Image) -> bool {
    env.meta.actor.is_admin() || env.meta.actor.project_id == i.owner
}

/// `PATCH` or an upload: the intent carries the whole image after the change.
pub(crate) fn on_image_update(c: &mut Conductor, env: &Envelope, i: &Image) -> Vec<Emit> {
    let Some(current) = live_image(c, &i.id) else {
        return vec![Conductor::reject(
            env,
            i.id.to_string(),
            404,
            format!("No image found with ID {}", i.id),
        )];
    };
    if !may_modify(env, current) {
        return vec![Conductor::reject(
            env,
            i.id.to_string(),
            403,
            "You are not permitted to modify this image.".into(),
        )];
    }
    // Data is written once: a second upload onto an active image is refused.
    if i.status == "active"
        && current.status == "active"
        && i.os_hash_value != current.os_hash_value
    {
        return vec![Conductor::reject(
            env,
            i.id.to_string(),
            409,
            "Image status transition from active to saving is not allowed".into(),
        )];
    }
    record_image(
        c,
        env,
        i.clone(),
        "image-updated",
        Event::ImageUpdated(i.clone()),
    )
}

/// Deleting keeps the image as `deleted` so its id is never reused.
pub(crate) fn on_image_delete(c: &mut Conductor, env: &Envelope, id: Uuid) -> Vec<Emit> {
    let Some(current) = live_image(c, &id) else {
        return vec![Conductor::reject(
            env,
            id.to_string(),
            404,
            format!("No image found with ID {id}"),
        )];
    };
    if !may_modify(env, current) {
        return vec![Conductor::reject(
            env,
            id.to_string(),
            403,
            "You are not permitted to delete this image.".into(),
        )];
    }
    if current.protected {
        return vec![Conductor::reject(
            env,
            id.to_string(),
            403,
            format!("Image {id} is protected and cannot be deleted."),
        )];
    }
    let mut deleted = current.clone();
    deleted.status = "deleted".into();
    record_image(
        c,
        env,
        deleted,
        "image-deleted",
        Event::ImageDeleted { image_id: id },
    )
}
