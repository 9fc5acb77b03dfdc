//! Images (Glance's): the conductor is their single writer. Every change
//! arrives as an operation — a create, a JSON-patch, an upload step, a
//! delete — and is decided by [`novalog_schemas::image`] against the image
//! as it is now, so concurrent changes are applied one after the other and
//! none is lost. Each accepted change is announced on `catalog` with the
//! whole image after it.

use novalog_schemas::image::{self, ImageChange, ImageData, ImagePatch, Refusal};
use novalog_schemas::{CatalogEvent, Envelope, Event, Image, Intent};
use uuid::Uuid;

use crate::core::{Conductor, Dest, Emit, emit};

/// The image a record is decided on, if any: the shell reads it back from
/// the store before the record when it is not in memory (deleted images
/// are not kept there).
pub fn image_concerned(event: &Event) -> Option<Uuid> {
    let intent = match event {
        Event::Intent(intent) => intent,
        // Images are decided on intents only.
        Event::Instance(_)
        | Event::Scheduler(_)
        | Event::Compute(_)
        | Event::ComputeFact(_)
        | Event::Host(_)
        | Event::Catalog(_)
        | Event::DeadLetter(_)
        | Event::Billing(_) => return None,
    };
    match intent {
        Intent::ImageCreateRequested(i) | Intent::ImageUpdateRequested(i) => Some(i.id),
        Intent::ImagePatchRequested(p) => Some(p.image_id),
        Intent::ImageUploadFinishRequested(d) => Some(d.image_id),
        Intent::ImageUploadRequested { image_id }
        | Intent::ImageUploadAbortRequested { image_id }
        | Intent::ImageDeleteRequested { image_id }
        | Intent::ImageChangeRequested { image_id, .. } => Some(*image_id),
        Intent::ServerCreateRequested(req) => Some(req.image.id),
        Intent::ServerRebuildRequested(req) => Some(req.image.id),
        Intent::ServerDeleteRequested { .. }
        | Intent::FlavorCreateRequested(_)
        | Intent::ServerGroupCreateRequested(_)
        | Intent::ServerGroupDeleteRequested { .. }
        | Intent::AggregateCreateRequested(_)
        | Intent::AggregateUpdateRequested { .. }
        | Intent::AggregateDeleteRequested { .. }
        | Intent::AggregateHostAddRequested { .. }
        | Intent::AggregateHostRemoveRequested { .. }
        | Intent::AggregateMetadataSetRequested { .. }
        | Intent::ServerActionRequested { .. }
        | Intent::ServerUpdateRequested { .. }
        | Intent::ServerMetadataChangeRequested { .. }
        | Intent::ServerTagsChangeRequested { .. }
        | Intent::QuotaSetRequested { .. }
        | Intent::QuotaResetRequested { .. }
        | Intent::QuotaClassSetRequested { .. }
        | Intent::KeypairCreateRequested(_)
        | Intent::KeypairDeleteRequested { .. }
        | Intent::FlavorUpdateRequested(_)
        | Intent::FlavorDeleteRequested { .. }
        | Intent::FlavorAccessChangeRequested { .. }
        | Intent::ServiceUpdateRequested(_)
        | Intent::ServiceChangeRequested(_)
        | Intent::ServiceDeleteRequested { .. }
        | Intent::ServerMigrationRequested(_)
        | Intent::ServerResizeConfirmRequested { .. }
        | Intent::ServerResizeRevertRequested { .. }
        | Intent::SagaStepTimedOut { .. }
        | Intent::ConsoleTokenRequested { .. } => None,
        Intent::ConsoleOutputRequested { .. } => None,
    }
}

fn reject(env: &Envelope, id: &Uuid, r: Refusal) -> Vec<Emit> {
    vec![Conductor::reject(env, id.to_string(), r.into())]
}

/// Keeps `next` as the image and announces it as `event`, or turns the
/// intent down.
fn record(
    c: &mut Conductor,
    env: &Envelope,
    id: Uuid,
    decided: Result<Image, Refusal>,
    step: &str,
    event: impl FnOnce(&Image) -> Event,
) -> Vec<Emit> {
    let next = match decided {
        Ok(next) => next,
        Err(r) => return reject(env, &id, r),
    };
    let event = event(&next);
    c.images.insert(id, next);
    vec![emit(
        Dest::Catalog,
        id.to_string(),
        &env.meta,
        step,
        id.to_string(),
        event,
    )]
}

