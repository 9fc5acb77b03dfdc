//! Server bodies (nova/api/openstack/compute/views/servers.py) at 2.1.

use novalog_schemas::Instance;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha224};
use uuid::Uuid;

use super::{Links, isotime, usage_time};
use crate::microversion::ApiVersion;
use crate::projection::HostView;

/// Statuses that show `progress` (Nova's `_progress_statuses`).
const PROGRESS_STATUSES: &[&str] = &[
    "ACTIVE",
    "BUILD",
    "REBUILD",
    "RESIZE",
    "VERIFY_RESIZE",
    "MIGRATING",
];
/// Statuses that show `fault` (Nova's `_fault_statuses`).
const FAULT_STATUSES: &[&str] = &["ERROR", "DELETED"];

/// The image properties Nova knows (`ImageMetaProps`' fields and their
/// legacy names), sorted: from 2.98 the server's image shows these and
/// no others.
const IMAGE_META_PROPS: &[&str] = &[
    "architecture",
    "auto_disk_config",
    "bdm_v2",
    "bittorrent",
    "block_device_mapping",
    "cache_in_nova",
    "hw_architecture",
    "hw_auto_disk_config",
    "hw_boot_menu",
    "hw_cdrom_bus",
    "hw_cpu_cores",
    "hw_cpu_max_cores",
    "hw_cpu_max_sockets",
    "hw_cpu_max_threads",
    "hw_cpu_policy",
    "hw_cpu_realtime_mask",
    "hw_cpu_sockets",
    "hw_cpu_thread_policy",
    "hw_cpu_threads",
    "hw_device_id",
    "hw_disk_bus",
    "hw_disk_type",
    "hw_emulation_architecture",
    "hw_ephemeral_encryption",
    "hw_ephemeral_encryption_format",
    "hw_ephemeral_encryption_secret_uuid",
    "hw_firmware_stateless",
    "hw_firmware_type",
    "hw_floppy_bus",
    "hw_input_bus",
    "hw_ipxe_boot",
    "hw_locked_memory",
    "hw_machine_type",
    "hw_maxphysaddr_bits",
    "hw_maxphysaddr_mode",
    "hw_mem_encryption",
    "hw_mem_encryption_model",
    "hw_mem_page_size",
    "hw_numa_cpus",
    "hw_numa_mem",
    "hw_numa_nodes",
    "hw_pci_numa_affinity_policy",
    "hw_pmu",
    "hw_pointer_model",
    "hw_qemu_guest_agent",
    "hw_redirected_usb_ports",
    "hw_rescue_bus",
    "hw_rescue_device",
    "hw_rng_model",
    "hw_scsi_model",
    "hw_serial_port_count",
    "hw_sound_model",
    "hw_time_hpet",
    "hw_tpm_model",
    "hw_tpm_version",
    "hw_usb_model",
    "hw_video_model",
    "hw_video_ram",
    "hw_vif_model",
    "hw_vif_multiqueue_enabled",
    "hw_viommu_model",
    "hw_virtio_packed_ring",
    "hw_vm_mode",
    "hw_watchdog_action",
    "hypervisor_type",
    "hypervisor_version_requires",
    "img_bdm_v2",
    "img_bittorrent",
    "img_block_device_mapping",
    "img_cache_in_nova",
    "img_compression_level",
    "img_config_drive",
    "img_hide_hypervisor_id",
    "img_hv_requested_version",
    "img_hv_type",
    "img_linked_clone",
    "img_mappings",
    "img_owner_id",
    "img_root_device_name",
    "img_signature",
    "img_signature_certificate_uuid",
    "img_signature_hash_method",
    "img_signature_key_type",
    "img_use_agent",
    "img_version",
    "ipxe_boot",
    "mappings",
    "os_admin_user",
    "os_command_line",
    "os_distro",
    "os_require_quiesce",
    "os_secure_boot",
    "os_skip_agent_inject_files_at_boot",
    "os_skip_agent_inject_ssh",
    "os_type",
    "owner_id",
    "root_device_name",
    "traits_required",
    "vm_mode",
    "vmware_disktype",
    "vmware_image_version",
    "vmware_linked_clone",
    "vmware_ostype",
    "xenapi_device_id",
    "xenapi_image_compression_level",
    "xenapi_skip_agent_inject_files_at_boot",
    "xenapi_skip_agent_inject_ssh",
    "xenapi_use_agent",
];

