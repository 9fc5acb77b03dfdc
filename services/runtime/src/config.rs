//! Typed configuration, layered: built-in defaults → a TOML file →
//! environment variables (`NOVALOG_<SECTION>__<OPTION>`, e.g.
//! `NOVALOG_API__LISTEN=0.0.0.0:8774`). Option names follow nova.conf where
//! Nova has the option (`report_interval`, `service_down_time`,
//! `cpu_allocation_ratio`, `[scheduler] max_attempts`,
//! `[filter_scheduler] enabled_filters`, ...).

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where every service keeps its RocksDB (and the embedded log).
    pub data_dir: PathBuf,
    /// Seconds between compute heartbeats (nova.conf `report_interval`).
    pub report_interval: u64,
    /// Seconds without a heartbeat before a host counts as down
    /// (nova.conf `service_down_time`).
    pub service_down_time: u64,
    pub cpu_allocation_ratio: f64,
    pub ram_allocation_ratio: f64,
    pub disk_allocation_ratio: f64,
    /// Seconds after which a resize left in VERIFY_RESIZE is confirmed
    /// (nova.conf `resize_confirm_window`; 0: never).
    pub resize_confirm_window: u64,
    /// A resize may pick the host it leaves (nova.conf
    /// `allow_resize_to_same_host`).
    pub allow_resize_to_same_host: bool,
    /// Seconds a build may take before it goes to ERROR (nova.conf
    /// `instance_build_timeout`; 0: never). Nova's default is 0; ours is
    /// not, so that no build is left in BUILD forever.
    pub instance_build_timeout: u64,
    /// Seconds a shelved server keeps its host before it is offloaded
    /// (nova.conf `shelved_offload_time`): 0 at once (Nova's default), -1
    /// never.
    pub shelved_offload_time: i64,
    /// Seconds a deleted server stays SOFT_DELETED, restorable, before it
    /// is reclaimed (nova.conf `reclaim_instance_interval`); 0 (Nova's
    /// default): deletes are immediate.
    pub reclaim_instance_interval: i64,
    /// Where the libvirt driver keeps each guest's directory (disks,
    /// console log) and the image cache (nova.conf `instances_path`).
    /// Empty: `<data_dir>/instances`.
    pub instances_path: String,
    /// Seconds between power-state syncs of every guest with its
    /// hypervisor (nova.conf `sync_power_state_interval`; 0: never; the
    /// agent also syncs once on start).
    pub sync_power_state_interval: u64,
    /// On agent start, guests the host recorded running but the
    /// hypervisor holds stopped (the host rebooted) are started again
    /// (nova.conf `resume_guests_state_on_host_boot`).
    pub resume_guests_state_on_host_boot: bool,
    /// Seconds a graceful power off waits for the guest to shut itself
    /// down before it is powered off hard (nova.conf `shutdown_timeout`).
    pub shutdown_timeout: u64,
    pub log: LogOptions,
    pub api: ApiOptions,
    pub wsgi: WsgiOptions,
    pub scheduler: SchedulerOptions,
    pub filter_scheduler: FilterSchedulerOptions,
    pub compute: ComputeOptions,
    pub libvirt: LibvirtOptions,
    pub image_cache: ImageCacheOptions,
    pub glance: GlanceOptions,
    pub bootstrap: BootstrapOptions,
    pub identity: IdentityOptions,
    /// Default quotas of every project (nova.conf `[quota]`).
    pub quota: novalog_schemas::quota::QuotaDefaults,
    pub conductor: ConductorOptions,
    pub metrics: MetricsOptions,
    pub billing: BillingOptions,
    pub vnc: crate::config_console::VncOptions,
    pub consoleauth: crate::config_console::ConsoleauthOptions,
}

/// `[billing]`: the price table `novalog-billing` rates usage with. Prices
/// are decimal strings (at most 6 decimal places), never floats, so that a
/// bill is exact; `novalog-billing check-prices` validates them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BillingOptions {
    /// Whether the all-in-one `novalog` runs the billing subscriber (off:
    /// nothing is metered, and usage and bills are empty).
    pub enabled: bool,
    /// ISO 4217 code printed on every bill.
    pub currency: String,
    /// Decimal places of a billed amount (the currency's minor unit).
    pub decimals: u32,
    /// How an exact amount is rounded to `decimals`: `half_even`,
    /// `half_up`, `up` or `down`.
    pub rounding: String,
    /// Length of a closed period published on the `billing` topic.
    pub period_seconds: u64,
    /// How long after a period's end its summary waits: the period is
    /// closed by the first `instances` record of a partition stamped at
    /// least this long after the end (the log's time, not the clock's, so
    /// a replay closes it at the same record), leaving records stamped a
    /// little out of order by conductors' clocks their place in it.
    pub close_delay_seconds: u64,
    /// Price of one vCPU for one hour (servers whose flavor has no price).
    pub vcpu_hour: String,
    /// Price of one GiB of RAM for one hour.
    pub ram_gib_hour: String,
    /// Price of one GB of root plus ephemeral disk for one hour.
    pub disk_gb_hour: String,
    /// Hourly price per flavor name (or id), replacing the per-resource
    /// rates for servers of that flavor.
    pub flavors: std::collections::BTreeMap<String, String>,
    /// Factor applied to the hourly price by billable state (`running`,
    /// `paused`, `suspended`, `stopped`, `shelved`, `building`, `error`,
    /// `deleted`); a state not listed is not billed.
    pub state_multipliers: std::collections::BTreeMap<String, String>,
    /// Where novalog-billing serves its read side to the API (usage
    /// intervals; no authentication): internal only, never public.
    /// Empty: not served.
    pub listen: String,
    /// Where novalog-api reads usage from novalog-billing when they run
    /// as separate processes (the all-in-one reads it in process).
    pub endpoint: String,
}

