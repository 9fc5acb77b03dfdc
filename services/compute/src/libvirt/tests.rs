//! The driver contract on libvirt's built-in `test:///default`
//! hypervisor (no daemon; it accepts and keeps domains without opening
//! their disks) with real disks made by `qemu-img`.

use std::collections::BTreeMap;
use std::path::Path;

use md5::Md5;
use sha2::{Digest, Sha512};

use super::*;

struct Host {
    driver: LibvirtDriver,
    images: PathBuf,
    /// Instance ids of this test: `test:///default` is one hypervisor per
    /// process, which a test runner may share between tests.
    base: u128,
    _dir: tempfile::TempDir,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

fn opts(dir: &Path) -> LibvirtOptions {
    LibvirtOptions {
        connection_uri: "test:///default".into(),
        host: HostSettings {
            virt_type: "kvm".into(),
            cpu_mode: String::new(),
            cpu_models: vec![],
            vnc_listen: Some("127.0.0.1".into()),
        },
        vnc_proxyclient_address: "127.0.0.1".into(),
        instances_path: dir.join("instances"),
        base_dir_name: "_base".into(),
        wait_soft_reboot: Duration::from_secs(5),
        shutdown_timeout: Duration::from_secs(5),
        remove_unused_base_images: true,
        remove_unused_min_age: Duration::ZERO,
        host_name: "h".into(),
        remote_transport: "ssh".into(),
        host_instances_paths: BTreeMap::new(),
        live_migration_uri: "test:///default".into(),
    }
}

fn host() -> Host {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    std::fs::create_dir_all(&images).unwrap();
    let driver = LibvirtDriver::open(opts(dir.path()), Arc::new(ImageStoreDir(images.clone())))
        .unwrap()
        .with_image_store(images.clone());
    Host {
        driver,
        images,
        base: Uuid::new_v4().as_u128() & !0xffff,
        _dir: dir,
    }
}

/// Two hosts on one machine and one hypervisor (`h` and `h2`, each with
/// its own `instances_path`), reading one image store: the way a cold
/// migration between them runs in tests.
fn pair() -> (Host, LibvirtDriver) {
    let a = host();
    let b_path = a._dir.path().join("h2");
    let mut o = opts(&b_path);
    o.host_name = "h2".into();
    o.host_instances_paths = BTreeMap::from([("h".into(), a.driver.opts.instances_path.clone())]);
    let b = LibvirtDriver::open(o, Arc::new(ImageStoreDir(a.images.clone()))).unwrap();
    let mut a = a;
    a.driver
        .opts
        .host_instances_paths
        .insert("h2".into(), b.opts.instances_path.clone());
    (a, b)
}

impl Host {
    fn migration(&self, n: u128, dest: &str, flavor: Flavor, image: &Image) -> MigrationCommand {
        MigrationCommand {
            instance_id: self.id(n),
            migration_id: Uuid::from_u128(77),
            host: "h".into(),
            source_host: "h".into(),
            dest_host: dest.into(),
            attempt: 1,
            flavor,
            image: image.clone(),
            name: format!("server-{n}"),
            project_id: "p1".into(),
            power_on: true,
        }
    }

    fn ours(&self, d: &LibvirtDriver) -> Vec<u128> {
        let mut g: Vec<u128> = d
            .guests("h")
            .into_iter()
            .map(|id| id.as_u128())
            .filter(|id| id & !0xffff == self.base)
            .map(|id| id - self.base)
            .collect();
        g.sort();
        g
    }
}

async fn virtual_size(p: &Path) -> u64 {
    disk::info(p, "qcow2").await.unwrap().virtual_size
}

fn flavor(disk_gb: u64) -> Flavor {
    Flavor {
        id: "1".into(),
        name: "m1.tiny".into(),
        vcpus: 1,
        ram_mb: 512,
        disk_gb,
        ephemeral_gb: 1,
        swap_mb: 64,
        rxtx_factor: 1.0,
        is_public: true,
        extra_specs: BTreeMap::new(),
        description: None,
    }
}

impl Host {
    fn id(&self, n: u128) -> Uuid {
        Uuid::from_u128(self.base + n)
    }

