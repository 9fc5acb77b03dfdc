//! The libvirt driver (nova/virt/libvirt/driver.py) through the `virt`
//! crate: one real host per agent, guests as libvirt domains whose disks
//! are qcow2 overlays on the `_base` image cache.
//!
//! # Layout
//! - [`xml`]: the domain XML from the flavor and the image (pure).
//! - [`imagecache`]: base files fetched once and checked; which ones the
//!   cache manager removes.
//! - [`disk`]: `qemu-img` overlays, resizes and blank disks.
//!
//! Each guest lives in `<instances_path>/<instance id>/`: `disk` (the
//! overlay), `disk.eph0`, `disk.swap`, `kernel`, `ramdisk` and
//! `console.log`. libvirt's `test:///default` hypervisor accepts the same
//! XML and calls without opening any disk, so the whole driver runs in
//! tests without a daemon.

pub mod disk;
pub mod imagecache;
pub mod xml;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use novalog_schemas::events::SpawnInstance;
use novalog_schemas::migration::MigrationCommand;
use novalog_schemas::values::{Flavor, Image};
use novalog_schemas::{PowerState, Resources};
use uuid::Uuid;
use virt::connect::Connect;
use virt::domain::Domain;

use crate::driver::{DriverError, VirtDriver};
use imagecache::{Digests, ImageCache, ImageSource, ImageStoreDir};
use xml::{GuestFiles, GuestSpec, HostSettings, ImageSettings};

/// What the driver is configured with (nova.conf `[libvirt]`,
/// `instances_path`, `[image_cache]`).
#[derive(Debug, Clone)]
pub struct LibvirtOptions {
    pub connection_uri: String,
    pub host: HostSettings,
    pub instances_path: PathBuf,
    /// `[image_cache] subdirectory_name`.
    pub base_dir_name: String,
    pub wait_soft_reboot: Duration,
    pub shutdown_timeout: Duration,
    /// `[image_cache] remove_unused_base_images`.
    pub remove_unused_base_images: bool,
    pub remove_unused_min_age: Duration,
    /// Where the console proxy reaches guests' displays
    /// (`[vnc] server_proxyclient_address`).
    pub vnc_proxyclient_address: String,
}

impl LibvirtOptions {
    pub fn from_config(cfg: &novalog_runtime::Config) -> LibvirtOptions {
        let l = &cfg.libvirt;
        LibvirtOptions {
            connection_uri: l.connection_uri.clone(),
            host: HostSettings {
                virt_type: l.virt_type.clone(),
                cpu_mode: l.cpu_mode.clone(),
                cpu_models: l.cpu_models.clone(),
                vnc_listen: cfg.vnc.enabled.then(|| cfg.vnc.server_listen.clone()),
            },
            vnc_proxyclient_address: cfg.vnc.server_proxyclient_address.clone(),
            instances_path: cfg.instances_path(),
            base_dir_name: cfg.image_cache.subdirectory_name.clone(),
            wait_soft_reboot: Duration::from_secs(l.wait_soft_reboot_seconds),
            shutdown_timeout: Duration::from_secs(cfg.shutdown_timeout),
            remove_unused_base_images: cfg.image_cache.remove_unused_base_images,
            remove_unused_min_age: Duration::from_secs(
                cfg.image_cache.remove_unused_original_minimum_age_seconds,
            ),
        }
    }
}

/// A libvirt hypervisor on this machine.
pub struct LibvirtDriver {
    conn: Connect,
    opts: LibvirtOptions,
    cache: ImageCache,
    /// Where snapshots are stored (the image service's store); `None`:
    /// this driver takes none.
    store: Option<crate::snapshot::ImageStore>,
}

/// Nova's `MAX_CONSOLE_BYTES`: the console output is the log's last
/// 100 KiB.
const MAX_CONSOLE_BYTES: u64 = 100 * 1024;

fn failed(context: impl std::fmt::Display) -> impl FnOnce(virt::error::Error) -> DriverError {
    move |e| DriverError::Failed(format!("libvirt: {context}: {}", e.message()))
}

