//! The snapshot image a host fills from a guest's disk: one path for
//! `createImage` and for shelve's `<name>-shelved` image (Nova's
//! `compute_utils.create_image`, then the driver's `snapshot` and the
//! upload into the image service).
//!
//! accepted: the image is created `queued` (this module's [`create`]) →
//! the host copies the disk (`image_pending_upload`) and stores the bytes
//! in the image service (`image_uploading`): the image is `saving` with
//! their size and digests ([`on_progress`]) → the host's task ends: the
//! image is `active` ([`uploaded`]). A snapshot that fails or times out
//! takes its image with it ([`delete_image`], as Nova's
//! `delete_image_on_error`).

use std::collections::BTreeMap;

use novalog_schemas::instance::Instance;
use novalog_schemas::{
    CatalogEvent, Envelope, Event, Image, InstanceEvent, ServerAction, TaskState,
};
use uuid::Uuid;

use crate::core::{Conductor, Dest, Emit, emit};

/// The id of the image a createImage accepted by `env` creates.
pub(crate) fn image_id(env: &Envelope) -> Uuid {
    Uuid::new_v5(&env.meta.event_id, b"snapshot-image")
}

/// A snapshot of `i` named `name`, `queued`, as Nova's
/// `compute_utils.create_image` makes it: the base image's formats and
/// minimums, the instance's image properties, `image_type=snapshot`,
/// `instance_uuid`, `base_image_ref`, `owner_id`, `user_id`, and the
/// request's `extra` properties over them.
pub fn snapshot_image(
    i: &Instance,
    base: Option<&Image>,
    id: Uuid,
    name: &str,
    extra: &BTreeMap<String, String>,
    now: i64,
) -> Image {
    let mut properties = i.image.properties.clone();
    properties.insert("image_type".into(), "snapshot".into());
    properties.insert("instance_uuid".into(), i.id.to_string());
    properties.insert("base_image_ref".into(), i.image.id.to_string());
    properties.insert("owner_id".into(), i.project_id.clone());
    properties.insert("user_id".into(), i.user_id.clone());
    properties.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    let base = base.unwrap_or(&i.image);
    Image {
        id,
        name: name.to_owned(),
        status: "queued".into(),
        size: 0,
        min_disk: base.min_disk.max(i.flavor.disk_gb),
        min_ram: base.min_ram,
        disk_format: base.disk_format.clone(),
        container_format: base.container_format.clone(),
        properties,
        owner: i.project_id.clone(),
        checksum: String::new(),
        visibility: "private".into(),
        created_at_ms: now,
        protected: false,
        tags: Vec::new(),
        os_hash_value: String::new(),
        updated_at_ms: now,
        members: Vec::new(),
    }
}

fn catalog(c: &mut Conductor, env: &Envelope, step: &str, image: Image, event: Event) -> Emit {
    let id = image.id;
    c.images.insert(id, image);
    emit(
        Dest::Catalog,
        id.to_string(),
        &env.meta,
        step,
        id.to_string(),
        event,
    )
}

/// Creates the snapshot image of `i`, `queued` (the first record of an
/// accepted snapshot).
pub(crate) fn create(
    c: &mut Conductor,
    env: &Envelope,
    i: &Instance,
    image_id: Uuid,
    name: &str,
    extra: &BTreeMap<String, String>,
    step: &str,
) -> Emit {
    let base = c.images.get(&i.image.id).cloned();
    let image = snapshot_image(i, base.as_ref(), image_id, name, extra, c.now_ms);
    catalog(
        c,
        env,
        step,
        image.clone(),
        Event::Catalog(CatalogEvent::ImageCreated(image)),
    )
}

/// The image a snapshot `action` fills, if it is one.
pub fn image_of(action: &ServerAction) -> Option<Uuid> {
    match action {
        ServerAction::CreateImage { image_id, .. } | ServerAction::Shelve { image_id } => *image_id,
        _ => None,
    }
}

