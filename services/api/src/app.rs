//! The shared state of every request and the router that serves it.

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{get, post, put};
use novalog_log::EventLog;
use novalog_runtime::Topics;
use tower_http::limit::RequestBodyLimitLayer;

use crate::auth::{self, AuthStrategy};
use crate::controllers::{
    aggregates, availability_zones, billing, extensions, external_events, flavors, hosts,
    hypervisors, images, instance_actions, ips, keypairs, migrations, networks, quota_classes,
    quota_sets, remote_consoles, server_actions, server_attachments, server_diagnostics,
    server_groups, server_metadata, server_password, server_tags, servers, services, tenant_usage,
    usage_audit_log, versions,
};
use crate::domain::Domain;
use crate::http;
use crate::microversion;

/// What handlers share: the [`Domain`] they call (reached through
/// `Deref`, so `app.projection` reads as before) and what only the HTTP
/// side needs.
pub struct App {
    /// The projection, the intents and the limits the domain applies.
    pub domain: Domain,
    pub auth: Arc<AuthStrategy>,
    /// The log itself, for the catch-up check of the bootstrap.
    pub log: Arc<dyn EventLog>,
    pub topics: Topics,
    /// Largest request body accepted (`[api] max_request_body_size`).
    pub max_body: usize,
    /// Where uploaded image data is kept (`<data_dir>/images`).
    pub images_dir: std::path::PathBuf,
    /// How long an upload may keep its image `saving`
    /// (`[conductor] image_upload_lease`).
    pub image_upload_lease: std::time::Duration,
    /// Longest a request may take from its head to its answer
    /// (`[wsgi] request_timeout`; image data transfers exempt).
    pub request_timeout: Option<std::time::Duration>,
    /// What the web console's hosts page scales capacity by.
    pub allocation_ratios: crate::dashboard::hosts::AllocationRatios,
    /// Triggered when the listener stops: streamed answers end on it.
    pub closing: novalog_runtime::Shutdown,
}

impl std::ops::Deref for App {
    type Target = Domain;

    fn deref(&self) -> &Domain {
        &self.domain
    }
}

pub type AppState = Arc<App>;

/// A bare 404: [`http::error_shapes`] answers it in the shape of the
/// service the path is under.
async fn not_found() -> axum::http::StatusCode {
    axum::http::StatusCode::NOT_FOUND
}

