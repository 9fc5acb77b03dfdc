//! The demo catalog `make run` starts with: Nova's classic m1.* flavors and
//! a cirros image, created through the conductor like any other flavor.

use std::time::Duration;

use novalog_schemas::Image;
use uuid::Uuid;

use crate::auth::Context;
use crate::domain::catalog;
use crate::http::RequestId;
use crate::projection::Offsets;
use crate::service::ApiHandle;
use crate::validation::flavor_create::FlavorCreate;

/// (id, name, ram MB, vcpus, disk GB), as Nova used to ship them.
pub const DEMO_FLAVORS: &[(&str, &str, u64, u32, u64)] = &[
    ("1", "m1.tiny", 512, 1, 1),
    ("2", "m1.small", 2048, 1, 20),
    ("3", "m1.medium", 4096, 2, 40),
    ("4", "m1.large", 8192, 4, 80),
    ("5", "m1.xlarge", 16384, 8, 160),
];

pub const DEMO_IMAGE_NAME: &str = "cirros";

/// The demo image's id, the same in every deployment.
pub fn demo_image_id() -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_OID, b"novalog/demo-image/cirros")
}

/// The demo image (CirrOS 0.6.2, x86_64).
pub fn demo_image() -> Image {
    Image {
        id: demo_image_id(),
        name: DEMO_IMAGE_NAME.to_owned(),
        status: "active".to_owned(),
        size: 21_430_272,
        min_disk: 0,
        min_ram: 0,
        disk_format: "qcow2".to_owned(),
        container_format: "bare".to_owned(),
        properties: [("architecture".to_owned(), "x86_64".to_owned())].into(),
        owner: "admin".to_owned(),
        checksum: "c8fc807773e5354afe61636071771906".to_owned(),
        visibility: "public".to_owned(),
        created_at_ms: novalog_schemas::now_ms(),
        protected: false,
        tags: Vec::new(),
        os_hash_value: String::new(),
        updated_at_ms: novalog_schemas::now_ms(),
        members: Vec::new(),
    }
}

/// Waits until the projection has applied everything the log held when
/// this was called, watching that the consumer is still alive.
pub async fn wait_caught_up(handle: &ApiHandle) -> novalog_runtime::Result<()> {
    let app = &handle.app;
    let mut ends = Offsets::new();
    for topic in [
        &app.topics.instances,
        &app.topics.catalog,
        &app.topics.hosts,
    ] {
        let offsets = app.log.end_offsets(topic).await.map_err(|e| {
            novalog_runtime::Error::service(format!("reading the end offsets of {topic}"), e)
        })?;
        for (partition, end) in offsets.into_iter().enumerate() {
            ends.insert((topic.clone(), partition as i32), end);
        }
    }
    loop {
        if tokio::time::timeout(Duration::from_secs(1), app.projection.wait_applied(&ends))
            .await
            .is_ok()
        {
            return Ok(());
        }
        if handle.consumer_finished() {
            return Err(novalog_runtime::Error::Service(
                "the api projection consumer stopped before catching up with the log".into(),
            ));
        }
    }
}

/// Makes sure the demo flavors and the demo image exist, creating what is
/// missing as the administrator (each creation waits for the conductor's
/// verdict). Returns the id of the image named `cirros`.
pub async fn bootstrap_demo_catalog(handle: &ApiHandle) -> novalog_runtime::Result<Uuid> {
    wait_caught_up(handle).await?;
    let app = &handle.app;
    let admin = Context::admin();
    let existing = app
        .projection
        .images()
        .into_iter()
        .filter(|i| i.name == DEMO_IMAGE_NAME && i.status != "deleted")
        .min_by_key(|i| (i.id != demo_image_id(), i.created_at_ms));
    // The image first, the flavors after: a client that sees the last demo
    // flavor knows the whole demo catalog is there.
    let image_id = match existing {
        Some(image) => image.id,
        None => {
            let image = catalog::create_image(app, &admin, &RequestId::generate().0, demo_image())
                .await
                .map_err(|e| {
                    novalog_runtime::Error::service("creating the demo image", e.message)
                })?;
            tracing::info!(image = %image.id, "demo image created");
            image.id
        }
    };
    for &(id, name, ram_mb, vcpus, disk_gb) in DEMO_FLAVORS {
        let taken = app.projection.flavor(id).is_some()
            || app.projection.flavors().iter().any(|f| f.name == name);
        if taken {
            continue;
        }
        let req = FlavorCreate {
            name: name.to_owned(),
            id: Some(id.to_owned()),
            ram_mb,
            vcpus,
            disk_gb,
            ephemeral_gb: 0,
            swap_mb: 0,
            rxtx_factor: 1.0,
            is_public: true,
            description: None,
        };
        match catalog::create_flavor(app, &admin, &RequestId::generate().0, req).await {
            Ok(_) => tracing::info!(flavor = name, "demo flavor created"),
            // Someone else created it meanwhile: just as good.
            Err(e) if e.status == axum::http::StatusCode::CONFLICT => {}
            Err(e) => {
                return Err(novalog_runtime::Error::service(
                    format!("creating demo flavor {name}"),
                    e.message,
                ));
            }
        }
    }
    Ok(image_id)
}
