//! The libvirt domain XML of a guest, from its flavor and its image's
//! properties (after nova/virt/libvirt/config.py and driver.py's
//! `_get_guest_config`). Pure: paths come in, a string goes out, and
//! every image property is checked before it reaches the XML, so an
//! image cannot smuggle markup or an unknown device into a domain.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use novalog_schemas::values::{Flavor, Image};
use uuid::Uuid;

/// Nova's libvirt metadata namespace (`<nova:instance>`).
const NOVA_NS: &str = "http://openstack.org/xmlns/libvirt/nova/1.1";

/// Domain names of Novalog's guests start with this: only such domains
/// are the agent's to list, adopt or destroy.
pub const NAME_PREFIX: &str = "instance-";

/// The domain name of an instance.
pub fn domain_name(id: Uuid) -> String {
    format!("{NAME_PREFIX}{id}")
}

/// The instance a domain name belongs to, if it is one of Novalog's.
pub fn instance_of(domain_name: &str) -> Option<Uuid> {
    domain_name
        .strip_prefix(NAME_PREFIX)
        .and_then(|s| Uuid::parse_str(s).ok())
}

/// Whether a domain's XML (as libvirt gives it) has a disk file under
/// `dir`: a domain is a host's when its disks live in the host's
/// `instances_path` (hosts that share a hypervisor share its domains).
pub fn disks_under(domain_xml: &str, dir: &Path) -> bool {
    let d = path(dir);
    let d = d.trim_end_matches('/');
    domain_xml.contains(&format!("file='{d}/")) || domain_xml.contains(&format!("file=\"{d}/"))
}

/// What the host decides rather than the flavor or the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSettings {
    /// `kvm` or `qemu`.
    pub virt_type: String,
    /// `host-model`, `host-passthrough`, `custom`, `none` or empty (the
    /// virt type's default).
    pub cpu_mode: String,
    pub cpu_models: Vec<String>,
    /// Where guests' VNC displays listen (`[vnc] server_listen`); `None`:
    /// guests get no display (`[vnc] enabled = false`).
    pub vnc_listen: Option<String>,
}

/// The files of one guest, in its instance directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestFiles {
    pub root: PathBuf,
    pub ephemeral: Option<PathBuf>,
    pub swap: Option<PathBuf>,
    /// Direct kernel boot: the kernel and, optionally, the initrd.
    pub kernel: Option<PathBuf>,
    pub ramdisk: Option<PathBuf>,
    /// Where the serial console writes.
    pub console_log: PathBuf,
}

/// An image property Nova's libvirt driver would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("image property {property}={value:?} is not supported ({allowed})")]
pub struct BadProperty {
    pub property: &'static str,
    pub value: String,
    pub allowed: &'static str,
}

/// The guest devices and boot settings the image asks for, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSettings {
    pub disk_bus: &'static str,
    pub vif_model: &'static str,
    pub machine_type: Option<String>,
    pub kernel_id: Option<Uuid>,
    pub ramdisk_id: Option<Uuid>,
    pub os_command_line: Option<String>,
}

const DISK_BUSES: &[&str] = &["virtio", "scsi", "ide", "sata", "usb"];
const VIF_MODELS: &[&str] = &[
    "virtio", "e1000", "e1000e", "rtl8139", "ne2k_pci", "pcnet", "vmxnet3",
];

fn one_of(
    image: &Image,
    property: &'static str,
    allowed: &'static [&'static str],
    default: &'static str,
    shown: &'static str,
) -> Result<&'static str, BadProperty> {
    match image.properties.get(property) {
        None => Ok(default),
        Some(v) => allowed
            .iter()
            .copied()
            .find(|a| a == v)
            .ok_or_else(|| BadProperty {
                property,
                value: v.clone(),
                allowed: shown,
            }),
    }
}

fn image_id(image: &Image, property: &'static str) -> Result<Option<Uuid>, BadProperty> {
    match image.properties.get(property) {
        None => Ok(None),
        Some(v) if v.is_empty() => Ok(None),
        Some(v) => Uuid::parse_str(v).map(Some).map_err(|_| BadProperty {
            property,
            value: v.clone(),
            allowed: "an image id",
        }),
    }
}