/// What a server body depends on besides the server.
#[derive(Debug, Clone, Copy)]
pub struct ViewContext<'a> {
    pub links: &'a Links,
    pub version: ApiVersion,
    /// Administrators see the details of 500 faults.
    pub is_admin: bool,
    /// `OS-EXT-SRV-ATTR:*` (policy `os-extended-server-attributes`).
    pub show_extended_attributes: bool,
    /// `host_status` from 2.16 (policy `servers:show:host_status`).
    pub show_host_status: bool,
    /// Now, and how old a host's last heartbeat may be for it to count as
    /// up (nova.conf `service_down_time`), for `host_status`.
    pub now_ms: i64,
    pub service_down_time_ms: i64,
}

/// Which optional parts a server body carries: the flags of Nova's
/// `ViewBuilder.show`, which differ between `GET` and the bodies `PUT
/// /servers/{id}` and `rebuild` answer with. The default is `GET`'s.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parts {
    /// Below 2.75 `PUT` and `rebuild` answer a reduced view, without
    /// `OS-EXT-AZ:*`, `config_drive`, `key_name`, `OS-SRV-USG:*`,
    /// `security_groups`, `OS-EXT-SRV-ATTR:*`, `OS-EXT-STS:*`,
    /// `os-extended-volumes:*` and `host_status`.
    pub reduced: bool,
    /// `key_name` even in the reduced view (rebuild from 2.54).
    pub key_name: bool,
    /// `server_groups` (from 2.71 on show, `PUT` and rebuild, not detail).
    pub server_groups: Option<Vec<Uuid>>,
    /// No `OS-EXT-SRV-ATTR:user_data`: rebuild adds `user_data` itself.
    pub without_extended_user_data: bool,
}

impl Parts {
    /// `GET /servers/{id}`: the groups from 2.71.
    pub fn show(version: ApiVersion, groups: impl FnOnce() -> Vec<Uuid>) -> Self {
        Parts {
            server_groups: version.at_least(2, 71).then(groups),
            ..Parts::default()
        }
    }

    /// `PUT /servers/{id}`.
    pub fn update(version: ApiVersion, groups: impl FnOnce() -> Vec<Uuid>) -> Self {
        Parts {
            reduced: !version.at_least(2, 75),
            ..Parts::show(version, groups)
        }
    }

    /// `rebuild`: `key_name` from 2.54.
    pub fn rebuild(version: ApiVersion, groups: impl FnOnce() -> Vec<Uuid>) -> Self {
        Parts {
            key_name: version.at_least(2, 54),
            without_extended_user_data: true,
            ..Parts::update(version, groups)
        }
    }
}

/// Nova's `OS-DCF:diskConfig`.
pub fn disk_config(auto: bool) -> &'static str {
    if auto { "AUTO" } else { "MANUAL" }
}

/// Nova's `hostId`: sha224(project_id + host), "" while there is no host.
/// Stable per (project, host), and it does not reveal the host name.
pub fn host_id(project_id: &str, host: Option<&str>) -> String {
    match host {
        Some(h) if !h.is_empty() => {
            let digest = Sha224::digest(format!("{project_id}{h}").as_bytes());
            digest.iter().map(|b| format!("{b:02x}")).collect()
        }
        _ => String::new(),
    }
}

/// The hypervisor's name for the instance (`OS-EXT-SRV-ATTR:instance_name`),
/// Nova's `instance-%08x` template over the first 32 bits of the uuid.
pub fn instance_name(id: &Uuid) -> String {
    format!("instance-{}", &id.simple().to_string()[..8])
}

pub use crate::domain::compute::{guest_hostname, hostname};

/// `GET /servers` entries: id, name, links.
pub fn basic(links: &Links, inst: &Instance) -> Value {
    let id = inst.id.to_string();
    json!({
        "id": id,
        "name": inst.name,
        "links": links.pair("servers", &id),
    })
}