/// Every route, with its layers: request id (outermost), errors in each
/// service's shape, panics caught as 500s ([`http::edge`]), body limit; then per route the microversion (everything under
/// `/v2.1`) and authentication (everything but the version documents).
/// With keystone tokens, the identity routes (`/identity`) too; the Image
/// API (`/image`) always.
pub fn router(app: AppState) -> Router {
    let authenticated = Router::new()
        .route("/v2.1/servers", get(servers::index).post(servers::create))
        .route("/v2.1/servers/detail", get(servers::detail))
        .route(
            "/v2.1/servers/{id}",
            get(servers::show)
                .put(servers::update)
                .delete(servers::delete),
        )
        .route(
            "/v2.1/servers/{id}/metadata",
            get(server_metadata::index)
                .post(server_metadata::create)
                .put(server_metadata::update_all),
        )
        .route(
            "/v2.1/servers/{id}/metadata/{key}",
            get(server_metadata::show)
                .put(server_metadata::update)
                .delete(server_metadata::delete),
        )
        .route(
            "/v2.1/servers/{id}/tags",
            get(server_tags::index)
                .put(server_tags::update_all)
                .delete(server_tags::delete_all),
        )
        .route(
            "/v2.1/servers/{id}/tags/{tag}",
            get(server_tags::show)
                .put(server_tags::update)
                .delete(server_tags::delete),
        )
        .route(
            "/v2.1/servers/{id}/action",
            axum::routing::post(server_actions::action),
        )
        .route(
            "/v2.1/servers/{id}/remote-consoles",
            post(remote_consoles::create),
        )
        .route(
            "/v2.1/os-console-auth-tokens/{token}",
            get(remote_consoles::show_token),
        )
        .route("/v2.1/servers/{id}/ips", get(ips::index))
        .route(
            "/v2.1/servers/{id}/diagnostics",
            get(server_diagnostics::index),
        )
        .route(
            "/v2.1/servers/{id}/os-server-password",
            get(server_password::show).delete(server_password::clear),
        )
        .route("/v2.1/servers/{id}/ips/{network}", get(ips::show))
        .route(
            "/v2.1/servers/{id}/topology",
            get(server_attachments::topology),
        )
        .route(
            "/v2.1/servers/{id}/os-volume_attachments",
            get(server_attachments::volumes_index).post(server_attachments::volume_attach),
        )
        .route(
            "/v2.1/servers/{id}/os-volume_attachments/{volume_id}",
            get(server_attachments::volume_show)
                .put(server_attachments::volume_update)
                .delete(server_attachments::volume_detach),
        )
        .route(
            "/v2.1/servers/{id}/os-interface",
            get(server_attachments::interfaces_index).post(server_attachments::interface_attach),
        )
        .route(
            "/v2.1/servers/{id}/os-interface/{port_id}",
            get(server_attachments::interface_show).delete(server_attachments::interface_detach),
        )
        .route(
            "/v2.1/servers/{id}/shares",
            get(server_attachments::shares_index).post(server_attachments::share_attach),
        )
        .route(
            "/v2.1/servers/{id}/shares/{share_id}",
            get(server_attachments::share_show).delete(server_attachments::share_detach),
        )
        .route(
            "/v2.1/servers/{id}/os-instance-actions",
            get(instance_actions::index),
        )
        .route(
            "/v2.1/servers/{id}/os-instance-actions/{request_id}",
            get(instance_actions::show),
        )
        .route(
            "/v2.1/os-quota-sets/{project}",
            get(quota_sets::show)
                .put(quota_sets::update)
                .delete(quota_sets::delete),
        )
        .route(
            "/v2.1/os-quota-sets/{project}/detail",
            get(quota_sets::detail),
        )
        .route(
            "/v2.1/os-quota-sets/{project}/defaults",
            get(quota_sets::defaults),
        )
        .route("/v2.1/limits", get(quota_sets::limits))
        .route(
            "/v2.1/os-quota-class-sets/{id}",
            get(quota_classes::show).put(quota_classes::update),
        )
        .route("/v2.1/flavors", get(flavors::index).post(flavors::create))
        .route("/v2.1/flavors/detail", get(flavors::detail))
        .route(
            "/v2.1/flavors/{id}",
            get(flavors::show)
                .put(flavors::update)
                .delete(flavors::delete),
        )
        .route(
            "/v2.1/flavors/{id}/os-extra_specs",
            get(flavors::extra_specs_index).post(flavors::extra_specs_create),
        )
        .route(
            "/v2.1/flavors/{id}/os-extra_specs/{key}",
            get(flavors::extra_spec_show)
                .put(flavors::extra_spec_update)
                .delete(flavors::extra_spec_delete),
        )
        .route(
            "/v2.1/flavors/{id}/os-flavor-access",
            get(flavors::access_index),
        )
        .route(
            "/v2.1/flavors/{id}/action",
            axum::routing::post(flavors::action),
        )
        .route(
            "/v2.1/os-server-groups",
            get(server_groups::index).post(server_groups::create),
        )
        .route(
            "/v2.1/os-server-groups/{id}",
            get(server_groups::show).delete(server_groups::delete),
        )
        .route(
            "/v2.1/os-aggregates",
            get(aggregates::index).post(aggregates::create),
        )
        .route(
            "/v2.1/os-aggregates/{id}",
            get(aggregates::show)
                .put(aggregates::update)
                .delete(aggregates::delete),
        )
        .route(
            "/v2.1/os-aggregates/{id}/action",
            axum::routing::post(aggregates::action),
        )
        .route("/v2.1/os-simple-tenant-usage", get(tenant_usage::index))
        .route(
            "/v2.1/os-simple-tenant-usage/{tenant_id}",
            get(tenant_usage::show),
        )
        .route(
            "/v2.1/os-instance_usage_audit_log",
            get(usage_audit_log::index),
        )
        .route(
            "/v2.1/os-instance_usage_audit_log/{before}",
            get(usage_audit_log::show),
        )
        .route(
            "/v2.1/os-server-external-events",
            post(external_events::create),
        )
        .route("/v2.1/os-migrations", get(migrations::index))
        .route(
            "/v2.1/servers/{id}/migrations",
            get(migrations::server_index),
        )
        .route(
            "/v2.1/servers/{id}/migrations/{migration_id}",
            get(migrations::server_show),
        )
        .route("/v2.1/os-availability-zone", get(availability_zones::index))
        .route(
            "/v2.1/os-availability-zone/detail",
            get(availability_zones::detail),
        )
        .route(
            "/v2.1/os-keypairs",
            get(keypairs::index).post(keypairs::create),
        )
        .route(
            "/v2.1/os-keypairs/{name}",
            get(keypairs::show).delete(keypairs::delete),
        )
        .route("/v2.1/os-services", get(services::index))
        .route("/v2.1/os-services/disable", put(services::disable))
        .route("/v2.1/os-services/enable", put(services::enable))
        .route(
            "/v2.1/os-services/disable-log-reason",
            put(services::disable_log_reason),
        )
        .route("/v2.1/os-services/force-down", put(services::force_down))
        .route(
            "/v2.1/os-services/{id}",
            put(services::update).delete(services::delete),
        )
        .route("/v2.1/images", get(images::index))
        .route("/v2.1/images/detail", get(images::detail))
        .route(
            "/v2.1/images/{id}",
            get(images::show).delete(images::delete),
        )
        .route(
            "/v2.1/images/{id}/metadata",
            get(images::metadata_index)
                .post(images::metadata_create)
                .put(images::metadata_update_all),
        )
        .route(
            "/v2.1/images/{id}/metadata/{key}",
            get(images::metadata_show)
                .put(images::metadata_update)
                .delete(images::metadata_delete),
        )
        .route("/v2.1/extensions", get(extensions::index))
        .route("/v2.1/extensions/{alias}", get(extensions::show))
        .route(
            "/v2.1/os-networks",
            get(networks::index).post(networks::gone),
        )
        // `add` is also an id to GET and DELETE, as in Nova's routing.
        .route(
            "/v2.1/os-networks/add",
            get(networks::show)
                .post(networks::gone)
                .delete(networks::gone),
        )
        .route(
            "/v2.1/os-networks/{id}",
            get(networks::show).delete(networks::gone),
        )
        .route("/v2.1/os-networks/{id}/action", post(networks::gone))
        .route("/v2.1/os-hosts", get(hosts::index))
        .route("/v2.1/os-hosts/{host}", get(hosts::show).put(hosts::update))
        .route("/v2.1/os-hosts/{host}/reboot", get(hosts::reboot))
        .route("/v2.1/os-hosts/{host}/shutdown", get(hosts::shutdown))
        .route("/v2.1/os-hosts/{host}/startup", get(hosts::startup))
        .route("/v2.1/os-hypervisors", get(hypervisors::index))
        .route("/v2.1/os-hypervisors/detail", get(hypervisors::detail))
        .route(
            "/v2.1/os-hypervisors/statistics",
            get(hypervisors::statistics),
        )
        .route("/v2.1/os-hypervisors/{id}", get(hypervisors::show))
        .route("/v2.1/os-hypervisors/{id}/uptime", get(hypervisors::uptime))
        .route(
            "/v2.1/os-hypervisors/{id}/servers",
            get(hypervisors::servers),
        )
        .route("/v2.1/os-hypervisors/{id}/search", get(hypervisors::search))
        // Runs after authentication (layers added later run first).
        .route_layer(from_fn(crate::policy::read_only))
        .route_layer(from_fn_with_state(app.auth.clone(), auth::require));
    let versioned = Router::new()
        .route("/v2.1", get(versions::v21))
        .route("/v2.1/", get(versions::v21))
        .merge(authenticated)
        .route_layer(from_fn(microversion::layer));
    // `/billing/v1`: a token, no microversion.
    let billing = Router::new()
        .route("/billing/v1/projects", get(billing::index))
        .route("/billing/v1/projects/{project_id}", get(billing::show))
        .route_layer(from_fn_with_state(app.auth.clone(), auth::require));
    let mut router = Router::new()
        .route("/", get(versions::index))
        .route("/openapi.json", get(crate::openapi::serve))
        // /metrics, /healthz, /readyz: unauthenticated, for scrapers and probes.
        .merge(novalog_runtime::observe::routes())
        .merge(versioned)
        .merge(billing)
        // The web console: its page, and its own reads with a token.
        .merge(crate::dashboard::routes(&app))
        .fallback(not_found)
        .with_state(app.clone());
    if let Some(identity) = crate::mounts::identity(&app) {
        router = router.merge(identity);
    }
    // The image routes stream uploads, so they stay outside the body limit.
    // Inside the edge (request id, error shapes, caught panics): one access
    // line and the HTTP metrics per request.
    http::edge(
        router
            .layer(DefaultBodyLimit::disable())
            .layer(from_fn(http::read_body_first))
            .layer(RequestBodyLimitLayer::new(app.max_body))
            .merge(crate::mounts::image(&app))
            .layer(from_fn_with_state(
                app.request_timeout,
                http::request_timeout,
            ))
            .layer(crate::access::access_log())
            .layer(from_fn(crate::access::metrics)),
    )
}