impl ImageSettings {
    /// The image's `hw_disk_bus`, `hw_vif_model`, `hw_machine_type`,
    /// `kernel_id`, `ramdisk_id` and `os_command_line`, checked.
    pub fn from_image(image: &Image) -> Result<ImageSettings, BadProperty> {
        let disk_bus = one_of(
            image,
            "hw_disk_bus",
            DISK_BUSES,
            "virtio",
            "virtio, scsi, ide, sata, usb",
        )?;
        let vif_model = one_of(
            image,
            "hw_vif_model",
            VIF_MODELS,
            "virtio",
            "virtio, e1000, e1000e, rtl8139, ne2k_pci, pcnet, vmxnet3",
        )?;
        let machine_type = match image.properties.get("hw_machine_type") {
            None => None,
            Some(m)
                if !m.is_empty()
                    && m.len() <= 64
                    && m.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')) =>
            {
                Some(m.clone())
            }
            Some(m) => {
                return Err(BadProperty {
                    property: "hw_machine_type",
                    value: m.clone(),
                    allowed: "a machine type such as pc or q35",
                });
            }
        };
        let kernel_id = image_id(image, "kernel_id")?;
        let ramdisk_id = image_id(image, "ramdisk_id")?;
        if ramdisk_id.is_some() && kernel_id.is_none() {
            return Err(BadProperty {
                property: "ramdisk_id",
                value: image.properties["ramdisk_id"].clone(),
                allowed: "only with kernel_id",
            });
        }
        let os_command_line = image.properties.get("os_command_line").cloned();
        Ok(ImageSettings {
            disk_bus,
            vif_model,
            machine_type,
            kernel_id,
            ramdisk_id,
            os_command_line,
        })
    }
}

/// The device name prefix of a disk bus (`vda`, `sda`, `hda`).
fn dev_prefix(bus: &str) -> &'static str {
    match bus {
        "virtio" => "vd",
        "ide" => "hd",
        _ => "sd",
    }
}

/// Escapes text and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters are not allowed in XML 1.0 at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn path(p: &Path) -> String {
    esc(&p.to_string_lossy())
}

/// A guest's identity and shape: what the XML is made of.
pub struct GuestSpec<'a> {
    pub instance_id: Uuid,
    pub name: &'a str,
    pub project_id: &'a str,
    pub flavor: &'a Flavor,
    pub image: &'a Image,
}

