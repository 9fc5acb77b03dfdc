//! `novalog-novncproxy` (nova-novncproxy): the remote console proxy. A
//! browser opens the console URL the API handed out
//! (`vnc_lite.html?path=%3Ftoken%3D<token>`); the page (noVNC's client,
//! from the `@novnc/novnc` package) opens a WebSocket back here with the
//! token, which is checked against the tokens issued on the log, and the
//! WebSocket's binary frames are then carried to and from the guest's VNC
//! display (RFB over TCP) that the token names.
//!
//! A token is refused (HTTP 403, before any upgrade) when it is unknown,
//! expired, its server was deleted, or the URL names another server
//! (`instance_uuid`); a cross-site page (an `Origin` other than the host
//! asked) is refused too. A token the projection does not know yet may
//! have been issued a moment ago: the proxy waits for its fold to catch up
//! (at most [`CATCH_UP`]) before refusing it.
//!
//! # Layout
//! - [`check`]: whether a connection may go through (pure).
//! - [`TokenFold`]: the fold of `instances` into the tokens
//!   ([`novalog_runtime::console_tokens`]), in the proxy's own store
//!   (`<data_dir>/novncproxy`), on the shared consumer loop.
//! - [`router`]: the page, noVNC's scripts (`[vnc] web`), the WebSocket.
//! - [`run`]: the consumer and the listener until shutdown.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{
    Message, WebSocket, WebSocketUpgrade, rejection::WebSocketUpgradeRejection,
};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use futures::{SinkExt, StreamExt};
use novalog_log::EventLog;
use novalog_runtime::console_tokens::ConsoleTokens;
use novalog_runtime::consumer::{self, ConsumerSpec, Rejected};
use novalog_runtime::{Config, Error, Handler, Input, Outbox, Result, Shutdown};
use novalog_schemas::Event;
use novalog_schemas::console::{ConsoleToken, hash_token};
use novalog_store::{RocksStore, Store, Transaction};
use parking_lot::RwLock;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// The service's name: its store under `data_dir`, its consumer.
pub const NAME: &str = "novncproxy";

/// The longest an unknown token waits for the fold to catch up.
pub const CATCH_UP: Duration = Duration::from_secs(2);

/// The longest a guest's display may take to accept the connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The console page.
const PAGE: &str = include_str!("vnc_lite.html");

/// Why a connection is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no token")]
    NoToken,
    /// Never issued, expired, or its server deleted (Nova's InvalidToken).
    #[error("the token is invalid or has expired")]
    InvalidToken,
    #[error("the token is for another server")]
    OtherInstance,
    #[error("origin {0} does not match the host")]
    Origin(String),
}

/// Whether a connection with `token` (and, when the URL names one, for
/// server `instance`) may go through at `now_ms`: the token it opens.
pub fn check(
    tokens: &ConsoleTokens,
    token: Option<&str>,
    instance: Option<&str>,
    now_ms: i64,
) -> std::result::Result<ConsoleToken, Refusal> {
    let token = token.filter(|t| !t.is_empty()).ok_or(Refusal::NoToken)?;
    let found = tokens
        .valid(&hash_token(token), now_ms)
        .ok_or(Refusal::InvalidToken)?;
    if let Some(asked) = instance
        && asked != found.instance_id.to_string()
    {
        return Err(Refusal::OtherInstance);
    }
    Ok(found.clone())
}

/// Nova's origin check: a browser's `Origin` must name the host the page
/// was asked from (`Host`); clients that send none pass.
pub fn check_origin(headers: &HeaderMap) -> std::result::Result<(), Refusal> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return Ok(());
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let origin_host = origin
        .split_once("://")
        .map_or("", |(_, rest)| rest)
        .trim_end_matches('/');
    let bare = |h: &str| {
        h.rsplit_once(':')
            .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
            .map_or(h, |(h, _)| h)
            .to_ascii_lowercase()
    };
    if origin_host.eq_ignore_ascii_case(host) || bare(origin_host) == bare(host) {
        Ok(())
    } else {
        Err(Refusal::Origin(origin.to_owned()))
    }
}