impl Default for BillingOptions {
    fn default() -> Self {
        let m = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        BillingOptions {
            enabled: true,
            currency: "USD".into(),
            decimals: 2,
            rounding: "half_even".into(),
            period_seconds: 3600,
            close_delay_seconds: 60,
            vcpu_hour: "0.01".into(),
            ram_gib_hour: "0.005".into(),
            disk_gb_hour: "0.0001".into(),
            flavors: Default::default(),
            state_multipliers: m(&[
                ("running", "1"),
                ("paused", "1"),
                ("suspended", "0.5"),
                ("stopped", "0.5"),
                ("shelved", "0.1"),
                ("building", "0"),
                ("error", "0"),
                ("deleted", "0"),
            ]),
            listen: "127.0.0.1:8779".into(),
            endpoint: "http://127.0.0.1:8779".into(),
        }
    }
}

/// `[metrics]`: where the services other than the API serve `/metrics`,
/// `/healthz` and `/readyz`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsOptions {
    /// `host:port`; empty: each service's own port on loopback, so services
    /// sharing a host and a config file do not collide (conductor 9181,
    /// scheduler 9182, compute 9183).
    pub listen: String,
}

impl MetricsOptions {
    /// The address to serve on, `default_port` on loopback unless set.
    pub fn listen_or(&self, default_port: u16) -> String {
        if self.listen.is_empty() {
            format!("127.0.0.1:{default_port}")
        } else {
            self.listen.clone()
        }
    }
}

/// `[conductor]`: the sagas' step timeouts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConductorOptions {
    /// Seconds a saga step (a claim, a disk migration, a confirm, ...)
    /// waits for its host before the saga compensates (0: forever).
    pub step_timeout: u64,
    /// Per-step overrides in seconds, by step name
    /// (`"resize:finish_migration" = 60`, `"rebuild:rebuild" = 600`).
    pub step_timeouts: std::collections::BTreeMap<String, u64>,
    /// Milliseconds before a timeout record that failed to append is tried
    /// again (otherwise the timer sleeps until the next deadline).
    pub timer_tick_ms: u64,
    /// Seconds an image upload may keep its image `saving` (its lease):
    /// past it the upload is taken for dead, the image goes back to
    /// queued, and the API that took it refuses the rest of its body (not
    /// in Glance, whose images stay `saving` when an API dies mid-upload).
    pub image_upload_lease: u64,
}

