//! Remote consoles end to end: a console request, the conductor's token,
//! the console proxy's check and the fake guest's VNC display behind it.
//! A WebSocket client through the proxy with a fresh token reads the
//! guest's `RFB 003.008` banner and completes the RFB handshake; an
//! unknown token, an expired one, a token used for another server and the
//! token of a deleted server are refused; the API answers Nova's 400, 404
//! and 409 (and `os-console-auth-tokens` what a token names).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use novalog_compute::fake::FakeOptions;
use novalog_tests::cluster::{Backend, Cluster};
use novalog_tests::{Client, demo_image_id, on_both_logs};
use reqwest::Method;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{self, Message};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(60);

fn with_displays() -> FakeOptions {
    FakeOptions {
        vnc: true,
        ..Default::default()
    }
}

async fn active_server(client: &Client, name: &str) -> Uuid {
    let id = client
        .create_server(name, "1", demo_image_id())
        .await
        .unwrap();
    let built = client.wait_built(&[id], WAIT).await.unwrap();
    assert_eq!(built[&id]["status"], "ACTIVE", "{}", built[&id]);
    id
}

/// `POST /servers/{id}/remote-consoles` at 2.6 for a VNC console.
async fn console(client: &Client, id: Uuid, protocol: &str, kind: &str) -> (u16, Value) {
    let body = json!({"remote_console": {"protocol": protocol, "type": kind}});
    client
        .request_at(
            Some("2.6"),
            Method::POST,
            &format!("/servers/{id}/remote-consoles"),
            Some(body),
        )
        .await
        .unwrap()
}

/// The token in a console URL (`...?path=%3Ftoken%3D<token>`).
fn token_of(url: &str) -> String {
    url.split_once("path=%3Ftoken%3D")
        .map(|(_, t)| t.to_owned())
        .unwrap_or_else(|| panic!("no token in {url}"))
}

fn proxy(cluster: &Cluster) -> SocketAddr {
    cluster
        .system
        .novncproxy_addr
        .expect("the console proxy runs")
}

