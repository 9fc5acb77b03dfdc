//! Flavors and images: who sees which, listing filters, and creating them
//! through the conductor.

use std::sync::Arc;

use novalog_schemas::{CatalogEvent, Event, Flavor, Image};
use uuid::Uuid;

use crate::auth::Context;
use crate::domain::Domain;
use crate::domain::intents::Intent;
use crate::domain::parse_bool;
use crate::error::ApiError;
use crate::policy::{self, Rule};
use crate::projection::verdicts::Verdict;

/// A valid `POST /flavors` body.
#[derive(Debug, Clone, PartialEq)]
pub struct FlavorCreate {
    pub name: String,
    /// None: the API generates one (a uuid), as Nova does.
    pub id: Option<String>,
    pub ram_mb: u64,
    pub vcpus: u32,
    pub disk_gb: u64,
    pub ephemeral_gb: u64,
    pub swap_mb: u64,
    pub rxtx_factor: f32,
    pub is_public: bool,
    /// From 2.55.
    pub description: Option<String>,
}

/// Whether `ctx` may use flavor `f`: public ones, non-public ones its
/// project was given access to, and every one for administrators.
pub fn may_use_flavor(app: &Domain, ctx: &Context, f: &Flavor) -> bool {
    f.is_public
        || ctx.is_admin
        || app
            .projection
            .flavor_access(&f.id)
            .contains(&ctx.project_id)
}

/// The flavor `id`, if `ctx` may use it.
pub fn visible_flavor(app: &Domain, ctx: &Context, id: &str) -> Option<Arc<Flavor>> {
    app.projection
        .flavor(id)
        .filter(|f| may_use_flavor(app, ctx, f))
}

/// Glance's visibility: public and community images are usable by all,
/// private and shared ones (image members do not exist) by their owner and
/// administrators.
pub fn visible_image(app: &Domain, ctx: &Context, id: &Uuid) -> Option<Arc<Image>> {
    // The Image API's own rule, so a server boots only from what the
    // caller could list there.
    app.projection
        .image(id)
        .filter(|i| novalog_image::images::visible(i, ctx))
}

/// `GET /flavors[/detail]`: Nova's filters (`is_public`, `minRam`,
/// `minDisk`, `name`) and paging (`limit`, `marker`), sorted by id.
pub fn list_flavors(
    app: &Domain,
    ctx: &Context,
    params: &[(String, String)],
) -> Result<FlavorPage, ApiError> {
    // Nova: administrators see public flavors unless they ask; the literal
    // `None` (what clients send) means every flavor.
    let mut is_public = Some(true);
    let mut min_ram = 0;
    let mut min_disk = 0;
    let mut name = None;
    let mut limit = None;
    let mut marker = None;
    for (k, v) in params {
        match k.as_str() {
            "is_public" if ctx.is_admin => {
                is_public = if v.eq_ignore_ascii_case("none") {
                    None
                } else {
                    Some(parse_bool(v).ok_or_else(|| {
                        ApiError::bad_request(format!("Invalid is_public filter [{v}]"))
                    })?)
                };
            }
            _ if v == "None" => {}
            "minRam" => {
                // Python's int(): any size, and a negative bound is no bound.
                min_ram = crate::domain::integer(v)
                    .map(|n| u64::try_from(n).unwrap_or(0))
                    .ok_or_else(|| ApiError::bad_request(format!("Invalid minRam filter [{v}]")))?;
            }
            "minDisk" => {
                // Python's int(): any size, and a negative bound is no bound.
                min_disk = crate::domain::integer(v)
                    .map(|n| u64::try_from(n).unwrap_or(0))
                    .ok_or_else(|| {
                        ApiError::bad_request(format!("Invalid minDisk filter [{v}]"))
                    })?;
            }
            "name" => name = Some(v.clone()),
            "limit" => {
                limit = Some(
                    crate::domain::non_negative(v)
                        .ok_or_else(|| ApiError::bad_request("limit param must be an integer"))?,
                );
            }
            "marker" => marker = Some(v.clone()),
            _ => {}
        }
    }
    // Others see public flavors and the non-public ones given to their
    // project (Nova's `is_public OR project in flavor access`).
    let mut flavors: Vec<Arc<Flavor>> = app
        .projection
        .flavors()
        .into_iter()
        .filter(|f| {
            if ctx.is_admin {
                is_public.is_none_or(|p| f.is_public == p)
            } else {
                may_use_flavor(app, ctx, f)
            }
        })
        .filter(|f| f.ram_mb >= min_ram && f.disk_gb >= min_disk)
        .filter(|f| name.as_ref().is_none_or(|n| &f.name == n))
        .collect();
    if let Some(marker) = &marker {
        let pos = flavors
            .iter()
            .position(|f| &f.id == marker)
            .ok_or_else(|| ApiError::bad_request(format!("marker [{marker}] not found")))?;
        flavors.drain(..=pos);
    }
    flavors.truncate(crate::domain::page_size(limit, app.max_limit));
    Ok(FlavorPage { flavors })
}

/// A page of flavors: at most `[api] max_limit`.
#[derive(Debug, Clone)]
pub struct FlavorPage {
    pub flavors: Vec<Arc<Flavor>>,
}