impl Default for ConductorOptions {
    fn default() -> Self {
        ConductorOptions {
            step_timeout: 300,
            step_timeouts: Default::default(),
            timer_tick_ms: 500,
            image_upload_lease: 3600,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("data"),
            report_interval: 10,
            service_down_time: 60,
            cpu_allocation_ratio: 16.0,
            ram_allocation_ratio: 1.5,
            disk_allocation_ratio: 1.0,
            resize_confirm_window: 0,
            allow_resize_to_same_host: false,
            instance_build_timeout: 600,
            shelved_offload_time: 0,
            reclaim_instance_interval: 0,
            instances_path: String::new(),
            sync_power_state_interval: 600,
            resume_guests_state_on_host_boot: false,
            shutdown_timeout: 60,
            log: LogOptions::default(),
            api: ApiOptions::default(),
            wsgi: WsgiOptions::default(),
            scheduler: SchedulerOptions::default(),
            filter_scheduler: FilterSchedulerOptions::default(),
            compute: ComputeOptions::default(),
            libvirt: LibvirtOptions::default(),
            image_cache: ImageCacheOptions::default(),
            glance: GlanceOptions::default(),
            bootstrap: BootstrapOptions::default(),
            identity: IdentityOptions::default(),
            conductor: ConductorOptions::default(),
            quota: Default::default(),
            metrics: MetricsOptions::default(),
            billing: BillingOptions::default(),
            vnc: Default::default(),
            consoleauth: Default::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Embedded,
    Kafka,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogOptions {
    pub backend: Backend,
    /// Prefix of every topic name.
    pub namespace: String,
    /// Partitions of each topic when Novalog creates it.
    pub partitions: i32,
    /// Embedded log: fsync each append (off: an append survives a process
    /// crash, not a power loss).
    pub sync: bool,
    /// Kafka: bootstrap servers, comma separated.
    pub bootstrap_servers: String,
    pub replication_factor: i32,
    /// Kafka: extra librdkafka properties for every client, e.g.
    /// `"max.poll.interval.ms" = "10000"` or `"security.protocol" = "ssl"`.
    pub kafka_properties: std::collections::BTreeMap<String, String>,
    /// Largest batch a consumer applies in one transaction.
    pub max_batch: usize,
    /// Kafka: start even when a topic's retention or compaction would
    /// delete history (off: such a topic is an error at start). Every
    /// projection, audit and bill is rebuilt from the whole log.
    pub allow_deleting_retention: bool,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            backend: Backend::Embedded,
            namespace: "novalog.".into(),
            partitions: 1,
            sync: false,
            bootstrap_servers: "127.0.0.1:9092".into(),
            replication_factor: 1,
            kafka_properties: Default::default(),
            max_batch: 512,
            allow_deleting_retention: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiOptions {
    pub listen: String,
    /// `keystone`: tokens issued by the Identity v3 subset at `/identity/v3`
    /// (see `[identity]`). `noauth2`: dev only, `X-Auth-Token: user:project`,
    /// user `admin` is admin.
    pub auth_strategy: String,
    /// Requests larger than this get 413.
    pub max_request_body_size: usize,
    /// How long a write waits for the conductor's verdict.
    pub verdict_timeout_ms: u64,
    /// The most items one page of a list holds (nova.conf `[api]
    /// max_limit`); a full page carries Nova's `next` link.
    pub max_limit: usize,
}

impl Default for ApiOptions {
    fn default() -> Self {
        ApiOptions {
            listen: "127.0.0.1:8774".into(),
            auth_strategy: "keystone".into(),
            max_request_body_size: 114_688,
            verdict_timeout_ms: 30_000,
            max_limit: 1000,
        }
    }
}

/// nova.conf `[wsgi]`: how the API's listener treats its clients, so that
/// slow or hostile ones cost little.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WsgiOptions {
    /// Seconds a connection may take to send a request's head (line and
    /// headers), counted from when the listener starts waiting for it, so
    /// also the longest a kept-alive connection stays idle; then it is
    /// closed (`client_socket_timeout`; 0: forever). Nova's default is 900
    /// (its front server usually bounds this); ours is 60.
    pub client_socket_timeout: u64,
    /// Connections stay open for further requests (`keep_alive`).
    pub keep_alive: bool,
    /// Largest request head, line and headers together, in bytes; a larger
    /// one gets 431 (`max_header_line`, which Nova applies per line).
    pub max_header_line: usize,
    /// Connections served at once; further ones wait in the listen backlog
    /// (`default_pool_size`). Lowered at start to half the open-files limit
    /// when that is smaller.
    pub default_pool_size: usize,
    /// Seconds from a request's head to its answer; a request still
    /// unanswered then gets 408 (not in Nova; 0: no limit). Keep it above
    /// `[api] verdict_timeout_ms`. Image data transfers are exempt: their
    /// size decides how long they take.
    pub request_timeout: u64,
}

impl Default for WsgiOptions {
    fn default() -> Self {
        WsgiOptions {
            client_socket_timeout: 60,
            keep_alive: true,
            max_header_line: 16_384,
            default_pool_size: 4_096,
            request_timeout: 120,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SchedulerOptions {
    /// Attempts to build an instance, the first included (nova.conf
    /// `[scheduler] max_attempts`).
    pub max_attempts: u32,
}

impl Default for SchedulerOptions {
    fn default() -> Self {
        SchedulerOptions { max_attempts: 3 }
    }
}

/// nova.conf `[filter_scheduler]` (and `[metrics]`, prefixed `metrics_`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilterSchedulerOptions {
    /// Filters by class name, all of which a host must pass.
    pub enabled_filters: Vec<String>,
    /// Weighers by class name (`all_weighers` for every one).
    pub weight_classes: Vec<String>,
    /// RAMWeigher: positive spreads, negative stacks.
    pub ram_weight_multiplier: f64,
    /// A random pick among this many best hosts.
    pub host_subset_size: usize,
    /// NumInstancesFilter: hosts with this many instances take no more.
    pub max_instances_per_host: u32,
    /// IoOpsFilter: hosts with this many instances building take no more.
    pub max_io_ops_per_host: u32,
    pub cpu_weight_multiplier: f64,
    pub disk_weight_multiplier: f64,
    /// IoOpsWeigher: negative prefers lightly loaded hosts.
    pub io_ops_weight_multiplier: f64,
    /// NumInstancesWeigher: negative prefers hosts with fewer instances.
    pub num_instances_weight_multiplier: f64,
    /// BuildFailureWeigher: subtracted per recent failed build on a host.
    pub build_failure_weight_multiplier: f64,
    pub soft_affinity_weight_multiplier: f64,
    pub soft_anti_affinity_weight_multiplier: f64,
    /// Shuffle the hosts that tie for the best weight before picking.
    pub shuffle_best_same_weighed_hosts: bool,
    /// IsolatedHostsFilter: hosts reserved for `isolated_images`.
    pub isolated_hosts: Vec<String>,
    /// IsolatedHostsFilter: image ids that may only boot on `isolated_hosts`.
    pub isolated_images: Vec<String>,
    /// IsolatedHostsFilter: isolated hosts take only isolated images.
    pub restrict_isolated_hosts_to_isolated_images: bool,
    /// ImagePropertiesFilter: the architecture assumed for images without one.
    pub image_properties_default_architecture: Option<String>,
    /// AggregateImagePropertiesIsolation: only aggregate metadata keys
    /// starting with this namespace and the separator count (none: all).
    pub aggregate_image_properties_isolation_namespace: Option<String>,
    /// AggregateImagePropertiesIsolation: between namespace and property.
    pub aggregate_image_properties_isolation_separator: String,
    /// MetricsWeigher (`[metrics] weight_setting`): `name=ratio` entries.
    pub metrics_weight_setting: Vec<String>,
    /// MetricsWeigher (`[metrics] weight_multiplier`).
    pub metrics_weight_multiplier: f64,
    /// MetricsWeigher (`[metrics] weight_of_unavailable`): the weight of a
    /// host lacking a metric.
    pub metrics_weight_of_unavailable: f64,
}

impl Default for FilterSchedulerOptions {
    fn default() -> Self {
        FilterSchedulerOptions {
            enabled_filters: [
                "AvailabilityZoneFilter",
                "ComputeFilter",
                "RamFilter",
                "CoreFilter",
                "DiskFilter",
                "ComputeCapabilitiesFilter",
                "ImagePropertiesFilter",
                "ServerGroupAntiAffinityFilter",
                "ServerGroupAffinityFilter",
            ]
            .map(String::from)
            .to_vec(),
            weight_classes: [
                "RAMWeigher",
                "CPUWeigher",
                "DiskWeigher",
                "IoOpsWeigher",
                "NumInstancesWeigher",
                "BuildFailureWeigher",
                "ServerGroupSoftAffinityWeigher",
                "ServerGroupSoftAntiAffinityWeigher",
                "MetricsWeigher",
            ]
            .map(String::from)
            .to_vec(),
            ram_weight_multiplier: 1.0,
            host_subset_size: 1,
            max_instances_per_host: 50,
            max_io_ops_per_host: 8,
            cpu_weight_multiplier: 1.0,
            disk_weight_multiplier: 1.0,
            io_ops_weight_multiplier: -1.0,
            num_instances_weight_multiplier: 0.0,
            build_failure_weight_multiplier: 1_000_000.0,
            soft_affinity_weight_multiplier: 1.0,
            soft_anti_affinity_weight_multiplier: 1.0,
            shuffle_best_same_weighed_hosts: false,
            isolated_hosts: Vec::new(),
            isolated_images: Vec::new(),
            restrict_isolated_hosts_to_isolated_images: true,
            image_properties_default_architecture: None,
            aggregate_image_properties_isolation_namespace: None,
            aggregate_image_properties_isolation_separator: ".".into(),
            metrics_weight_setting: Vec::new(),
            metrics_weight_multiplier: 1.0,
            metrics_weight_of_unavailable: -10_000.0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ComputeOptions {
    /// `fake` (in memory, many hosts in one process) or `libvirt` (one
    /// real host, `host`, through `[libvirt] connection_uri`). The
    /// all-in-one `novalog` runs a libvirt host beside its fake ones.
    pub driver: String,
    /// Fake hosts this agent runs (`<prefix><n>`); 0 with the fake driver
    /// means one host named `host`.
    pub fake_hosts: usize,
    pub fake_host_prefix: String,
    /// This agent's host name when it runs one host (nova.conf `host`).
    pub host: String,
    pub vcpus: u32,
    pub memory_mb: u64,
    pub disk_gb: u64,
    pub cpu_arch: String,
    pub availability_zone: String,
    /// Fake driver: time each spawn takes.
    pub fake_spawn_latency_ms: u64,
    /// Fake driver: hosts whose every claim fails (failure injection).
    pub fake_fail_claims: Vec<String>,
    /// Fake driver: hosts whose every spawn fails (failure injection).
    pub fake_fail_spawns: Vec<String>,
    /// Fake driver: saga steps that fail, as `step@host` or `step` (every
    /// host): `prep_resize`, `migrate_disk_and_power_off`,
    /// `finish_migration`, `confirm_migration`, `revert_migration`,
    /// `finish_revert_migration`, `rebuild`.
    pub fake_fail_steps: Vec<String>,
    /// Fake driver: saga steps that never answer, likewise.
    pub fake_silent_steps: Vec<String>,
    /// Fake driver: time each saga step (migrate disk, finish, confirm,
    /// revert, live migration) takes.
    pub fake_step_latency_ms: u64,
    /// Fake driver: time each server action (reboot, power off/on, pause,
    /// suspend, ...) takes.
    pub fake_action_latency_ms: u64,
    /// Fake driver: hosts whose every server action fails.
    pub fake_fail_actions: Vec<String>,
    /// Fake hosts whose CPU architecture is not `cpu_arch` (host name →
    /// architecture, e.g. `aarch64`): a mixed cloud in one process.
    pub fake_host_arch: std::collections::BTreeMap<String, String>,
    /// Fake hosts in another zone than `availability_zone` (host name →
    /// zone).
    pub fake_host_availability_zone: std::collections::BTreeMap<String, String>,
}

impl Default for ComputeOptions {
    fn default() -> Self {
        ComputeOptions {
            driver: "fake".into(),
            fake_hosts: 8,
            fake_host_prefix: "fake-host-".into(),
            host: "compute-1".into(),
            vcpus: 16,
            memory_mb: 65_536,
            disk_gb: 1_000,
            cpu_arch: "x86_64".into(),
            availability_zone: "nova".into(),
            fake_spawn_latency_ms: 0,
            fake_fail_claims: Vec::new(),
            fake_fail_spawns: Vec::new(),
            fake_fail_steps: Vec::new(),
            fake_silent_steps: Vec::new(),
            fake_step_latency_ms: 0,
            fake_action_latency_ms: 0,
            fake_fail_actions: Vec::new(),
            fake_host_arch: Default::default(),
            fake_host_availability_zone: Default::default(),
        }
    }
}

/// nova.conf `[libvirt]`: the libvirt driver (`[compute] driver = "libvirt"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LibvirtOptions {
    /// The hypervisor to drive: `qemu:///system` on a real host,
    /// `test:///default` (libvirt's built-in mock, no daemon) for tests.
    pub connection_uri: String,
    /// The domain type: `kvm`, or `qemu` (TCG, where there is no KVM).
    pub virt_type: String,
    /// Instance disks: only `qcow2` (overlays on the `_base` cache).
    pub images_type: String,
    /// The guest CPU: `host-model`, `host-passthrough`, `custom` (needs
    /// `cpu_models`) or `none`; empty: `host-model` for kvm, `none` else.
    pub cpu_mode: String,
    /// CPU models for `cpu_mode = "custom"` (the first is used).
    pub cpu_models: Vec<String>,
    /// Seconds a soft reboot waits for the guest to shut down before it
    /// becomes a hard one.
    pub wait_soft_reboot_seconds: u64,
    /// How a cold migration copies a guest's disks to another machine:
    /// `ssh` (scp) or `rsync` (over ssh), to the same `instances_path`
    /// there.
    pub remote_filesystem_transport: String,
    /// Other hosts on this machine and their `instances_path`: a cold
    /// migration to one of them copies the disks locally.
    pub host_instances_paths: std::collections::BTreeMap<String, String>,
    /// The destination's libvirt for a live migration; `%s` is the
    /// destination host.
    pub live_migration_uri: String,
}

impl Default for LibvirtOptions {
    fn default() -> Self {
        LibvirtOptions {
            connection_uri: "qemu:///system".into(),
            virt_type: "kvm".into(),
            images_type: "qcow2".into(),
            cpu_mode: String::new(),
            cpu_models: Vec::new(),
            wait_soft_reboot_seconds: 120,
            remote_filesystem_transport: "ssh".into(),
            host_instances_paths: Default::default(),
            live_migration_uri: "qemu+ssh://%s/system".into(),
        }
    }
}

/// nova.conf `[image_cache]`: the base images under
/// `<instances_path>/<subdirectory_name>` that instance disks are
/// overlays on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImageCacheOptions {
    pub subdirectory_name: String,
    /// Seconds between runs of the image cache manager (0: never).
    pub manager_interval: u64,
    /// The manager removes base files no guest uses.
    pub remove_unused_base_images: bool,
    /// Seconds an unused base file is kept before it is removed.
    pub remove_unused_original_minimum_age_seconds: u64,
}

impl Default for ImageCacheOptions {
    fn default() -> Self {
        ImageCacheOptions {
            subdirectory_name: "_base".into(),
            manager_interval: 2400,
            remove_unused_base_images: true,
            remove_unused_original_minimum_age_seconds: 86_400,
        }
    }
}

/// nova.conf `[glance]`: where a libvirt host fetches image bytes
/// (`GET <api_servers[0]>/v2/images/{id}/file`) and the service
/// credential it fetches them with.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GlanceOptions {
    /// The image API's endpoints, e.g. `["http://10.0.0.1:8774/image"]`;
    /// empty: the host reads `<data_dir>/images` of an image service on
    /// its own machine.
    pub api_servers: Vec<String>,
    /// The identity endpoint the credential gets its token from, e.g.
    /// `http://10.0.0.1:8774/identity`; empty: the API runs with
    /// `auth_strategy = "noauth2"` and the token is `username:project_name`.
    pub auth_url: String,
    pub username: String,
    pub password: String,
    pub project_name: String,
}

/// The password stays out of logs.
impl std::fmt::Debug for GlanceOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GlanceOptions")
            .field("api_servers", &self.api_servers)
            .field("auth_url", &self.auth_url)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("project_name", &self.project_name)
            .finish()
    }
}

impl Default for GlanceOptions {
    fn default() -> Self {
        GlanceOptions {
            api_servers: Vec::new(),
            auth_url: String::new(),
            username: "admin".into(),
            password: "admin".into(),
            project_name: "admin".into(),
        }
    }
}

impl Config {
    /// nova.conf `instances_path`, `<data_dir>/instances` unless set.
    pub fn instances_path(&self) -> PathBuf {
        if self.instances_path.is_empty() {
            self.data_dir.join("instances")
        } else {
            PathBuf::from(&self.instances_path)
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BootstrapOptions {
    /// On start, make sure the demo flavors (m1.tiny … m1.xlarge) and the
    /// demo image (cirros) exist.
    pub demo_catalog: bool,
}

impl Default for BootstrapOptions {
    fn default() -> Self {
        BootstrapOptions { demo_catalog: true }
    }
}

/// keystone.conf-like `[identity]`: the Identity v3 subset served at
/// `/identity/v3` when `[api] auth_strategy = "keystone"`. Users, projects
/// and roles live in domain `Default` and come from here; passwords are
/// hashed at startup and kept only hashed.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdentityOptions {
    /// Key tokens are signed with (HMAC-SHA256). Empty: one is generated
    /// and kept in `<data_dir>/api/token.key`, so restarts keep tokens
    /// valid; API processes sharing tokens must share this secret.
    pub token_secret: String,
    /// Seconds a token is valid (keystone `[token] expiration`).
    pub token_expiration: u64,
    /// `scheme://host[:port]` the catalog points at; empty: the address the
    /// client used (its `Host` header).
    pub public_endpoint: String,
    /// The region of every catalog endpoint.
    pub region: String,
    /// PBKDF2-HMAC-SHA256 iterations for stored passwords (keystone
    /// `[identity] password_hash_rounds`).
    pub password_hash_rounds: u32,
    /// Roles that exist besides those assigned to users.
    pub roles: Vec<String>,
    /// Projects that exist besides those users are assigned to.
    pub projects: Vec<String>,
    pub users: Vec<IdentityUser>,
}

/// One user of `[identity] users`: a role assignment on one project, which
/// is also the user's default project.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityUser {
    pub name: String,
    pub password: String,
    /// Empty: no project (password tokens are then unscoped).
    #[serde(default)]
    pub project: String,
    #[serde(default)]
    pub roles: Vec<String>,
}

/// Secrets stay out of logs and panics.
impl std::fmt::Debug for IdentityOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityOptions")
            .field("token_secret", &"<redacted>")
            .field("token_expiration", &self.token_expiration)
            .field("public_endpoint", &self.public_endpoint)
            .field("region", &self.region)
            .field("password_hash_rounds", &self.password_hash_rounds)
            .field("roles", &self.roles)
            .field("projects", &self.projects)
            .field("users", &self.users)
            .finish()
    }
}

impl std::fmt::Debug for IdentityUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityUser")
            .field("name", &self.name)
            .field("password", &"<redacted>")
            .field("project", &self.project)
            .field("roles", &self.roles)
            .finish()
    }
}