    /// This test's guests on the hypervisor.
    fn guests(&self) -> Vec<u128> {
        let mut g: Vec<u128> = self
            .driver
            .guests("h")
            .into_iter()
            .map(|id| id.as_u128())
            .filter(|id| id & !0xffff == self.base)
            .map(|id| id - self.base)
            .collect();
        g.sort();
        g
    }

    /// An uploaded raw image of `bytes` (its digests as Glance has them).
    fn image(&self, n: u128, bytes: &[u8], props: &[(&str, &str)]) -> Image {
        let id = Uuid::from_u128(n);
        std::fs::write(self.images.join(id.to_string()), bytes).unwrap();
        Image {
            id,
            name: format!("image-{n}"),
            status: "active".into(),
            size: bytes.len() as u64,
            min_disk: 0,
            min_ram: 0,
            disk_format: "raw".into(),
            container_format: "bare".into(),
            properties: props
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            owner: "p1".into(),
            checksum: hex(&Md5::digest(bytes)),
            visibility: "public".into(),
            created_at_ms: 0,
            protected: false,
            tags: vec![],
            os_hash_value: hex(&Sha512::digest(bytes)),
            updated_at_ms: 0,
            members: vec![],
        }
    }

    async fn spawn(
        &self,
        n: u128,
        flavor: Flavor,
        image: &Image,
    ) -> Result<PowerState, DriverError> {
        let cmd = SpawnInstance {
            instance_id: self.id(n),
            host: "h".into(),
            attempt: 1,
            project_id: "p1".into(),
            name: format!("server-{n}"),
            flavor,
            image: image.clone(),
        };
        self.driver.spawn("h", &cmd).await
    }

    fn bases(&self) -> Vec<String> {
        let mut b: Vec<_> = self
            .driver
            .image_cache()
            .bases()
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        b.sort();
        b
    }