/// The tokens, shared by the fold and the listener.
#[derive(Debug)]
pub struct Tokens {
    tokens: RwLock<ConsoleTokens>,
    /// Bumped on every committed batch: an unknown token waits on it.
    batches: watch::Sender<u64>,
}

impl Tokens {
    pub fn new(tokens: ConsoleTokens) -> Self {
        Tokens {
            tokens: RwLock::new(tokens),
            batches: watch::Sender::new(0),
        }
    }

    /// [`check`], waiting up to `catch_up` for the fold to learn a token
    /// it does not know yet.
    pub async fn admit(
        &self,
        token: Option<&str>,
        instance: Option<&str>,
        catch_up: Duration,
    ) -> std::result::Result<ConsoleToken, Refusal> {
        let deadline = tokio::time::Instant::now() + catch_up;
        let mut batches = self.batches.subscribe();
        loop {
            let verdict = check(
                &self.tokens.read(),
                token,
                instance,
                novalog_schemas::now_ms(),
            );
            match verdict {
                Err(Refusal::InvalidToken) => {}
                other => return other,
            }
            if tokio::time::timeout_at(deadline, batches.changed())
                .await
                .is_err()
            {
                return verdict;
            }
        }
    }
}

/// The fold of `instances` into the tokens.
pub struct TokenFold<S: Store> {
    tokens: Arc<Tokens>,
    store: Arc<S>,
}

impl<S: Store> TokenFold<S> {
    pub fn new(tokens: Arc<Tokens>, store: Arc<S>) -> Self {
        TokenFold { tokens, store }
    }
}

#[async_trait]
impl<S: Store> Handler for TokenFold<S> {
    async fn handle(
        &mut self,
        input: &Input,
        _out: &mut Outbox,
        tx: &mut Transaction,
    ) -> std::result::Result<(), Rejected> {
        if let Event::Instance(_) = &input.env.event {
            self.tokens
                .tokens
                .write()
                .apply(&input.env, tx)
                .map_err(|e| Rejected(e.to_string()))?;
        }
        Ok(())
    }

    fn committed(&mut self) {
        self.tokens.batches.send_modify(|n| *n = n.wrapping_add(1));
    }

    async fn recover(&mut self) -> Result<()> {
        *self.tokens.tokens.write() = ConsoleTokens::load(&*self.store)?;
        Ok(())
    }
}

/// What the listener serves with.
#[derive(Clone)]
pub struct ProxyState {
    pub tokens: Arc<Tokens>,
    /// How long an unknown token waits ([`CATCH_UP`]).
    pub catch_up: Duration,
    /// Ends open consoles at shutdown.
    pub shutdown: Shutdown,
}

/// The page at `/` and `/vnc_lite.html`, the WebSocket at `/` (and
/// `/websockify`), noVNC's scripts from `web` for every other path.
pub fn router(state: ProxyState, web: PathBuf) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/websockify", get(root))
        .route("/vnc_lite.html", get(page))
        .route("/vnc.html", get(page))
        .fallback_service(tower_http::services::ServeDir::new(web))
        .with_state(state)
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

fn refused(status: StatusCode, why: impl std::fmt::Display) -> Response {
    (status, format!("{why}\n")).into_response()
}

/// The token from the query, or else from the `token` cookie
/// (websockify's two places).
fn token_of(query: &HashMap<String, String>, headers: &HeaderMap) -> Option<String> {
    if let Some(t) = query.get("token") {
        return Some(t.clone());
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|c| c.to_str().ok())
        .flat_map(|c| c.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == "token")
        .map(|(_, v)| v.to_owned())
}

