//! Catalog intents: flavors, accepted onto the `catalog` topic (images are
//! in [`crate::images`]).

use novalog_schemas::{CatalogEvent, Envelope, Event, Flavor, Rejection};

use crate::core::{Conductor, Dest, Emit, emit};

pub(crate) fn on_flavor_create(c: &mut Conductor, env: &Envelope, f: &Flavor) -> Vec<Emit> {
    if !env.meta.actor.is_admin() && env.meta.actor.roles.iter().all(|r| r != "service") {
        return vec![Conductor::reject(
            env,
            f.id.clone(),
            Rejection::forbidden(
                "Policy doesn't allow os_compute_api:os-flavor-manage:create to be performed.",
            ),
        )];
    }
    if c.flavors.contains_key(&f.id) {
        return vec![Conductor::reject(
            env,
            f.id.clone(),
            Rejection::conflict(format!("Flavor with ID {} already exists.", f.id)),
        )];
    }
    if c.flavors.values().any(|x| x.name == f.name) {
        return vec![Conductor::reject(
            env,
            f.id.clone(),
            Rejection::conflict(format!("Flavor with name {} already exists.", f.name)),
        )];
    }
    c.flavors.insert(f.id.clone(), f.clone());
    vec![emit(
        Dest::Catalog,
        f.id.clone(),
        &env.meta,
        "flavor-created",
        f.id.clone(),
        Event::Catalog(CatalogEvent::FlavorCreated(f.clone())),
    )]
}

fn flavor_not_found(env: &Envelope, id: &str) -> Emit {
    Conductor::reject(
        env,
        id.to_owned(),
        Rejection::not_found(format!("Flavor {id} could not be found.")),
    )
}

fn admin_only(env: &Envelope, id: &str, rule: &str) -> Option<Emit> {
    (!env.meta.actor.is_admin()).then(|| {
        Conductor::reject(
            env,
            id.to_owned(),
            Rejection::forbidden(format!("Policy doesn't allow {rule} to be performed.")),
        )
    })
}

/// Extra specs set or unset and the description: the flavor after the
/// change is announced whole.
pub(crate) fn on_flavor_update(
    c: &mut Conductor,
    env: &Envelope,
    u: &novalog_schemas::events::FlavorUpdate,
) -> Vec<Emit> {
    let id = &u.flavor_id;
    if let Some(e) = admin_only(env, id, "os_compute_api:os-flavor-extra-specs:update") {
        return vec![e];
    }
    let Some(current) = c.flavors.get(id) else {
        return vec![flavor_not_found(env, id)];
    };
    if let Some(key) = u
        .extra_specs_unset
        .iter()
        .find(|k| !current.extra_specs.contains_key(*k))
    {
        return vec![Conductor::reject(
            env,
            id.clone(),
            Rejection::not_found(format!("Flavor {id} has no extra specs with key {key}.")),
        )];
    }
    let mut next = current.clone();
    for k in &u.extra_specs_unset {
        next.extra_specs.remove(k);
    }
    next.extra_specs.extend(u.extra_specs_set.clone());
    if let Some(d) = &u.description {
        next.description = d.clone();
    }
    c.flavors.insert(id.clone(), next.clone());
    vec![emit(
        Dest::Catalog,
        id.clone(),
        &env.meta,
        "flavor-updated",
        id.clone(),
        Event::Catalog(CatalogEvent::FlavorUpdated(next)),
    )]
}

/// Deleting a flavor leaves the servers built from it as they are (each
/// keeps its copy), and frees its id and name.
pub(crate) fn on_flavor_delete(c: &mut Conductor, env: &Envelope, id: &str) -> Vec<Emit> {
    if let Some(e) = admin_only(env, id, "os_compute_api:os-flavor-manage:delete") {
        return vec![e];
    }
    if c.flavors.remove(id).is_none() {
        return vec![flavor_not_found(env, id)];
    }
    c.flavor_access.remove(id);
    vec![emit(
        Dest::Catalog,
        id.to_owned(),
        &env.meta,
        "flavor-deleted",
        id.to_owned(),
        Event::Catalog(CatalogEvent::FlavorDeleted {
            flavor_id: id.to_owned(),
        }),
    )]
}

/// Nova's `addTenantAccess` / `removeTenantAccess` on a non-public flavor.
pub(crate) fn on_flavor_access(
    c: &mut Conductor,
    env: &Envelope,
    id: &str,
    project: &str,
    add: bool,
) -> Vec<Emit> {
    let rule = if add {
        "os_compute_api:os-flavor-access:add_tenant_access"
    } else {
        "os_compute_api:os-flavor-access:remove_tenant_access"
    };
    if let Some(e) = admin_only(env, id, rule) {
        return vec![e];
    }
    let Some(flavor) = c.flavors.get(id) else {
        return vec![flavor_not_found(env, id)];
    };
    if flavor.is_public {
        return vec![Conductor::reject(
            env,
            id.to_owned(),
            Rejection::conflict("Can not add access to a public flavor."),
        )];
    }
    let mut projects = c.flavor_access.get(id).cloned().unwrap_or_default();
    let changed = if add {
        projects.insert(project.to_owned())
    } else {
        projects.remove(project)
    };
    if !changed {
        return vec![if add {
            Conductor::reject(
                env,
                id.to_owned(),
                Rejection::conflict(format!(
                    "Flavor access already exists for flavor {id} and project {project} combination."
                )),
            )
        } else {
            Conductor::reject(
                env,
                id.to_owned(),
                Rejection::not_found(format!(
                    "Flavor access not found for {id} / {project} combination."
                )),
            )
        }];
    }
    c.flavor_access.insert(id.to_owned(), projects);
    let (step, event) = if add {
        (
            "flavor-access-added",
            Event::Catalog(CatalogEvent::FlavorAccessAdded {
                flavor_id: id.to_owned(),
                project_id: project.to_owned(),
            }),
        )
    } else {
        (
            "flavor-access-removed",
            Event::Catalog(CatalogEvent::FlavorAccessRemoved {
                flavor_id: id.to_owned(),
                project_id: project.to_owned(),
            }),
        )
    };
    vec![emit(
        Dest::Catalog,
        id.to_owned(),
        &env.meta,
        step,
        id.to_owned(),
        event,
    )]
}