fn io_failed(context: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> DriverError {
    move |e| DriverError::Failed(format!("{context}: {e}"))
}

fn other(e: impl std::fmt::Display) -> DriverError {
    DriverError::Failed(e.to_string())
}

/// libvirt's `virDomainState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainState {
    NoState,
    Running,
    Blocked,
    Paused,
    Shutdown,
    Shutoff,
    Crashed,
    PMSuspended,
}

impl DomainState {
    /// A state this libvirt does not know of is taken for none (Nova's
    /// NOSTATE).
    pub fn from_raw(raw: virt::sys::virDomainState) -> DomainState {
        use virt::sys;
        match raw {
            sys::VIR_DOMAIN_RUNNING => DomainState::Running,
            sys::VIR_DOMAIN_BLOCKED => DomainState::Blocked,
            sys::VIR_DOMAIN_PAUSED => DomainState::Paused,
            sys::VIR_DOMAIN_SHUTDOWN => DomainState::Shutdown,
            sys::VIR_DOMAIN_SHUTOFF => DomainState::Shutoff,
            sys::VIR_DOMAIN_CRASHED => DomainState::Crashed,
            sys::VIR_DOMAIN_PMSUSPENDED => DomainState::PMSuspended,
            _ => DomainState::NoState,
        }
    }
}

/// libvirt's domain state as Nova's power_state
/// (nova/virt/libvirt/guest.py `LIBVIRT_POWER_STATE`). A shut-off domain
/// with a managed save image is a suspended guest (it resumes from it).
pub fn power_state(state: DomainState, managed_save: bool) -> PowerState {
    match state {
        DomainState::NoState => PowerState::NoState,
        DomainState::Running | DomainState::Blocked => PowerState::Running,
        DomainState::Paused => PowerState::Paused,
        DomainState::Shutdown => PowerState::Shutdown,
        DomainState::Shutoff if managed_save => PowerState::Suspended,
        DomainState::Shutoff => PowerState::Shutdown,
        DomainState::Crashed => PowerState::Crashed,
        DomainState::PMSuspended => PowerState::Suspended,
    }
}

impl LibvirtDriver {
    /// Connects to `opts.connection_uri`; image bytes come from `source`.
    pub fn open(
        opts: LibvirtOptions,
        source: Arc<dyn ImageSource>,
    ) -> Result<LibvirtDriver, DriverError> {
        // libvirt's default handler prints every error to stderr; ours are
        // returned and reported instead.
        virt::error::clear_error_callback();
        let conn = Connect::open(Some(&opts.connection_uri)).map_err(|e| {
            DriverError::Failed(format!(
                "connecting to libvirt at {}: {} (is libvirtd running?)",
                opts.connection_uri,
                e.message()
            ))
        })?;
        let cache = ImageCache::new(opts.instances_path.join(&opts.base_dir_name), source);
        Ok(LibvirtDriver {
            conn,
            opts,
            cache,
            store: None,
        })
    }

    /// Snapshots go to the image service's store at `dir`.
    pub fn with_image_store(mut self, dir: PathBuf) -> LibvirtDriver {
        self.store = Some(crate::snapshot::ImageStore(dir));
        self
    }

    /// The driver `cfg` names, reading images from the image service's
    /// store under `data_dir`.
    pub fn from_config(cfg: &novalog_runtime::Config) -> Result<LibvirtDriver, DriverError> {
        let source = Arc::new(ImageStoreDir(cfg.data_dir.join("images")));
        Ok(Self::open(LibvirtOptions::from_config(cfg), source)?
            .with_image_store(cfg.data_dir.join("images")))
    }

    pub fn image_cache(&self) -> &ImageCache {
        &self.cache
    }

    /// The directory of one guest.
    pub fn instance_dir(&self, id: Uuid) -> PathBuf {
        self.opts.instances_path.join(id.to_string())
    }