impl Default for IdentityOptions {
    fn default() -> Self {
        let user = |name: &str, role: &str| IdentityUser {
            name: name.into(),
            password: name.into(),
            project: name.into(),
            roles: vec![role.into()],
        };
        IdentityOptions {
            token_secret: String::new(),
            token_expiration: 3600,
            public_endpoint: String::new(),
            region: "RegionOne".into(),
            password_hash_rounds: 100_000,
            roles: ["admin", "member", "reader"].map(String::from).to_vec(),
            projects: Vec::new(),
            users: vec![user("admin", "admin"), user("demo", "member")],
        }
    }
}

/// The top-level options and sections (what an environment variable's
/// first part must be to count as an option).
fn top_level_keys() -> Vec<String> {
    match toml::Value::try_from(Config::default()) {
        Ok(toml::Value::Table(t)) => t.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

impl Config {
    /// Defaults, then `file` (if given; it must exist), then `NOVALOG_*`
    /// environment variables.
    ///
    /// A key the file has but no option matches is an error naming the key
    /// and the file. Environment variables are checked the same way once
    /// their first part names a section or a top-level option; others
    /// (`NOVALOG_CONFIG`, `NOVALOG_LOG_FORMAT`, ...) are not options and
    /// are left alone.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError(format!("{} does not exist", path.display())));
            }
            fig = fig.merge(Toml::file_exact(path));
        }
        let top = top_level_keys();
        fig = fig.merge(Env::prefixed("NOVALOG_").split("__").filter(move |k| {
            let key = k.as_str().to_ascii_lowercase();
            top.iter()
                .any(|t| key == *t || key.starts_with(&format!("{t}.")))
        }));
        let cfg: Config = fig.extract().map_err(|e| ConfigError(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.scheduler.max_attempts == 0 {
            return Err(ConfigError(
                "scheduler.max_attempts must be at least 1".into(),
            ));
        }
        if !matches!(self.compute.driver.as_str(), "fake" | "libvirt") {
            return Err(ConfigError(format!(
                "compute.driver must be \"fake\" or \"libvirt\", not {:?}",
                self.compute.driver
            )));
        }
        if self.libvirt.images_type != "qcow2" {
            return Err(ConfigError(format!(
                "libvirt.images_type {:?} is not supported (only \"qcow2\")",
                self.libvirt.images_type
            )));
        }
        if !matches!(self.libvirt.virt_type.as_str(), "kvm" | "qemu") {
            return Err(ConfigError(format!(
                "libvirt.virt_type must be \"kvm\" or \"qemu\", not {:?}",
                self.libvirt.virt_type
            )));
        }
        if !matches!(
            self.libvirt.cpu_mode.as_str(),
            "" | "host-model" | "host-passthrough" | "custom" | "none"
        ) {
            return Err(ConfigError(format!(
                "libvirt.cpu_mode {:?} is not one of host-model, host-passthrough, custom, none",
                self.libvirt.cpu_mode
            )));
        }
        if self.libvirt.cpu_mode == "custom" && self.libvirt.cpu_models.is_empty() {
            return Err(ConfigError(
                "libvirt.cpu_mode = \"custom\" needs libvirt.cpu_models".into(),
            ));
        }
        if !matches!(
            self.libvirt.remote_filesystem_transport.as_str(),
            "ssh" | "rsync"
        ) {
            return Err(ConfigError(format!(
                "libvirt.remote_filesystem_transport must be \"ssh\" or \"rsync\", not {:?}",
                self.libvirt.remote_filesystem_transport
            )));
        }
        let sub = &self.image_cache.subdirectory_name;
        if sub.is_empty() || sub.contains('/') || sub == "." || sub == ".." {
            return Err(ConfigError(format!(
                "image_cache.subdirectory_name {sub:?} must be one directory name"
            )));
        }
        if self.log.partitions < 1 {
            return Err(ConfigError("log.partitions must be at least 1".into()));
        }
        if self.api.max_limit == 0 {
            return Err(ConfigError("api.max_limit must be at least 1".into()));
        }
        if self.identity.token_expiration == 0 {
            return Err(ConfigError(
                "identity.token_expiration must be at least 1".into(),
            ));
        }
        if self.identity.password_hash_rounds == 0 {
            return Err(ConfigError(
                "identity.password_hash_rounds must be at least 1".into(),
            ));
        }
        for (name, r) in [
            ("cpu_allocation_ratio", self.cpu_allocation_ratio),
            ("ram_allocation_ratio", self.ram_allocation_ratio),
            ("disk_allocation_ratio", self.disk_allocation_ratio),
        ] {
            if r.is_nan() || r <= 0.0 {
                return Err(ConfigError(format!("{name} must be positive")));
            }
        }
        Ok(())
    }

    /// Every option with its default, commented: what `novalog
    /// config-defaults` prints and `deploy/novalog.toml` holds.
    pub const DEFAULTS_TOML: &'static str = include_str!("defaults.toml");

    pub fn topics(&self) -> crate::Topics {
        crate::Topics::new(&self.log.namespace)
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn file_then_env_override_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "novalog.toml",
                "report_interval = 5\n[api]\nlisten = \"127.0.0.1:9999\"\n[scheduler]\nmax_attempts = 4\n",
            )?;
            jail.set_env("NOVALOG_SCHEDULER__MAX_ATTEMPTS", "5");
            let cfg = Config::load(Some(Path::new("novalog.toml"))).unwrap();
            assert_eq!(cfg.report_interval, 5);
            assert_eq!(cfg.api.listen, "127.0.0.1:9999");
            assert_eq!(cfg.scheduler.max_attempts, 5, "env wins over the file");
            assert_eq!(
                cfg.ram_allocation_ratio, 1.5,
                "untouched options keep defaults"
            );
            Ok(())
        });
    }

    #[test]
    fn example_file_matches_scheduler_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/novalog.toml");
        let cfg = Config::load(Some(&path)).unwrap();
        let (fs, d) = (&cfg.filter_scheduler, FilterSchedulerOptions::default());
        assert_eq!(fs.enabled_filters, d.enabled_filters);
        assert_eq!(fs.weight_classes, d.weight_classes);
        assert_eq!(fs.max_io_ops_per_host, 8);
        assert_eq!(fs.build_failure_weight_multiplier, 1_000_000.0);
        assert_eq!(fs.image_properties_default_architecture, None);
    }

    #[test]
    fn example_file_matches_wsgi_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/novalog.toml");
        let cfg = Config::load(Some(&path)).unwrap();
        assert_eq!(cfg.wsgi, WsgiOptions::default());
    }

    #[test]
    fn identity_secrets_stay_out_of_debug_output() {
        let shown = format!("{:?}", Config::default());
        assert!(!shown.contains("password: \"admin\""), "{shown}");
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn example_file_matches_identity_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/novalog.toml");
        let cfg = Config::load(Some(&path)).unwrap();
        let (id, d) = (&cfg.identity, IdentityOptions::default());
        assert_eq!(cfg.api.auth_strategy, "keystone");
        assert_eq!(id.users, d.users);
        assert_eq!(id.roles, d.roles);
        assert_eq!(id.token_expiration, 3600);
        assert_eq!(id.password_hash_rounds, d.password_hash_rounds);
        assert_eq!(id.region, "RegionOne");
    }

    #[test]
    fn libvirt_options_have_novas_names_and_are_checked() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("NOVALOG_COMPUTE__DRIVER", "libvirt");
            jail.set_env("NOVALOG_LIBVIRT__CONNECTION_URI", "test:///default");
            jail.set_env("NOVALOG_IMAGE_CACHE__SUBDIRECTORY_NAME", "_cache");
            let cfg = Config::load(None).unwrap();
            assert_eq!(cfg.compute.driver, "libvirt");
            assert_eq!(cfg.libvirt.connection_uri, "test:///default");
            assert_eq!(cfg.libvirt.images_type, "qcow2");
            assert_eq!(cfg.image_cache.subdirectory_name, "_cache");
            assert_eq!(cfg.sync_power_state_interval, 600);
            assert_eq!(cfg.instances_path(), cfg.data_dir.join("instances"));
            jail.set_env("NOVALOG_INSTANCES_PATH", "/srv/instances");
            let cfg = Config::load(None).unwrap();
            assert_eq!(cfg.instances_path(), Path::new("/srv/instances"));
            for (key, value, named) in [
                ("NOVALOG_COMPUTE__DRIVER", "xen", "compute.driver"),
                ("NOVALOG_LIBVIRT__IMAGES_TYPE", "rbd", "images_type"),
                ("NOVALOG_LIBVIRT__VIRT_TYPE", "lxc", "virt_type"),
                ("NOVALOG_LIBVIRT__CPU_MODE", "custom", "cpu_models"),
                (
                    "NOVALOG_IMAGE_CACHE__SUBDIRECTORY_NAME",
                    "../x",
                    "subdirectory_name",
                ),
            ] {
                jail.set_env(key, value);
                let e = Config::load(None).unwrap_err().to_string();
                assert!(e.contains(named), "{key}={value}: {e}");
                jail.clear_env();
            }
            Ok(())
        });
    }

    #[test]
    fn the_printed_defaults_are_the_defaults() {
        let printed: toml::Value = toml::from_str(Config::DEFAULTS_TOML).unwrap();
        let code = toml::Value::try_from(Config::default()).unwrap();
        assert_eq!(
            printed, code,
            "services/runtime/src/defaults.toml differs from Config::default()"
        );
    }

    #[test]
    fn deploy_config_is_the_printed_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/novalog.toml");
        let deployed = std::fs::read_to_string(path).unwrap();
        assert!(
            deployed == Config::DEFAULTS_TOML,
            "deploy/novalog.toml must equal `novalog config-defaults` (services/runtime/src/defaults.toml)"
        );
    }

    #[test]
    fn unknown_keys_in_the_file_name_the_key_and_the_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "novalog.toml",
                "[api]\nlisten = \"127.0.0.1:1\"\nlisen_backlog = 5\n",
            )?;
            let e = Config::load(Some(Path::new("novalog.toml")))
                .unwrap_err()
                .to_string();
            assert!(e.contains("lisen_backlog"), "{e}");
            assert!(e.contains("novalog.toml"), "{e}");
            jail.create_file("top.toml", "colour = \"blue\"\n")?;
            let e = Config::load(Some(Path::new("top.toml")))
                .unwrap_err()
                .to_string();
            assert!(e.contains("colour") && e.contains("top.toml"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn environment_variables_that_are_not_options_are_left_alone() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("NOVALOG_CONFIG", "/somewhere.toml");
            jail.set_env("NOVALOG_KAFKA_BROKERS", "127.0.0.1:9092");
            jail.set_env("NOVALOG_LOG__BACKEND", "kafka");
            let cfg = Config::load(None).unwrap();
            assert_eq!(cfg.log.backend, Backend::Kafka);
            jail.set_env("NOVALOG_API__LISTEN_TYPO", "x");
            assert!(
                Config::load(None).is_err(),
                "a typo inside a section is refused"
            );
            Ok(())
        });
    }

    #[test]
    fn bad_values_are_refused() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("NOVALOG_SCHEDULER__MAX_ATTEMPTS", "0");
            assert!(Config::load(None).is_err());
            Ok(())
        });
        assert!(Config::load(Some(Path::new("/nonexistent/novalog.toml"))).is_err());
    }
}