    fn xml(&self, n: u128) -> String {
        self.driver
            .domain(self.id(n))
            .unwrap()
            .get_xml_desc(0)
            .unwrap()
    }
}

fn mib(n: usize) -> Vec<u8> {
    (0..n << 20).map(|i| (i % 251) as u8).collect()
}

#[tokio::test]
async fn spawn_makes_an_overlay_grown_to_the_flavor_and_a_running_domain() {
    let h = host();
    let image = h.image(1, &mib(1), &[]);
    assert_eq!(
        h.spawn(10, flavor(2), &image).await,
        Ok(PowerState::Running)
    );
    let id = h.id(10);
    assert_eq!(h.driver.get_info("h", id), Some(PowerState::Running));

    let dir = h.driver.instance_dir(id);
    let base = h.driver.image_cache().base_path(image.id);
    assert_eq!(
        base.file_name().unwrap().to_string_lossy(),
        imagecache::base_name(image.id)
    );
    let root = disk::info(&dir.join("disk"), "qcow2").await.unwrap();
    assert_eq!(
        root.backing_filename.as_deref(),
        Some(&*base.to_string_lossy())
    );
    assert_eq!(root.backing_format.as_deref(), Some("raw"));
    assert_eq!(root.virtual_size, 2 * disk::GIB, "the flavor's root disk");
    let eph = disk::info(&dir.join("disk.eph0"), "qcow2").await.unwrap();
    assert_eq!(eph.virtual_size, disk::GIB);
    let swap = disk::info(&dir.join("disk.swap"), "qcow2").await.unwrap();
    assert_eq!(swap.virtual_size, 64 * disk::MIB);
    assert!(dir.join("console.log").exists());

    // libvirt kept the XML as given: the disks, the console, VNC.
    let xml = h.xml(10);
    assert!(xml.contains(&*dir.join("disk").to_string_lossy()), "{xml}");
    assert!(xml.contains("disk.eph0") && xml.contains("disk.swap"));
    assert!(xml.contains("console.log"));
    assert!(xml.contains("type='vnc'"), "{xml}");
    assert!(xml.contains(&format!("<name>instance-{id}</name>")));
}

#[tokio::test]
async fn a_snapshot_is_the_guests_disk_in_its_base_format_stored_with_its_digests() {
    let h = host();
    let bytes = mib(1);
    let image = h.image(1, &bytes, &[]);
    // No resize (disk 0): the overlay's virtual size is the image's.
    h.spawn(10, flavor(0), &image).await.unwrap();
    let id = h.id(10);
    let snap = Uuid::from_u128(h.base + 0xff);
    let stored = h.driver.snapshot("h", id, snap).await.unwrap();
    let written = std::fs::read(h.images.join(snap.to_string())).unwrap();
    // Raw like its base, and the guest wrote nothing: the same bytes.
    assert_eq!(written, bytes);
    assert_eq!(stored.size, bytes.len() as u64);
    assert_eq!(stored.checksum, hex(&Md5::digest(&bytes)));
    assert_eq!(stored.os_hash_value, hex(&Sha512::digest(&bytes)));
    assert_eq!(h.driver.get_info("h", id), Some(PowerState::Running));
    // No guest: nothing stored.
    let other = Uuid::from_u128(h.base + 0xfe);
    assert!(h.driver.snapshot("h", h.id(11), other).await.is_err());
    assert!(!h.images.join(other.to_string()).exists());
}

#[tokio::test]
async fn the_console_output_is_the_serial_log_and_the_test_hypervisor_has_no_nmi() {
    let h = host();
    let image = h.image(1, &mib(1), &[]);
    h.spawn(10, flavor(0), &image).await.unwrap();
    let id = h.id(10);
    assert_eq!(h.driver.get_console_output("h", id).await.unwrap(), b"");
    let log = h.driver.instance_dir(id).join("console.log");
    std::fs::write(&log, b"booting\nlogin: ").unwrap();
    assert_eq!(
        h.driver.get_console_output("h", id).await.unwrap(),
        b"booting\nlogin: "
    );
    // Only the last 100 KiB, as Nova reads it.
    std::fs::write(&log, vec![b'x'; 200 * 1024]).unwrap();
    assert_eq!(
        h.driver.get_console_output("h", id).await.unwrap().len(),
        100 * 1024
    );
    // A stopped guest's log is still there to read.
    h.driver.power_off("h", id).await.unwrap();
    assert!(h.driver.get_console_output("h", id).await.is_ok());
    assert!(h.driver.get_console_output("h", h.id(11)).await.is_err());
    // libvirt's test driver has no QEMU monitor to inject an NMI with.
    h.driver.power_on("h", id).await.unwrap();
    assert!(h.driver.trigger_crash_dump("h", id).await.is_err());
}

#[tokio::test]
async fn two_servers_from_one_image_share_one_base_file() {
    let h = host();
    let image = h.image(1, &mib(1), &[]);
    let (a, b) = tokio::join!(
        h.spawn(10, flavor(1), &image),
        h.spawn(11, flavor(1), &image)
    );
    assert_eq!((a, b), (Ok(PowerState::Running), Ok(PowerState::Running)));
    assert_eq!(h.bases(), [imagecache::base_name(image.id)]);
    let base = h.driver.image_cache().base_path(image.id);
    for n in [10, 11] {
        let d = h.driver.instance_dir(h.id(n)).join("disk");
        assert_eq!(
            imagecache::qcow2_backing_file(&d).unwrap(),
            Some(base.clone())
        );
    }
}

#[tokio::test]
async fn a_resize_grows_the_overlay() {
    let h = host();
    let image = h.image(1, &mib(1), &[]);
    h.spawn(10, flavor(1), &image).await.unwrap();
    let d = h.driver.instance_dir(h.id(10)).join("disk");
    disk::resize(&d, 3 * disk::GIB).await.unwrap();
    let info = disk::info(&d, "qcow2").await.unwrap();
    assert_eq!(info.virtual_size, 3 * disk::GIB);
    assert!(info.backing_filename.is_some(), "still an overlay");
}

#[tokio::test]
async fn every_action_maps_libvirt_state_to_power_state() {
    let h = host();
    let image = h.image(1, &mib(1), &[]);
    h.spawn(10, flavor(1), &image).await.unwrap();
    let id = h.id(10);
    let d = &h.driver;
    assert_eq!(d.pause("h", id).await, Ok(PowerState::Paused));
    assert_eq!(d.get_info("h", id), Some(PowerState::Paused));
    assert_eq!(d.unpause("h", id).await, Ok(PowerState::Running));
    assert_eq!(d.suspend("h", id).await, Ok(PowerState::Suspended));
    assert_eq!(d.get_info("h", id), Some(PowerState::Suspended));
    assert_eq!(d.resume("h", id).await, Ok(PowerState::Running));
    assert_eq!(d.power_off("h", id).await, Ok(PowerState::Shutdown));
    assert_eq!(d.get_info("h", id), Some(PowerState::Shutdown));
    assert_eq!(d.power_on("h", id).await, Ok(PowerState::Running));
    assert_eq!(d.reboot("h", id, false).await, Ok(PowerState::Running));
    assert_eq!(d.reboot("h", id, true).await, Ok(PowerState::Running));
    // A hard reboot also brings a stopped guest back.
    d.power_off("h", id).await.unwrap();
    assert_eq!(d.reboot("h", id, true).await, Ok(PowerState::Running));
    // Resuming a guest that was never suspended names why it cannot.
    let e = d.resume("h", id).await.unwrap_err();
    assert!(e.to_string().contains("no saved memory image"), "{e}");

    let ghost = h.id(99);
    assert_eq!(d.get_info("h", ghost), None);
    assert_eq!(
        d.pause("h", ghost).await,
        Err(DriverError::InstanceNotFound(ghost))
    );
}

#[test]
fn the_state_table_is_novas() {
    use DomainState as S;
    let table = [
        (S::NoState, false, PowerState::NoState),
        (S::Running, false, PowerState::Running),
        (S::Blocked, false, PowerState::Running),
        (S::Paused, false, PowerState::Paused),
        (S::Shutdown, false, PowerState::Shutdown),
        (S::Shutoff, false, PowerState::Shutdown),
        (S::Shutoff, true, PowerState::Suspended),
        (S::Crashed, false, PowerState::Crashed),
        (S::PMSuspended, false, PowerState::Suspended),
    ];
    for (state, saved, power) in table {
        assert_eq!(power_state(state, saved), power, "{state:?} saved={saved}");
    }
}

#[tokio::test]
async fn destroy_removes_the_domain_and_its_directory_and_keeps_base() {
    let h = host();
    let image = h.image(1, &mib(1), &[]);
    h.spawn(10, flavor(1), &image).await.unwrap();
    let id = h.id(10);
    h.driver.suspend("h", id).await.unwrap();
    h.driver.destroy("h", id).await.unwrap();
    assert_eq!(h.driver.get_info("h", id), None);
    assert!(!h.driver.instance_dir(id).exists());
    assert_eq!(h.bases(), [imagecache::base_name(image.id)]);
    assert!(h.guests().is_empty());
    // Destroying what is gone succeeds.
    h.driver.destroy("h", id).await.unwrap();
    // The id can be spawned again.
    assert_eq!(
        h.spawn(10, flavor(1), &image).await,
        Ok(PowerState::Running)
    );
}

#[tokio::test]
async fn spawning_an_existing_guest_is_refused() {
    let h = host();
    let image = h.image(1, &mib(1), &[]);
    h.spawn(10, flavor(1), &image).await.unwrap();
    assert_eq!(
        h.spawn(10, flavor(1), &image).await,
        Err(DriverError::InstanceExists(h.id(10)))
    );
    assert_eq!(h.driver.get_info("h", h.id(10)), Some(PowerState::Running));
}

#[tokio::test]
async fn rebuild_keeps_the_domain_and_changes_the_disk() {
    let h = host();
    let (old, new) = (
        h.image(1, &mib(1), &[]),
        h.image(2, &mib(2), &[("hw_disk_bus", "scsi")]),
    );
    h.spawn(10, flavor(1), &old).await.unwrap();
    let id = h.id(10);
    let cmd = MigrationCommand {
        instance_id: id,
        migration_id: Uuid::from_u128(77),
        host: "h".into(),
        source_host: "h".into(),
        dest_host: "h".into(),
        attempt: 1,
        flavor: flavor(1),
        image: new.clone(),
        name: "server-10".into(),
        project_id: "p1".into(),
        power_on: true,
    };
    assert_eq!(h.driver.rebuild(&cmd).await, Ok(PowerState::Running));
    let d = h.driver.instance_dir(id).join("disk");
    assert_eq!(
        imagecache::qcow2_backing_file(&d).unwrap(),
        Some(h.driver.image_cache().base_path(new.id))
    );
    let xml = h.xml(10);
    assert!(xml.contains("bus='scsi'"), "{xml}");
    assert!(xml.contains(&id.to_string()));
    assert_eq!(h.guests(), [10]);
}

#[tokio::test]
async fn direct_kernel_boot_copies_kernel_and_ramdisk() {
    let h = host();
    let kernel = h.image(3, b"kernel bytes", &[]);
    let ramdisk = h.image(4, b"initramfs bytes", &[]);
    let image = h.image(
        1,
        &mib(1),
        &[
            ("kernel_id", &kernel.id.to_string()),
            ("ramdisk_id", &ramdisk.id.to_string()),
            ("os_command_line", "console=ttyS0 rdinit=/init"),
        ],
    );
    h.spawn(10, flavor(1), &image).await.unwrap();
    let dir = h.driver.instance_dir(h.id(10));
    assert_eq!(std::fs::read(dir.join("kernel")).unwrap(), b"kernel bytes");
    assert_eq!(
        std::fs::read(dir.join("ramdisk")).unwrap(),
        b"initramfs bytes"
    );
    let xml = h.xml(10);
    assert!(
        xml.contains(&*dir.join("kernel").to_string_lossy()),
        "{xml}"
    );
    assert!(xml.contains("rdinit=/init"));
}

/// Each bad input fails the spawn with its cause, and nothing of the
/// guest is left: no domain, no directory.
#[tokio::test]
async fn bad_input_names_the_cause_and_leaves_nothing() {
    let h = host();
    let good = h.image(1, &mib(1), &[]);
    let mut corrupt = h.image(2, &mib(1), &[]);
    corrupt.checksum = hex(&Md5::digest(b"something else"));
    let mut missing = good.clone();
    missing.id = Uuid::from_u128(3);
    let bad_bus = h.image(4, &mib(1), &[("hw_disk_bus", "floppy")]);
    let mut iso = good.clone();
    iso.disk_format = "iso".into();
    let big = {
        // A qcow2 image of 5 GiB virtual size for a 1 GB flavor.
        let p = h._dir.path().join("big.qcow2");
        disk::create_blank(&p, 5 * disk::GIB).await.unwrap();
        let mut i = h.image(5, &std::fs::read(&p).unwrap(), &[]);
        i.disk_format = "qcow2".into();
        i
    };
    let mut zero_ram = flavor(1);
    zero_ram.ram_mb = 0;

    let cases: Vec<(Flavor, &Image, &str)> = vec![
        (flavor(1), &corrupt, "checksum (md5) mismatch"),
        (flavor(1), &missing, "has no data"),
        (flavor(1), &bad_bus, "hw_disk_bus"),
        (flavor(1), &iso, "disk_format \"iso\""),
        (flavor(1), &big, "smaller than image"),
        (zero_ram, &good, "libvirt: defining the domain"),
    ];
    for (i, (f, image, cause)) in cases.into_iter().enumerate() {
        let n = 20 + i as u128;
        let e = h.spawn(n, f, image).await.unwrap_err();
        assert!(e.to_string().contains(cause), "case {i}: {e}");
        let id = h.id(n);
        assert_eq!(h.driver.get_info("h", id), None, "case {i}");
        assert!(!h.driver.instance_dir(id).exists(), "case {i}");
    }
    assert!(h.guests().is_empty());
    assert!(
        !h.bases().contains(&imagecache::base_name(corrupt.id)),
        "a corrupt download is not cached"
    );
}

#[tokio::test]
async fn the_cache_manager_removes_unused_bases_only_after_their_age() {
    let h = host();
    let (kept, dropped) = (h.image(1, &mib(1), &[]), h.image(2, &mib(1), &[]));
    h.spawn(10, flavor(1), &kept).await.unwrap();
    h.spawn(11, flavor(1), &dropped).await.unwrap();
    h.driver.destroy("h", h.id(11)).await.unwrap();

    // Younger than the minimum age: kept.
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path());
    o.instances_path = h.driver.opts.instances_path.clone();
    o.remove_unused_min_age = Duration::from_secs(3600);
    let patient = LibvirtDriver::open(o, Arc::new(ImageStoreDir(h.images.clone()))).unwrap();
    assert!(patient.manage_image_cache().await.unwrap().is_empty());
    assert_eq!(h.bases().len(), 2);