    fn lookup(&self, id: Uuid) -> Result<Option<Domain>, DriverError> {
        match Domain::lookup_by_uuid_string(&self.conn, &id.to_string()) {
            Ok(d) => Ok(Some(d)),
            Err(e) if e.code() == virt::error::ErrorNumber::NoDomain => Ok(None),
            Err(e) => Err(failed(format!("looking up {id}"))(e)),
        }
    }

    fn domain(&self, id: Uuid) -> Result<Domain, DriverError> {
        self.lookup(id)?.ok_or(DriverError::InstanceNotFound(id))
    }

    fn state_of(dom: &Domain) -> Result<(DomainState, PowerState), DriverError> {
        let (state, _) = dom
            .get_state()
            .map_err(failed("reading the domain state"))?;
        let state = DomainState::from_raw(state);
        let saved = state == DomainState::Shutoff && dom.has_managed_save(0).unwrap_or(false);
        Ok((state, power_state(state, saved)))
    }

    fn power(dom: &Domain) -> Result<PowerState, DriverError> {
        Self::state_of(dom).map(|(_, p)| p)
    }

    /// Waits up to `timeout` for the domain to be shut off.
    async fn wait_shutoff(dom: &Domain, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if matches!(Self::state_of(dom), Ok((DomainState::Shutoff, _))) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Fetches the image into the cache and makes the guest's disks in
    /// `dir` from it and the flavor.
    async fn make_disks(
        &self,
        dir: &Path,
        flavor: &Flavor,
        image: &Image,
        settings: &ImageSettings,
    ) -> Result<GuestFiles, DriverError> {
        let format = match image.disk_format.as_str() {
            "qcow2" | "raw" => image.disk_format.as_str(),
            other => {
                return Err(DriverError::Failed(format!(
                    "image {}: disk_format {other:?} is not supported by the libvirt driver (qcow2, raw)",
                    image.id
                )));
            }
        };
        if !matches!(image.status.as_str(), "active" | "deactivated") {
            return Err(DriverError::Failed(format!(
                "image {} has no data (status {})",
                image.id, image.status
            )));
        }
        let digests = Digests {
            md5: image.checksum.clone(),
            sha512: image.os_hash_value.clone(),
        };
        let base = self.cache.fetch(image.id, &digests).await.map_err(other)?;
        let info = disk::info(&base, format).await.map_err(|e| {
            DriverError::Failed(format!(
                "image {} is not a valid {format} image: {e}",
                image.id
            ))
        })?;
        let root_bytes = flavor.disk_gb.saturating_mul(disk::GIB);
        if flavor.disk_gb > 0 && root_bytes < info.virtual_size {
            return Err(DriverError::Failed(format!(
                "flavor {}'s disk ({} GB) is smaller than image {}'s virtual size ({} bytes)",
                flavor.name, flavor.disk_gb, image.id, info.virtual_size
            )));
        }
        let root = dir.join("disk");
        disk::create_overlay(&base, format, &root)
            .await
            .map_err(other)?;
        if flavor.disk_gb > 0 && root_bytes > info.virtual_size {
            disk::resize(&root, root_bytes).await.map_err(other)?;
        }
        let mut files = GuestFiles {
            root,
            ephemeral: None,
            swap: None,
            kernel: None,
            ramdisk: None,
            console_log: dir.join("console.log"),
        };
        if flavor.ephemeral_gb > 0 {
            let p = dir.join("disk.eph0");
            disk::create_blank(&p, flavor.ephemeral_gb.saturating_mul(disk::GIB))
                .await
                .map_err(other)?;
            files.ephemeral = Some(p);
        }
        if flavor.swap_mb > 0 {
            let p = dir.join("disk.swap");
            disk::create_blank(&p, flavor.swap_mb.saturating_mul(disk::MIB))
                .await
                .map_err(other)?;
            files.swap = Some(p);
        }
        // Direct kernel boot: the kernel and ramdisk images are cached like
        // any image and copied into the guest's directory, as Nova does.
        for (id, name) in [
            (settings.kernel_id, "kernel"),
            (settings.ramdisk_id, "ramdisk"),
        ] {
            let Some(id) = id else { continue };
            let cached = self
                .cache
                .fetch(id, &Digests::default())
                .await
                .map_err(|e| DriverError::Failed(format!("{name}: {e}")))?;
            let p = dir.join(name);
            tokio::fs::copy(&cached, &p)
                .await
                .map_err(io_failed(format!("copying the {name}")))?;
            if name == "kernel" {
                files.kernel = Some(p);
            } else {
                files.ramdisk = Some(p);
            }
        }
        tokio::fs::File::create(&files.console_log)
            .await
            .map_err(io_failed("creating the console log"))?;
        Ok(files)
    }

    /// Disks, XML, define and (if `start`) start: the guest as `spawn` and
    /// `rebuild` make it.
    async fn build(
        &self,
        id: Uuid,
        name: &str,
        project_id: &str,
        flavor: &Flavor,
        image: &Image,
        start: bool,
    ) -> Result<Domain, DriverError> {
        let settings = ImageSettings::from_image(image).map_err(other)?;
        let dir = self.instance_dir(id);
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(io_failed(format!("creating {}", dir.display())))?;
        let files = self.make_disks(&dir, flavor, image, &settings).await?;
        let spec = GuestSpec {
            instance_id: id,
            name,
            project_id,
            flavor,
            image,
        };
        let xml = xml::domain_xml(&spec, &settings, &self.opts.host, &files);
        let dom = Domain::define_xml(&self.conn, &xml).map_err(failed("defining the domain"))?;
        if start {
            dom.create().map_err(failed("starting the domain"))?;
        }
        Ok(dom)
    }

    /// Removes whatever of the guest exists: the domain (stopped first,
    /// its managed save too) and its directory. The `_base` files stay.
    fn remove(&self, id: Uuid) -> Result<(), DriverError> {
        if let Some(dom) = self.lookup(id)? {
            if dom.is_active().unwrap_or(false) {
                dom.destroy().map_err(failed("stopping the domain"))?;
            }
            dom.undefine_flags(virt::sys::VIR_DOMAIN_UNDEFINE_MANAGED_SAVE)
                .map_err(failed("undefining the domain"))?;
        }
        match std::fs::remove_dir_all(self.instance_dir(id)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_failed("removing the instance directory")(e)),
        }
    }

