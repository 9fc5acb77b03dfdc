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

use std::collections::{BTreeMap, BTreeSet};
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
use imagecache::{
    Digests, HttpImageSource, ImageCache, ImageCredential, ImageSource, ImageStoreDir,
};
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
    /// This host's name (`[compute] host`): a migration to it stays on
    /// this machine.
    pub host_name: String,
    /// `[libvirt] remote_filesystem_transport`: `ssh` or `rsync`.
    pub remote_transport: String,
    /// `[libvirt] host_instances_paths`: hosts on this machine.
    pub host_instances_paths: BTreeMap<String, PathBuf>,
    /// `[libvirt] live_migration_uri` (`%s`: the destination host).
    pub live_migration_uri: String,
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
            host_name: cfg.compute.host.clone(),
            remote_transport: l.remote_filesystem_transport.clone(),
            host_instances_paths: l
                .host_instances_paths
                .iter()
                .map(|(h, p)| (h.clone(), PathBuf::from(p)))
                .collect(),
            live_migration_uri: l.live_migration_uri.clone(),
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

    /// The driver `cfg` names. Image bytes come from the image API of
    /// `[glance] api_servers` with the `[glance]` credential, or, without
    /// one, from the image service's store under `data_dir` (the image
    /// service on this machine).
    pub fn from_config(cfg: &novalog_runtime::Config) -> Result<LibvirtDriver, DriverError> {
        let g = &cfg.glance;
        let source: Arc<dyn ImageSource> = match g.api_servers.first() {
            Some(endpoint) => Arc::new(
                HttpImageSource::new(
                    Arc::new(parking_lot::RwLock::new(endpoint.clone())),
                    ImageCredential {
                        auth_url: g.auth_url.clone(),
                        username: g.username.clone(),
                        password: g.password.clone(),
                        project_name: g.project_name.clone(),
                    },
                )
                .map_err(other)?,
            ),
            None => Arc::new(ImageStoreDir(cfg.data_dir.join("images"))),
        };
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

    /// Where a cold migration keeps the source's files until it is
    /// confirmed or reverted (Nova's `<uuid>_resize`).
    pub fn resize_dir(&self, id: Uuid) -> PathBuf {
        self.opts.instances_path.join(format!("{id}_resize"))
    }

    /// Whether `dom` is this host's: its disks are in `instances_path`.
    /// Hosts that share a hypervisor (tests, or two agents on one machine)
    /// each touch only their own domains.
    fn owns(&self, dom: &Domain) -> bool {
        dom.get_xml_desc(0)
            .map(|x| xml::disks_under(&x, &self.opts.instances_path))
            .unwrap_or(false)
    }

    /// This host's domain of `id`, if there is one.
    fn own_domain(&self, id: Uuid) -> Result<Option<Domain>, DriverError> {
        Ok(self.lookup(id)?.filter(|d| self.owns(d)))
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

    /// Removes whatever of the guest this host has: its domain (stopped
    /// first, its managed save too) and its directories (a migration's
    /// `_resize` one included). The `_base` files stay.
    fn remove(&self, id: Uuid) -> Result<(), DriverError> {
        if let Some(dom) = self.own_domain(id)? {
            Self::undefine(&dom)?;
        }
        remove_dir(&self.instance_dir(id))?;
        remove_dir(&self.resize_dir(id))
    }

    fn undefine(dom: &Domain) -> Result<(), DriverError> {
        if dom.is_active().unwrap_or(false) {
            dom.destroy().map_err(failed("stopping the domain"))?;
        }
        dom.undefine_flags(virt::sys::VIR_DOMAIN_UNDEFINE_MANAGED_SAVE)
            .map_err(failed("undefining the domain"))
    }

    /// Stops the domain: a clean shutdown first (up to `shutdown_timeout`),
    /// hard when the guest does not comply. A saved memory image goes.
    async fn stop(&self, dom: &Domain) -> Result<(), DriverError> {
        let (state, _) = Self::state_of(dom)?;
        if state == DomainState::Running
            && !self.opts.shutdown_timeout.is_zero()
            && dom.shutdown().is_ok()
            && Self::wait_shutoff(dom, self.opts.shutdown_timeout).await
        {
            return Ok(());
        }
        if dom.is_active().unwrap_or(false) {
            dom.destroy().map_err(failed("powering the guest off"))?;
        }
        Ok(())
    }

    /// Defines (and if `start`, starts) the guest from the disks already
    /// in its directory, as a migration leaves them: the overlay is
    /// pointed at this host's base file of `image` and grown to the
    /// flavor; missing ephemeral and swap disks are made.
    async fn define_from_dir(
        &self,
        cmd: &MigrationCommand,
        start: bool,
    ) -> Result<Domain, DriverError> {
        let (id, flavor, image) = (cmd.instance_id, &cmd.flavor, &cmd.image);
        let dir = self.instance_dir(id);
        let root = dir.join("disk");
        if !root.exists() {
            return Err(DriverError::Failed(format!(
                "instance {id}: no disk in {} to boot from",
                dir.display()
            )));
        }
        let settings = ImageSettings::from_image(image).map_err(other)?;
        let format = image.disk_format.as_str();
        let digests = Digests {
            md5: image.checksum.clone(),
            sha512: image.os_hash_value.clone(),
        };
        let base = self.cache.fetch(image.id, &digests).await.map_err(other)?;
        let backing = imagecache::qcow2_backing_file(&root)
            .map_err(io_failed("reading the migrated disk"))?;
        if backing.as_deref() != Some(base.as_path()) {
            disk::rebase(&root, &base, format).await.map_err(other)?;
        }
        let info = disk::info(&root, "qcow2").await.map_err(other)?;
        let root_bytes = flavor.disk_gb.saturating_mul(disk::GIB);
        if flavor.disk_gb > 0 && root_bytes > info.virtual_size {
            disk::resize(&root, root_bytes).await.map_err(other)?;
        }
        let existing = |name: &str| Some(dir.join(name)).filter(|p| p.exists());
        let mut files = GuestFiles {
            root,
            ephemeral: existing("disk.eph0"),
            swap: existing("disk.swap"),
            kernel: existing("kernel"),
            ramdisk: existing("ramdisk"),
            console_log: dir.join("console.log"),
        };
        if files.ephemeral.is_none() && flavor.ephemeral_gb > 0 {
            let p = dir.join("disk.eph0");
            disk::create_blank(&p, flavor.ephemeral_gb.saturating_mul(disk::GIB))
                .await
                .map_err(other)?;
            files.ephemeral = Some(p);
        }
        if files.swap.is_none() && flavor.swap_mb > 0 {
            let p = dir.join("disk.swap");
            disk::create_blank(&p, flavor.swap_mb.saturating_mul(disk::MIB))
                .await
                .map_err(other)?;
            files.swap = Some(p);
        }
        if !files.console_log.exists() {
            tokio::fs::File::create(&files.console_log)
                .await
                .map_err(io_failed("creating the console log"))?;
        }
        let spec = GuestSpec {
            instance_id: id,
            name: &cmd.name,
            project_id: &cmd.project_id,
            flavor,
            image,
        };
        let xml = xml::domain_xml(&spec, &settings, &self.opts.host, &files);
        let dom = Domain::define_xml(&self.conn, &xml).map_err(failed("defining the domain"))?;
        if start && !dom.is_active().unwrap_or(false) {
            dom.create().map_err(failed("starting the domain"))?;
        }
        Ok(dom)
    }

    /// Where a cold migration to `dest` puts the guest's files.
    fn migration_target(&self, dest: &str, id: Uuid) -> Target {
        if dest == self.opts.host_name {
            return Target::Local(self.instance_dir(id));
        }
        match self.opts.host_instances_paths.get(dest) {
            Some(p) => Target::Local(p.join(id.to_string())),
            None => Target::Remote {
                host: dest.to_owned(),
                dir: self.instance_dir(id),
            },
        }
    }

    /// Copies the guest files in `from` to `to`.
    async fn copy_files(&self, from: &Path, to: &Target) -> Result<(), DriverError> {
        let files: Vec<PathBuf> = GUEST_FILES
            .iter()
            .map(|f| from.join(f))
            .filter(|p| p.exists())
            .collect();
        match to {
            Target::Local(dir) => {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(io_failed(format!("creating {}", dir.display())))?;
                for f in files {
                    let name = f.file_name().unwrap_or_default();
                    tokio::fs::copy(&f, dir.join(name))
                        .await
                        .map_err(io_failed(format!("copying {}", f.display())))?;
                }
                Ok(())
            }
            Target::Remote { host, dir } => {
                let d = dir.to_string_lossy().into_owned();
                // Never a password prompt: keys or nothing.
                run(
                    "ssh",
                    &[
                        "-o",
                        "BatchMode=yes",
                        host.as_str(),
                        "mkdir",
                        "-p",
                        d.as_str(),
                    ],
                )
                .await?;
                let mut args: Vec<String> = match self.opts.remote_transport.as_str() {
                    "rsync" => ["-a", "--sparse", "-e", "ssh -o BatchMode=yes"]
                        .map(String::from)
                        .to_vec(),
                    _ => ["-q", "-o", "BatchMode=yes"].map(String::from).to_vec(),
                };
                args.extend(files.iter().map(|f| f.to_string_lossy().into_owned()));
                args.push(format!("{host}:{d}/"));
                let program = if self.opts.remote_transport == "rsync" {
                    "rsync"
                } else {
                    "scp"
                };
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                run(program, &args).await
            }
        }
    }

    /// Removes what `copy_files` put at `to` (an undone migration).
    async fn remove_target(&self, to: &Target) {
        let r = match to {
            Target::Local(dir) => remove_dir(dir),
            Target::Remote { host, dir } => {
                let d = dir.to_string_lossy().into_owned();
                run(
                    "ssh",
                    &[
                        "-o",
                        "BatchMode=yes",
                        host.as_str(),
                        "rm",
                        "-rf",
                        d.as_str(),
                    ],
                )
                .await
            }
        };
        if let Err(e) = r {
            tracing::warn!(error = %e, "removing a migration's copied files");
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
}

/// A guest's files a migration moves.
const GUEST_FILES: &[&str] = &[
    "disk",
    "disk.eph0",
    "disk.swap",
    "kernel",
    "ramdisk",
    "console.log",
];

/// Where a migration copies to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// A directory on this machine (this host, or a host sharing it).
    Local(PathBuf),
    /// `dir` on another machine, over `remote_filesystem_transport`.
    Remote { host: String, dir: PathBuf },
}

fn remove_dir(dir: &Path) -> Result<(), DriverError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_failed(format!("removing {}", dir.display()))(e)),
    }
}

