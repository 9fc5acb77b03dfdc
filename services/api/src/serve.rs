//! The listener: an accept loop that serves each connection with hyper's
//! HTTP/1, bounded so that slow or hostile clients cost little.
//!
//! - A connection must send each request's head within
//!   `[wsgi] client_socket_timeout`, which also bounds how long a
//!   kept-alive connection stays idle; then hyper closes it.
//! - At most `[wsgi] default_pool_size` connections are served at once;
//!   the loop does not accept more until one ends, so further clients wait
//!   in the kernel's backlog instead of taking file descriptors.
//! - A request head larger than `[wsgi] max_header_line` gets 431.
//! - Header lines that are not valid HTTP (a DEL byte in a value) are
//!   dropped instead of failing the whole request with hyper's bodiless
//!   400, so the request gets an answer in its service's shape.
//! - The request timeout is a layer of the router ([`crate::app::router`]).
//!
//! On shutdown the loop stops accepting and every open connection finishes
//! the request it is serving; idle ones are closed at once.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use novalog_runtime::config::WsgiOptions;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// The bounds the listener puts on its clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeOptions {
    /// Longest wait for a request's head, idle keep-alive included
    /// (`None`: forever).
    pub header_read_timeout: Option<Duration>,
    pub keep_alive: bool,
    /// Largest request head, bytes.
    pub max_header_size: usize,
    /// Connections served at once.
    pub max_connections: usize,
}

impl ServeOptions {
    /// The options `[wsgi]` names, with at most `open_files / 2`
    /// connections: the other half stays for the store and the log.
    pub fn new(wsgi: &WsgiOptions, open_files: u64) -> ServeOptions {
        let fd_bound = usize::try_from(open_files / 2).unwrap_or(usize::MAX);
        ServeOptions {
            header_read_timeout: (wsgi.client_socket_timeout > 0)
                .then(|| Duration::from_secs(wsgi.client_socket_timeout)),
            keep_alive: wsgi.keep_alive,
            // hyper's own floor for its read buffer is 8 KiB; a head that
            // small would make ordinary tokens fail.
            max_header_size: wsgi.max_header_line.max(1024),
            max_connections: wsgi.default_pool_size.min(fd_bound).max(1),
        }
    }
}

/// Raises this process's soft open-files limit to its hard limit, where
/// the system allows, and returns the limit in force. Every connection
/// costs a descriptor, and RocksDB keeps many open.
pub fn raise_open_files_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            let current = rlimit::getrlimit(rlimit::Resource::NOFILE)
                .map(|(soft, _)| soft)
                .unwrap_or(1024);
            tracing::warn!(error = %e, limit = current, "could not raise the open-files limit");
            current
        }
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then lets the
/// open connections finish their requests.
pub async fn run(
    listener: TcpListener,
    router: Router,
    opts: ServeOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(opts.header_read_timeout)
        .keep_alive(opts.keep_alive)
        .max_header_size(opts.max_header_size)
        .ignore_invalid_headers(true);
    let permits = Arc::new(Semaphore::new(opts.max_connections));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            biased;
            () = &mut shutdown => break,
            p = permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
        };
        let stream = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
        };
        // Small JSON answers should not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                // Timeouts, resets and malformed heads: the client's doing.
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// A failed accept: a client that went away before it was accepted is
/// nothing; anything else (out of descriptors) is logged, and the loop
/// pauses so that it does not spin while the condition lasts.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept failed");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_follow_wsgi_and_the_open_files_limit() {
        let wsgi = WsgiOptions::default();
        let o = ServeOptions::new(&wsgi, 1 << 20);
        assert_eq!(o.header_read_timeout, Some(Duration::from_secs(60)));
        assert_eq!(o.max_connections, 4_096);
        assert_eq!(o.max_header_size, 16_384);
        assert!(o.keep_alive);
        let low = ServeOptions::new(&wsgi, 1_024);
        assert_eq!(low.max_connections, 512, "half the descriptors");
        let forever = WsgiOptions {
            client_socket_timeout: 0,
            ..wsgi
        };
        assert_eq!(ServeOptions::new(&forever, 0).header_read_timeout, None);
        assert_eq!(ServeOptions::new(&forever, 0).max_connections, 1);
    }
}
