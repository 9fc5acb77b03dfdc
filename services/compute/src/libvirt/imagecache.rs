//! The `_base` image cache (nova/virt/libvirt/imagecache.py and
//! imagebackend.py): each image's bytes are fetched from the image
//! service once per host into `<instances_path>/_base/<sha1(image id)>`
//! (Nova's name for a base file), checked against the image's digests,
//! and instance disks are qcow2 overlays on them. The cache manager
//! removes base files no overlay uses once they are old enough.

use std::collections::{BTreeSet, HashMap};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use md5::Md5;
use parking_lot::Mutex;
use sha1::Sha1;
use sha2::{Digest, Sha512};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("image {0} has no data in the image service")]
    NoData(Uuid),
    #[error("image {id}: {what} mismatch (expected {expected}, got {got}); the data is corrupt")]
    Corrupt {
        id: Uuid,
        what: &'static str,
        expected: String,
        got: String,
    },
    #[error("image {id}: {context}: {source}")]
    Io {
        id: Uuid,
        context: String,
        source: std::io::Error,
    },
}

/// Where image bytes come from.
pub trait ImageSource: Send + Sync + 'static {
    /// The image's bytes, or `None` when the image service has none.
    fn open(&self, id: Uuid) -> std::io::Result<Option<Box<dyn Read + Send>>>;
}

/// The image service's own store (`<data_dir>/images/<id>`, as the API
/// writes it on upload): read where the agent shares the machine or a
/// file system with the image service.
pub struct ImageStoreDir(pub PathBuf);

impl ImageSource for ImageStoreDir {
    fn open(&self, id: Uuid) -> std::io::Result<Option<Box<dyn Read + Send>>> {
        match std::fs::File::open(self.0.join(id.to_string())) {
            Ok(f) => Ok(Some(Box::new(f))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// How the host authenticates to the image API: a keystone password
/// credential (`auth_url` set) or, without one, noauth2's
/// `username:project_name` token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageCredential {
    pub auth_url: String,
    pub username: String,
    pub password: String,
    pub project_name: String,
}

/// The image service's API (Glance's `GET /v2/images/{id}/file`): what a
/// host on another machine than the image service reads. The body is
/// streamed into the cache, never held whole in memory.
pub struct HttpImageSource {
    /// The image API's endpoint (`http://host:port/image`); shared so
    /// that a test can point it at an API that started after the driver.
    endpoint: Arc<parking_lot::RwLock<String>>,
    credential: ImageCredential,
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
    token: Mutex<Option<String>>,
}

impl HttpImageSource {
    /// Must be called within a tokio runtime (the one requests run on).
    pub fn new(
        endpoint: Arc<parking_lot::RwLock<String>>,
        credential: ImageCredential,
    ) -> std::io::Result<HttpImageSource> {
        let runtime = tokio::runtime::Handle::try_current().map_err(std::io::Error::other)?;
        Ok(HttpImageSource {
            endpoint,
            credential,
            client: reqwest::Client::new(),
            runtime,
            token: Mutex::new(None),
        })
    }

    async fn token(&self, fresh: bool) -> std::io::Result<String> {
        let c = &self.credential;
        if c.auth_url.is_empty() {
            return Ok(format!("{}:{}", c.username, c.project_name));
        }
        if !fresh && let Some(t) = self.token.lock().clone() {
            return Ok(t);
        }
        let url = format!("{}/v3/auth/tokens", c.auth_url.trim_end_matches('/'));
        let body = serde_json::json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": c.username, "domain": {"id": "default"}, "password": c.password}}},
            "scope": {"project": {"name": c.project_name, "domain": {"id": "default"}}}}});
        let resp = self
            .client
            .post(&url)
            .json(&body)
            .send()
            .await
            .map_err(|e| std::io::Error::other(format!("POST {url}: {e}")))?;
        let status = resp.status();
        let token = resp
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        match token {
            Some(t) if status.is_success() => {
                *self.token.lock() = Some(t.clone());
                Ok(t)
            }
            _ => Err(std::io::Error::other(format!(
                "POST {url}: {status}: the image service credential was refused"
            ))),
        }
    }