/// What the host stored for a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub size: u64,
    pub checksum: String,
    pub os_hash_value: String,
}

/// The host reports a snapshot's step (`task_state`): the instance moves
/// to it, and once the bytes are stored (`stored`) the image is `saving`
/// with their size and digests. Dropped unless the instance is still in
/// that snapshot's task on that host.
pub(crate) fn on_progress(
    c: &mut Conductor,
    env: &Envelope,
    id: Uuid,
    host: &str,
    action: &ServerAction,
    task_state: TaskState,
    stored: Option<Stored>,
) -> Vec<Emit> {
    let Some(i) = c.instances.get(&id) else {
        return Vec::new();
    };
    if i.host.as_deref() != Some(host)
        || !action.in_task(i.task_state)
        || !action.in_task(Some(task_state))
        || i.task_state == Some(task_state)
    {
        return Vec::new();
    }
    let project = i.project_id.clone();
    let mut out = vec![c.instance_event(
        &env.meta,
        &format!("snapshot-{}", task_state.as_str()),
        id,
        &project,
        Event::Instance(InstanceEvent::InstanceTaskStarted {
            action: action.clone(),
            task_state,
        }),
    )];
    if let (Some(stored), Some(image_id)) = (stored, image_of(action))
        && let Some(mut image) = c.images.get(&image_id).cloned()
        && image.status == novalog_schemas::image::QUEUED
    {
        image.status = "saving".into();
        image.size = stored.size;
        image.checksum = stored.checksum;
        image.os_hash_value = stored.os_hash_value;
        image
            .properties
            .entry("os_hash_algo".into())
            .or_insert_with(|| "sha512".into());
        image.updated_at_ms = c.now_ms;
        out.push(catalog(
            c,
            env,
            "snapshot-saving",
            image.clone(),
            Event::Catalog(CatalogEvent::ImageUpdated(image)),
        ));
    }
    out
}

/// The snapshot's bytes are stored and the host's task is over: `active`.
/// An image the host reported no bytes for (a driver that keeps none of
/// its own) has the size and digests of the image it copies, the disk the
/// guest was booted from.
pub(crate) fn uploaded(c: &mut Conductor, env: &Envelope, image_id: Uuid) -> Vec<Emit> {
    let Some(mut image) = c.images.get(&image_id).cloned() else {
        return Vec::new();
    };
    if image.status != novalog_schemas::image::QUEUED && image.status != "saving" {
        return Vec::new();
    }
    if image.status == novalog_schemas::image::QUEUED {
        let base = image
            .properties
            .get("base_image_ref")
            .and_then(|r| Uuid::parse_str(r).ok())
            .and_then(|b| c.images.get(&b).cloned());
        if let Some(base) = base {
            image.size = base.size;
            image.checksum = base.checksum;
            image.os_hash_value = base.os_hash_value;
            image
                .properties
                .entry("os_hash_algo".into())
                .or_insert_with(|| "sha512".into());
        }
    }
    image.status = "active".into();
    image.updated_at_ms = c.now_ms;
    vec![catalog(
        c,
        env,
        "snapshot-active",
        image.clone(),
        Event::Catalog(CatalogEvent::ImageUpdated(image)),
    )]
}

/// Deletes the image (the shelved snapshot once unshelved, or one whose
/// snapshot failed); nothing when it is gone already.
pub(crate) fn delete_image(
    c: &mut Conductor,
    env: &Envelope,
    image_id: Uuid,
    step: &str,
) -> Vec<Emit> {
    let Some(mut image) = c.images.get(&image_id).cloned() else {
        return Vec::new();
    };
    if image.status == novalog_schemas::image::DELETED {
        return Vec::new();
    }
    image.status = novalog_schemas::image::DELETED.into();
    image.updated_at_ms = c.now_ms;
    vec![catalog(
        c,
        env,
        step,
        image,
        Event::Catalog(CatalogEvent::ImageDeleted { image_id }),
    )]
}