/// Opens the proxy's WebSocket with `query`; the HTTP status of a refusal.
async fn open(
    proxy: SocketAddr,
    query: &str,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    u16,
> {
    match tokio_tungstenite::connect_async(format!("ws://{proxy}/?{query}")).await {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("connecting to the proxy: {e}"),
    }
}

/// The next binary frame's bytes, appended to `buf` until it holds `n`.
async fn read_at_least<S>(ws: &mut S, buf: &mut Vec<u8>, n: usize)
where
    S: futures::Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
{
    while buf.len() < n {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("the display answers")
            .expect("the socket stays open")
            .expect("a frame");
        match msg {
            Message::Binary(b) => buf.extend_from_slice(&b),
            Message::Close(c) => panic!("closed: {c:?}"),
            _ => {}
        }
    }
}

/// The banner, then RFB 3.8 with security None up to ServerInit: the
/// framebuffer's width and height.
async fn rfb_handshake(proxy: SocketAddr, token: &str) -> (u16, u16) {
    let mut ws = open(proxy, &format!("token={token}"))
        .await
        .unwrap_or_else(|status| panic!("a fresh token was refused: {status}"));
    let mut buf = Vec::new();
    read_at_least(&mut ws, &mut buf, 12).await;
    assert_eq!(&buf[..12], b"RFB 003.008\n");
    buf.drain(..12);
    ws.send(Message::Binary(b"RFB 003.008\n".to_vec().into()))
        .await
        .unwrap();
    read_at_least(&mut ws, &mut buf, 2).await;
    assert_eq!(&buf[..2], &[1, 1], "one security type: None");
    buf.drain(..2);
    ws.send(Message::Binary(vec![1].into())).await.unwrap();
    read_at_least(&mut ws, &mut buf, 4).await;
    assert_eq!(&buf[..4], &[0, 0, 0, 0], "security result OK");
    buf.drain(..4);
    ws.send(Message::Binary(vec![1].into())).await.unwrap();
    read_at_least(&mut ws, &mut buf, 24).await;
    let size = (
        u16::from_be_bytes([buf[0], buf[1]]),
        u16::from_be_bytes([buf[2], buf[3]]),
    );
    let _ = ws.close(None).await;
    size
}

/// Retries `open` until it is refused (the proxy's fold is a moment behind
/// the API's); the refusal's status.
async fn refused_within(proxy: SocketAddr, query: &str, timeout: Duration) -> u16 {
    let deadline = Instant::now() + timeout;
    loop {
        match open(proxy, query).await {
            Err(status) => return status,
            Ok(mut ws) => {
                let _ = ws.close(None).await;
                assert!(Instant::now() < deadline, "{query} still opens a console");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn a_fresh_token_reaches_the_guests_display_and_only_its_own(backend: Backend) {
    let cluster = Cluster::start_with(&backend, |_| {}, with_displays()).await;
    let admin = &cluster.admin;
    let (a, b) = (
        active_server(admin, "console-a").await,
        active_server(admin, "console-b").await,
    );
    let (status, body) = console(admin, a, "vnc", "novnc").await;
    assert_eq!(status, 200, "{body}");
    let rc = &body["remote_console"];
    assert_eq!(
        (rc["protocol"].as_str(), rc["type"].as_str()),
        (Some("vnc"), Some("novnc"))
    );
    let url = rc["url"].as_str().unwrap();
    let proxy = proxy(&cluster);
    assert!(
        url.starts_with(&format!("http://{proxy}/vnc_lite.html?path=%3Ftoken%3D")),
        "{url}"
    );
    let token = token_of(url);
    assert_eq!(
        rfb_handshake(proxy, &token).await,
        (
            novalog_compute::fake_vnc::WIDTH,
            novalog_compute::fake_vnc::HEIGHT
        )
    );
    // The same token, named for server b: refused. For a: fine.
    assert_eq!(
        open(proxy, &format!("token={token}&instance_uuid={b}"))
            .await
            .err(),
        Some(403)
    );
    let mut ws = open(proxy, &format!("token={token}&instance_uuid={a}"))
        .await
        .expect("the token's own server");
    let _ = ws.close(None).await;
    // A token never issued, and none at all.
    assert_eq!(
        open(proxy, &format!("token={}", Uuid::new_v4()))
            .await
            .err(),
        Some(403)
    );
    assert_eq!(open(proxy, "").await.err(), Some(403));

    // What the token names, for an administrator (2.31: any console type).
    let path = format!("/os-console-auth-tokens/{token}");
    let (status, shown) = admin
        .request_at(Some("2.31"), Method::GET, &path, None)
        .await
        .unwrap();
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["console"]["instance_uuid"], a.to_string());
    assert_eq!(shown["console"]["host"], "127.0.0.1");
    assert!(shown["console"]["port"].as_u64().unwrap() > 0);
    let (status, _) = admin
        .request_at(Some("2.30"), Method::GET, &path, None)
        .await
        .unwrap();
    assert_eq!(status, 401, "below 2.31 only RDP tokens are shown");
    let member = cluster.client("alice", "admin");
    let (status, _) = member
        .request_at(Some("2.31"), Method::GET, &path, None)
        .await
        .unwrap();
    assert_eq!(status, 403);

    // The server goes: its token stops working, at the proxy and the API.
    admin.delete_server(a).await.unwrap();
    admin.wait_gone(&[a], WAIT).await.unwrap();
    assert_eq!(
        refused_within(proxy, &format!("token={token}"), Duration::from_secs(20)).await,
        403
    );
    let (status, _) = admin
        .request_at(Some("2.31"), Method::GET, &path, None)
        .await
        .unwrap();
    assert_eq!(status, 404);
    // b's console still works.
    let (status, body) = console(admin, b, "vnc", "novnc").await;
    assert_eq!(status, 200, "{body}");
    let token_b = token_of(body["remote_console"]["url"].as_str().unwrap());
    rfb_handshake(proxy, &token_b).await;
    cluster.stop().await;
}

async fn an_expired_token_is_refused(backend: Backend) {
    let cluster = Cluster::start_with(
        &backend,
        |cfg| cfg.consoleauth.token_ttl = 1,
        with_displays(),
    )
    .await;
    let admin = &cluster.admin;
    let id = active_server(admin, "expiring").await;
    let (status, body) = console(admin, id, "vnc", "novnc").await;
    assert_eq!(status, 200, "{body}");
    let token = token_of(body["remote_console"]["url"].as_str().unwrap());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        open(proxy(&cluster), &format!("token={token}")).await.err(),
        Some(403)
    );
    let (status, _) = admin
        .request_at(
            Some("2.31"),
            Method::GET,
            &format!("/os-console-auth-tokens/{token}"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(status, 404);
    cluster.stop().await;
}

async fn consoles_answer_novas_errors(backend: Backend) {
    let cluster = Cluster::start_with(&backend, |_| {}, with_displays()).await;
    let admin = &cluster.admin;
    let id = active_server(admin, "errors").await;
    let msg = |v: &Value| {
        v["badRequest"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };

    // Schema: Nova's enums and required keys.
    let (status, v) = console(admin, id, "telnet", "novnc").await;
    assert_eq!(status, 400, "{v}");
    let (status, v) = admin
        .request_at(
            Some("2.6"),
            Method::POST,
            &format!("/servers/{id}/remote-consoles"),
            Some(json!({"remote_console": {"protocol": "vnc"}})),
        )
        .await
        .unwrap();
    assert_eq!(status, 400, "{v}");
    // Valid, but not served: Nova's ConsoleTypeInvalid / Unavailable.
    let (status, v) = console(admin, id, "vnc", "xvpvnc").await;
    assert_eq!(
        (status, msg(&v)),
        (400, "Invalid console type xvpvnc".into())
    );
    let (status, v) = console(admin, id, "spice", "spice-html5").await;
    assert_eq!(
        (status, msg(&v)),
        (400, "Unavailable console type spice-html5.".into())
    );
    let (status, v) = console(admin, id, "serial", "serial").await;
    assert_eq!(
        (status, msg(&v)),
        (400, "Unavailable console type serial.".into())
    );
    // The route is 2.6's; the server must be one the caller sees.
    let (status, _) = admin
        .request_at(
            Some("2.5"),
            Method::POST,
            &format!("/servers/{id}/remote-consoles"),
            Some(json!({"remote_console": {"protocol": "vnc", "type": "novnc"}})),
        )
        .await
        .unwrap();
    assert_eq!(status, 404);
    let (status, _) = console(admin, Uuid::new_v4(), "vnc", "novnc").await;
    assert_eq!(status, 404);
    let (status, _) = console(&cluster.client("mallory", "elsewhere"), id, "vnc", "novnc").await;
    assert_eq!(status, 404, "another project's server is not found");

    // The action before 2.6; gone from 2.6.
    let action = json!({"os-getVNCConsole": {"type": "novnc"}});
    let (status, v) = admin
        .request_at(
            Some("2.5"),
            Method::POST,
            &format!("/servers/{id}/action"),
            Some(action.clone()),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["console"]["type"], "novnc");
    assert!(v["console"]["url"].as_str().unwrap().contains("token%3D"));
    let (status, _) = admin
        .request_at(
            Some("2.6"),
            Method::POST,
            &format!("/servers/{id}/action"),
            Some(action),
        )
        .await
        .unwrap();
    assert_eq!(status, 404);
    let (status, _) = admin
        .request_at(
            Some("2.1"),
            Method::POST,
            &format!("/servers/{id}/action"),
            Some(json!({"os-getVNCConsole": {"type": "spice"}})),
        )
        .await
        .unwrap();
    assert_eq!(status, 400, "not one of Nova's types");

    // A stopped server has no console: Nova's InstanceNotReady (409).
    let (status, _, _) = admin
        .server_action(id, json!({"os-stop": null}))
        .await
        .unwrap();
    assert_eq!(status, 202);
    admin.wait_status(id, "SHUTOFF", WAIT).await;
    let (status, v) = console(admin, id, "vnc", "novnc").await;
    assert_eq!(status, 409, "{v}");
    assert_eq!(
        v["conflictingRequest"]["message"],
        format!("Instance {id} is not ready")
    );
    // Started again: a console again.
    admin
        .server_action(id, json!({"os-start": null}))
        .await
        .unwrap();
    admin.wait_status(id, "ACTIVE", WAIT).await;
    let (status, v) = console(admin, id, "vnc", "novnc").await;
    assert_eq!(status, 200, "{v}");
    let token = token_of(v["remote_console"]["url"].as_str().unwrap());
    rfb_handshake(proxy(&cluster), &token).await;
    let (status, _) = admin
        .request_at(
            Some("2.31"),
            Method::GET,
            &format!("/os-console-auth-tokens/{}", Uuid::new_v4()),
            None,
        )
        .await
        .unwrap();
    assert_eq!(status, 404);
    cluster.stop().await;
}

on_both_logs!(
    a_fresh_token_reaches_the_guests_display_and_only_its_own,
    an_expired_token_is_refused,
    consoles_answer_novas_errors,
);
