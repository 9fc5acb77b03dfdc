//! `[vnc]` and `[consoleauth]`: remote consoles (nova.conf's options of the
//! same names), read by the compute agents (where guests' VNC displays
//! listen), the conductor (how long a token lives), the API (the URL it
//! hands out) and the console proxy (where it listens, what it serves).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `[vnc]`: VNC consoles and the noVNC proxy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VncOptions {
    /// Guests get a VNC display and the API hands out consoles; off: no
    /// display, a console request is 400 (`Unavailable console type vnc.`),
    /// and the all-in-one runs no proxy.
    pub enabled: bool,
    /// Where guests' VNC displays listen on their host (libvirt's
    /// `<graphics listen=...>`; the fake driver's displays: always
    /// 127.0.0.1).
    pub server_listen: String,
    /// The address the console proxy connects to for a guest's display
    /// (what a token names as its host).
    pub server_proxyclient_address: String,
    /// The URL a console request answers with, the token appended as
    /// `?path=%3Ftoken%3D<token>` (noVNC's `path` parameter).
    pub novncproxy_base_url: String,
    /// Where novalog-novncproxy (and the all-in-one's proxy) listens.
    pub novncproxy_host: String,
    /// Its port; 0: any free port (the all-in-one then names it in the
    /// URLs it hands out).
    pub novncproxy_port: u16,
    /// The directory of the `@novnc/novnc` package the proxy serves the
    /// console page's scripts from (`scripts/deps.sh` fetches it). Empty:
    /// `$NOVALOG_CACHE/novnc/node_modules/@novnc/novnc`, the cache being
    /// `~/.cache/novalog` unless set.
    pub web: String,
}

impl Default for VncOptions {
    fn default() -> Self {
        VncOptions {
            enabled: true,
            server_listen: "127.0.0.1".into(),
            server_proxyclient_address: "127.0.0.1".into(),
            novncproxy_base_url: "http://127.0.0.1:6080/vnc_lite.html".into(),
            novncproxy_host: "127.0.0.1".into(),
            novncproxy_port: 6080,
            web: String::new(),
        }
    }
}

impl VncOptions {
    /// `host:port` the proxy listens on.
    pub fn proxy_listen(&self) -> String {
        format!("{}:{}", self.novncproxy_host, self.novncproxy_port)
    }

    /// The noVNC package directory ([`VncOptions::web`] or its default).
    pub fn web_dir(&self) -> PathBuf {
        if !self.web.is_empty() {
            return PathBuf::from(&self.web);
        }
        let cache = std::env::var_os("NOVALOG_CACHE")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/novalog")))
            .unwrap_or_else(|| PathBuf::from(".cache/novalog"));
        cache.join("novnc/node_modules/@novnc/novnc")
    }
}

/// `[consoleauth]`: console tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleauthOptions {
    /// Seconds a console token works after it is issued (`token_ttl`).
    pub token_ttl: u64,
}

impl Default for ConsoleauthOptions {
    fn default() -> Self {
        ConsoleauthOptions { token_ttl: 600 }
    }
}