/// The full server (`GET /servers/{id}`, `/servers/detail`). `host` is
/// the projection's view of the instance's host, for its availability zone.
pub fn show(cx: &ViewContext<'_>, inst: &Instance, host: Option<&HostView>) -> Value {
    show_parts(cx, inst, host, &Parts::default())
}

/// The server with the optional parts `parts` names.
pub fn show_parts(
    cx: &ViewContext<'_>,
    inst: &Instance,
    host: Option<&HostView>,
    parts: &Parts,
) -> Value {
    let full = !parts.reduced;
    let id = inst.id.to_string();
    let status = inst.status();
    let mut s = Map::new();
    let mut put = |k: &str, v: Value| {
        s.insert(k.to_owned(), v);
    };
    put("id", json!(id));
    put("name", json!(inst.name));
    put("status", json!(status));
    put("tenant_id", json!(inst.project_id));
    put("user_id", json!(inst.user_id));
    put("metadata", json!(inst.metadata));
    put(
        "hostId",
        json!(host_id(&inst.project_id, inst.host.as_deref())),
    );
    let image_id = inst.image.id.to_string();
    put(
        "image",
        json!({"id": image_id, "links": cx.links.bookmark("images", &image_id)}),
    );
    // From 2.47 the flavor is embedded as it was when the server was
    // built (extra specs included: Nova's default policy shows them).
    let flavor = &inst.flavor;
    if cx.version.at_least(2, 47) {
        put(
            "flavor",
            json!({
                "vcpus": flavor.vcpus,
                "ram": flavor.ram_mb,
                "disk": flavor.disk_gb,
                "ephemeral": flavor.ephemeral_gb,
                "swap": flavor.swap_mb,
                "original_name": flavor.name,
                "extra_specs": flavor.extra_specs,
            }),
        );
    } else {
        put(
            "flavor",
            json!({"id": flavor.id, "links": cx.links.bookmark("flavors", &flavor.id)}),
        );
    }
    put("created", json!(isotime(inst.created_at_ms)));
    put("updated", json!(isotime(inst.updated_at_ms)));
    // No networking yet: no addresses, and Nova hides them while building.
    put("addresses", json!({}));
    let access = &inst.access;
    put(
        "accessIPv4",
        json!(
            access
                .access_ip_v4
                .map(|a| a.to_string())
                .unwrap_or_default()
        ),
    );
    put(
        "accessIPv6",
        json!(
            access
                .access_ip_v6
                .map(|a| a.to_string())
                .unwrap_or_default()
        ),
    );
    put("links", cx.links.pair("servers", &id));
    put(
        "OS-DCF:diskConfig",
        json!(disk_config(access.auto_disk_config)),
    );
    if FAULT_STATUSES.contains(&status)
        && let Some(f) = &inst.fault
    {
        let mut fault = json!({
            "code": f.code,
            "created": isotime(f.created_at_ms),
            "message": f.message,
        });
        if !f.details.is_empty() && (cx.is_admin || f.code != 500) {
            fault["details"] = json!(f.details);
        }
        put("fault", fault);
    }
    if PROGRESS_STATUSES.contains(&status) {
        put("progress", json!(0));
    }
    let v = cx.version;
    let extended = full && cx.show_extended_attributes;
    if full {
        // Nova: the host's zone once there is a host, else the one asked for.
        let az = match (&inst.host, host) {
            (Some(_), Some(h)) => h.availability_zone.clone(),
            _ => inst.availability_zone.clone().unwrap_or_default(),
        };
        put("OS-EXT-AZ:availability_zone", json!(az));
        put("config_drive", json!(""));
    }
    if full || parts.key_name {
        put("key_name", json!(inst.key_name));
    }
    if full {
        put(
            "OS-SRV-USG:launched_at",
            json!(inst.launched_at_ms.map(usage_time)),
        );
        put(
            "OS-SRV-USG:terminated_at",
            json!(inst.deleted_at_ms.map(usage_time)),
        );
        put("security_groups", json!([{"name": "default"}]));
    }
    if extended {
        put("OS-EXT-SRV-ATTR:host", json!(inst.host));
        put("OS-EXT-SRV-ATTR:hypervisor_hostname", json!(inst.host));
        put(
            "OS-EXT-SRV-ATTR:instance_name",
            json!(instance_name(&inst.id)),
        );
    }
    if full {
        put("OS-EXT-STS:vm_state", json!(inst.vm_state.as_str()));
        put(
            "OS-EXT-STS:task_state",
            json!(inst.task_state.map(|t| t.as_str())),
        );
        put("OS-EXT-STS:power_state", json!(inst.power_state.code()));
        put("os-extended-volumes:volumes_attached", json!([]));
    }
    if extended && v.at_least(2, 3) {
        put("OS-EXT-SRV-ATTR:hostname", json!(guest_hostname(inst)));
        put("OS-EXT-SRV-ATTR:kernel_id", json!(""));
        put("OS-EXT-SRV-ATTR:launch_index", json!(inst.launch_index));
        put("OS-EXT-SRV-ATTR:ramdisk_id", json!(""));
        put("OS-EXT-SRV-ATTR:reservation_id", json!(inst.reservation_id));
        put("OS-EXT-SRV-ATTR:root_device_name", Value::Null);
        if !parts.without_extended_user_data {
            put("OS-EXT-SRV-ATTR:user_data", json!(inst.user_data));
        }
    }
    if v.at_least(2, 9) {
        put("locked", json!(inst.is_locked()));
    }
    if v.at_least(2, 16) && full && cx.show_host_status {
        let status = match (&inst.host, host) {
            (Some(_), Some(h)) => h.status(cx.now_ms, cx.service_down_time_ms),
            _ => "",
        };
        put("host_status", json!(status));
    }
    if v.at_least(2, 19) {
        put("description", json!(inst.description));
    }
    if v.at_least(2, 26) {
        put("tags", json!(inst.tags));
    }
    if v.at_least(2, 63) {
        put(
            "trusted_image_certificates",
            json!(inst.trusted_image_certificates),
        );
    }
    if let Some(groups) = &parts.server_groups {
        put("server_groups", json!(groups));
    }
    if v.at_least(2, 73) {
        put("locked_reason", json!(inst.locked_reason));
    }
    // 2.90 shows the hostname to everyone (the extended attributes
    // carry it for those who see them).
    if v.at_least(2, 90) && !(extended && v.at_least(2, 3)) {
        put("OS-EXT-SRV-ATTR:hostname", json!(guest_hostname(inst)));
    }
    if v.at_least(2, 96) && full {
        // Nova's RequestSpec zone: the one asked for at create (or moved to
        // by an unshelve), `null` when none was.
        put("pinned_availability_zone", json!(inst.availability_zone));
    }
    if v.at_least(2, 98)
        && let Some(image) = s.get_mut("image")
    {
        let known: serde_json::Map<String, Value> = inst
            .image
            .properties
            .iter()
            .filter(|(k, _)| IMAGE_META_PROPS.binary_search(&k.as_str()).is_ok())
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        image["properties"] = Value::Object(known);
    }
    if v.at_least(2, 100) {
        // Nova's RequestSpec hints: `{}` when the create gave none.
        s.insert("scheduler_hints".into(), json!(inst.scheduler_hints));
    }
    Value::Object(s)
}