/// Creates a flavor (administrators only): refused here when the id or the
/// name is taken, else decided by the conductor.
pub async fn create_flavor(
    app: &Domain,
    ctx: &Context,
    request_id: &str,
    req: FlavorCreate,
) -> Result<Flavor, ApiError> {
    policy::authorize(ctx, Rule::FlavorManageCreate, None)?;
    let id = req.id.unwrap_or_else(|| Uuid::new_v4().to_string());
    if app.projection.flavor(&id).is_some() {
        return Err(ApiError::conflict(format!(
            "Flavor with ID {id} already exists."
        )));
    }
    if app.projection.flavors().iter().any(|f| f.name == req.name) {
        return Err(ApiError::conflict(format!(
            "Flavor with name {} already exists.",
            req.name
        )));
    }
    let flavor = Flavor {
        id,
        name: req.name,
        vcpus: req.vcpus,
        ram_mb: req.ram_mb,
        disk_gb: req.disk_gb,
        ephemeral_gb: req.ephemeral_gb,
        swap_mb: req.swap_mb,
        rxtx_factor: req.rxtx_factor,
        is_public: req.is_public,
        extra_specs: Default::default(),
        description: req.description,
    };
    let intent = Intent {
        aggregate_id: flavor.id.clone(),
        event: Event::Intent(novalog_schemas::Intent::FlavorCreateRequested(
            flavor.clone(),
        )),
    };
    match decide(app, ctx, request_id, intent).await? {
        Verdict::Accepted(event) => match *event {
            Event::Catalog(CatalogEvent::FlavorCreated(f)) => Ok(f),
            _ => Ok(flavor),
        },
        Verdict::Rejected(r) => Err(r.into()),
    }
}

/// Registers an image's metadata (administrators only): the bootstrap's
/// way in; clients use the Image API (`novalog_image`).
pub async fn create_image(
    app: &Domain,
    ctx: &Context,
    request_id: &str,
    image: Image,
) -> Result<Image, ApiError> {
    if !ctx.is_admin {
        return Err(ApiError::forbidden(
            "Only administrators may register images.",
        ));
    }
    let intent = Intent {
        aggregate_id: image.id.to_string(),
        event: Event::Intent(novalog_schemas::Intent::ImageCreateRequested(image.clone())),
    };
    match decide(app, ctx, request_id, intent).await? {
        Verdict::Accepted(event) => match *event {
            Event::Catalog(CatalogEvent::ImageCreated(i)) => Ok(i),
            _ => Ok(image),
        },
        Verdict::Rejected(r) => Err(r.into()),
    }
}

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
        .ok_or_else(|| ApiError::unavailable("No verdict was returned."))
}

/// Nova's 403 for an administrator-only flavor rule.
pub fn admin_only(ctx: &Context, rule: &str) -> Result<(), ApiError> {
    if ctx.is_admin {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "Policy doesn't allow {rule} to be performed."
        )))
    }
}

/// The flavor `id` for a change, or Nova's 404.
pub fn existing_flavor(app: &Domain, id: &str) -> Result<Arc<Flavor>, ApiError> {
    app.projection
        .flavor(id)
        .ok_or_else(|| ApiError::not_found(format!("Flavor {id} could not be found.")))
}

/// Sets and unsets extra specs, or the description, through the conductor;
/// answers with the flavor after the change.
pub async fn update_flavor(
    app: &Domain,
    ctx: &Context,
    request_id: &str,
    update: novalog_schemas::events::FlavorUpdate,
) -> Result<Flavor, ApiError> {
    let id = update.flavor_id.clone();
    let intent = Intent {
        aggregate_id: id.clone(),
        event: Event::Intent(novalog_schemas::Intent::FlavorUpdateRequested(Box::new(
            update,
        ))),
    };
    match decide(app, ctx, request_id, intent).await? {
        Verdict::Accepted(event) => match *event {
            Event::Catalog(CatalogEvent::FlavorUpdated(f)) => Ok(f),
            _ => existing_flavor(app, &id).map(|f| (*f).clone()),
        },
        Verdict::Rejected(r) => Err(r.into()),
    }
}

/// Deletes a flavor (administrators only).
pub async fn delete_flavor(
    app: &Domain,
    ctx: &Context,
    request_id: &str,
    id: &str,
) -> Result<(), ApiError> {
    admin_only(ctx, "os_compute_api:os-flavor-manage:delete")?;
    existing_flavor(app, id)?;
    let intent = Intent {
        aggregate_id: id.to_owned(),
        event: Event::Intent(novalog_schemas::Intent::FlavorDeleteRequested {
            flavor_id: id.to_owned(),
        }),
    };
    match decide(app, ctx, request_id, intent).await? {
        Verdict::Accepted(_) => Ok(()),
        Verdict::Rejected(r) => Err(r.into()),
    }
}

/// Gives (`add`) or takes away a project's access to a non-public flavor.
pub async fn change_flavor_access(
    app: &Domain,
    ctx: &Context,
    request_id: &str,
    id: &str,
    project_id: &str,
    add: bool,
) -> Result<(), ApiError> {
    let intent = Intent {
        aggregate_id: id.to_owned(),
        event: Event::Intent(novalog_schemas::Intent::FlavorAccessChangeRequested {
            flavor_id: id.to_owned(),
            project_id: project_id.to_owned(),
            add,
        }),
    };
    match decide(app, ctx, request_id, intent).await? {
        Verdict::Accepted(_) => Ok(()),
        Verdict::Rejected(r) => Err(r.into()),
    }
}