async fn root(
    State(state): State<ProxyState>,
    ws: std::result::Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let Ok(ws) = ws else {
        return page().await.into_response();
    };
    if let Err(refusal) = check_origin(&headers) {
        return refused(StatusCode::FORBIDDEN, refusal);
    }
    let token = token_of(&query, &headers);
    let instance = query.get("instance_uuid").map(String::as_str);
    let console = match state
        .tokens
        .admit(token.as_deref(), instance, state.catch_up)
        .await
    {
        Ok(c) => c,
        Err(refusal) => {
            tracing::info!(%refusal, "console connection refused");
            return refused(StatusCode::FORBIDDEN, refusal);
        }
    };
    let target = (console.address.clone(), console.port as u16);
    let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::warn!(instance = %console.instance_id, address = %console.address, port = console.port, error = %e, "console display unreachable");
            return refused(StatusCode::BAD_GATEWAY, "the console is not reachable");
        }
        Err(_) => return refused(StatusCode::GATEWAY_TIMEOUT, "the console did not answer"),
    };
    let _ = tcp.set_nodelay(true);
    tracing::info!(instance = %console.instance_id, host = %console.host, port = console.port, "console connected");
    let shutdown = state.shutdown.clone();
    ws.protocols(["binary"])
        .on_upgrade(move |socket| pipe(socket, tcp, shutdown))
}

/// Carries WebSocket binary frames to the display and the display's bytes
/// back as binary frames, until either side closes or shutdown.
async fn pipe(socket: WebSocket, tcp: TcpStream, mut shutdown: Shutdown) {
    let (mut ws_tx, mut ws_rx) = socket.split();
    let (mut rd, mut wr) = tcp.into_split();
    let up = async {
        while let Some(Ok(msg)) = ws_rx.next().await {
            match msg {
                Message::Binary(b) => {
                    if wr.write_all(&b).await.is_err() {
                        break;
                    }
                }
                Message::Close(_) => break,
                // Pings are answered by the socket itself; text is not RFB.
                Message::Text(_) | Message::Ping(_) | Message::Pong(_) => {}
            }
        }
    };
    let down = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if ws_tx
                        .send(Message::Binary(Bytes::copy_from_slice(&buf[..n])))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
        let _ = ws_tx.send(Message::Close(None)).await;
    };
    tokio::select! {
        _ = up => {}
        _ = down => {}
        _ = shutdown.wait() => {}
    }
}