    // Old enough (minimum age 0): the unused one goes, the used one stays.
    assert_eq!(
        h.driver.manage_image_cache().await.unwrap(),
        [imagecache::base_name(dropped.id)]
    );
    assert_eq!(h.bases(), [imagecache::base_name(kept.id)]);
    assert_eq!(h.driver.get_info("h", h.id(10)), Some(PowerState::Running));
}

#[tokio::test]
async fn only_novalogs_domains_are_listed_and_the_host_is_measured() {
    let h = host();
    // test:///default starts with a domain named "test": not ours.
    let test = Domain::lookup_by_name(&h.driver.conn, "test").unwrap();
    let test: Uuid = test.get_uuid_string().unwrap().parse().unwrap();
    assert!(!h.driver.guests("h").contains(&test));
    let image = h.image(1, &mib(1), &[]);
    h.spawn(10, flavor(1), &image).await.unwrap();
    assert_eq!(h.guests(), [10]);
    let r = h.driver.available_resource("h").unwrap();
    assert!(r.vcpus > 0 && r.memory_mb > 0 && r.disk_gb > 0, "{r:?}");
}

#[test]
fn a_hypervisor_that_is_not_there_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path());
    o.connection_uri = format!(
        "qemu+unix:///system?socket={}",
        dir.path().join("no-libvirtd.sock").display()
    );
    let Err(e) = LibvirtDriver::open(o, Arc::new(ImageStoreDir(dir.path().into()))) else {
        panic!("connected to nothing");
    };
    assert!(e.to_string().contains("is libvirtd running?"), "{e}");
}