async fn run(program: &str, args: &[&str]) -> Result<(), DriverError> {
    let out = tokio::process::Command::new(program)
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(io_failed(format!("running {program}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(DriverError::Failed(format!(
            "{program} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
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

    /// This host's domains and the guest directories in `instances_path`
    /// (a deleted guest's disks left behind are a guest to clean up too).
    fn guests(&self, _host: &str) -> Vec<Uuid> {
        let mut ids = BTreeSet::new();
        match self.conn.list_all_domains(0) {
            Ok(doms) => ids.extend(
                doms.iter()
                    .filter(|d| self.owns(d))
                    .filter_map(|d| d.get_name().ok())
                    .filter_map(|n| xml::instance_of(&n)),
            ),
            Err(e) => {
                // Without the list nothing can be told orphaned.
                tracing::error!(error = %e.message(), "listing libvirt domains");
                return Vec::new();
            }
        }
        if let Ok(entries) = std::fs::read_dir(&self.opts.instances_path) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let id = name.strip_suffix("_resize").unwrap_or(&name);
                if let Ok(id) = Uuid::parse_str(id) {
                    ids.insert(id);
                }
            }
        }
        ids.into_iter().collect()
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

    /// Nova's `migrate_disk_and_power_off`: the guest is stopped, its
    /// directory becomes `<uuid>_resize` and its files are copied to the
    /// destination's instance directory (this machine's, or another's over
    /// `remote_filesystem_transport`). A smaller root disk than the
    /// guest's is refused, as Nova refuses it. On error the guest is as it
    /// was.
    async fn migrate_disk_and_power_off(&self, cmd: &MigrationCommand) -> Result<(), DriverError> {
        let id = cmd.instance_id;
        let dom = self.domain(id)?;
        let dir = self.instance_dir(id);
        let root = disk::info(&dir.join("disk"), "qcow2")
            .await
            .map_err(other)?;
        let new_root = cmd.flavor.disk_gb.saturating_mul(disk::GIB);
        if cmd.flavor.disk_gb > 0 && new_root < root.virtual_size {
            return Err(DriverError::Failed(
                "Resize error: Unable to resize disk down.".into(),
            ));
        }
        let was_running = dom.is_active().unwrap_or(false);
        self.stop(&dom).await?;
        if dom.has_managed_save(0).unwrap_or(false) {
            dom.managed_save_remove(0)
                .map_err(failed("removing the saved memory image"))?;
        }
        let resize = self.resize_dir(id);
        remove_dir(&resize)?;
        std::fs::rename(&dir, &resize).map_err(io_failed("moving the instance directory aside"))?;
        let target = self.migration_target(&cmd.dest_host, id);
        if let Err(e) = self.copy_files(&resize, &target).await {
            // Back as it was: the copy goes, the directory returns, the
            // guest runs again if it ran.
            self.remove_target(&target).await;
            if let Err(e) = std::fs::rename(&resize, &dir) {
                tracing::error!(instance = %id, error = %e, "restoring the instance directory");
            } else if was_running && let Err(e) = dom.create() {
                tracing::error!(instance = %id, error = %e.message(), "restarting the guest");
            }
            return Err(e);
        }
        Ok(())
    }

    /// Nova's `finish_migration`: the guest is defined from the copied
    /// disks (the overlay re-pointed at this host's base file and grown to
    /// the new flavor) and started if it ran.
    async fn finish_migration(&self, cmd: &MigrationCommand) -> Result<PowerState, DriverError> {
        let dom = self.define_from_dir(cmd, cmd.power_on).await?;
        Self::power(&dom)
    }

    /// Nova's `confirm_migration` on the source: the `_resize` files go,
    /// and the source's own domain where it has one (a hypervisor of its
    /// own; on a shared one the domain is now the destination's).
    async fn confirm_migration(&self, cmd: &MigrationCommand) -> Result<(), DriverError> {
        let id = cmd.instance_id;
        if cmd.source_host != cmd.dest_host
            && let Some(dom) = self.own_domain(id)?
        {
            Self::undefine(&dom)?;
        }
        remove_dir(&self.resize_dir(id))
    }

    /// On the destination when reverting: its domain and copied files go.
    /// A same-host resize keeps the domain for the source to redefine and
    /// drops only the new disks.
    async fn revert_migration(&self, cmd: &MigrationCommand) -> Result<(), DriverError> {
        let id = cmd.instance_id;
        if let Some(dom) = self.own_domain(id)? {
            if cmd.source_host == cmd.dest_host {
                if dom.is_active().unwrap_or(false) {
                    dom.destroy().map_err(failed("stopping the domain"))?;
                }
            } else {
                Self::undefine(&dom)?;
            }
        }
        remove_dir(&self.instance_dir(id))
    }

    /// Nova's `finish_revert_migration` on the source: the `_resize`
    /// directory becomes the instance directory again and the guest is
    /// defined with the old flavor and started if it ran. A guest still
    /// running here (the migration failed before it moved) is left as is.
    async fn finish_revert_migration(
        &self,
        cmd: &MigrationCommand,
    ) -> Result<PowerState, DriverError> {
        let id = cmd.instance_id;
        let resize = self.resize_dir(id);
        if resize.exists() {
            remove_dir(&self.instance_dir(id))?;
            std::fs::rename(&resize, self.instance_dir(id))
                .map_err(io_failed("restoring the instance directory"))?;
        } else if let Some(dom) = self.own_domain(id)?
            && dom.is_active().unwrap_or(false)
        {
            return Self::power(&dom);
        }
        let dom = self.define_from_dir(cmd, cmd.power_on).await?;
        Self::power(&dom)
    }

    /// Through libvirt's migration API (peer to peer, to
    /// `live_migration_uri`): the guest runs on the destination and is
    /// undefined here. Both hosts must see its disks at the same path
    /// (`instances_path` on storage they share). On error the guest is
    /// still here, as it was.
    async fn live_migration(&self, cmd: &MigrationCommand) -> Result<(), DriverError> {
        use virt::sys;
        let dom = self.domain(cmd.instance_id)?;
        let uri = self.opts.live_migration_uri.replace("%s", &cmd.dest_host);
        let flags = sys::VIR_MIGRATE_LIVE
            | sys::VIR_MIGRATE_PEER2PEER
            | sys::VIR_MIGRATE_PERSIST_DEST
            | sys::VIR_MIGRATE_UNDEFINE_SOURCE;
        dom.migrate_to_uri(&uri, flags, None, 0)
            .map_err(failed(format!("live migration to {uri}")))
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
