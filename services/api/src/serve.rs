//! The listener: an accept loop that serves each connection with hyper's
//! HTTP/1, bounded so that slow or hostile clients cost little.
//!
//! - Each request's head is read and checked before hyper sees it
//!   ([`head`]): a head that is too large, malformed, or not sent within
//!   `[wsgi] client_socket_timeout` gets 431, 400 or 408 in the JSON shape
//!   of the service its path belongs to (hyper's own answers have empty
//!   bodies), and the connection closes. The timeout also bounds how long
//!   a kept-alive connection stays idle; that one closes quietly.
//! - At most `[wsgi] default_pool_size` connections are served at once;
//!   the loop does not accept more until one ends, so further clients wait
//!   in the kernel's backlog instead of taking file descriptors.
//! - A request head larger than `[wsgi] max_header_line` gets 431.
//! - Header lines that are not valid HTTP (a DEL byte in a value) are
//!   dropped instead of failing the whole request, so the request gets
//!   the answer its other headers deserve.
//! - The request timeout is a layer of the router ([`crate::app::router`]).
//!
//! On shutdown the loop stops accepting and every open connection finishes
//! the request it is serving; idle ones are closed at once.

mod head;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use futures::future::BoxFuture;
use http_body_util::BodyExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tower::ServiceExt;

use crate::http::{REQUEST_ID_HEADER, RequestId, Service};
use head::{CheckedStream, ConnState, HeadError, HeadLimits};
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
    let limits = HeadLimits {
        max_size: opts.max_header_size,
        timeout: opts.header_read_timeout,
    };
    let mut http = hyper::server::conn::http1::Builder::new();
    // The heads reach hyper checked (see `head`): its own timeout and size
    // limit, whose answers have empty bodies, are set so that they never
    // fire first.
    http.timer(TokioTimer::new())
        .header_read_timeout(None)
        .keep_alive(opts.keep_alive)
        .max_header_size(opts.max_header_size.saturating_mul(2))
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
        let state = Arc::new(ConnState::default());
        let service = ConnService {
            router: router.clone(),
            state: state.clone(),
        };
        let stream = CheckedStream::new(stream, state, limits);
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

/// One connection's service: the router, except for the stand-in of a
/// refused head, which gets the refusal in JSON.
#[derive(Clone)]
struct ConnService {
    router: Router,
    state: Arc<ConnState>,
}

impl hyper::service::Service<hyper::Request<hyper::body::Incoming>> for ConnService {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn call(&self, req: hyper::Request<hyper::body::Incoming>) -> Self::Future {
        if let Some(error) = self.state.take_error() {
            return Box::pin(std::future::ready(Ok(refusal(error))));
        }
        // Held until the answer is written whole: the wait for the next
        // head starts then.
        let in_flight = self.state.begin();
        let router = self.router.clone();
        Box::pin(async move {
            let Ok(resp) = router.oneshot(req.map(Body::new)).await;
            Ok(resp.map(|body| {
                Body::new(body.map_frame(move |frame| {
                    let _ = &in_flight;
                    frame
                }))
            }))
        })
    }
}