/// Cold migration between two hosts on one machine, confirmed: the disk
/// is copied into the destination's instance directory, re-pointed at its
/// own base file and grown to the new flavor; the domain runs from there;
/// confirming removes the source's `_resize` files.
#[tokio::test]
async fn a_cold_migration_copies_grows_and_confirms() {
    let (a, b) = pair();
    let image = a.image(1, &mib(1), &[]);
    a.spawn(10, flavor(1), &image).await.unwrap();
    let id = a.id(10);
    let mut cmd = a.migration(10, "h2", flavor(2), &image);

    a.driver.migrate_disk_and_power_off(&cmd).await.unwrap();
    assert_eq!(a.driver.get_info("h", id), Some(PowerState::Shutdown));
    assert!(a.driver.resize_dir(id).join("disk").exists());
    assert!(!a.driver.instance_dir(id).exists());
    let dest_disk = b.instance_dir(id).join("disk");
    assert!(dest_disk.exists() && b.instance_dir(id).join("disk.eph0").exists());

    cmd.host = "h2".into();
    assert_eq!(b.finish_migration(&cmd).await, Ok(PowerState::Running));
    assert_eq!(virtual_size(&dest_disk).await, 2 * disk::GIB);
    assert_eq!(
        imagecache::qcow2_backing_file(&dest_disk).unwrap(),
        Some(b.image_cache().base_path(image.id)),
        "the destination's own base file"
    );
    let xml = b.domain(id).unwrap().get_xml_desc(0).unwrap();
    assert!(xml.contains(&*dest_disk.to_string_lossy()), "{xml}");
    assert_eq!(a.ours(&b), [10]);

    cmd.host = "h".into();
    a.driver.confirm_migration(&cmd).await.unwrap();
    assert!(!a.driver.resize_dir(id).exists());
    assert!(a.guests().is_empty(), "nothing of it left on the source");
    assert_eq!(b.get_info("h2", id), Some(PowerState::Running));
    b.destroy("h2", id).await.unwrap();
    assert!(a.ours(&b).is_empty());
}