/// Folds the tokens from `log` into `<data_dir>/novncproxy` and serves
/// consoles on `listener` until `shutdown`.
pub async fn run(
    cfg: &Config,
    log: Arc<dyn EventLog>,
    listener: tokio::net::TcpListener,
    shutdown: Shutdown,
) -> Result<()> {
    let dir = cfg.data_dir.join(NAME);
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let store = Arc::new(RocksStore::open(&dir, cfg.log.sync)?);
    let tokens = Arc::new(Tokens::new(ConsoleTokens::load(&*store)?));
    let topics = cfg.topics();
    let spec = ConsumerSpec {
        name: NAME.to_owned(),
        // Every proxy checks every project's tokens: a group of its own.
        group: topics.group(&format!("{NAME}-{}", novalog_runtime::replica_id(&*store)?)),
        topics: vec![topics.instances.clone()],
        dead_letter_topic: topics.dead_letter.clone(),
        max_batch: cfg.log.max_batch,
    };
    let fold = TokenFold::new(tokens.clone(), store.clone());
    let consumer = {
        let sd = shutdown.clone();
        tokio::spawn(async move { consumer::run(log, store, spec, fold, sd).await })
    };
    let web = cfg.vnc.web_dir();
    if !web.join("core/rfb.js").exists() {
        tracing::warn!(web = %web.display(), "noVNC is not there (scripts/deps.sh run fetches it): the console page will not load");
    }
    let state = ProxyState {
        tokens,
        catch_up: CATCH_UP,
        shutdown: shutdown.clone(),
    };
    let addr = listener
        .local_addr()
        .map_err(|e| Error::io("reading the listener's address", e))?;
    tracing::info!(%addr, "console proxy listening");
    let mut sd = shutdown.clone();
    let served = axum::serve(listener, router(state, web))
        .with_graceful_shutdown(async move { sd.wait().await })
        .await
        .map_err(|e| Error::io("serving consoles", e));
    let folded = consumer
        .await
        .map_err(|e| Error::Service(format!("the token fold panicked: {e}")))?;
    served.and(folded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use novalog_schemas::console::NOVNC;
    use novalog_schemas::{Actor, Envelope, InstanceEvent, Meta};
    use uuid::Uuid;

    fn tokens_with(instance: Uuid, token: &str, expires_at_ms: i64) -> ConsoleTokens {
        let mut meta = Meta::origin(
            Uuid::new_v4(),
            "req-1".into(),
            Actor::service("test"),
            instance.to_string(),
        );
        meta.occurred_at_ms = 0;
        let env = Envelope {
            meta,
            event: Event::Instance(InstanceEvent::ConsoleTokenIssued(Box::new(ConsoleToken {
                instance_id: instance,
                token_hash: hash_token(token),
                console_type: NOVNC.into(),
                host: "h".into(),
                address: "127.0.0.1".into(),
                port: 5900,
                expires_at_ms,
            }))),
        };
        let mut t = ConsoleTokens::default();
        t.apply(&env, &mut Transaction::new()).unwrap();
        t
    }

    #[test]
    fn only_a_live_token_for_the_server_named_goes_through() {
        let vm = Uuid::from_u128(7);
        let t = tokens_with(vm, "good", 10_000);
        assert_eq!(check(&t, Some("good"), None, 1).unwrap().instance_id, vm);
        assert!(check(&t, Some("good"), Some(&vm.to_string()), 1).is_ok());
        assert_eq!(
            check(&t, Some("good"), Some(&Uuid::from_u128(8).to_string()), 1),
            Err(Refusal::OtherInstance)
        );
        assert_eq!(
            check(&t, Some("good"), None, 10_000),
            Err(Refusal::InvalidToken)
        );
        assert_eq!(check(&t, Some("bad"), None, 1), Err(Refusal::InvalidToken));
        assert_eq!(check(&t, None, None, 1), Err(Refusal::NoToken));
        assert_eq!(check(&t, Some(""), None, 1), Err(Refusal::NoToken));
    }

    #[test]
    fn a_page_from_elsewhere_is_refused() {
        let h = |origin: Option<&str>, host: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::HOST, host.parse().unwrap());
            if let Some(o) = origin {
                m.insert(header::ORIGIN, o.parse().unwrap());
            }
            check_origin(&m)
        };
        assert!(h(None, "127.0.0.1:6080").is_ok());
        assert!(h(Some("http://127.0.0.1:6080"), "127.0.0.1:6080").is_ok());
        assert!(h(Some("https://console.example:443"), "console.example").is_ok());
        assert!(h(Some("http://evil.example"), "127.0.0.1:6080").is_err());
    }

    #[test]
    fn the_token_comes_from_the_query_or_the_cookie() {
        let mut q = HashMap::new();
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, "a=1; token=from-cookie".parse().unwrap());
        assert_eq!(token_of(&q, &headers).as_deref(), Some("from-cookie"));
        q.insert("token".into(), "from-query".into());
        assert_eq!(token_of(&q, &headers).as_deref(), Some("from-query"));
    }

    #[tokio::test]
    async fn an_unknown_token_waits_for_the_fold_then_is_refused() {
        let tokens = Tokens::new(ConsoleTokens::default());
        let refused = tokens
            .admit(Some("nope"), None, Duration::from_millis(50))
            .await;
        assert_eq!(refused, Err(Refusal::InvalidToken));
    }
}