/// The 202 body of `POST /servers`.
pub fn created(
    links: &Links,
    id: &Uuid,
    disk_config: &str,
    security_groups: Value,
    admin_pass: &str,
) -> Value {
    let id = id.to_string();
    json!({"server": {
        "id": id,
        "links": links.pair("servers", &id),
        "OS-DCF:diskConfig": disk_config,
        "security_groups": security_groups,
        "adminPass": admin_pass,
    }})
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::microversion::{ApiVersion, MIN_VERSION};
    use novalog_schemas::{Fault, Image, PowerState, TaskState, VmState};

    pub fn cirros() -> Image {
        Image {
            id: Uuid::new_v5(&Uuid::NAMESPACE_OID, b"test/cirros"),
            name: "cirros".into(),
            status: "active".into(),
            size: 21_430_272,
            min_disk: 0,
            min_ram: 0,
            disk_format: "qcow2".into(),
            container_format: "bare".into(),
            properties: Default::default(),
            owner: "admin".into(),
            checksum: String::new(),
            visibility: "public".into(),
            created_at_ms: 0,
            protected: false,
            tags: Vec::new(),
            os_hash_value: String::new(),
            updated_at_ms: 0,
            members: Vec::new(),
        }
    }

    pub fn building(project: &str) -> Instance {
        Instance {
            id: Uuid::new_v4(),
            project_id: project.into(),
            user_id: "alice".into(),
            name: "vm1".into(),
            flavor: crate::views::flavors::tests::tiny(),
            image: cirros(),
            metadata: [("k".to_owned(), "v".to_owned())].into(),
            availability_zone: None,
            key_name: None,
            user_data: None,
            description: None,
            tags: vec![],
            reservation_id: "r-abcdefgh".into(),
            launch_index: 0,
            vm_state: VmState::Building,
            task_state: Some(TaskState::Scheduling),
            power_state: PowerState::NoState,
            host: None,
            alternates: vec![],
            attempt: 0,
            fault: None,
            locked_by: None,
            locked_reason: None,
            created_at_ms: 1_378_180_892_000,
            updated_at_ms: 1_378_180_893_000,
            launched_at_ms: None,
            deleted_at_ms: None,
            version: 1,
            migrations: Vec::new(),
            shelved_image_id: None,
            access: Default::default(),
            hostname: String::new(),
            trusted_image_certificates: None,
            scheduler_hints: Default::default(),
            requested_host: None,
        }
    }

    fn cx(links: &Links, admin: bool) -> ViewContext<'_> {
        ViewContext {
            links,
            version: MIN_VERSION,
            is_admin: admin,
            show_extended_attributes: admin,
            show_host_status: admin,
            now_ms: 1_378_180_900_000,
            service_down_time_ms: 60_000,
        }
    }

    #[test]
    fn building_server_shape() {
        let links = Links::new("http://h");
        let inst = building("p1");
        let v = show(&cx(&links, false), &inst, None);
        assert_eq!(v["status"], "BUILD");
        assert_eq!(v["OS-EXT-STS:vm_state"], "building");
        assert_eq!(v["OS-EXT-STS:task_state"], "scheduling");
        assert_eq!(v["OS-EXT-STS:power_state"], 0);
        assert_eq!(v["hostId"], "");
        assert_eq!(v["tenant_id"], "p1");
        assert_eq!(v["created"], "2013-09-03T04:01:32Z");
        assert_eq!(v["updated"], "2013-09-03T04:01:33Z");
        assert_eq!(v["metadata"]["k"], "v");
        assert_eq!(v["flavor"]["id"], "1");
        assert_eq!(v["flavor"]["links"][0]["href"], "http://h/flavors/1");
        let mut at_2_47 = cx(&links, true);
        at_2_47.version = crate::microversion::ApiVersion::new(2, 47);
        let embedded = show(&at_2_47, &inst, None);
        let mut later = cx(&links, true);
        later.version = crate::microversion::ApiVersion::new(2, 98);
        let v98 = show(&later, &inst, None);
        assert_eq!(v98["trusted_image_certificates"], Value::Null);
        assert_eq!(v98["locked_reason"], Value::Null);
        assert_eq!(
            v98["pinned_availability_zone"],
            json!(inst.availability_zone)
        );
        assert_eq!(v98["image"]["properties"], json!(inst.image.properties));
        assert!(embedded.get("trusted_image_certificates").is_none());
        assert_eq!(
            embedded["flavor"],
            json!({"vcpus": 1, "ram": 512, "disk": 1, "ephemeral": 0, "swap": 0,
                   "original_name": "m1.tiny", "extra_specs": {}})
        );
        assert_eq!(v["image"]["id"], inst.image.id.to_string());
        assert_eq!(v["progress"], 0);
        assert_eq!(v["key_name"], Value::Null);
        assert_eq!(v["OS-SRV-USG:launched_at"], Value::Null);
        assert_eq!(v["os-extended-volumes:volumes_attached"], json!([]));
        assert_eq!(v["OS-EXT-AZ:availability_zone"], "");
        assert!(v.get("fault").is_none());
        assert!(v.get("OS-EXT-SRV-ATTR:host").is_none(), "admin only");
    }

    #[test]
    fn active_server_for_admin_has_host_attributes() {
        let links = Links::new("http://h");
        let mut inst = building("p1");
        inst.vm_state = VmState::Active;
        inst.task_state = None;
        inst.power_state = PowerState::Running;
        inst.host = Some("fake-host-1".into());
        inst.launched_at_ms = Some(1_378_180_900_500);
        let host = HostView {
            name: "fake-host-1".into(),
            availability_zone: "nova".into(),
            hypervisor_type: "fake".into(),
            last_seen_ms: 1_378_180_890_000,
            ..Default::default()
        };
        let v = show(&cx(&links, true), &inst, Some(&host));
        assert_eq!(v["status"], "ACTIVE");
        assert_eq!(v["OS-EXT-STS:task_state"], Value::Null);
        assert_eq!(v["OS-EXT-STS:power_state"], 1);
        assert_eq!(v["OS-EXT-SRV-ATTR:host"], "fake-host-1");
        assert_eq!(v["OS-EXT-SRV-ATTR:hypervisor_hostname"], "fake-host-1");
        assert_eq!(
            v["OS-EXT-SRV-ATTR:instance_name"],
            format!("instance-{}", &inst.id.simple().to_string()[..8])
        );
        assert_eq!(v["OS-EXT-AZ:availability_zone"], "nova");
        assert_eq!(v["OS-SRV-USG:launched_at"], "2013-09-03T04:01:40.500000");
        assert_eq!(v["hostId"], host_id("p1", Some("fake-host-1")));
        assert_eq!(v["hostId"].as_str().unwrap().len(), 56);
    }

    #[test]
    fn deleting_server_keeps_its_status() {
        let links = Links::new("http://h");
        let mut inst = building("p1");
        inst.vm_state = VmState::Active;
        inst.task_state = Some(TaskState::Deleting);
        let v = show(&cx(&links, false), &inst, None);
        assert_eq!(v["status"], "ACTIVE");
        assert_eq!(v["OS-EXT-STS:task_state"], "deleting");
    }

    #[test]
    fn error_server_shows_its_fault_details_by_policy() {
        let links = Links::new("http://h");
        let mut inst = building("p1");
        inst.vm_state = VmState::Error;
        inst.task_state = None;
        inst.fault = Some(Fault {
            code: 500,
            message: "No valid host was found. ".into(),
            details: "Traceback".into(),
            created_at_ms: 1_378_180_899_000,
        });
        let member = show(&cx(&links, false), &inst, None);
        assert_eq!(member["status"], "ERROR");
        assert_eq!(member["fault"]["code"], 500);
        assert_eq!(member["fault"]["created"], "2013-09-03T04:01:39Z");
        assert!(
            member["fault"].get("details").is_none(),
            "500 details are admin only"
        );
        assert!(member.get("progress").is_none());
        let admin = show(&cx(&links, true), &inst, None);
        assert_eq!(admin["fault"]["details"], "Traceback");
    }

    #[test]
    fn host_id_is_novas_sha224() {
        // hashlib.sha224(b"").hexdigest() for the empty-input vector.
        let empty = Sha224::digest(b"");
        let hex: String = empty.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "d14a028c2a3a2bc9476102bb288234c415a2b01f828ea62ac5b3e42f"
        );
        assert_eq!(host_id("p", None), "");
        assert_eq!(host_id("p", Some("h")), {
            let d = Sha224::digest(b"ph");
            d.iter().map(|b| format!("{b:02x}")).collect::<String>()
        });
    }

    #[test]
    fn later_microversions_add_their_fields() {
        let links = Links::new("http://h");
        let mut inst = building("p1");
        inst.name = "Web_Server.1 ".into();
        inst.host = Some("fake-host-1".into());
        inst.description = Some("front".into());
        inst.tags = vec!["blue".into()];
        let host = HostView {
            name: "fake-host-1".into(),
            availability_zone: "nova".into(),
            hypervisor_type: "fake".into(),
            last_seen_ms: 1_378_180_890_000,
            ..Default::default()
        };
        let at_2_1 = show(&cx(&links, true), &inst, Some(&host));
        for key in [
            "locked",
            "host_status",
            "description",
            "tags",
            "OS-EXT-SRV-ATTR:hostname",
        ] {
            assert!(at_2_1.get(key).is_none(), "{key} is not in 2.1");
        }
        let mut c = cx(&links, true);
        c.version = ApiVersion::new(2, 37);
        let v = show(&c, &inst, Some(&host));
        assert_eq!(v["OS-EXT-SRV-ATTR:hostname"], "web-server-1");
        assert_eq!(v["OS-EXT-SRV-ATTR:reservation_id"], "r-abcdefgh");
        assert_eq!(v["OS-EXT-SRV-ATTR:launch_index"], 0);
        assert_eq!(v["OS-EXT-SRV-ATTR:kernel_id"], "");
        assert_eq!(v["OS-EXT-SRV-ATTR:user_data"], Value::Null);
        assert_eq!(v["locked"], false);
        assert_eq!(v["host_status"], "UP");
        assert_eq!(v["description"], "front");
        assert_eq!(v["tags"], json!(["blue"]));
        c.now_ms += 3_600_000;
        assert_eq!(show(&c, &inst, Some(&host))["host_status"], "UNKNOWN");
        // Members see neither the extended attributes nor the host status.
        let mut m = cx(&links, false);
        m.version = ApiVersion::new(2, 37);
        let v = show(&m, &inst, Some(&host));
        assert!(v.get("host_status").is_none());
        assert!(v.get("OS-EXT-SRV-ATTR:hostname").is_none());
        assert_eq!(v["locked"], false);
        assert_eq!(hostname("...", &inst.id), format!("Server-{}", inst.id));
        assert!(v.get("locked_reason").is_none(), "2.73");
    }

    #[test]
    fn image_properties_from_2_98_are_the_ones_nova_knows() {
        assert!(
            IMAGE_META_PROPS.windows(2).all(|w| w[0] < w[1]),
            "sorted, for the binary search"
        );
        let links = Links::new("http://h");
        let mut inst = building("p1");
        inst.image.properties = [
            ("hw_disk_bus".to_owned(), "scsi".to_owned()),
            ("os_distro".to_owned(), "cirros".to_owned()),
            ("owner_specified.openstack.md5".to_owned(), "x".to_owned()),
            ("my_own".to_owned(), "y".to_owned()),
        ]
        .into();
        let mut c = cx(&links, false);
        c.version = ApiVersion::new(2, 98);
        assert_eq!(
            show(&c, &inst, None)["image"]["properties"],
            json!({"hw_disk_bus": "scsi", "os_distro": "cirros"})
        );
        c.version = ApiVersion::new(2, 97);
        assert!(show(&c, &inst, None)["image"].get("properties").is_none());
    }

    #[test]
    fn a_kept_hostname_wins_over_the_name() {
        let mut inst = building("p1");
        inst.name = "Renamed Later".into();
        assert_eq!(guest_hostname(&inst), "renamed-later");
        inst.hostname = "web-1".into();
        assert_eq!(guest_hostname(&inst), "web-1");
    }

    #[test]
    fn locked_server_shows_its_lock_and_reason_from_2_73() {
        let links = Links::new("http://h");
        let mut inst = building("p1");
        inst.locked_by = Some("admin".into());
        inst.locked_reason = Some("maintenance".into());
        let mut c = cx(&links, false);
        c.version = ApiVersion::new(2, 73);
        let v = show(&c, &inst, None);
        assert_eq!(v["locked"], true);
        assert_eq!(v["locked_reason"], "maintenance");
        inst.locked_by = None;
        inst.locked_reason = None;
        let v = show(&c, &inst, None);
        assert_eq!(v["locked"], false);
        assert_eq!(v["locked_reason"], Value::Null);
    }
}