/// Reverted: the destination's domain and files go, the source's
/// directory comes back and the guest runs there with its old flavor.
#[tokio::test]
async fn a_reverted_migration_restores_the_source() {
    let (a, b) = pair();
    let image = a.image(1, &mib(1), &[]);
    a.spawn(10, flavor(1), &image).await.unwrap();
    let id = a.id(10);
    let mut cmd = a.migration(10, "h2", flavor(2), &image);
    a.driver.migrate_disk_and_power_off(&cmd).await.unwrap();
    cmd.host = "h2".into();
    b.finish_migration(&cmd).await.unwrap();

    b.revert_migration(&cmd).await.unwrap();
    assert!(!b.instance_dir(id).exists());
    assert!(a.ours(&b).is_empty());

    cmd.host = "h".into();
    cmd.flavor = flavor(1);
    assert_eq!(
        a.driver.finish_revert_migration(&cmd).await,
        Ok(PowerState::Running)
    );
    let disk = a.driver.instance_dir(id).join("disk");
    assert_eq!(virtual_size(&disk).await, disk::GIB);
    assert!(!a.driver.resize_dir(id).exists());
    assert!(a.xml(10).contains(&*disk.to_string_lossy()));
    assert_eq!(a.guests(), [10]);
}

/// A resize on one host: the copy is made beside the `_resize` files.
#[tokio::test]
async fn a_same_host_resize_grows_the_disk_and_confirms() {
    let h = host();
    let image = h.image(1, &mib(1), &[]);
    h.spawn(10, flavor(1), &image).await.unwrap();
    let id = h.id(10);
    let cmd = h.migration(10, "h", flavor(3), &image);
    h.driver.migrate_disk_and_power_off(&cmd).await.unwrap();
    assert!(h.driver.resize_dir(id).exists() && h.driver.instance_dir(id).exists());
    assert_eq!(
        h.driver.finish_migration(&cmd).await,
        Ok(PowerState::Running)
    );
    let disk = h.driver.instance_dir(id).join("disk");
    assert_eq!(virtual_size(&disk).await, 3 * disk::GIB);
    h.driver.confirm_migration(&cmd).await.unwrap();
    assert!(!h.driver.resize_dir(id).exists());
    assert_eq!(h.guests(), [10]);
    assert_eq!(h.driver.get_info("h", id), Some(PowerState::Running));
}