    /// What the host has (Nova's `get_available_resource`): its CPUs and
    /// memory from libvirt, and the size of the file system holding
    /// `instances_path`.
    pub fn host_resources(&self) -> Result<Resources, DriverError> {
        let node = self
            .conn
            .get_node_info()
            .map_err(failed("reading the host's node info"))?;
        std::fs::create_dir_all(&self.opts.instances_path)
            .map_err(io_failed("creating instances_path"))?;
        let fs = rustix::fs::statvfs(&self.opts.instances_path)
            .map_err(|e| DriverError::Failed(format!("statvfs of instances_path: {e}")))?;
        Ok(Resources {
            vcpus: node.cpus,
            memory_mb: node.memory / 1024,
            disk_gb: fs.f_blocks.saturating_mul(fs.f_frsize) / disk::GIB,
        })
    }

    /// One run of the image cache manager: base files no guest's disk is
    /// an overlay on, older than the configured age, are removed. Returns
    /// the names removed.
    pub fn remove_unused_bases(&self) -> Result<Vec<String>, DriverError> {
        if !self.opts.remove_unused_base_images {
            return Ok(Vec::new());
        }
        // Taken before the guests are read: a base fetched meanwhile is
        // younger than any sane minimum age and not listed anyway.
        let bases = self
            .cache
            .bases()
            .map_err(io_failed("listing the image cache"))?;
        let mut used = BTreeSet::new();
        let entries = match std::fs::read_dir(&self.opts.instances_path) {
            Ok(e) => e.flatten().collect::<Vec<_>>(),
            Err(_) => Vec::new(),
        };
        for e in entries {
            if e.file_name().to_string_lossy() == self.opts.base_dir_name {
                continue;
            }
            for d in ["disk", "disk.eph0", "disk.swap"] {
                let backing = imagecache::qcow2_backing_file(&e.path().join(d));
                match backing {
                    Ok(Some(b)) => {
                        if let Some(n) = b.file_name() {
                            used.insert(n.to_string_lossy().into_owned());
                        }
                    }
                    Ok(None) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    // A disk that cannot be read might use any base:
                    // remove none this time.
                    Err(e) => return Err(io_failed("reading an instance disk")(e)),
                }
            }
        }
        let remove = imagecache::unused_bases(&bases, &used, self.opts.remove_unused_min_age);
        for name in &remove {
            tracing::info!(base = %name, "removing an unused base image");
            std::fs::remove_file(self.cache.dir().join(name))
                .map_err(io_failed(format!("removing base file {name}")))?;
        }
        Ok(remove)
    }