/// The domain XML: `<uuid>` is the instance id and the name
/// [`domain_name`], so a rebuilt or redefined guest keeps its identity.
pub fn domain_xml(
    spec: &GuestSpec<'_>,
    settings: &ImageSettings,
    host: &HostSettings,
    files: &GuestFiles,
) -> String {
    let f = spec.flavor;
    let mut x = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(x, "<domain type=\"{}\">", esc(&host.virt_type));
    let _ = writeln!(x, "  <uuid>{}</uuid>", spec.instance_id);
    let _ = writeln!(x, "  <name>{}</name>", domain_name(spec.instance_id));
    let _ = writeln!(x, "  <memory unit=\"KiB\">{}</memory>", f.ram_mb * 1024);
    let _ = writeln!(x, "  <vcpu>{}</vcpu>", f.vcpus.max(1));
    let _ = writeln!(x, "  <metadata>");
    let _ = writeln!(x, "    <nova:instance xmlns:nova=\"{NOVA_NS}\">");
    let _ = writeln!(x, "      <nova:name>{}</nova:name>", esc(spec.name));
    let _ = writeln!(x, "      <nova:flavor name=\"{}\">", esc(&f.name));
    let _ = writeln!(x, "        <nova:memory>{}</nova:memory>", f.ram_mb);
    let _ = writeln!(x, "        <nova:disk>{}</nova:disk>", f.disk_gb);
    let _ = writeln!(x, "        <nova:swap>{}</nova:swap>", f.swap_mb);
    let _ = writeln!(
        x,
        "        <nova:ephemeral>{}</nova:ephemeral>",
        f.ephemeral_gb
    );
    let _ = writeln!(x, "        <nova:vcpus>{}</nova:vcpus>", f.vcpus);
    let _ = writeln!(x, "      </nova:flavor>");
    let _ = writeln!(
        x,
        "      <nova:owner><nova:project uuid=\"{}\"/></nova:owner>",
        esc(spec.project_id)
    );
    let _ = writeln!(
        x,
        "      <nova:root type=\"image\" uuid=\"{}\"/>",
        spec.image.id
    );
    let _ = writeln!(x, "    </nova:instance>");
    let _ = writeln!(x, "  </metadata>");

    let _ = writeln!(x, "  <os>");
    match &settings.machine_type {
        Some(m) => {
            let _ = writeln!(x, "    <type machine=\"{}\">hvm</type>", esc(m));
        }
        None => {
            let _ = writeln!(x, "    <type>hvm</type>");
        }
    }
    if let Some(kernel) = &files.kernel {
        let _ = writeln!(x, "    <kernel>{}</kernel>", path(kernel));
        if let Some(initrd) = &files.ramdisk {
            let _ = writeln!(x, "    <initrd>{}</initrd>", path(initrd));
        }
        // Nova's default for direct kernel boot: root on the first disk,
        // console on the serial port.
        let default_cmdline = format!("root=/dev/{}a console=ttyS0", dev_prefix(settings.disk_bus));
        let cmdline = settings
            .os_command_line
            .as_deref()
            .unwrap_or(&default_cmdline);
        let _ = writeln!(x, "    <cmdline>{}</cmdline>", esc(cmdline));
    } else {
        let _ = writeln!(x, "    <boot dev=\"hd\"/>");
    }
    let _ = writeln!(x, "  </os>");
    let _ = writeln!(x, "  <features><acpi/><apic/></features>");
    let cpu_mode = match host.cpu_mode.as_str() {
        "" if host.virt_type == "kvm" => "host-model",
        "" => "none",
        m => m,
    };
    match cpu_mode {
        "none" => {}
        "custom" => {
            let model = host.cpu_models.first().map(String::as_str).unwrap_or("");
            let _ = writeln!(
                x,
                "  <cpu mode=\"custom\" match=\"exact\"><model fallback=\"allow\">{}</model></cpu>",
                esc(model)
            );
        }
        m => {
            let _ = writeln!(x, "  <cpu mode=\"{}\"/>", esc(m));
        }
    }
    let _ = writeln!(x, "  <clock offset=\"utc\"/>");
    let _ = writeln!(x, "  <on_poweroff>destroy</on_poweroff>");
    let _ = writeln!(x, "  <on_reboot>restart</on_reboot>");
    let _ = writeln!(x, "  <on_crash>destroy</on_crash>");
    let _ = writeln!(x, "  <devices>");
    let prefix = dev_prefix(settings.disk_bus);
    let disks = [
        Some(&files.root),
        files.ephemeral.as_ref(),
        files.swap.as_ref(),
    ];
    for (i, disk) in disks.into_iter().flatten().enumerate() {
        let letter = (b'a' + i as u8) as char;
        let _ = writeln!(x, "    <disk type=\"file\" device=\"disk\">");
        let _ = writeln!(
            x,
            "      <driver name=\"qemu\" type=\"qcow2\" cache=\"none\"/>"
        );
        let _ = writeln!(x, "      <source file=\"{}\"/>", path(disk));
        let _ = writeln!(
            x,
            "      <target dev=\"{prefix}{letter}\" bus=\"{}\"/>",
            settings.disk_bus
        );
        let _ = writeln!(x, "    </disk>");
    }
    // User-mode networking: no host bridge to set up; Novalog has no
    // network service to plug a tap into yet.
    let _ = writeln!(x, "    <interface type=\"user\">");
    let _ = writeln!(x, "      <model type=\"{}\"/>", settings.vif_model);
    let _ = writeln!(x, "    </interface>");
    let _ = writeln!(x, "    <serial type=\"file\">");
    let _ = writeln!(x, "      <source path=\"{}\"/>", path(&files.console_log));
    let _ = writeln!(x, "      <target port=\"0\"/>");
    let _ = writeln!(x, "    </serial>");
    let _ = writeln!(x, "    <input type=\"tablet\" bus=\"usb\"/>");
    // A display on a port libvirt picks (read back from the live XML,
    // `vnc_port`), for the console proxy.
    if let Some(listen) = &host.vnc_listen {
        let _ = writeln!(
            x,
            "    <graphics type=\"vnc\" port=\"-1\" autoport=\"yes\" listen=\"{}\"/>",
            esc(listen)
        );
    }
    let _ = writeln!(x, "    <video><model type=\"vga\"/></video>");
    let _ = writeln!(x, "  </devices>");
    let _ = writeln!(x, "</domain>");
    x
}