    async fn get(&self, id: Uuid) -> std::io::Result<Option<reqwest::Response>> {
        let url = format!(
            "{}/v2/images/{id}/file",
            self.endpoint.read().trim_end_matches('/')
        );
        let mut fresh = false;
        loop {
            let token = self.token(fresh).await?;
            let resp = self
                .client
                .get(&url)
                .header("X-Auth-Token", token)
                .send()
                .await
                .map_err(|e| std::io::Error::other(format!("GET {url}: {e}")))?;
            match resp.status().as_u16() {
                200 => return Ok(Some(resp)),
                // Glance: 204 for an image without data; 404 for none.
                204 | 404 => return Ok(None),
                // An expired token: once more with a new one.
                401 if !fresh && !self.credential.auth_url.is_empty() => fresh = true,
                _ => {
                    let status = resp.status();
                    let body = resp.text().await.unwrap_or_default();
                    return Err(std::io::Error::other(format!("GET {url}: {status} {body}")));
                }
            }
        }
    }
}

impl ImageSource for HttpImageSource {
    fn open(&self, id: Uuid) -> std::io::Result<Option<Box<dyn Read + Send>>> {
        // Called on a blocking thread (the cache's download task).
        let resp = self.runtime.block_on(self.get(id))?;
        Ok(resp.map(|resp| {
            Box::new(BodyReader {
                resp,
                runtime: self.runtime.clone(),
                chunk: bytes::Bytes::new(),
            }) as Box<dyn Read + Send>
        }))
    }
}

/// A response body read chunk by chunk from a blocking thread.
struct BodyReader {
    resp: reqwest::Response,
    runtime: tokio::runtime::Handle,
    chunk: bytes::Bytes,
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match self.runtime.block_on(self.resp.chunk()) {
                Ok(Some(c)) => self.chunk = c,
                Ok(None) => return Ok(0),
                Err(e) => return Err(std::io::Error::other(e)),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        let _ = self.chunk.split_to(n);
        Ok(n)
    }
}

/// The digests an image's bytes must have (empty: not checked).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Digests {
    /// Glance's `checksum` (MD5, hex).
    pub md5: String,
    /// Glance's `os_hash_value` (SHA-512, hex).
    pub sha512: String,
}