pub(crate) fn on_create(c: &mut Conductor, env: &Envelope, i: &Image) -> Vec<Emit> {
    let decided = image::decide_create(c.images.get(&i.id), i, &env.meta.actor.image_caller());
    record(c, env, i.id, decided, "image-created", |i| {
        Event::Catalog(CatalogEvent::ImageCreated(i.clone()))
    })
}

/// The old whole-image intent: refused, since applying it would undo
/// whatever changed after the sender's copy was taken.
pub(crate) fn on_whole_update(env: &Envelope, i: &Image) -> Vec<Emit> {
    reject(
        env,
        &i.id,
        Refusal::Conflict("The image changed; retry the request.".into()),
    )
}

pub(crate) fn on_patch(c: &mut Conductor, env: &Envelope, p: &ImagePatch) -> Vec<Emit> {
    let id = p.image_id;
    let decided = image::decide_patch(
        c.images.get(&id),
        &id,
        &p.ops,
        &env.meta.actor.image_caller(),
        env.meta.occurred_at_ms,
    );
    record(c, env, id, decided, "image-updated", |i| {
        Event::Catalog(CatalogEvent::ImageUpdated(i.clone()))
    })
}

pub(crate) fn on_upload_start(c: &mut Conductor, env: &Envelope, id: Uuid) -> Vec<Emit> {
    let decided = image::decide_upload_start(
        c.images.get(&id),
        &id,
        &env.meta.actor.image_caller(),
        env.meta.occurred_at_ms,
    );
    record(c, env, id, decided, "image-saving", |i| {
        Event::Catalog(CatalogEvent::ImageUpdated(i.clone()))
    })
}

pub(crate) fn on_upload_finish(c: &mut Conductor, env: &Envelope, d: &ImageData) -> Vec<Emit> {
    let id = d.image_id;
    let decided = image::decide_upload_finish(
        c.images.get(&id),
        d,
        &env.meta.actor.image_caller(),
        env.meta.occurred_at_ms,
    );
    record(c, env, id, decided, "image-active", |i| {
        Event::Catalog(CatalogEvent::ImageUpdated(i.clone()))
    })
}

/// An upload ends without data: its own API gave up on it (decided by
/// Glance's policy), or the lease keeper found its lease run out (decided
/// by the lease, at the keeper's time: a newer upload is left alone).
pub(crate) fn on_upload_abort(c: &mut Conductor, env: &Envelope, id: Uuid) -> Vec<Emit> {
    let decided = image::decide_abort_by(
        c.images.get(&id),
        &id,
        &env.meta.actor,
        env.meta.occurred_at_ms,
        c.settings.upload_lease_ms,
    );
    record(c, env, id, decided, "image-requeued", |i| {
        Event::Catalog(CatalogEvent::ImageUpdated(i.clone()))
    })
}

/// Deleting keeps the image as `deleted` so its id is never reused.
pub(crate) fn on_delete(c: &mut Conductor, env: &Envelope, id: Uuid) -> Vec<Emit> {
    let decided = image::decide_delete(c.images.get(&id), &id, &env.meta.actor.image_caller());
    record(c, env, id, decided, "image-deleted", |_| {
        Event::Catalog(CatalogEvent::ImageDeleted { image_id: id })
    })
}

/// A member, a tag, deactivate / reactivate or an import step, decided on
/// the image as it is now.
pub(crate) fn on_change(
    c: &mut Conductor,
    env: &Envelope,
    id: Uuid,
    change: &ImageChange,
) -> Vec<Emit> {
    let decided = image::decide_change(
        c.images.get(&id),
        &id,
        change,
        &env.meta.actor.image_caller(),
        env.meta.occurred_at_ms,
    );
    let step = format!("image-{}", change.op());
    record(c, env, id, decided, &step, |i| {
        Event::Catalog(CatalogEvent::ImageUpdated(i.clone()))
    })
}