/// The answer to a refused head, in its service's shape; the connection
/// closes after it.
fn refusal(error: HeadError) -> Response {
    let service = error.path.as_deref().map_or(Service::Compute, Service::of);
    let mut resp = service.error(error.status, error.message);
    let headers = resp.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    if let Ok(id) = HeaderValue::from_str(&RequestId::generate().0) {
        headers.insert(REQUEST_ID_HEADER, id);
    }
    resp
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
    use axum::routing::{get, put};
    use serde_json::Value;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    /// A listener on a free port with a small head limit and `timeout`,
    /// serving a route that echoes the body's length through the edge
    /// layers every route has.
    async fn listener(timeout: Duration) -> std::net::SocketAddr {
        let router = crate::http::edge(
            Router::new()
                .route(
                    "/v2.1/ok",
                    get(|| async { axum::Json(serde_json::json!({"ok": true})) }),
                )
                .route(
                    "/v2.1/put",
                    put(|body: axum::body::Bytes| async move { body.len().to_string() }),
                ),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let opts = ServeOptions {
            header_read_timeout: Some(timeout),
            keep_alive: true,
            max_header_size: 2048,
            max_connections: 16,
        };
        tokio::spawn(run(listener, router, opts, std::future::pending()));
        addr
    }

    /// Writes `request`, reads until the server closes, and splits the
    /// answers: (status, content type, body) each.
    async fn exchange(addr: std::net::SocketAddr, request: &[u8]) -> Vec<(u16, String, String)> {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(request).await.unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut answer))
            .await
            .expect("the server closes the connection")
            .unwrap();
        let mut text = String::from_utf8_lossy(&answer).into_owned();
        let mut answers = Vec::new();
        while let Some((head, rest)) = text.split_once("\r\n\r\n") {
            let code = head.split(' ').nth(1).unwrap().parse().unwrap();
            let field = |name: &str| {
                head.lines()
                    .find_map(|l| {
                        l.split_once(':')
                            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                    })
                    .map(|(_, v)| v.trim().to_owned())
            };
            let len: usize = field("content-length").unwrap().parse().unwrap();
            let body = rest[..len].to_owned();
            answers.push((code, field("content-type").unwrap_or_default(), body));
            text = rest[len..].to_owned();
        }
        answers
    }

    fn json(body: &str) -> Value {
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body:?}"))
    }

    #[tokio::test]
    async fn a_head_over_the_limit_is_431_in_json() {
        let addr = listener(Duration::from_secs(30)).await;
        let big = format!(
            "GET /v2.1/ok HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n",
            "a".repeat(4000)
        );
        let answers = exchange(addr, big.as_bytes()).await;
        let [(code, kind, body)] = &answers[..] else {
            panic!("{answers:?}")
        };
        assert_eq!((*code, kind.as_str()), (431, "application/json"));
        assert_eq!(json(body)["computeFault"]["code"], 431);
        // Under /image, Glance's shape; and on a kept-alive connection,
        // after a first request that was answered.
        let two = format!(
            "GET /v2.1/ok HTTP/1.1\r\nHost: a\r\n\r\nGET /image/v2/images HTTP/1.1\r\nX-Big: {}\r\n\r\n",
            "a".repeat(4000)
        );
        let answers = exchange(addr, two.as_bytes()).await;
        let [(200, _, ok), (431, kind, body)] = &answers[..] else {
            panic!("{answers:?}")
        };
        assert_eq!(json(ok)["ok"], true);
        assert_eq!(kind, "application/json");
        assert_eq!(json(body)["code"], "431 Request Header Fields Too Large");
    }

    #[tokio::test]
    async fn a_malformed_request_line_is_400_in_json() {
        let addr = listener(Duration::from_secs(30)).await;
        for bad in [
            b"GET /v2.1/o\x7fk HTTP/1.1\r\nHost: a\r\n\r\n".as_slice(),
            b"G(T /v2.1/ok HTTP/1.1\r\n\r\n",
            b"GET /v2.1/ok HTTP/9.9\r\n\r\n",
            b"PUT /v2.1/put HTTP/1.1\r\nContent-Length: 1x\r\n\r\n",
        ] {
            let answers = exchange(addr, bad).await;
            let [(code, kind, body)] = &answers[..] else {
                panic!("{answers:?}")
            };
            assert_eq!((*code, kind.as_str()), (400, "application/json"), "{bad:?}");
            assert_eq!(json(body)["badRequest"]["code"], 400);
        }
        // Under /identity, Keystone's shape.
        let answers = exchange(addr, b"GET /identity/v3/\x7f HTTP/1.1\r\n\r\n").await;
        assert_eq!(json(&answers[0].2)["error"]["code"], 400, "{answers:?}");
    }

    #[tokio::test]
    async fn a_header_with_a_del_byte_is_dropped_and_the_request_answered() {
        let addr = listener(Duration::from_secs(30)).await;
        let answers = exchange(
            addr,
            b"GET /v2.1/ok HTTP/1.1\r\nHost: a\r\nX-Note: a\x7fb\r\nConnection: close\r\n\r\n",
        )
        .await;
        let [(200, kind, body)] = &answers[..] else {
            panic!("{answers:?}")
        };
        assert_eq!(kind, "application/json");
        assert_eq!(json(body)["ok"], true);
    }

    #[tokio::test]
    async fn a_head_not_sent_in_time_is_408_in_json_and_an_idle_connection_closes_quietly() {
        let addr = listener(Duration::from_millis(300)).await;
        let answers = exchange(addr, b"GET /v2.1/ok HTTP/1.1\r\nHost:").await;
        let [(code, kind, body)] = &answers[..] else {
            panic!("{answers:?}")
        };
        assert_eq!((*code, kind.as_str()), (408, "application/json"));
        assert_eq!(json(body)["computeFault"]["code"], 408);
        // A kept-alive connection idle after its answer: closed, no answer
        // that a request crossing it could take for its own.
        let answers = exchange(addr, b"GET /v2.1/ok HTTP/1.1\r\nHost: a\r\n\r\n").await;
        assert_eq!(answers.len(), 1, "{answers:?}");
        assert_eq!(answers[0].0, 200);
    }

    #[tokio::test]
    async fn bodies_are_followed_to_the_next_head() {
        let addr = listener(Duration::from_secs(30)).await;
        let requests = [
            b"PUT /v2.1/put HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello".as_slice(),
            b"PUT /v2.1/put HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4;x=y\r\ndefg\r\n0\r\nT: v\r\n\r\n",
            b"GET /v2.1/ok HTTP/1.1\r\nConnection: close\r\n\r\n",
        ]
        .concat();
        let answers = exchange(addr, &requests).await;
        let bodies: Vec<_> = answers.iter().map(|(c, _, b)| (*c, b.as_str())).collect();
        assert_eq!(bodies, [(200, "5"), (200, "7"), (200, "{\"ok\":true}")]);
    }

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