/// What a migration cannot do leaves the guest as it was: a smaller
/// root disk (Nova's "Unable to resize disk down"), and a destination
/// the copy cannot reach.
#[tokio::test]
async fn a_failed_migration_leaves_the_guest_running() {
    let h = host();
    let image = h.image(1, &mib(1), &[]);
    h.spawn(10, flavor(2), &image).await.unwrap();
    let id = h.id(10);

    let down = h.migration(10, "h", flavor(1), &image);
    let e = h
        .driver
        .migrate_disk_and_power_off(&down)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("Unable to resize disk down"), "{e}");
    assert_eq!(h.driver.get_info("h", id), Some(PowerState::Running));

    // No ssh route to this host: the copy fails, the guest runs again.
    let away = h.migration(10, "no-such-host.invalid", flavor(2), &image);
    let e = h
        .driver
        .migrate_disk_and_power_off(&away)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("ssh"), "{e}");
    assert_eq!(h.driver.get_info("h", id), Some(PowerState::Running));
    assert!(h.driver.instance_dir(id).join("disk").exists());
    assert!(!h.driver.resize_dir(id).exists());
    // And the revert a saga sends to compensate changes nothing.
    assert_eq!(
        h.driver.finish_revert_migration(&away).await,
        Ok(PowerState::Running)
    );
    assert_eq!(h.guests(), [10]);
}