/// Nova's base file name for an image: the SHA-1 of its id, in hex.
pub fn base_name(id: Uuid) -> String {
    hex(&Sha1::digest(id.to_string().as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The per-host cache.
pub struct ImageCache {
    dir: PathBuf,
    source: Arc<dyn ImageSource>,
    /// One lock per image being fetched: concurrent spawns of one image
    /// wait for the first one's download instead of starting their own.
    fetching: Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>,
}

impl ImageCache {
    pub fn new(dir: PathBuf, source: Arc<dyn ImageSource>) -> ImageCache {
        ImageCache {
            dir,
            source,
            fetching: Mutex::new(HashMap::new()),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn base_path(&self, id: Uuid) -> PathBuf {
        self.dir.join(base_name(id))
    }

    /// The image's base file, fetched and checked first if the cache does
    /// not have it. Afterwards the file is complete (it appears only once
    /// its digests matched); on error no part of it is left.
    pub async fn fetch(&self, id: Uuid, digests: &Digests) -> Result<PathBuf, CacheError> {
        let lock = self.fetching.lock().entry(id).or_default().clone();
        let _held = lock.lock().await;
        let path = self.base_path(id);
        if path.exists() {
            return Ok(path);
        }
        let (source, dir, digests2, dest) = (
            self.source.clone(),
            self.dir.clone(),
            digests.clone(),
            path.clone(),
        );
        let r = tokio::task::spawn_blocking(move || download(&*source, &dir, id, &digests2, &dest))
            .await
            .unwrap_or_else(|e| {
                Err(CacheError::Io {
                    id,
                    context: "download task".into(),
                    source: std::io::Error::other(e.to_string()),
                })
            });
        self.fetching.lock().remove(&id);
        r.map(|()| path)
    }

    /// The base files present, with their ages (from their modification
    /// time, which a fetch sets).
    pub fn bases(&self) -> std::io::Result<Vec<(String, Duration)>> {
        let now = SystemTime::now();
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e),
        };
        for e in entries {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".part") || !e.file_type()?.is_file() {
                continue;
            }
            let age = e
                .metadata()?
                .modified()
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .unwrap_or_default();
            out.push((name, age));
        }
        Ok(out)
    }
}

fn download(
    source: &dyn ImageSource,
    dir: &Path,
    id: Uuid,
    digests: &Digests,
    dest: &Path,
) -> Result<(), CacheError> {
    let io = |context: &str| {
        let context = context.to_owned();
        move |source| CacheError::Io {
            id,
            context,
            source,
        }
    };
    let mut reader = source
        .open(id)
        .map_err(io("reading from the image service"))?
        .ok_or(CacheError::NoData(id))?;
    std::fs::create_dir_all(dir).map_err(io("creating the image cache"))?;
    let part = dest.with_extension("part");
    let result = (|| {
        let mut out = std::fs::File::create(&part).map_err(io("creating the base file"))?;
        let (mut md5, mut sha512) = (Md5::new(), Sha512::new());
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = reader
                .read(&mut buf)
                .map_err(io("reading from the image service"))?;
            if n == 0 {
                break;
            }
            md5.update(&buf[..n]);
            sha512.update(&buf[..n]);
            out.write_all(&buf[..n])
                .map_err(io("writing the base file"))?;
        }
        out.sync_all().map_err(io("writing the base file"))?;
        check(id, "checksum (md5)", &digests.md5, &hex(&md5.finalize()))?;
        check(
            id,
            "os_hash_value (sha512)",
            &digests.sha512,
            &hex(&sha512.finalize()),
        )?;
        std::fs::rename(&part, dest).map_err(io("renaming the base file"))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&part);
    }
    result
}

fn check(id: Uuid, what: &'static str, expected: &str, got: &str) -> Result<(), CacheError> {
    if expected.is_empty() || expected.eq_ignore_ascii_case(got) {
        Ok(())
    } else {
        Err(CacheError::Corrupt {
            id,
            what,
            expected: expected.to_owned(),
            got: got.to_owned(),
        })
    }
}

/// The backing file a qcow2 image names in its header (none for a raw
/// file or a qcow2 without one). Read from the header itself, so the
/// cache manager needs no `qemu-img` run per disk.
pub fn qcow2_backing_file(path: &Path) -> std::io::Result<Option<PathBuf>> {
    use std::io::{Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    let mut header = [0u8; 20];
    if f.read_exact(&mut header).is_err() || &header[..4] != b"QFI\xfb" {
        return Ok(None);
    }
    let offset = u64::from_be_bytes(header[8..16].try_into().unwrap_or_default());
    let size = u32::from_be_bytes(header[16..20].try_into().unwrap_or_default());
    if offset == 0 || size == 0 || size > 4096 {
        return Ok(None);
    }
    let mut name = vec![0u8; size as usize];
    f.seek(SeekFrom::Start(offset))?;
    f.read_exact(&mut name)?;
    Ok(Some(PathBuf::from(
        String::from_utf8_lossy(&name).into_owned(),
    )))
}

/// The base files the cache manager removes: those no guest uses that
/// are at least `min_age` old (Nova's
/// `remove_unused_original_minimum_age_seconds`). Never one in use.
pub fn unused_bases(
    bases: &[(String, Duration)],
    used: &BTreeSet<String>,
    min_age: Duration,
) -> Vec<String> {
    bases
        .iter()
        .filter(|(name, age)| !used.contains(name) && *age >= min_age)
        .map(|(name, _)| name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn base_names_are_novas() {
        // sha1("00000000-0000-0000-0000-000000000001")
        let id = Uuid::from_u128(1);
        assert_eq!(base_name(id), hex(&Sha1::digest(id.to_string().as_bytes())));
        assert_eq!(base_name(id).len(), 40);
        assert_ne!(base_name(id), base_name(Uuid::from_u128(2)));
    }

    #[test]
    fn only_unused_old_bases_are_removed() {
        let bases = vec![
            ("used-old".to_owned(), Duration::from_secs(100)),
            ("unused-old".to_owned(), Duration::from_secs(100)),
            ("unused-young".to_owned(), Duration::from_secs(1)),
        ];
        let used = BTreeSet::from(["used-old".to_owned()]);
        assert_eq!(
            unused_bases(&bases, &used, Duration::from_secs(10)),
            ["unused-old"]
        );
        assert_eq!(
            unused_bases(&bases, &used, Duration::ZERO),
            ["unused-old", "unused-young"]
        );
    }

    struct Counting {
        bytes: Vec<u8>,
        opens: AtomicUsize,
    }

    impl ImageSource for Counting {
        fn open(&self, _id: Uuid) -> std::io::Result<Option<Box<dyn Read + Send>>> {
            self.opens.fetch_add(1, Ordering::SeqCst);
            // Slow enough that the spawns overlap.
            std::thread::sleep(Duration::from_millis(50));
            Ok(Some(Box::new(std::io::Cursor::new(self.bytes.clone()))))
        }
    }

    fn digests(bytes: &[u8]) -> Digests {
        Digests {
            md5: hex(&Md5::digest(bytes)),
            sha512: hex(&Sha512::digest(bytes)),
        }
    }

    #[tokio::test]
    async fn concurrent_fetches_of_one_image_download_it_once() {
        let dir = tempfile::tempdir().unwrap();
        let src = Arc::new(Counting {
            bytes: b"image bytes".to_vec(),
            opens: AtomicUsize::new(0),
        });
        let cache = Arc::new(ImageCache::new(dir.path().join("_base"), src.clone()));
        let id = Uuid::from_u128(5);
        let d = digests(b"image bytes");
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let (cache, d) = (cache.clone(), d.clone());
                tokio::spawn(async move { cache.fetch(id, &d).await.unwrap() })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap(), cache.base_path(id));
        }
        assert_eq!(src.opens.load(Ordering::SeqCst), 1);
        assert_eq!(std::fs::read(cache.base_path(id)).unwrap(), b"image bytes");
    }

    #[tokio::test]
    async fn a_checksum_mismatch_is_an_error_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let src = Arc::new(Counting {
            bytes: b"corrupted".to_vec(),
            opens: AtomicUsize::new(0),
        });
        let cache = ImageCache::new(dir.path().join("_base"), src);
        let id = Uuid::from_u128(6);
        let e = cache.fetch(id, &digests(b"original")).await.unwrap_err();
        assert!(e.to_string().contains("checksum (md5) mismatch"), "{e}");
        assert!(cache.bases().unwrap().is_empty());
        assert_eq!(std::fs::read_dir(cache.dir()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn an_image_without_data_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ImageCache::new(
            dir.path().join("_base"),
            Arc::new(ImageStoreDir(dir.path().join("images"))),
        );
        let e = cache
            .fetch(Uuid::from_u128(9), &Digests::default())
            .await
            .unwrap_err();
        assert!(matches!(e, CacheError::NoData(_)), "{e}");
    }

    /// A stand-in image API: `GET /image/v2/images/{id}/file` with token
    /// `admin:admin` serves `bytes` for image 1, 204 for image 2 (no data).
    async fn image_api(bytes: Vec<u8>) -> String {
        use axum::extract::Path as UrlPath;
        use axum::http::{HeaderMap, StatusCode};
        let app = axum::Router::new().route(
            "/image/v2/images/{id}/file",
            axum::routing::get(move |UrlPath(id): UrlPath<Uuid>, headers: HeaderMap| {
                let bytes = bytes.clone();
                async move {
                    if headers.get("x-auth-token").and_then(|v| v.to_str().ok())
                        != Some("admin:admin")
                    {
                        return (StatusCode::UNAUTHORIZED, Vec::new());
                    }
                    match id.as_u128() {
                        1 => (StatusCode::OK, bytes),
                        2 => (StatusCode::NO_CONTENT, Vec::new()),
                        _ => (StatusCode::NOT_FOUND, Vec::new()),
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}/image")
    }

    fn credential(user: &str) -> ImageCredential {
        ImageCredential {
            auth_url: String::new(),
            username: user.into(),
            password: String::new(),
            project_name: "admin".into(),
        }
    }

    /// Image bytes over the image API: streamed into `_base`, checked,
    /// and named; an image without data, a refused credential and
    /// corrupt bytes are errors that leave nothing in the cache.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn images_come_over_http_checked() {
        let bytes: Vec<u8> = (0..3 << 20).map(|i| (i % 253) as u8).collect();
        let endpoint = Arc::new(parking_lot::RwLock::new(image_api(bytes.clone()).await));
        let dir = tempfile::tempdir().unwrap();
        let source = HttpImageSource::new(endpoint.clone(), credential("admin")).unwrap();
        let cache = ImageCache::new(dir.path().join("_base"), Arc::new(source));
        let got = cache
            .fetch(Uuid::from_u128(1), &digests(&bytes))
            .await
            .unwrap();
        assert_eq!(std::fs::read(&got).unwrap(), bytes);

        let e = cache
            .fetch(Uuid::from_u128(2), &Digests::default())
            .await
            .unwrap_err();
        assert!(matches!(e, CacheError::NoData(_)), "{e}");

        // The same bytes under digests they do not have.
        let other = ImageCache::new(
            dir.path().join("_other"),
            Arc::new(HttpImageSource::new(endpoint.clone(), credential("admin")).unwrap()),
        );
        let e = other
            .fetch(Uuid::from_u128(1), &digests(b"not these"))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("mismatch"), "{e}");
        assert!(other.bases().unwrap().is_empty());

        let refused = ImageCache::new(
            dir.path().join("_refused"),
            Arc::new(HttpImageSource::new(endpoint, credential("nobody")).unwrap()),
        );
        let e = refused
            .fetch(Uuid::from_u128(1), &Digests::default())
            .await
            .unwrap_err();
        assert!(e.to_string().contains("401"), "{e}");
        assert!(refused.bases().unwrap().is_empty());
    }
}
