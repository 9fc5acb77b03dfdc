//! Catalog intents: flavors and images, accepted onto the `catalog` topic.

use novalog_schemas::{Envelope, Event, Flavor, Image};

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
    c.images.insert(i.id, i.clone());
    c.mark_image(i.id);
    vec![emit(
        Dest::Catalog,
        i.id.to_string(),
        &env.meta,
        "image-created",
        i.id.to_string(),
        Event::ImageCreated(i.clone()),
    )]
}