/// The port of the domain's VNC display in its live XML (`<graphics
/// type='vnc' port='5901' ...>`): `None` when it has none, or libvirt has
/// not given it one yet (`-1`, a domain not running).
pub fn vnc_port(xml: &str) -> Option<u16> {
    let mut rest = xml;
    while let Some(at) = rest.find("<graphics") {
        let tag_end = rest[at..].find('>').map_or(rest.len(), |e| at + e);
        let tag = &rest[at..tag_end];
        rest = &rest[tag_end..];
        if attr(tag, "type") != Some("vnc") {
            continue;
        }
        return attr(tag, "port")
            .and_then(|p| p.parse::<u16>().ok())
            .filter(|p| *p > 0);
    }
    None
}

/// The value of attribute `name` in one tag, quoted either way.
fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let mut from = 0;
    while let Some(i) = tag[from..].find(name) {
        let start = from + i;
        from = start + name.len();
        let before_ok = tag[..start].ends_with(char::is_whitespace);
        let after = tag[from..].trim_start();
        if !before_ok || !after.starts_with('=') {
            continue;
        }
        let value = after[1..].trim_start();
        let quote = value.chars().next()?;
        if quote != '\'' && quote != '"' {
            return None;
        }
        let body = &value[1..];
        return body.find(quote).map(|end| &body[..end]);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    pub(crate) fn flavor() -> Flavor {
        Flavor {
            id: "1".into(),
            name: "m1.tiny".into(),
            vcpus: 2,
            ram_mb: 512,
            disk_gb: 1,
            ephemeral_gb: 0,
            swap_mb: 0,
            rxtx_factor: 1.0,
            is_public: true,
            extra_specs: BTreeMap::new(),
            description: None,
        }
    }

    fn image(props: &[(&str, &str)]) -> Image {
        Image {
            id: Uuid::from_u128(7),
            name: "cirros".into(),
            status: "active".into(),
            size: 0,
            min_disk: 0,
            min_ram: 0,
            disk_format: "qcow2".into(),
            container_format: "bare".into(),
            properties: props
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            owner: String::new(),
            checksum: String::new(),
            visibility: "public".into(),
            created_at_ms: 0,
            protected: false,
            tags: vec![],
            os_hash_value: String::new(),
            updated_at_ms: 0,
            members: vec![],
        }
    }

    fn files(kernel: bool) -> GuestFiles {
        GuestFiles {
            root: "/i/x/disk".into(),
            ephemeral: Some("/i/x/disk.eph0".into()),
            swap: None,
            kernel: kernel.then(|| "/i/x/kernel".into()),
            ramdisk: kernel.then(|| "/i/x/ramdisk".into()),
            console_log: "/i/x/console.log".into(),
        }
    }

    fn host(mode: &str) -> HostSettings {
        HostSettings {
            virt_type: "kvm".into(),
            cpu_mode: mode.into(),
            cpu_models: vec![],
            vnc_listen: Some("127.0.0.1".into()),
        }
    }

    fn xml(props: &[(&str, &str)], kernel: bool, mode: &str) -> String {
        let (f, i) = (flavor(), image(props));
        let spec = GuestSpec {
            instance_id: Uuid::from_u128(1),
            name: "web <1> & \"two\"",
            project_id: "p1",
            flavor: &f,
            image: &i,
        };
        let s = ImageSettings::from_image(&i).unwrap();
        domain_xml(&spec, &s, &host(mode), &files(kernel))
    }

    #[test]
    fn flavor_shapes_the_domain_and_names_are_escaped() {
        let x = xml(&[], false, "");
        assert!(x.contains("<memory unit=\"KiB\">524288</memory>"), "{x}");
        assert!(x.contains("<vcpu>2</vcpu>"));
        assert!(x.contains("<uuid>00000000-0000-0000-0000-000000000001</uuid>"));
        assert!(x.contains("web &lt;1&gt; &amp; &quot;two&quot;"));
        assert!(x.contains("<cpu mode=\"host-model\"/>"), "kvm's default");
        assert!(x.contains("<boot dev=\"hd\"/>"));
        assert!(x.contains("dev=\"vda\" bus=\"virtio\""));
        assert!(x.contains("dev=\"vdb\" bus=\"virtio\""), "ephemeral second");
        assert!(x.contains("<model type=\"virtio\"/>"));
        assert!(x.contains("<graphics type=\"vnc\""));
        assert!(x.contains("<source path=\"/i/x/console.log\"/>"));
    }

    #[test]
    fn image_properties_pick_bus_nic_machine_and_kernel() {
        let x = xml(
            &[
                ("hw_disk_bus", "scsi"),
                ("hw_vif_model", "e1000"),
                ("hw_machine_type", "q35"),
                ("kernel_id", "00000000-0000-0000-0000-000000000008"),
                ("os_command_line", "console=ttyS0 quiet"),
            ],
            true,
            "none",
        );
        assert!(x.contains("dev=\"sda\" bus=\"scsi\""), "{x}");
        assert!(x.contains("<model type=\"e1000\"/>"));
        assert!(x.contains("<type machine=\"q35\">hvm</type>"));
        assert!(x.contains("<kernel>/i/x/kernel</kernel>"));
        assert!(x.contains("<initrd>/i/x/ramdisk</initrd>"));
        assert!(x.contains("<cmdline>console=ttyS0 quiet</cmdline>"));
        assert!(
            !x.contains("<boot dev"),
            "direct kernel boot has no boot device"
        );
        assert!(!x.contains("<cpu"), "cpu_mode none");
    }

    #[test]
    fn bad_properties_are_named() {
        for (k, v) in [
            ("hw_disk_bus", "floppy"),
            ("hw_vif_model", "<evil/>"),
            ("hw_machine_type", "pc\"/><x"),
            ("kernel_id", "not-a-uuid"),
            ("ramdisk_id", "00000000-0000-0000-0000-000000000008"),
        ] {
            let e = ImageSettings::from_image(&image(&[(k, v)])).unwrap_err();
            assert_eq!(e.property, k);
            assert!(e.to_string().contains(k), "{e}");
        }
    }

    #[test]
    fn domain_names_round_trip_and_foreign_ones_are_not_ours() {
        let id = Uuid::from_u128(42);
        assert_eq!(instance_of(&domain_name(id)), Some(id));
        assert_eq!(instance_of("test"), None);
        assert_eq!(instance_of("instance-0000002a"), None);
    }

    #[test]
    fn the_vnc_port_is_read_from_the_live_xml() {
        let live = "<domain><devices><graphics type='spice' port='5930'/>\n\
            <graphics type='vnc' port='5901' autoport='yes' listen='127.0.0.1'>\n\
            <listen type='address' address='127.0.0.1'/></graphics></devices></domain>";
        assert_eq!(vnc_port(live), Some(5901));
        let not_running = "<graphics type=\"vnc\" port=\"-1\" autoport=\"yes\"/>";
        assert_eq!(vnc_port(not_running), None);
        assert_eq!(vnc_port("<domain/>"), None);
        let x = xml(&[], false, "");
        assert!(
            x.contains("port=\"-1\" autoport=\"yes\" listen=\"127.0.0.1\""),
            "{x}"
        );
    }
}