    fn unsupported(step: &str) -> DriverError {
        DriverError::Failed(format!("{step} is not supported by the libvirt driver yet"))
    }
}

#[async_trait]
impl VirtDriver for LibvirtDriver {
    fn name(&self) -> &'static str {
        "libvirt"
    }

    async fn spawn(&self, _host: &str, inst: &SpawnInstance) -> Result<PowerState, DriverError> {
        let id = inst.instance_id;
        if self.lookup(id)?.is_some() {
            return Err(DriverError::InstanceExists(id));
        }
        // A directory without a domain is a spawn that died half-way.
        let _ = std::fs::remove_dir_all(self.instance_dir(id));
        let built = self
            .build(
                id,
                &inst.name,
                &inst.project_id,
                &inst.flavor,
                &inst.image,
                true,
            )
            .await;
        match built {
            Ok(dom) => Self::power(&dom),
            Err(e) => {
                if let Err(cleanup) = self.remove(id) {
                    tracing::error!(instance = %id, error = %cleanup, "cleaning up a failed spawn");
                }
                Err(e)
            }
        }
    }

    async fn destroy(&self, _host: &str, instance_id: Uuid) -> Result<(), DriverError> {
        self.remove(instance_id)
    }

    async fn reboot(
        &self,
        _host: &str,
        instance_id: Uuid,
        hard: bool,
    ) -> Result<PowerState, DriverError> {
        let dom = self.domain(instance_id)?;
        let (state, _) = Self::state_of(&dom)?;
        // Nova's soft reboot: ask the guest to shut down, start it again
        // once it has; a guest that does not listen is rebooted hard.
        let mut soft_done = false;
        if !hard && state == DomainState::Running {
            dom.shutdown().map_err(failed("shutting the guest down"))?;
            if Self::wait_shutoff(&dom, self.opts.wait_soft_reboot).await {
                dom.create().map_err(failed("starting the domain"))?;
                soft_done = true;
            } else {
                tracing::warn!(instance = %instance_id, "soft reboot timed out; rebooting hard");
            }
        }
        if !soft_done {
            if dom.is_active().unwrap_or(false) {
                dom.destroy().map_err(failed("stopping the domain"))?;
            }
            // A hard reboot starts afresh, not from a saved memory image.
            if dom.has_managed_save(0).unwrap_or(false) {
                dom.managed_save_remove(0)
                    .map_err(failed("removing the saved memory image"))?;
            }
            dom.create().map_err(failed("starting the domain"))?;
        }
        Self::power(&dom)
    }

    async fn power_off(&self, _host: &str, instance_id: Uuid) -> Result<PowerState, DriverError> {
        let dom = self.domain(instance_id)?;
        let (state, _) = Self::state_of(&dom)?;
        if state == DomainState::Running && !self.opts.shutdown_timeout.is_zero() {
            // A clean shutdown first; hard when the guest does not comply.
            if dom.shutdown().is_ok() && Self::wait_shutoff(&dom, self.opts.shutdown_timeout).await
            {
                return Self::power(&dom);
            }
        }
        if dom.is_active().unwrap_or(false) {
            dom.destroy().map_err(failed("powering the guest off"))?;
        }
        Self::power(&dom)
    }

    /// `qemu-img convert` of the guest's root disk (its overlay and the
    /// base under it) into one image of the base's format, with the guest
    /// paused meanwhile so the disk holds still; then stored.
    async fn snapshot(
        &self,
        _host: &str,
        instance_id: Uuid,
        image_id: Uuid,
    ) -> Result<crate::snapshot::Stored, DriverError> {
        let store = self.store.clone().ok_or_else(|| {
            DriverError::Failed("no image store to keep snapshots in is configured".into())
        })?;
        let dom = self.domain(instance_id)?;
        let root = self.instance_dir(instance_id).join("disk");
        let info = disk::info(&root, "qcow2").await.map_err(other)?;
        let out_format = info.backing_format.unwrap_or_else(|| "qcow2".into());
        std::fs::create_dir_all(store.dir()).map_err(io_failed("creating the image store"))?;
        let paused = Self::state_of(&dom)?.0 == DomainState::Running && dom.suspend().is_ok();
        let converted = disk::convert(&root, "qcow2", &out_format, &store.staging(image_id)).await;
        if paused {
            dom.resume()
                .map_err(failed("resuming the guest after its snapshot"))?;
        }
        if let Err(e) = converted {
            let _ = std::fs::remove_file(store.staging(image_id));
            return Err(other(e));
        }
        tokio::task::spawn_blocking(move || store.commit(image_id))
            .await
            .map_err(other)?
    }

    /// The serial console's log file (the domain XML's `<serial
    /// type="file">`), its last [`MAX_CONSOLE_BYTES`]; empty before the
    /// guest wrote any.
    async fn get_console_output(
        &self,
        _host: &str,
        instance_id: Uuid,
    ) -> Result<Vec<u8>, DriverError> {
        self.domain(instance_id)?;
        let path = self.instance_dir(instance_id).join("console.log");
        tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
            use std::io::{Read, Seek, SeekFrom};
            let mut f = match std::fs::File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(e),
            };
            let len = f.metadata()?.len();
            f.seek(SeekFrom::Start(len.saturating_sub(MAX_CONSOLE_BYTES)))?;
            let mut out = Vec::new();
            f.read_to_end(&mut out)?;
            Ok(out)
        })
        .await
        .map_err(other)?
        .map_err(io_failed("reading the console log"))
    }

    /// An NMI through QEMU's monitor (`inject-nmi`); a hypervisor without
    /// one (libvirt's test driver) refuses.
    async fn trigger_crash_dump(&self, _host: &str, instance_id: Uuid) -> Result<(), DriverError> {
        let dom = self.domain(instance_id)?;
        if !dom.is_active().unwrap_or(false) {
            return Err(DriverError::Failed(format!(
                "Instance {instance_id} is not running."
            )));
        }
        dom.qemu_monitor_command(r#"{"execute":"inject-nmi"}"#, 0)
            .map(drop)
            .map_err(|e| {
                DriverError::Failed(format!(
                    "Triggering a crash dump is not supported by this hypervisor: {}",
                    e.message()
                ))
            })
    }

    async fn power_on(&self, _host: &str, instance_id: Uuid) -> Result<PowerState, DriverError> {
        let dom = self.domain(instance_id)?;
        if !dom.is_active().unwrap_or(false) {
            dom.create().map_err(failed("starting the domain"))?;
        }
        Self::power(&dom)
    }

    async fn pause(&self, _host: &str, instance_id: Uuid) -> Result<PowerState, DriverError> {
        let dom = self.domain(instance_id)?;
        dom.suspend().map_err(failed("pausing the guest"))?;
        Self::power(&dom)
    }

    async fn unpause(&self, _host: &str, instance_id: Uuid) -> Result<PowerState, DriverError> {
        let dom = self.domain(instance_id)?;
        dom.resume().map_err(failed("unpausing the guest"))?;
        Self::power(&dom)
    }

    async fn suspend(&self, _host: &str, instance_id: Uuid) -> Result<PowerState, DriverError> {
        let dom = self.domain(instance_id)?;
        dom.managed_save(0)
            .map_err(failed("saving the guest's memory"))?;
        Self::power(&dom)
    }

    async fn resume(&self, _host: &str, instance_id: Uuid) -> Result<PowerState, DriverError> {
        let dom = self.domain(instance_id)?;
        if !dom.has_managed_save(0).unwrap_or(false) {
            return Err(DriverError::Failed(format!(
                "instance {instance_id} has no saved memory image to resume from"
            )));
        }
        dom.create()
            .map_err(failed("restoring the guest's memory"))?;
        Self::power(&dom)
    }

    async fn console_endpoint(
        &self,
        _host: &str,
        instance_id: Uuid,
    ) -> Option<novalog_schemas::console::ConsoleEndpoint> {
        self.opts.host.vnc_listen.as_ref()?;
        let dom = self.lookup(instance_id).ok()??;
        let live = dom.get_xml_desc(0).ok()?;
        let port = xml::vnc_port(&live)?;
        Some(novalog_schemas::console::ConsoleEndpoint {
            address: self.opts.vnc_proxyclient_address.clone(),
            port,
        })
    }

    fn get_info(&self, _host: &str, instance_id: Uuid) -> Option<PowerState> {
        let dom = self.lookup(instance_id).ok()??;
        Self::power(&dom).ok()
    }

    fn guests(&self, _host: &str) -> Vec<Uuid> {
        match self.conn.list_all_domains(0) {
            Ok(doms) => doms
                .iter()
                .filter_map(|d| d.get_name().ok())
                .filter_map(|n| xml::instance_of(&n))
                .collect(),
            Err(e) => {
                tracing::error!(error = %e.message(), "listing libvirt domains");
                Vec::new()
            }
        }
    }

    fn available_resource(&self, _host: &str) -> Option<Resources> {
        match self.host_resources() {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::error!(error = %e, "reading the host's resources");
                None
            }
        }
    }

    async fn manage_image_cache(&self) -> Result<Vec<String>, DriverError> {
        self.remove_unused_bases()
    }

    async fn migrate_disk_and_power_off(&self, _cmd: &MigrationCommand) -> Result<(), DriverError> {
        Err(Self::unsupported("cold migration and resize"))
    }

    async fn finish_migration(&self, _cmd: &MigrationCommand) -> Result<PowerState, DriverError> {
        Err(Self::unsupported("cold migration and resize"))
    }

    async fn confirm_migration(&self, _cmd: &MigrationCommand) -> Result<(), DriverError> {
        Err(Self::unsupported("cold migration and resize"))
    }

    async fn revert_migration(&self, _cmd: &MigrationCommand) -> Result<(), DriverError> {
        Err(Self::unsupported("cold migration and resize"))
    }

    async fn finish_revert_migration(
        &self,
        _cmd: &MigrationCommand,
    ) -> Result<PowerState, DriverError> {
        Err(Self::unsupported("cold migration and resize"))
    }

    async fn live_migration(&self, _cmd: &MigrationCommand) -> Result<(), DriverError> {
        Err(Self::unsupported("live migration"))
    }

    /// A new root disk from `cmd.image` under the same domain (same uuid
    /// and name): the domain is stopped, its disks are made anew and it is
    /// redefined with the new image's properties.
    async fn rebuild(&self, cmd: &MigrationCommand) -> Result<PowerState, DriverError> {
        let id = cmd.instance_id;
        let dom = self.domain(id)?;
        if dom.is_active().unwrap_or(false) {
            dom.destroy().map_err(failed("stopping the domain"))?;
        }
        if dom.has_managed_save(0).unwrap_or(false) {
            dom.managed_save_remove(0)
                .map_err(failed("removing the saved memory image"))?;
        }
        let dir = self.instance_dir(id);
        for f in ["disk", "disk.eph0", "disk.swap", "kernel", "ramdisk"] {
            match tokio::fs::remove_file(dir.join(f)).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_failed(format!("removing the old {f}"))(e)),
            }
        }
        let dom = self
            .build(
                id,
                &cmd.name,
                &cmd.project_id,
                &cmd.flavor,
                &cmd.image,
                cmd.power_on,
            )
            .await?;
        Self::power(&dom)
    }
}

#[cfg(test)]
mod tests;