/// libvirt's test driver has no migration: the error names libvirt's
/// refusal and the guest still runs on the source, as the live-migration
/// saga's compensation expects.
#[tokio::test]
async fn a_refused_live_migration_leaves_the_guest_on_the_source() {
    let h = host();
    let image = h.image(1, &mib(1), &[]);
    h.spawn(10, flavor(1), &image).await.unwrap();
    let id = h.id(10);
    let cmd = h.migration(10, "h2", flavor(1), &image);
    let e = h.driver.live_migration(&cmd).await.unwrap_err();
    assert!(
        e.to_string()
            .contains("libvirt: live migration to test:///default"),
        "{e}"
    );
    assert_eq!(h.driver.get_info("h", id), Some(PowerState::Running));
    assert_eq!(h.guests(), [10]);
}

/// init_host's cleanup: the disks of a guest whose domain is gone (its
/// server deleted while the agent was down) count as a guest, and
/// destroying it removes them; another host's domain on the same
/// hypervisor is not this host's.
#[tokio::test]
async fn leftover_disks_are_guests_and_other_hosts_domains_are_not() {
    let (a, b) = pair();
    let image = a.image(1, &mib(1), &[]);
    let stray = a.id(50);
    std::fs::create_dir_all(a.driver.instance_dir(stray)).unwrap();
    std::fs::write(a.driver.instance_dir(stray).join("disk"), b"x").unwrap();
    assert_eq!(a.guests(), [50]);
    a.driver.destroy("h", stray).await.unwrap();
    assert!(a.guests().is_empty());

    let cmd = SpawnInstance {
        instance_id: a.id(11),
        host: "h2".into(),
        attempt: 1,
        project_id: "p1".into(),
        name: "server-11".into(),
        flavor: flavor(1),
        image,
    };
    b.spawn("h2", &cmd).await.unwrap();
    assert!(a.guests().is_empty(), "h2's domain is not h's");
    assert_eq!(a.ours(&b), [11]);
    // Destroying it on the wrong host leaves it alone.
    a.driver.destroy("h", a.id(11)).await.unwrap();
    assert_eq!(b.get_info("h2", a.id(11)), Some(PowerState::Running));
}

#[test]
fn domains_are_told_apart_by_their_disks() {
    let xml = "<disk><source file='/srv/a/instances/x/disk'/></disk>";
    assert!(xml::disks_under(xml, Path::new("/srv/a/instances")));
    assert!(xml::disks_under(xml, Path::new("/srv/a/instances/")));
    assert!(!xml::disks_under(xml, Path::new("/srv/a/inst")));
    assert!(!xml::disks_under(xml, Path::new("/srv/b/instances")));
}
