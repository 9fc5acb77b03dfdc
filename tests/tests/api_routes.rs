//! A bounded, deterministic fuzz over every operation of the API's own
//! OpenAPI document (`GET /openapi.json`), against a real `novalog` on the
//! embedded log, through HTTP, with keystone tokens:
//!
//! - request bodies generated from the document's schemas (per
//!   microversion range): a valid body, then mutations (boundary and
//!   out-of-range numbers, wrong types, nulls, missing required fields,
//!   huge and unicode strings, extra fields, non-objects);
//! - path parameters: real ids (the caller's, another project's), unknown
//!   ids, garbage;
//! - without and with the microversion header at several versions;
//! - as every role: admin, member, reader, another project's member, no
//!   token.
//!
//! Every answer must come within 5 s, with a status below 500, on a
//! connection that was not dropped; a number outside a schema's bounds
//! must be a 400; and afterwards tokens and server lists still work, no
//! service has stopped, and no server is stuck in a task.
//!
//! The seed is fixed, so a failure reproduces; the number of requests is
//! bounded (about 2,000).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use novalog_all_in_one::System;
use novalog_runtime::config::IdentityUser;
use novalog_schemas::quota::QuotaDefaults;
use novalog_tests::{demo_image_id, test_config};
use reqwest::Method;
use serde_json::{Map, Value, json};

/// No answer may take longer.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);
const SEED: u64 = 0x9e37_79b9_7f4a_7c15;

/// splitmix64: small, deterministic, good enough to pick cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Role {
    Admin,
    Member,
    Reader,
    OtherMember,
    NoToken,
}

const ROLES: [Role; 5] = [
    Role::Admin,
    Role::Member,
    Role::Reader,
    Role::OtherMember,
    Role::NoToken,
];

/// A running novalog with keystone tokens for every role.
struct Cloud {
    system: System,
    base: String,
    http: reqwest::Client,
    tokens: BTreeMap<Role, String>,
    /// Project ids by user name.
    projects: BTreeMap<String, String>,
    /// User ids by user name.
    users: BTreeMap<String, String>,
}

/// One answer, or why there was none.
#[derive(Debug)]
enum Answer {
    Status(u16, Value),
    Failed(String),
}

fn user(name: &str, project: &str, role: &str) -> IdentityUser {
    IdentityUser {
        name: name.into(),
        password: format!("{name}-secret"),
        project: project.into(),
        roles: vec![role.into()],
    }
}

impl Cloud {
    async fn start(dir: &std::path::Path) -> Cloud {
        let mut cfg = test_config(dir);
        cfg.api.auth_strategy = "keystone".into();
        cfg.identity.password_hash_rounds = 1_000;
        cfg.identity.users = vec![
            user("admin", "admin", "admin"),
            user("alice", "p1", "member"),
            user("rita", "p1", "reader"),
            user("bob", "p2", "member"),
        ];
        // Nova's default quotas bound what generated creates can ask for.
        cfg.quota = QuotaDefaults::default();
        let system = System::start(&cfg, None).await.unwrap();
        let base = format!("http://{}", system.api_addr);
        let http = reqwest::Client::builder()
            .timeout(ANSWER_WITHIN)
            .build()
            .unwrap();
        let mut cloud = Cloud {
            system,
            base,
            http,
            tokens: BTreeMap::new(),
            projects: BTreeMap::new(),
            users: BTreeMap::new(),
        };
        for (role, name, project) in [
            (Role::Admin, "admin", "admin"),
            (Role::Member, "alice", "p1"),
            (Role::Reader, "rita", "p1"),
            (Role::OtherMember, "bob", "p2"),
        ] {
            let (token, body) = cloud.token(name, project).await.unwrap();
            cloud.tokens.insert(role, token);
            cloud.projects.insert(
                name.into(),
                body["token"]["project"]["id"].as_str().unwrap().into(),
            );
            cloud.users.insert(
                name.into(),
                body["token"]["user"]["id"].as_str().unwrap().into(),
            );
        }
        cloud
    }

    async fn token(&self, name: &str, project: &str) -> Result<(String, Value), String> {
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": name, "domain": {"id": "default"}, "password": format!("{name}-secret")}}},
            "scope": {"project": {"name": project, "domain": {"id": "default"}}},
        }});
        let resp = self
            .http
            .post(format!("{}/identity/v3/auth/tokens", self.base))
            .json(&body)
            .send()
            .await
            .map_err(|e| format!("token for {name}: {e}"))?;
        if resp.status() != 201 {
            return Err(format!("token for {name}: {}", resp.status()));
        }
        let token = resp.headers()["x-subject-token"]
            .to_str()
            .unwrap()
            .to_owned();
        Ok((token, resp.json().await.map_err(|e| e.to_string())?))
    }

    async fn send(
        &self,
        role: Role,
        method: &Method,
        path: &str,
        version: Option<&str>,
        body: Option<RawBody>,
    ) -> Answer {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(token) = self.tokens.get(&role) {
            req = req.header("X-Auth-Token", token);
        }
        if let Some(v) = version {
            req = req.header("OpenStack-API-Version", v);
        }
        match body {
            Some(RawBody::Json(b, content_type)) => {
                req = req
                    .header("Content-Type", content_type)
                    .body(serde_json::to_vec(&b).unwrap());
            }
            Some(RawBody::Bytes(b, content_type)) => {
                req = req.header("Content-Type", content_type).body(b);
            }
            None => {}
        }
        match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                match resp.bytes().await {
                    Ok(bytes) => Answer::Status(
                        status,
                        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                    ),
                    Err(e) => Answer::Failed(format!("body of a {status} lost: {e}")),
                }
            }
            Err(e) if e.is_timeout() => {
                Answer::Failed(format!("no answer within {ANSWER_WITHIN:?}"))
            }
            Err(e) => Answer::Failed(format!("connection failed: {e:?}")),
        }
    }

    /// As `role`: a request that must succeed (fixtures).
    async fn must(
        &self,
        role: Role,
        method: Method,
        path: &str,
        version: Option<&str>,
        body: Option<Value>,
    ) -> Value {
        let ct = "application/json";
        match self
            .send(
                role,
                &method,
                path,
                version,
                body.map(|b| RawBody::Json(b, ct)),
            )
            .await
        {
            Answer::Status(s, v) if s < 300 => v,
            other => panic!("fixture {method} {path}: {other:?}"),
        }
    }
}

enum RawBody {
    Json(Value, &'static str),
    Bytes(Vec<u8>, &'static str),
}

/// Ids the fuzzer puts into paths.
struct Fixtures {
    by_param: BTreeMap<&'static str, Vec<String>>,
}

const UNKNOWN_UUID: &str = "00000000-0000-4000-8000-000000000000";

async fn wait_active(cloud: &Cloud, role: Role, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = cloud
            .must(
                role,
                Method::GET,
                &format!("/v2.1/servers/{id}"),
                None,
                None,
            )
            .await;
        if v["server"]["status"] == "ACTIVE" {
            return;
        }
        assert!(Instant::now() < deadline, "server {id} not ACTIVE: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn fixtures(cloud: &Cloud) -> Fixtures {
    let image = demo_image_id().to_string();
    let server = |name: &str| json!({"server": {"name": name, "flavorRef": "1", "imageRef": image, "networks": "none"}});
    let s1 = cloud
        .must(
            Role::Member,
            Method::POST,
            "/v2.1/servers",
            None,
            Some(server("fz-alice")),
        )
        .await["server"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let s2 = cloud
        .must(
            Role::OtherMember,
            Method::POST,
            "/v2.1/servers",
            None,
            Some(server("fz-bob")),
        )
        .await["server"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_active(cloud, Role::Member, &s1).await;
    wait_active(cloud, Role::OtherMember, &s2).await;
    let v226 = Some("compute 2.26");
    cloud
        .must(
            Role::Member,
            Method::PUT,
            &format!("/v2.1/servers/{s1}/metadata/k"),
            None,
            Some(json!({"meta": {"k": "v"}})),
        )
        .await;
    cloud
        .must(
            Role::Member,
            Method::PUT,
            &format!("/v2.1/servers/{s1}/tags/t"),
            v226,
            None,
        )
        .await;
    cloud
        .must(
            Role::Member,
            Method::POST,
            "/v2.1/os-keypairs",
            None,
            Some(json!({"keypair": {"name": "fz-key"}})),
        )
        .await;
    cloud
        .must(
            Role::OtherMember,
            Method::POST,
            "/v2.1/os-keypairs",
            None,
            Some(json!({"keypair": {"name": "fz-key-bob"}})),
        )
        .await;
    let group = cloud
        .must(
            Role::Member,
            Method::POST,
            "/v2.1/os-server-groups",
            None,
            Some(json!({"server_group": {"name": "fz-group", "policies": ["anti-affinity"]}})),
        )
        .await["server_group"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let aggregate = cloud
        .must(
            Role::Admin,
            Method::POST,
            "/v2.1/os-aggregates",
            None,
            Some(json!({"aggregate": {"name": "fz-agg"}})),
        )
        .await["aggregate"]["id"]
        .to_string();
    cloud
        .must(
            Role::Admin,
            Method::POST,
            "/v2.1/flavors/1/os-extra_specs",
            None,
            Some(json!({"extra_specs": {"hw:cpu_policy": "shared"}})),
        )
        .await;
    let own_image = cloud
        .must(
            Role::Member,
            Method::POST,
            "/image/v2/images",
            None,
            Some(json!({"name": "fz-image", "disk_format": "qcow2", "container_format": "bare"})),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A second one for Nova's image proxy rows: the Glance rows delete
    // the first.
    let kept_image = cloud
        .must(
            Role::Member,
            Method::POST,
            "/image/v2/images",
            None,
            Some(json!({"name": "fz-kept", "disk_format": "qcow2", "container_format": "bare"})),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let services = cloud
        .must(
            Role::Admin,
            Method::GET,
            "/v2.1/os-services",
            Some("compute 2.53"),
            None,
        )
        .await;
    let service = services["services"][0]["id"]
        .as_str()
        .unwrap_or(UNKNOWN_UUID)
        .to_owned();
    let hypervisors = cloud
        .must(Role::Admin, Method::GET, "/v2.1/os-hypervisors", None, None)
        .await;
    let hypervisor = hypervisors["hypervisors"][0]["id"].to_string();
    let actions = cloud
        .must(
            Role::Member,
            Method::GET,
            &format!("/v2.1/servers/{s1}/os-instance-actions"),
            None,
            None,
        )
        .await;
    let request_id = actions["instanceActions"][0]["request_id"]
        .as_str()
        .unwrap_or("req-none")
        .to_owned();
    let p = |n: &str| cloud.projects[n].clone();
    let u = |n: &str| cloud.users[n].clone();
    let garbage = "%ff%fe".to_owned();
    let mut by_param: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    let mut put = |k: &'static str, v: Vec<String>| {
        by_param.insert(k, v);
    };
    put(
        "servers",
        vec![s1.clone(), s2, UNKNOWN_UUID.into(), "not-a-uuid".into()],
    );
    put(
        "flavors",
        vec!["1".into(), "no-such-flavor".into(), "é🙂".into()],
    );
    put(
        "os-extra_specs",
        vec!["hw:cpu_policy".into(), "nokey".into(), "x".repeat(300)],
    );
    put("metadata", vec!["k".into(), "nokey".into(), "ü.é ".into()]);
    put("tags", vec!["t".into(), "nope".into(), "a,b".into()]);
    put(
        "os-instance-actions",
        vec![request_id, "req-unknown".into()],
    );
    put(
        "migrations",
        vec!["1".into(), "99999999999999999999999".into(), "x".into()],
    );
    put(
        "os-quota-sets",
        vec![p("alice"), p("bob"), "garbage".into()],
    );
    put(
        "os-server-groups",
        vec![group, UNKNOWN_UUID.into(), "x".into()],
    );
    put(
        "os-aggregates",
        vec![
            aggregate,
            "99999999999999999999".into(),
            "-1".into(),
            "abc".into(),
        ],
    );
    put(
        "os-keypairs",
        vec!["fz-key".into(), "fz-key-bob".into(), "nokey".into()],
    );
    put(
        "os-services",
        vec![
            service,
            UNKNOWN_UUID.into(),
            "1".into(),
            "99999999999999999999".into(),
        ],
    );
    put(
        "os-hypervisors",
        vec![
            hypervisor,
            "99999999999999999999".into(),
            "abc".into(),
            UNKNOWN_UUID.into(),
        ],
    );
    put(
        "images",
        vec![
            image,
            own_image,
            UNKNOWN_UUID.into(),
            "x".into(),
            kept_image,
        ],
    );
    put("projects", vec![p("alice"), p("bob"), "nope".into()]);
    put("users", vec![u("alice"), u("bob"), "nope".into()]);
    put("garbage", vec![garbage]);
    Fixtures { by_param }
}

/// The concrete paths to try for a templated path: every `{param}` takes
/// the values the segment before it names.
fn concrete_paths(template: &str, f: &Fixtures, rng: &mut Rng, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let segs: Vec<&str> = template.split('/').collect();
            let mut out = Vec::new();
            for (j, seg) in segs.iter().enumerate() {
                if seg.starts_with('{') {
                    let before = segs[j - 1];
                    let values = f
                        .by_param
                        .get(before)
                        .unwrap_or_else(|| &f.by_param["garbage"]);
                    // The first variant is the first (owned, real) value;
                    // later ones are picked.
                    let v = if i == 0 { &values[0] } else { rng.pick(values) };
                    out.push(encode(v));
                } else {
                    out.push((*seg).to_owned());
                }
            }
            out.join("/")
        })
        .collect()
}

fn encode(s: &str) -> String {
    if s.starts_with('%') {
        return s.to_owned();
    }
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ---- bodies from schemas ----

fn types(schema: &Value) -> Vec<String> {
    match &schema["type"] {
        Value::String(t) => vec![t.clone()],
        Value::Array(ts) => ts
            .iter()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// A string the schema's pattern, format and lengths accept.
fn valid_string(schema: &Value, rng: &mut Rng) -> String {
    let min = schema["minLength"].as_u64().unwrap_or(0) as usize;
    if let Some(f) = schema["format"].as_str() {
        return match f {
            "uuid" => UNKNOWN_UUID.into(),
            "ipv4" => "192.0.2.7".into(),
            "ipv6" => "2001:db8::7".into(),
            _ => "x".into(),
        };
    }
    let base = match schema["pattern"].as_str() {
        Some("^[0-9]*$") | Some("^-?[0-9]+$") => {
            let lo = schema["minimum"].as_i64().unwrap_or(0).max(0);
            return (lo + rng.below(2) as i64).to_string();
        }
        Some(p) if p.starts_with("^[0-9]+(") => return "1.0".into(),
        _ => format!("fz{}", rng.below(1000)),
    };
    let mut s = base;
    while s.chars().count() < min {
        s.push('x');
    }
    s
}

/// A value `schema` accepts (the handlers may still refuse it for what a
/// schema cannot say: a flavor that does not exist, a state).
fn valid(schema: &Value, rng: &mut Rng) -> Value {
    if let Some(Value::Array(options)) = schema.get("enum") {
        return rng.pick(options).clone();
    }
    let ts = types(schema);
    let t = if ts.is_empty() {
        if schema.get("properties").is_some() {
            "object".to_owned()
        } else {
            "null".to_owned()
        }
    } else {
        // Prefer the first listed type most of the time.
        if rng.chance(80) {
            ts[0].clone()
        } else {
            rng.pick(&ts).clone()
        }
    };
    match t.as_str() {
        "object" => valid_object(schema, rng),
        "array" => {
            let min = schema["minItems"].as_u64().unwrap_or(0) as usize;
            let max = schema["maxItems"].as_u64().unwrap_or(3).min(3) as usize;
            let n = min.max(rng.below(max + 1).min(max));
            let mut items: Vec<Value> = Vec::new();
            for _ in 0..n {
                let item = valid(&schema["items"], rng);
                if !items.contains(&item) {
                    items.push(item);
                }
            }
            Value::Array(items)
        }
        "string" => Value::String(valid_string(schema, rng)),
        "integer" => {
            let lo = schema["minimum"].as_i64().unwrap_or(0);
            json!(lo.max(0) + rng.below(3) as i64)
        }
        "number" => json!(1.5),
        "boolean" => json!(rng.chance(50)),
        _ => Value::Null,
    }
}

fn valid_object(schema: &Value, rng: &mut Rng) -> Value {
    let props = schema["properties"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut out = Map::new();
    // An action body (no type, no required): exactly one of its keys.
    if schema.get("type").is_none() && !props.is_empty() {
        let keys: Vec<&String> = props.keys().collect();
        let k = rng.pick(&keys);
        out.insert((*k).clone(), valid(&props[*k], rng));
        return Value::Object(out);
    }
    for (k, sub) in &props {
        if required.contains(&k.as_str()) || rng.chance(40) {
            out.insert(k.clone(), valid(sub, rng));
        }
    }
    if let Some(patterns) = schema["patternProperties"].as_object()
        && let Some((_, sub)) = patterns.iter().next()
        && rng.chance(60)
    {
        out.insert(format!("key{}", rng.below(10)), valid(sub, rng));
    }
    if let Some(min) = schema["minProperties"].as_u64()
        && (out.len() as u64) < min
        && let Some((_, sub)) = schema["patternProperties"]
            .as_object()
            .and_then(|p| p.iter().next())
    {
        out.insert("key0".into(), valid(sub, rng));
    }
    Value::Object(out)
}

/// Every (JSON pointer, schema) of the properties `body` has.
fn fields(schema: &Value, body: &Value, pointer: String, out: &mut Vec<(String, Value)>) {
    let Value::Object(obj) = body else { return };
    for (k, v) in obj {
        let sub = schema["properties"].get(k).cloned().or_else(|| {
            schema["patternProperties"]
                .as_object()
                .and_then(|p| p.values().next().cloned())
        });
        let Some(sub) = sub else { continue };
        let p = format!("{pointer}/{}", k.replace('~', "~0").replace('/', "~1"));
        out.push((p.clone(), sub.clone()));
        fields(&sub, v, p, out);
    }
}

/// Out-of-range numbers for a field with bounds (each must be a 400).
fn out_of_range(schema: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    if let Some(max) = schema["maximum"].as_i64() {
        out.push(json!(max + 1));
        out.push(json!((max + 1).to_string()));
        out.push(json!(u64::MAX));
        out.push(json!("99999999999999999999999999"));
    }
    if let Some(max) = schema["maximum"].as_f64()
        && schema["maximum"].is_f64()
    {
        out.push(json!(max * 10.0));
    }
    if let Some(min) = schema["minimum"].as_i64() {
        out.push(json!(min - 1));
        out.push(json!(i64::MIN));
    }
    out
}

/// A mutation of a valid body: the mutated body and whether the schema
/// must refuse it (a 400 then, whoever asks).
fn mutate(schema: &Value, body: &Value, rng: &mut Rng) -> (Value, &'static str) {
    let mut fs = Vec::new();
    fields(schema, body, String::new(), &mut fs);
    let mut b = body.clone();
    let kind = rng.below(11);
    if fs.is_empty() || kind >= 9 {
        let whole = [
            json!(null),
            json!([]),
            json!("body"),
            json!(0),
            json!({}),
            json!({"fuzz_extra": 1}),
            deep(200),
        ];
        return (rng.pick(&whole).clone(), "whole body");
    }
    let (pointer, sub) = rng.pick(&fs).clone();
    let Some(slot) = b.pointer_mut(&pointer) else {
        return (b, "none");
    };
    let what = match kind {
        0 => {
            let bounds = out_of_range(&sub);
            if bounds.is_empty() {
                *slot = json!(2_147_483_648u64);
                "big number"
            } else {
                *slot = rng.pick(&bounds).clone();
                "out of range"
            }
        }
        1 => {
            *slot = rng
                .pick(&[
                    json!("x"),
                    json!(12345),
                    json!(true),
                    json!([]),
                    json!({}),
                    json!(1.5),
                ])
                .clone();
            "wrong type"
        }
        2 => {
            *slot = Value::Null;
            "null"
        }
        3 => {
            *slot = json!("A".repeat(70_000));
            "huge string"
        }
        4 => {
            *slot = json!("é🙂\u{202e}\u{0}\u{7f}ﾟ･✿ヾ╲(｡◕‿◕｡)╱✿･ﾟ");
            "unicode string"
        }
        5 => {
            // Remove the field (a required one, if it was).
            let (parent, key) = pointer.rsplit_once('/').unwrap();
            if let Some(Value::Object(m)) = b.pointer_mut(parent) {
                m.remove(&key.replace("~1", "/").replace("~0", "~"));
            }
            "missing field"
        }
        6 => {
            let (parent, _) = pointer.rsplit_once('/').unwrap();
            if let Some(Value::Object(m)) = b.pointer_mut(parent) {
                m.insert("fuzz_extra".into(), json!("x"));
            }
            "extra field"
        }
        7 => {
            *slot = json!(-1);
            "minus one"
        }
        _ => {
            *slot = json!(["a", 1, null, {"b": []}]);
            "array"
        }
    };
    (b, what)
}

fn deep(n: usize) -> Value {
    let mut v = json!(1);
    for _ in 0..n {
        v = json!([v]);
    }
    v
}

/// The schema of an operation's JSON body at `version`.
fn body_schema(op: &Value, version: Option<&str>) -> Option<Value> {
    let body = op.get("requestBody")?;
    if let Some(ranges) = body["x-openstack-microversions"].as_array() {
        let v = version.map_or((2, 1), parse_version);
        return ranges
            .iter()
            .find(|r| {
                let lo = parse_version(r["min_version"].as_str().unwrap());
                let hi = parse_version(r["max_version"].as_str().unwrap());
                lo <= v && v <= hi
            })
            .map(|r| r["schema"].clone());
    }
    body["content"]["application/json"]["schema"]
        .as_object()
        .map(|s| Value::Object(s.clone()))
}

fn parse_version(s: &str) -> (u32, u32) {
    let s = s.trim_start_matches("compute ");
    let (a, b) = s.split_once('.').unwrap_or(("2", "1"));
    (a.parse().unwrap_or(2), b.parse().unwrap_or(1))
}

// ---- query strings from the document ----

/// The query parameters of `op` read at `version` (each parameter's
/// `x-openstack-microversions`).
fn query_params(op: &Value, version: (u32, u32)) -> Vec<Value> {
    op["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["in"] == "query")
        .filter(|p| {
            let r = &p["x-openstack-microversions"];
            let lo = parse_version(r["min_version"].as_str().unwrap_or("2.1"));
            let hi = r["max_version"]
                .as_str()
                .map_or((u32::MAX, u32::MAX), parse_version);
            lo <= version && version <= hi
        })
        .cloned()
        .collect()
}

/// The microversion from which `op` refuses an unknown query parameter.
fn strict_from(op: &Value) -> Option<(u32, u32)> {
    op["x-openstack-unknown-query-parameters"]["from_version"]
        .as_str()
        .map(parse_version)
}

/// A value the parameter's schema accepts.
fn valid_query_value(schema: &Value, rng: &mut Rng) -> String {
    if let Some(values) = schema["enum"].as_array() {
        return rng.pick(values).as_str().unwrap_or("").to_owned();
    }
    let long = "A".repeat(5000);
    let pick: &[&str] = match (schema["type"].as_str(), schema["format"].as_str()) {
        (Some("integer"), _) => &["0", "1", "2", "1000", "99999999999999999999"],
        (_, Some("date-time")) => &[
            "2020-01-01T00:00:00Z",
            "2020-01-01T00:00:00",
            "2999-12-31T23:59:59.999999Z",
        ],
        (_, Some("regex")) => &["^fuzz", "(", ".*", "[", "é🙂"],
        _ => &[
            "fuzz",
            "",
            "None",
            "é🙂\u{202e}\u{0}",
            &long,
            UNKNOWN_UUID,
            "%ff%fe",
        ],
    };
    rng.pick(pick).to_string()
}

/// Values the parameter's schema refuses (none for a free string).
fn invalid_query_values(schema: &Value) -> Vec<String> {
    let bad: &[&str] = if schema["enum"].is_array() {
        &["sideways", "", "%ff%fe"]
    } else {
        match (schema["type"].as_str(), schema["format"].as_str()) {
            (Some("integer"), _) if schema["minimum"] == 0 => &["-1", "abc", "1.5", "", "%ff"],
            (Some("integer"), _) => &["abc", "1.5", "", "%ff"],
            (_, Some("date-time")) => &["yesterday", "2020-13-45T99:00:00Z", "%ff%fe"],
            (_, Some("uuid")) => &["not-a-uuid", "%ff%fe"],
            _ => &[],
        }
    };
    let allowed = schema["enum"].as_array();
    bad.iter()
        .filter(|b| allowed.is_none_or(|e| !e.iter().any(|v| v == **b)))
        .map(|b| b.to_string())
        .collect()
}

fn query_string(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// One query for `op` at `version`, generated from its documented
/// parameters: valid values, a refused value, an unknown parameter, or
/// garbage; and what it was.
fn generated_query(op: &Value, version: (u32, u32), rng: &mut Rng) -> (String, &'static str) {
    let params = query_params(op, version);
    let valid = |rng: &mut Rng, n: usize| -> Vec<(String, String)> {
        (0..n)
            .filter(|_| !params.is_empty())
            .map(|_| {
                let p = rng.pick(&params);
                (
                    p["name"].as_str().unwrap().to_owned(),
                    valid_query_value(&p["schema"], rng),
                )
            })
            .collect()
    };
    match rng.below(5) {
        0 | 1 if !params.is_empty() => {
            let n = 1 + rng.below(3);
            (query_string(&valid(rng, n)), "valid query")
        }
        2 if !params.is_empty() => {
            let p = rng.pick(&params).clone();
            let bad = invalid_query_values(&p["schema"]);
            let mut pairs = valid(rng, 1);
            match bad.is_empty() {
                true => (query_string(&pairs), "valid query"),
                false => {
                    let v = rng.pick(&bad).clone();
                    pairs.push((p["name"].as_str().unwrap().to_owned(), v));
                    (query_string(&pairs), "refused value")
                }
            }
        }
        3 => {
            let mut pairs = valid(rng, 1);
            pairs.push(("fuzz_extra".into(), "1".into()));
            (query_string(&pairs), "unknown parameter")
        }
        _ => (
            rng.pick(&[
                "%ff%fe=%00",
                "limit",
                "&&&=&=",
                "limit=1&limit=2&marker=%ff",
                "_private=1",
            ])
            .to_string(),
            "garbage",
        ),
    }
}

struct Report {
    sent: usize,
    failures: Vec<String>,
    /// How many answers had each status.
    by_status: BTreeMap<u16, usize>,
}

impl Report {
    fn check(&mut self, what: &str, answer: &Answer) {
        self.sent += 1;
        match answer {
            Answer::Status(s, _) if *s < 500 => {
                *self.by_status.entry(*s).or_default() += 1;
            }
            Answer::Status(s, body) => {
                self.failures.push(format!("{what}: {s} {body}"));
            }
            Answer::Failed(why) => self.failures.push(format!("{what}: {why}")),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_every_role_survives_generated_and_hostile_requests() {
    let dir = tempfile::tempdir().unwrap();
    let mut cloud = Cloud::start(dir.path()).await;
    let doc = match cloud
        .send(Role::NoToken, &Method::GET, "/openapi.json", None, None)
        .await
    {
        Answer::Status(200, doc) => doc,
        other => panic!("openapi.json: {other:?}"),
    };
    let f = fixtures(&cloud).await;
    let max = doc["info"]["version"]
        .as_str()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_owned();
    let max_minor: u32 = max.split('.').nth(1).unwrap().parse().unwrap();
    let mut rng = Rng(SEED);
    let mut report = Report {
        sent: 0,
        failures: Vec::new(),
        by_status: BTreeMap::new(),
    };
    let started = Instant::now();

    // Deletes last, so the fixtures serve every other operation first.
    let mut ops: Vec<(String, String, Value)> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            ops.push((method.clone(), path.clone(), op.clone()));
        }
    }
    ops.sort_by_key(|(m, _, _)| m == "delete");
    assert!(ops.len() > 90, "{} operations documented", ops.len());

    for (method_name, template, op) in &ops {
        let method = Method::from_bytes(method_name.to_ascii_uppercase().as_bytes()).unwrap();
        let compute = template.starts_with("/v2.1");
        for role in ROLES {
            let n_paths = if template.contains('{') { 2 } else { 1 };
            for path in concrete_paths(template, &f, &mut rng, n_paths) {
                // Deletes of real objects would take the fixtures away
                // from the roles after; they get unknown ids only, except
                // as the other project's member (which must not work).
                if method == Method::DELETE
                    && template.contains('{')
                    && role != Role::OtherMember
                    && path == concrete_paths(template, &f, &mut Rng(0), 1)[0]
                {
                    continue;
                }
                let versions: Vec<Option<String>> = if compute {
                    vec![
                        None,
                        Some(format!(
                            "compute 2.{}",
                            2 + rng.below(max_minor as usize - 1)
                        )),
                        Some(
                            rng.pick(&[
                                "compute latest",
                                "compute 2.1",
                                "compute 2.999",
                                "compute x.y",
                            ])
                            .to_string(),
                        ),
                    ]
                } else {
                    vec![None]
                };
                for version in versions {
                    let what = |extra: &str| {
                        format!(
                            "{role:?} {method} {path} [{}] {extra}",
                            version.as_deref().unwrap_or("-")
                        )
                    };
                    let schema = body_schema(op, version.as_deref());
                    let content = op["requestBody"]["content"].as_object();
                    let media = content.and_then(|c| c.keys().next().cloned());
                    let raw = |v: Value| -> RawBody {
                        match media.as_deref() {
                            Some("application/octet-stream") => RawBody::Bytes(
                                v.to_string().into_bytes(),
                                "application/octet-stream",
                            ),
                            Some(m) if m.contains("patch") => RawBody::Json(v, crate_patch_media()),
                            _ => RawBody::Json(v, "application/json"),
                        }
                    };
                    let Some(schema) = schema else {
                        let body = op.get("requestBody").map(|_| raw(json!({"fuzz": "é"})));
                        let answer = cloud
                            .send(role, &method, &path, version.as_deref(), body)
                            .await;
                        report.check(&what(""), &answer);
                        if method == Method::GET {
                            // Query strings from the documented parameters.
                            let v = version.as_deref().map_or((2, 1), parse_version);
                            let (q, kind) = generated_query(op, v, &mut rng);
                            let answer = cloud
                                .send(
                                    role,
                                    &method,
                                    &format!("{path}?{q}"),
                                    version.as_deref(),
                                    None,
                                )
                                .await;
                            report.check(&what(&format!("{kind} ?{q}")), &answer);
                        }
                        continue;
                    };
                    let body = valid(&schema, &mut rng);
                    let answer = cloud
                        .send(
                            role,
                            &method,
                            &path,
                            version.as_deref(),
                            Some(raw(body.clone())),
                        )
                        .await;
                    report.check(&what(&format!("valid {body}")), &answer);
                    let mutations = if matches!(role, Role::Admin | Role::Member) {
                        3
                    } else {
                        1
                    };
                    for _ in 0..mutations {
                        let (m, kind) = mutate(&schema, &body, &mut rng);
                        let shown: String = m.to_string().chars().take(300).collect();
                        let answer = cloud
                            .send(role, &method, &path, version.as_deref(), Some(raw(m)))
                            .await;
                        report.check(&what(&format!("{kind} {shown}")), &answer);
                    }
                }
            }
        }
    }

    // Every bounded number of every schema, out of range: 400, as admin
    // (who passes every policy), at the first version of each range.
    for (method_name, template, op) in &ops {
        let Some(ranges) = op["requestBody"]["x-openstack-microversions"].as_array() else {
            continue;
        };
        let method = Method::from_bytes(method_name.to_ascii_uppercase().as_bytes()).unwrap();
        let path = concrete_paths(template, &f, &mut Rng(0), 1).remove(0);
        for range in ranges {
            let version = format!("compute {}", range["min_version"].as_str().unwrap());
            let schema = &range["schema"];
            let mut inner = Rng(SEED ^ 1);
            // A body with every optional field present, to reach each bound.
            let body = full(schema, &mut inner);
            let mut fs = Vec::new();
            fields(schema, &body, String::new(), &mut fs);
            for (pointer, sub) in fs {
                for bad in out_of_range(&sub) {
                    let mut b = body.clone();
                    *b.pointer_mut(&pointer).unwrap() = bad.clone();
                    let answer = cloud
                        .send(
                            Role::Admin,
                            &method,
                            &path,
                            Some(&version),
                            Some(RawBody::Json(b, "application/json")),
                        )
                        .await;
                    let what = format!("Admin {method} {path} [{version}] {pointer} = {bad}");
                    report.check(&what, &answer);
                    if let Answer::Status(s, v) = &answer
                        && *s != 400
                    {
                        report.failures.push(format!(
                            "{what}: {s} (an out-of-range number must be 400) {v}"
                        ));
                    }
                }
            }
        }
    }

    // Every documented query parameter, as admin at the first and the
    // newest microversion: each value its schema refuses is a 400; an
    // unknown parameter is ignored (the same answer as without it) before
    // the route turns strict and a 400 from then on.
    let mut queried = 0;
    for (method_name, template, op) in &ops {
        if method_name != "get" || !template.starts_with("/v2.1") {
            continue;
        }
        let path = concrete_paths(template, &f, &mut Rng(0), 1).remove(0);
        for version in ["2.1".to_owned(), max.clone()] {
            let v = parse_version(&version);
            let header = format!("compute {version}");
            let get = |q: String| {
                let url = if q.is_empty() {
                    path.clone()
                } else {
                    format!("{path}?{q}")
                };
                let cloud = &cloud;
                let header = header.clone();
                async move {
                    cloud
                        .send(Role::Admin, &Method::GET, &url, Some(&header), None)
                        .await
                }
            };
            let what = |q: &str| format!("Admin GET {path}?{q} [{header}]");
            let baseline = get(String::new()).await;
            report.check(&what(""), &baseline);
            for p in query_params(op, v) {
                let name = p["name"].as_str().unwrap().to_owned();
                queried += 1;
                for bad in invalid_query_values(&p["schema"]) {
                    let q = query_string(&[(name.clone(), bad)]);
                    let answer = get(q.clone()).await;
                    report.check(&what(&q), &answer);
                    if let Answer::Status(s, body) = &answer
                        && *s != 400
                    {
                        report.failures.push(format!(
                            "{}: {s} (a value the documented schema refuses must be 400) {body}",
                            what(&q)
                        ));
                    }
                }
            }
            let q = "fuzz_extra=1".to_owned();
            let answer = get(q.clone()).await;
            report.check(&what(&q), &answer);
            let strict = strict_from(op).is_some_and(|from| v >= from);
            let status = |a: &Answer| match a {
                Answer::Status(s, _) => Some(*s),
                Answer::Failed(_) => None,
            };
            let expected = if strict { Some(400) } else { status(&baseline) };
            if status(&answer) != expected {
                report.failures.push(format!(
                    "{}: {answer:?}, expected {expected:?} (unknown query parameters {} at this version)",
                    what(&q),
                    if strict { "refused" } else { "ignored" }
                ));
            }
        }
    }
    // The image list's documented parameters, as Glance checks them.
    let images = &doc["paths"]["/image/v2/images"]["get"];
    for p in query_params(images, (2, 1)) {
        let name = p["name"].as_str().unwrap().to_owned();
        queried += 1;
        for bad in invalid_query_values(&p["schema"]) {
            let path = format!("/image/v2/images?{}", query_string(&[(name.clone(), bad)]));
            let answer = cloud
                .send(Role::Admin, &Method::GET, &path, None, None)
                .await;
            report.check(&format!("Admin GET {path}"), &answer);
            if let Answer::Status(s, body) = &answer
                && *s != 400
            {
                report.failures.push(format!(
                    "Admin GET {path}: {s} (a value the documented schema refuses must be 400) {body}"
                ));
            }
        }
    }
    assert!(queried > 60, "only {queried} documented query parameters");

    let elapsed = started.elapsed();
    eprintln!(
        "fuzz: {} requests in {elapsed:?}, by status: {:?}",
        report.sent, report.by_status
    );
    // The fuzz reached the handlers, not just the edges.
    let count = |lo: u16, hi: u16| {
        report
            .by_status
            .range(lo..hi)
            .map(|(_, n)| n)
            .sum::<usize>()
    };
    assert!(
        count(200, 300) > 200,
        "too few successes: {:?}",
        report.by_status
    );
    assert!(
        count(400, 401) > 200,
        "too few 400s: {:?}",
        report.by_status
    );

    // Healthy afterwards: tokens, lists, no service stopped, no stuck server.
    let exited = tokio::time::timeout(Duration::from_millis(100), cloud.system.any_exited()).await;
    assert!(
        exited.is_err(),
        "a service stopped during the fuzz: {exited:?}"
    );
    let (token, _) = cloud
        .token("alice", "p1")
        .await
        .expect("alice still gets a token");
    cloud.tokens.insert(Role::Member, token);
    // Not the other project's member: the administrator's fuzzed identity
    // writes (disable a user, set a password) may legitimately lock bob out.
    for role in [Role::Admin, Role::Member, Role::Reader] {
        match cloud
            .send(role, &Method::GET, "/v2.1/servers", None, None)
            .await
        {
            Answer::Status(200, _) => {}
            other => report
                .failures
                .push(format!("server list as {role:?} afterwards: {other:?}")),
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let list = cloud
            .must(
                Role::Admin,
                Method::GET,
                "/v2.1/servers/detail?all_tenants=1",
                None,
                None,
            )
            .await;
        let busy: Vec<String> = list["servers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| !s["OS-EXT-STS:task_state"].is_null() || s["status"] == "BUILD")
            .map(|s| format!("{} {} {}", s["id"], s["status"], s["OS-EXT-STS:task_state"]))
            .collect();
        if busy.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            report
                .failures
                .push(format!("servers stuck after the fuzz: {busy:?}"));
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        report.failures.is_empty(),
        "{} of {} requests failed:\n{}",
        report.failures.len(),
        report.sent,
        report.failures.join("\n")
    );
    cloud.system.stop().await.unwrap();
}

fn crate_patch_media() -> &'static str {
    "application/openstack-images-v2.1-json-patch"
}

/// A valid body with every optional property present (one level of
/// choice only: action bodies still name one action, the richest).
fn full(schema: &Value, rng: &mut Rng) -> Value {
    if schema.get("type").is_none()
        && let Some(props) = schema["properties"].as_object()
    {
        // An action body: the action with the most bounded fields.
        let best = props
            .iter()
            .max_by_key(|(_, s)| s.to_string().matches("maximum").count())
            .map(|(k, s)| (k.clone(), full(s, rng)));
        return best.map_or(Value::Null, |(k, v)| json!({ k: v }));
    }
    if types(schema).first().map(String::as_str) == Some("object") {
        let mut out = Map::new();
        if let Some(props) = schema["properties"].as_object() {
            for (k, sub) in props {
                out.insert(k.clone(), full(sub, rng));
            }
        }
        if let Some((_, sub)) = schema["patternProperties"]
            .as_object()
            .and_then(|p| p.iter().next())
        {
            out.insert("key0".into(), full(sub, rng));
        }
        return Value::Object(out);
    }
    valid(schema, rng)
}

// ---- policy: every route × role against the services' default policies ----

/// The outcome class a role must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Allowed: neither 401 nor 403; a GET answers 2xx.
    Allowed,
    /// Allowed, but the object may be absent by then (deleted by an
    /// earlier role, or not this caller's): neither 401 nor 403.
    Passes,
    /// 403.
    Forbidden,
    /// 401.
    Unauthorized,
    /// 404: the service hides another project's (or user's) object.
    Hidden,
}

/// `expect` is one letter per role, in the order admin, member (of p1),
/// reader (of p1), member of p2, no token: `A` allowed, `a` passes policy
/// (the object may be gone), `F` 403, `U` 401, `H` 404.
struct PolicyCase {
    method: &'static str,
    /// With `{s1}` (a p1 server), `{p1}`, `{p2}` (project ids) and the
    /// other fixture names of [`policy_fixtures`].
    path: &'static str,
    version: Option<&'static str>,
    body: Option<&'static str>,
    /// The rule, as named in nova/policies, glance/policies or
    /// keystone/common/policies, and its default.
    policy: &'static str,
    expect: &'static str,
}

const fn case(
    method: &'static str,
    path: &'static str,
    version: Option<&'static str>,
    body: Option<&'static str>,
    policy: &'static str,
    expect: &'static str,
) -> PolicyCase {
    PolicyCase {
        method,
        path,
        version,
        body,
        policy,
        expect,
    }
}

const V226: Option<&str> = Some("2.26");

/// Documented operations whose route × role policy is checked by their own
/// table-driven suites, which build the fixtures those policies need
/// (other domains, groups, grants, application credentials; image
/// members in each answer state) rather than by [`POLICY_TABLE`]:
/// - Keystone's admin API: `services/api/src/tests_identity_admin.rs`
///   (every admin route × admin, manager, member and reader);
/// - Glance's members, tags, deactivation, import and member schemas:
///   `services/api/src/tests_image_sharing.rs` (owner, reader, member
///   project, other project and admin).
const POLICY_TESTED_ELSEWHERE: &[(&str, &str)] = &[
    (
        "delete",
        "/identity/v3/OS-INHERIT/domains/{t}/users/{a}/roles/{r}/inherited_to_projects",
    ),
    (
        "get",
        "/identity/v3/OS-INHERIT/domains/{t}/users/{a}/roles/{r}/inherited_to_projects",
    ),
    (
        "put",
        "/identity/v3/OS-INHERIT/domains/{t}/users/{a}/roles/{r}/inherited_to_projects",
    ),
    (
        "get",
        "/identity/v3/OS-INHERIT/domains/{t}/users/{a}/roles/inherited_to_projects",
    ),
    (
        "delete",
        "/identity/v3/OS-INHERIT/domains/{t}/groups/{a}/roles/{r}/inherited_to_projects",
    ),
    (
        "get",
        "/identity/v3/OS-INHERIT/domains/{t}/groups/{a}/roles/{r}/inherited_to_projects",
    ),
    (
        "put",
        "/identity/v3/OS-INHERIT/domains/{t}/groups/{a}/roles/{r}/inherited_to_projects",
    ),
    (
        "get",
        "/identity/v3/OS-INHERIT/domains/{t}/groups/{a}/roles/inherited_to_projects",
    ),
    (
        "delete",
        "/identity/v3/OS-INHERIT/projects/{t}/users/{a}/roles/{r}/inherited_to_projects",
    ),
    (
        "get",
        "/identity/v3/OS-INHERIT/projects/{t}/users/{a}/roles/{r}/inherited_to_projects",
    ),
    (
        "put",
        "/identity/v3/OS-INHERIT/projects/{t}/users/{a}/roles/{r}/inherited_to_projects",
    ),
    (
        "delete",
        "/identity/v3/OS-INHERIT/projects/{t}/groups/{a}/roles/{r}/inherited_to_projects",
    ),
    (
        "get",
        "/identity/v3/OS-INHERIT/projects/{t}/groups/{a}/roles/{r}/inherited_to_projects",
    ),
    (
        "put",
        "/identity/v3/OS-INHERIT/projects/{t}/groups/{a}/roles/{r}/inherited_to_projects",
    ),
    // No token: the user's own password, checked against the old one
    // (`services/api/src/tests_identity_scopes.rs`).
    ("post", "/identity/v3/users/{id}/password"),
    ("get", "/identity/v3/domains"),
    ("post", "/identity/v3/domains"),
    ("delete", "/identity/v3/domains/{id}"),
    ("get", "/identity/v3/domains/{id}"),
    ("patch", "/identity/v3/domains/{id}"),
    ("get", "/identity/v3/domains/{t}/groups/{a}/roles"),
    ("delete", "/identity/v3/domains/{t}/groups/{a}/roles/{r}"),
    ("get", "/identity/v3/domains/{t}/groups/{a}/roles/{r}"),
    ("put", "/identity/v3/domains/{t}/groups/{a}/roles/{r}"),
    ("get", "/identity/v3/domains/{t}/users/{a}/roles"),
    ("delete", "/identity/v3/domains/{t}/users/{a}/roles/{r}"),
    ("get", "/identity/v3/domains/{t}/users/{a}/roles/{r}"),
    ("put", "/identity/v3/domains/{t}/users/{a}/roles/{r}"),
    ("get", "/identity/v3/groups"),
    ("post", "/identity/v3/groups"),
    ("delete", "/identity/v3/groups/{g}/users/{u}"),
    ("get", "/identity/v3/groups/{g}/users/{u}"),
    ("put", "/identity/v3/groups/{g}/users/{u}"),
    ("delete", "/identity/v3/groups/{id}"),
    ("get", "/identity/v3/groups/{id}"),
    ("patch", "/identity/v3/groups/{id}"),
    ("get", "/identity/v3/groups/{id}/users"),
    ("post", "/identity/v3/projects"),
    ("delete", "/identity/v3/projects/{id}"),
    ("patch", "/identity/v3/projects/{id}"),
    ("get", "/identity/v3/projects/{t}/groups/{a}/roles"),
    ("delete", "/identity/v3/projects/{t}/groups/{a}/roles/{r}"),
    ("get", "/identity/v3/projects/{t}/groups/{a}/roles/{r}"),
    ("put", "/identity/v3/projects/{t}/groups/{a}/roles/{r}"),
    ("get", "/identity/v3/projects/{t}/users/{a}/roles"),
    ("delete", "/identity/v3/projects/{t}/users/{a}/roles/{r}"),
    ("get", "/identity/v3/projects/{t}/users/{a}/roles/{r}"),
    ("put", "/identity/v3/projects/{t}/users/{a}/roles/{r}"),
    ("get", "/identity/v3/role_assignments"),
    ("get", "/identity/v3/roles"),
    ("post", "/identity/v3/roles"),
    ("delete", "/identity/v3/roles/{id}"),
    ("get", "/identity/v3/roles/{id}"),
    ("patch", "/identity/v3/roles/{id}"),
    ("post", "/identity/v3/users"),
    ("delete", "/identity/v3/users/{id}"),
    ("patch", "/identity/v3/users/{id}"),
    ("get", "/identity/v3/users/{id}/application_credentials"),
    ("post", "/identity/v3/users/{id}/application_credentials"),
    (
        "delete",
        "/identity/v3/users/{id}/application_credentials/{cred}",
    ),
    (
        "get",
        "/identity/v3/users/{id}/application_credentials/{cred}",
    ),
    ("get", "/identity/v3/users/{id}/groups"),
    ("post", "/image/v2/images/{id}/actions/deactivate"),
    ("post", "/image/v2/images/{id}/actions/reactivate"),
    ("post", "/image/v2/images/{id}/import"),
    ("get", "/image/v2/images/{id}/members"),
    ("post", "/image/v2/images/{id}/members"),
    ("delete", "/image/v2/images/{id}/members/{member}"),
    ("get", "/image/v2/images/{id}/members/{member}"),
    ("put", "/image/v2/images/{id}/members/{member}"),
    ("put", "/image/v2/images/{id}/stage"),
    ("delete", "/image/v2/images/{id}/tags/{tag}"),
    ("put", "/image/v2/images/{id}/tags/{tag}"),
    ("get", "/image/v2/info/import"),
    ("get", "/image/v2/info/stores"),
    ("get", "/image/v2/schemas/member"),
    ("get", "/image/v2/schemas/members"),
];

/// Written from nova/policies/*.py (2024+ defaults: PROJECT_READER_OR_ADMIN
/// reads, PROJECT_MEMBER_OR_ADMIN writes, ADMIN admin APIs; an instance of
/// another project is not found before any policy check), glance/policies
/// (image reads by readers of the owner or public; writes by members of
/// the owner) and keystone/common/policies (users and projects: admin or
/// the subject itself).
const POLICY_TABLE: &[PolicyCase] = &[
    case("GET", "/", None, None, "none (version document)", "AAAAA"),
    case(
        "GET",
        "/v2.1",
        None,
        None,
        "none (version document)",
        "AAAAA",
    ),
    case(
        "GET",
        "/v2.1/",
        None,
        None,
        "none (version document)",
        "AAAAA",
    ),
    case("GET", "/openapi.json", None, None, "none", "AAAAA"),
    // servers
    case(
        "GET",
        "/v2.1/servers",
        None,
        None,
        "os_compute_api:servers:index PROJECT_READER_OR_ADMIN",
        "AAAAU",
    ),
    case(
        "GET",
        "/v2.1/servers/detail",
        None,
        None,
        "os_compute_api:servers:detail PROJECT_READER_OR_ADMIN",
        "AAAAU",
    ),
    case(
        "GET",
        "/v2.1/servers?all_tenants=1",
        None,
        None,
        "os_compute_api:servers:index:get_all_tenants ADMIN",
        "AFFFU",
    ),
    case(
        "GET",
        "/v2.1/servers/detail?all_tenants=1",
        None,
        None,
        "os_compute_api:servers:detail:get_all_tenants ADMIN",
        "AFFFU",
    ),
    case(
        "POST",
        "/v2.1/servers",
        None,
        Some(
            r#"{"server": {"name": "pol", "flavorRef": "1", "imageRef": "{image}", "networks": "none"}}"#,
        ),
        "os_compute_api:servers:create PROJECT_MEMBER_OR_ADMIN",
        "AAFAU",
    ),
    case(
        "GET",
        "/v2.1/servers/{s1}",
        None,
        None,
        "os_compute_api:servers:show PROJECT_READER_OR_ADMIN",
        "AAAHU",
    ),
    case(
        "PUT",
        "/v2.1/servers/{s1}",
        None,
        Some(r#"{"server": {"name": "pol-renamed"}}"#),
        "os_compute_api:servers:update PROJECT_MEMBER_OR_ADMIN",
        "AAFHU",
    ),
    case(
        "GET",
        "/v2.1/servers/{s1}/metadata",
        None,
        None,
        "os_compute_api:server-metadata:index PROJECT_READER_OR_ADMIN",
        "AAAHU",
    ),
    case(
        "POST",
        "/v2.1/servers/{s1}/metadata",
        None,
        Some(r#"{"metadata": {"a": "b"}}"#),
        "os_compute_api:server-metadata:create PROJECT_MEMBER_OR_ADMIN",
        "AAFHU",
    ),
    case(
        "PUT",
        "/v2.1/servers/{s1}/metadata",
        None,
        Some(r#"{"metadata": {"k": "v", "a": "b"}}"#),
        "os_compute_api:server-metadata:update_all PROJECT_MEMBER_OR_ADMIN",
        "AAFHU",
    ),
    case(
        "GET",
        "/v2.1/servers/{s1}/metadata/k",
        None,
        None,
        "os_compute_api:server-metadata:show PROJECT_READER_OR_ADMIN",
        "AAAHU",
    ),
    case(
        "PUT",
        "/v2.1/servers/{s1}/metadata/k",
        None,
        Some(r#"{"meta": {"k": "v2"}}"#),
        "os_compute_api:server-metadata:update PROJECT_MEMBER_OR_ADMIN",
        "AAFHU",
    ),
    case(
        "DELETE",
        "/v2.1/servers/{s1}/metadata/a",
        None,
        None,
        "os_compute_api:server-metadata:delete PROJECT_MEMBER_OR_ADMIN",
        "aaFHU",
    ),
    case(
        "GET",
        "/v2.1/servers/{s1}/tags",
        V226,
        None,
        "os_compute_api:os-server-tags:index PROJECT_READER_OR_ADMIN",
        "AAAHU",
    ),
    case(
        "PUT",
        "/v2.1/servers/{s1}/tags",
        V226,
        Some(r#"{"tags": ["t", "u"]}"#),
        "os_compute_api:os-server-tags:update_all PROJECT_MEMBER_OR_ADMIN",
        "AAFHU",
    ),
    case(
        "GET",
        "/v2.1/servers/{s1}/tags/t",
        V226,
        None,
        "os_compute_api:os-server-tags:show PROJECT_READER_OR_ADMIN",
        "AAAHU",
    ),
    case(
        "PUT",
        "/v2.1/servers/{s1}/tags/v",
        V226,
        None,
        "os_compute_api:os-server-tags:update PROJECT_MEMBER_OR_ADMIN",
        "AAFHU",
    ),
    case(
        "DELETE",
        "/v2.1/servers/{s1}/tags/v",
        V226,
        None,
        "os_compute_api:os-server-tags:delete PROJECT_MEMBER_OR_ADMIN",
        "aaFHU",
    ),
    case(
        "DELETE",
        "/v2.1/servers/{s1}/tags",
        V226,
        None,
        "os_compute_api:os-server-tags:delete_all PROJECT_MEMBER_OR_ADMIN",
        "AAFHU",
    ),
    case(
        "GET",
        "/v2.1/servers/{s1}/os-instance-actions",
        None,
        None,
        "os_compute_api:os-instance-actions:list PROJECT_READER_OR_ADMIN",
        "AAAHU",
    ),
    case(
        "GET",
        "/v2.1/servers/{s1}/os-instance-actions/{req}",
        None,
        None,
        "os_compute_api:os-instance-actions:show PROJECT_READER_OR_ADMIN",
        "AAAHU",
    ),
    case(
        "GET",
        "/v2.1/servers/{s1}/migrations",
        Some("2.23"),
        None,
        "os_compute_api:servers:migrations:index ADMIN",
        "AFFHU",
    ),
    case(
        "GET",
        "/v2.1/servers/{s1}/migrations/1",
        Some("2.23"),
        None,
        "os_compute_api:servers:migrations:show ADMIN",
        "aFFHU",
    ),
    // server actions
    case(
        "POST",
        "/v2.1/servers/{s1}/action",
        None,
        Some(r#"{"reboot": {"type": "SOFT"}}"#),
        "os_compute_api:servers:reboot PROJECT_MEMBER_OR_ADMIN",
        "AAFHU",
    ),
    case(
        "POST",
        "/v2.1/servers/{s1}/action",
        None,
        Some(r#"{"os-stop": null}"#),
        "os_compute_api:servers:stop PROJECT_MEMBER_OR_ADMIN",
        "AAFHU",
    ),
    case(
        "POST",
        "/v2.1/servers/{s1}/action",
        None,
        Some(r#"{"os-start": null}"#),
        "os_compute_api:servers:start PROJECT_MEMBER_OR_ADMIN",
        "AAFHU",
    ),
    case(
        "POST",
        "/v2.1/servers/{s1}/action",
        None,
        Some(r#"{"pause": null}"#),
        "os_compute_api:os-pause-server:pause PROJECT_MEMBER_OR_ADMIN",
        "AAFHU",
    ),
    case(
        "POST",
        "/v2.1/servers/{s1}/action",
        None,
        Some(r#"{"unpause": null}"#),
        "os_compute_api:os-pause-server:unpause PROJECT_MEMBER_OR_ADMIN",
        "AAFHU",
    ),
    case(
        "POST",
        "/v2.1/servers/{s1}/action",
        None,
        Some(r#"{"suspend": null}"#),
        "os_compute_api:os-suspend-server:suspend PROJECT_MEMBER_OR_ADMIN",
        "AAFHU",
    ),
    case(
        "POST",
        "/v2.1/servers/{s1}/action",
        None,
        Some(r#"{"resume": null}"#),
        "os_compute_api:os-suspend-server:resume PROJECT_MEMBER_OR_ADMIN",
        "AAFHU",
    ),
    case(
        "POST",
        "/v2.1/servers/{s1}/action",
        None,
        Some(r#"{"resize": {"flavorRef": "2"}}"#),
        "os_compute_api:servers:resize PROJECT_MEMBER_OR_ADMIN",
        "AAFHU",
    ),
    case(
        "POST",
        "/v2.1/servers/{s1}/action",
        None,
        Some(r#"{"confirmResize": null}"#),
        "os_compute_api:servers:confirm_resize PROJECT_MEMBER_OR_ADMIN",
        "AAFHU",
    ),
    case(
        "POST",
        "/v2.1/servers/{s1}/action",
        None,
        Some(r#"{"revertResize": null}"#),
        "os_compute_api:servers:revert_resize PROJECT_MEMBER_OR_ADMIN",
        "AAFHU",
    ),
    case(
        "POST",
        "/v2.1/servers/{s1}/action",
        None,
        Some(r#"{"rebuild": {"imageRef": "{image}"}}"#),
        "os_compute_api:servers:rebuild PROJECT_MEMBER_OR_ADMIN",
        "AAFHU",
    ),
    case(
        "POST",
        "/v2.1/servers/{s1}/action",
        None,
        Some(r#"{"migrate": null}"#),
        "os_compute_api:os-migrate-server:migrate ADMIN",
        "AFFHU",
    ),
    case(
        "POST",
        "/v2.1/servers/{s1}/action",
        Some("2.25"),
        Some(r#"{"os-migrateLive": {"host": null, "block_migration": "auto"}}"#),
        "os_compute_api:os-migrate-server:migrate_live ADMIN",
        "AFFHU",
    ),
    case(
        "POST",
        "/v2.1/servers/{s1}/action",
        None,
        Some(r#"{"evacuate": {}}"#),
        "os_compute_api:os-evacuate ADMIN",
        "AFFHU",
    ),
    case(
        "POST",
        "/v2.1/servers/{s4}/action",
        None,
        Some(r#"{"forceDelete": null}"#),
        "os_compute_api:os-deferred-delete:force PROJECT_MEMBER_OR_ADMIN",
        "aaFHU",
    ),
    case(
        "POST",
        "/v2.1/servers/{s1}/action",
        None,
        Some(r#"{"restore": null}"#),
        "os_compute_api:os-deferred-delete:restore PROJECT_MEMBER_OR_ADMIN",
        "AAFHU",
    ),
    // Remote consoles: a console (or 409 by state) for the owner.
    case(
        "POST",
        "/v2.1/servers/{s1}/remote-consoles",
        Some("2.6"),
        Some(r#"{"remote_console": {"protocol": "vnc", "type": "novnc"}}"#),
        "os_compute_api:os-remote-consoles PROJECT_MEMBER_OR_ADMIN",
        "aaFHU",
    ),
    case(
        "POST",
        "/v2.1/servers/{s1}/action",
        Some("2.5"),
        Some(r#"{"os-getVNCConsole": {"type": "novnc"}}"#),
        "os_compute_api:os-remote-consoles PROJECT_MEMBER_OR_ADMIN",
        "aaFHU",
    ),
    case(
        "GET",
        "/v2.1/os-console-auth-tokens/4e1e2f5a-0d6c-4c3b-9d7e-2f0b8c1a6e55",
        Some("2.31"),
        None,
        "os_compute_api:os-console-auth-tokens ADMIN",
        "aFFFU",
    ),
    // Shelve and rescue: allowed or 409 by state, never 403 for the owner
    // (shelveOffload is an administrator's).
    case(
        "POST",
        "/v2.1/servers/{s1}/action",
        None,
        Some(r#"{"rescue": null}"#),
        "os_compute_api:os-rescue PROJECT_MEMBER_OR_ADMIN",
        "AAFHU",
    ),
    case(
        "POST",
        "/v2.1/servers/{s1}/action",
        None,
        Some(r#"{"unrescue": null}"#),
        "os_compute_api:os-unrescue PROJECT_MEMBER_OR_ADMIN",
        "AAFHU",
    ),
    case(
        "POST",
        "/v2.1/servers/{s1}/action",
        None,
        Some(r#"{"shelve": null}"#),
        "os_compute_api:os-shelve:shelve PROJECT_MEMBER_OR_ADMIN",
        "AAFHU",
    ),
    case(
        "POST",
        "/v2.1/servers/{s1}/action",
        None,
        Some(r#"{"shelveOffload": null}"#),
        "os_compute_api:os-shelve:shelve_offload ADMIN",
        "AFFHU",
    ),
    case(
        "POST",
        "/v2.1/servers/{s1}/action",
        None,
        Some(r#"{"unshelve": null}"#),
        "os_compute_api:os-shelve:unshelve PROJECT_MEMBER_OR_ADMIN",
        "AAFHU",
    ),
    case(
        "POST",
        "/v2.1/servers/{s1}/action",
        None,
        Some(r#"{"createImage": {"name": "policy-snapshot"}}"#),
        "os_compute_api:servers:create_image PROJECT_MEMBER_OR_ADMIN",
        "AAFHU",
    ),
    case(
        "POST",
        "/v2.1/servers/{s1}/action",
        None,
        Some(r#"{"os-getConsoleOutput": {"length": 5}}"#),
        "os_compute_api:os-console-output PROJECT_MEMBER_OR_ADMIN",
        "AAFHU",
    ),
    case(
        "POST",
        "/v2.1/servers/{s1}/action",
        None,
        Some(r#"{"os-resetState": {"state": "active"}}"#),
        "os_compute_api:os-admin-actions:reset_state ADMIN",
        "AFFHU",
    ),
    // Removed from Nova (23.0.0): 410 for anyone with a token.
    case(
        "POST",
        "/v2.1/servers/{s1}/action",
        None,
        Some(r#"{"resetNetwork": null}"#),
        "none (removed: 410 Gone)",
        "AAAAU",
    ),
    case(
        "POST",
        "/v2.1/servers/{s1}/action",
        Some("2.17"),
        Some(r#"{"trigger_crash_dump": null}"#),
        "os_compute_api:servers:trigger_crash_dump PROJECT_MEMBER_OR_ADMIN",
        "AAFHU",
    ),
    case(
        "POST",
        "/v2.1/servers/{s1}/action",
        None,
        Some(r#"{"unlock": null}"#),
        "os_compute_api:os-lock-server:unlock PROJECT_MEMBER_OR_ADMIN",
        "AAFHU",
    ),
    // Last: a server the admin locked may only be unlocked by an admin
    // (os-lock-server:unlock:unlock_override), so nothing after this
    // depends on the member acting on it.
    case(
        "POST",
        "/v2.1/servers/{s1}/action",
        None,
        Some(r#"{"lock": null}"#),
        "os_compute_api:os-lock-server:lock PROJECT_MEMBER_OR_ADMIN",
        "AAFHU",
    ),
    case(
        "DELETE",
        "/v2.1/servers/{s3}",
        None,
        None,
        "os_compute_api:servers:delete PROJECT_MEMBER_OR_ADMIN",
        "aaFHU",
    ),
    // flavors
    case(
        "GET",
        "/v2.1/flavors",
        None,
        None,
        "none (any authenticated user)",
        "AAAAU",
    ),
    case(
        "GET",
        "/v2.1/flavors/detail",
        None,
        None,
        "none (any authenticated user)",
        "AAAAU",
    ),
    case(
        "GET",
        "/v2.1/flavors/1",
        None,
        None,
        "none (any authenticated user)",
        "AAAAU",
    ),
    case(
        "POST",
        "/v2.1/flavors",
        None,
        Some(r#"{"flavor": {"name": "pol-flavor", "ram": 64, "vcpus": 1, "disk": 0}}"#),
        "os_compute_api:os-flavor-manage:create ADMIN",
        "AFFFU",
    ),
    case(
        "PUT",
        "/v2.1/flavors/1",
        Some("2.55"),
        Some(r#"{"flavor": {"description": "d"}}"#),
        "os_compute_api:os-flavor-manage:update ADMIN",
        "AFFFU",
    ),
    case(
        "GET",
        "/v2.1/flavors/1/os-extra_specs",
        None,
        None,
        "os_compute_api:os-flavor-extra-specs:index PROJECT_READER_OR_ADMIN",
        "AAAAU",
    ),
    case(
        "POST",
        "/v2.1/flavors/1/os-extra_specs",
        None,
        Some(r#"{"extra_specs": {"hw:cpu_policy": "shared"}}"#),
        "os_compute_api:os-flavor-extra-specs:create ADMIN",
        "AFFFU",
    ),
    case(
        "GET",
        "/v2.1/flavors/1/os-extra_specs/hw:cpu_policy",
        None,
        None,
        "os_compute_api:os-flavor-extra-specs:show PROJECT_READER_OR_ADMIN",
        "AAAAU",
    ),
    case(
        "PUT",
        "/v2.1/flavors/1/os-extra_specs/hw:cpu_policy",
        None,
        Some(r#"{"hw:cpu_policy": "dedicated"}"#),
        "os_compute_api:os-flavor-extra-specs:update ADMIN",
        "AFFFU",
    ),
    case(
        "DELETE",
        "/v2.1/flavors/1/os-extra_specs/hw:cpu_policy",
        None,
        None,
        "os_compute_api:os-flavor-extra-specs:delete ADMIN",
        "aFFFU",
    ),
    case(
        "GET",
        "/v2.1/flavors/{private_flavor}/os-flavor-access",
        None,
        None,
        "os_compute_api:os-flavor-access ADMIN",
        "AFFFU",
    ),
    case(
        "POST",
        "/v2.1/flavors/{private_flavor}/action",
        None,
        Some(r#"{"addTenantAccess": {"tenant": "{p1}"}}"#),
        "os_compute_api:os-flavor-access:add_tenant_access ADMIN",
        "AFFFU",
    ),
    case(
        "DELETE",
        "/v2.1/flavors/{private_flavor}",
        None,
        None,
        "os_compute_api:os-flavor-manage:delete ADMIN",
        "aFFFU",
    ),
    // server groups
    case(
        "GET",
        "/v2.1/os-server-groups",
        None,
        None,
        "os_compute_api:os-server-groups:index PROJECT_READER_OR_ADMIN",
        "AAAAU",
    ),
    case(
        "POST",
        "/v2.1/os-server-groups",
        None,
        Some(r#"{"server_group": {"name": "pol", "policies": ["affinity"]}}"#),
        "os_compute_api:os-server-groups:create PROJECT_MEMBER_OR_ADMIN",
        "AAFAU",
    ),
    case(
        "GET",
        "/v2.1/os-server-groups/{group}",
        None,
        None,
        "os_compute_api:os-server-groups:show PROJECT_READER_OR_ADMIN (Nova checks it on the group's project after the lookup, a 403; Novalog hides the group, a 404, as tests/scheduling.rs asserts)",
        "AAAHU",
    ),
    case(
        "DELETE",
        "/v2.1/os-server-groups/{group}",
        None,
        None,
        "os_compute_api:os-server-groups:delete PROJECT_MEMBER_OR_ADMIN (hidden from other projects, as show)",
        "aaFHU",
    ),
    // aggregates
    case(
        "GET",
        "/v2.1/os-aggregates",
        None,
        None,
        "os_compute_api:os-aggregates:index ADMIN",
        "AFFFU",
    ),
    case(
        "POST",
        "/v2.1/os-aggregates",
        None,
        Some(r#"{"aggregate": {"name": "pol-agg"}}"#),
        "os_compute_api:os-aggregates:create ADMIN",
        "AFFFU",
    ),
    case(
        "GET",
        "/v2.1/os-aggregates/{agg}",
        None,
        None,
        "os_compute_api:os-aggregates:show ADMIN",
        "AFFFU",
    ),
    case(
        "PUT",
        "/v2.1/os-aggregates/{agg}",
        None,
        Some(r#"{"aggregate": {"name": "pol-agg-2"}}"#),
        "os_compute_api:os-aggregates:update ADMIN",
        "AFFFU",
    ),
    case(
        "POST",
        "/v2.1/os-aggregates/{agg}/action",
        None,
        Some(r#"{"set_metadata": {"metadata": {"k": "v"}}}"#),
        "os_compute_api:os-aggregates:set_metadata ADMIN",
        "AFFFU",
    ),
    case(
        "DELETE",
        "/v2.1/os-aggregates/{agg}",
        None,
        None,
        "os_compute_api:os-aggregates:delete ADMIN",
        "AFFFU",
    ),
    case(
        "GET",
        "/v2.1/os-availability-zone",
        None,
        None,
        "os_compute_api:os-availability-zone:list PROJECT_READER_OR_ADMIN",
        "AAAAU",
    ),
    case(
        "GET",
        "/v2.1/os-availability-zone/detail",
        None,
        None,
        "os_compute_api:os-availability-zone:detail ADMIN",
        "AFFFU",
    ),
    // keypairs: the caller's own (admin or user_id:%(user_id)s)
    case(
        "GET",
        "/v2.1/os-keypairs",
        None,
        None,
        "os_compute_api:os-keypairs:index ADMIN or owner",
        "AAAAU",
    ),
    case(
        "POST",
        "/v2.1/os-keypairs",
        None,
        Some(r#"{"keypair": {"name": "pol-kp"}}"#),
        "os_compute_api:os-keypairs:create ADMIN or owner",
        "AAAAU",
    ),
    case(
        "GET",
        "/v2.1/os-keypairs/fz-key",
        None,
        None,
        "os_compute_api:os-keypairs:show ADMIN or owner (another user's key is not found)",
        "aAHHU",
    ),
    case(
        "DELETE",
        "/v2.1/os-keypairs/fz-key",
        None,
        None,
        "os_compute_api:os-keypairs:delete ADMIN or owner (another user's key is not found)",
        "aaHHU",
    ),
    // services and hypervisors
    case(
        "GET",
        "/v2.1/os-services",
        None,
        None,
        "os_compute_api:os-services:list ADMIN",
        "AFFFU",
    ),
    case(
        "PUT",
        "/v2.1/os-services/enable",
        None,
        Some(r#"{"host": "{host}", "binary": "nova-compute"}"#),
        "os_compute_api:os-services:update ADMIN",
        "aFFFU",
    ),
    case(
        "PUT",
        "/v2.1/os-services/disable",
        None,
        Some(r#"{"host": "{host}", "binary": "nova-compute"}"#),
        "os_compute_api:os-services:update ADMIN",
        "aFFFU",
    ),
    case(
        "PUT",
        "/v2.1/os-services/disable-log-reason",
        None,
        Some(r#"{"host": "{host}", "binary": "nova-compute", "disabled_reason": "x"}"#),
        "os_compute_api:os-services:update ADMIN",
        "aFFFU",
    ),
    case(
        "PUT",
        "/v2.1/os-services/force-down",
        Some("2.11"),
        Some(r#"{"host": "{host}", "binary": "nova-compute", "forced_down": false}"#),
        "os_compute_api:os-services:update ADMIN",
        "aFFFU",
    ),
    case(
        "PUT",
        "/v2.1/os-services/{service}",
        Some("2.53"),
        Some(r#"{"status": "enabled"}"#),
        "os_compute_api:os-services:update ADMIN",
        "AFFFU",
    ),
    case(
        "DELETE",
        "/v2.1/os-services/00000000-0000-4000-8000-000000000000",
        Some("2.53"),
        None,
        "os_compute_api:os-services:delete ADMIN",
        "aFFFU",
    ),
    case(
        "GET",
        "/v2.1/os-hypervisors",
        None,
        None,
        "os_compute_api:os-hypervisors:list ADMIN",
        "AFFFU",
    ),
    case(
        "GET",
        "/v2.1/os-hypervisors/detail",
        None,
        None,
        "os_compute_api:os-hypervisors:list-detail ADMIN",
        "AFFFU",
    ),
    case(
        "GET",
        "/v2.1/os-hypervisors/statistics",
        None,
        None,
        "os_compute_api:os-hypervisors:statistics ADMIN",
        "AFFFU",
    ),
    case(
        "GET",
        "/v2.1/os-hypervisors/{hypervisor}",
        None,
        None,
        "os_compute_api:os-hypervisors:show ADMIN",
        "AFFFU",
    ),
    case(
        "GET",
        "/v2.1/os-hypervisors/{hypervisor}/uptime",
        None,
        None,
        "os_compute_api:os-hypervisors:uptime ADMIN",
        "aFFFU",
    ),
    case(
        "GET",
        "/v2.1/os-hypervisors/{host}/servers",
        None,
        None,
        "os_compute_api:os-hypervisors:servers ADMIN",
        "AFFFU",
    ),
    case(
        "GET",
        "/v2.1/os-hypervisors/{host}/search",
        None,
        None,
        "os_compute_api:os-hypervisors:search ADMIN",
        "AFFFU",
    ),
    case(
        "GET",
        "/v2.1/os-migrations",
        None,
        None,
        "os_compute_api:os-migrations:index ADMIN",
        "AFFFU",
    ),
    case(
        "GET",
        "/v2.1/os-simple-tenant-usage",
        None,
        None,
        "os_compute_api:os-simple-tenant-usage:list ADMIN",
        "AFFFU",
    ),
    case(
        "GET",
        "/v2.1/os-simple-tenant-usage/{p1}",
        None,
        None,
        "os_compute_api:os-simple-tenant-usage:show PROJECT_READER_OR_ADMIN",
        "AAAFU",
    ),
    // quotas and limits
    case(
        "GET",
        "/v2.1/os-quota-sets/{p1}",
        None,
        None,
        "os_compute_api:os-quota-sets:show PROJECT_READER_OR_ADMIN (on the named project)",
        "AAAFU",
    ),
    case(
        "GET",
        "/v2.1/os-quota-sets/{p1}/detail",
        None,
        None,
        "os_compute_api:os-quota-sets:detail PROJECT_READER_OR_ADMIN (on the named project)",
        "AAAFU",
    ),
    case(
        "GET",
        "/v2.1/os-quota-sets/{p1}/defaults",
        None,
        None,
        "os_compute_api:os-quota-sets:defaults RULE_ANY",
        "AAAAU",
    ),
    case(
        "PUT",
        "/v2.1/os-quota-sets/{p1}",
        None,
        Some(r#"{"quota_set": {"instances": 20}}"#),
        "os_compute_api:os-quota-sets:update ADMIN",
        "AFFFU",
    ),
    case(
        "DELETE",
        "/v2.1/os-quota-sets/{p1}",
        None,
        None,
        "os_compute_api:os-quota-sets:delete ADMIN",
        "AFFFU",
    ),
    case(
        "GET",
        "/v2.1/limits",
        None,
        None,
        "os_compute_api:limits RULE_ANY",
        "AAAAU",
    ),
    case(
        "GET",
        "/v2.1/limits?tenant_id={p2}",
        None,
        None,
        "os_compute_api:limits:other_project ADMIN",
        "AFFAU",
    ),
    // images (glance/policies/image.py)
    case(
        "GET",
        "/image",
        None,
        None,
        "none (300 with the versions)",
        "aaaaa",
    ),
    case(
        "GET",
        "/image/",
        None,
        None,
        "none (300 with the versions)",
        "aaaaa",
    ),
    case("GET", "/image/versions", None, None, "none", "AAAAA"),
    case(
        "GET",
        "/image/v2/images",
        None,
        None,
        "get_images PROJECT_READER_OR_ADMIN",
        "AAAAU",
    ),
    case(
        "POST",
        "/image/v2/images",
        None,
        Some(r#"{"name": "pol-image", "disk_format": "raw", "container_format": "bare"}"#),
        "add_image PROJECT_MEMBER_OR_ADMIN",
        "AAFAU",
    ),
    case(
        "GET",
        "/image/v2/images/{image}",
        None,
        None,
        "get_image PROJECT_READER_OR_ADMIN, or public",
        "AAAAU",
    ),
    case(
        "GET",
        "/image/v2/images/{own_image}",
        None,
        None,
        "get_image PROJECT_READER_OR_ADMIN (another project's private image is not found)",
        "AAAHU",
    ),
    case(
        "PATCH",
        "/image/v2/images/{own_image}",
        None,
        Some(r#"[{"op": "replace", "path": "/name", "value": "pol-renamed"}]"#),
        "modify_image PROJECT_MEMBER_OR_ADMIN",
        "AAFHU",
    ),
    case(
        "PATCH",
        "/image/v2/images/{image}",
        None,
        Some(r#"[{"op": "replace", "path": "/name", "value": "cirros"}]"#),
        "modify_image PROJECT_MEMBER_OR_ADMIN (of the owner)",
        "AFFFU",
    ),
    case(
        "PUT",
        "/image/v2/images/{own_image}/file",
        None,
        Some("raw image bytes"),
        "upload_image PROJECT_MEMBER_OR_ADMIN",
        "aaFHU",
    ),
    case(
        "GET",
        "/image/v2/images/{own_image}/file",
        None,
        None,
        "download_image ADMIN_OR_PROJECT_MEMBER_DOWNLOAD_IMAGE (readers may not download)",
        "aaFHU",
    ),
    case(
        "DELETE",
        "/image/v2/images/{own_image}",
        None,
        None,
        "delete_image PROJECT_MEMBER_OR_ADMIN",
        "aaFHU",
    ),
    case(
        "GET",
        "/image/v2/schemas/image",
        None,
        None,
        "get_schema (any token)",
        "AAAAU",
    ),
    case(
        "GET",
        "/image/v2/schemas/images",
        None,
        None,
        "get_schema (any token)",
        "AAAAU",
    ),
    // identity (keystone/common/policies)
    case(
        "GET",
        "/identity",
        None,
        None,
        "none (300 with the versions)",
        "aaaaa",
    ),
    case(
        "GET",
        "/identity/",
        None,
        None,
        "none (300 with the versions)",
        "aaaaa",
    ),
    case("GET", "/identity/v3", None, None, "none", "AAAAA"),
    case("GET", "/identity/v3/", None, None, "none", "AAAAA"),
    case(
        "POST",
        "/identity/v3/auth/tokens",
        None,
        Some("{alice_auth}"),
        "none (credentials)",
        "AAAAA",
    ),
    case(
        "GET",
        "/identity/v3/auth/tokens",
        None,
        None,
        "identity:validate_token ADMIN_OR_SYSTEM_READER or token subject",
        "AAAAU",
    ),
    case(
        "DELETE",
        "/identity/v3/auth/tokens",
        None,
        None,
        "identity:revoke_token ADMIN or token subject (a token of alice issued for the row)",
        "AAFFU",
    ),
    case(
        "GET",
        "/identity/v3/auth/projects",
        None,
        None,
        "any token",
        "AAAAU",
    ),
    case(
        "GET",
        "/identity/v3/auth/catalog",
        None,
        None,
        "any project-scoped token",
        "AAAAU",
    ),
    case(
        "GET",
        "/identity/v3/auth/domains",
        None,
        None,
        "any token",
        "AAAAU",
    ),
    case(
        "GET",
        "/identity/v3/auth/system",
        None,
        None,
        "any token",
        "AAAAU",
    ),
    // Keystone's identity:list_projects is ADMIN_OR_SYSTEM_READER (or a
    // domain reader); Novalog answers others with their own projects
    // (asserted by identity::router_tests), which reveals nothing more.
    case(
        "GET",
        "/identity/v3/projects",
        None,
        None,
        "identity:list_projects (own projects for non-admins)",
        "AAAAU",
    ),
    case(
        "GET",
        "/identity/v3/projects/{p1}",
        None,
        None,
        "identity:get_project ADMIN_OR_SYSTEM_READER or project_id:%(target.project.id)s",
        "AAAFU",
    ),
    case(
        "GET",
        "/identity/v3/users",
        None,
        None,
        "identity:list_users ADMIN_OR_SYSTEM_READER",
        "AFFFU",
    ),
    case(
        "GET",
        "/identity/v3/users/{alice}",
        None,
        None,
        "identity:get_user ADMIN_OR_SYSTEM_READER or user_id:%(target.user.id)s",
        "AAFFU",
    ),
    case(
        "GET",
        "/identity/v3/users/{alice}/projects",
        None,
        None,
        "identity:list_user_projects ADMIN_OR_SYSTEM_READER or user_id:%(target.user.id)s",
        "AAFFU",
    ),
    // Nova's deprecated proxies and smaller resources
    case(
        "GET",
        "/v2.1/os-quota-class-sets/default",
        None,
        None,
        "os_compute_api:os-quota-class-sets:show ADMIN",
        "AFFFU",
    ),
    case(
        "PUT",
        "/v2.1/os-quota-class-sets/default",
        None,
        Some(r#"{"quota_class_set": {"instances": 10}}"#),
        "os_compute_api:os-quota-class-sets:update ADMIN",
        "AFFFU",
    ),
    case(
        "GET",
        "/v2.1/servers/{s1}/ips",
        None,
        None,
        "os_compute_api:ips:index PROJECT_READER_OR_ADMIN",
        "AAAHU",
    ),
    case(
        "GET",
        "/v2.1/servers/{s1}/ips/private",
        None,
        None,
        "os_compute_api:ips:show PROJECT_READER_OR_ADMIN (no such network: 404)",
        "aaaHU",
    ),
    case(
        "GET",
        "/v2.1/servers/{s1}/diagnostics",
        None,
        None,
        "os_compute_api:os-server-diagnostics ADMIN",
        "aFFHU",
    ),
    case(
        "GET",
        "/v2.1/servers/{s1}/os-server-password",
        None,
        None,
        "os_compute_api:os-server-password:show PROJECT_READER_OR_ADMIN",
        "AAAHU",
    ),
    case(
        "DELETE",
        "/v2.1/servers/{s1}/os-server-password",
        None,
        None,
        "os_compute_api:os-server-password:clear PROJECT_MEMBER_OR_ADMIN",
        "AAFHU",
    ),
    case(
        "GET",
        "/v2.1/os-hosts",
        None,
        None,
        "os_compute_api:os-hosts:list ADMIN",
        "AFFFU",
    ),
    case(
        "GET",
        "/v2.1/os-hosts/{host}",
        None,
        None,
        "os_compute_api:os-hosts:show ADMIN",
        "AFFFU",
    ),
    case(
        "PUT",
        "/v2.1/os-hosts/{host}",
        None,
        Some(r#"{"maintenance_mode": "disable"}"#),
        "os_compute_api:os-hosts:update ADMIN",
        "aFFFU",
    ),
    case(
        "GET",
        "/v2.1/os-hosts/{host}/reboot",
        None,
        None,
        "os_compute_api:os-hosts:reboot ADMIN",
        "aFFFU",
    ),
    case(
        "GET",
        "/v2.1/os-hosts/{host}/shutdown",
        None,
        None,
        "os_compute_api:os-hosts:shutdown ADMIN",
        "aFFFU",
    ),
    case(
        "GET",
        "/v2.1/os-hosts/{host}/startup",
        None,
        None,
        "os_compute_api:os-hosts:start ADMIN",
        "aFFFU",
    ),
    case(
        "GET",
        "/v2.1/images",
        None,
        None,
        "glance get_images (any)",
        "AAAAU",
    ),
    case(
        "GET",
        "/v2.1/images/detail",
        None,
        None,
        "glance get_images (any)",
        "AAAAU",
    ),
    case(
        "GET",
        "/v2.1/images/{image}",
        None,
        None,
        "glance get_image (public image)",
        "AAAAU",
    ),
    case(
        "DELETE",
        "/v2.1/images/00000000-0000-4000-8000-000000000000",
        None,
        None,
        "glance delete_image (no such image: 404)",
        "aaaaU",
    ),
    case(
        "GET",
        "/v2.1/images/{image}/metadata",
        None,
        None,
        "glance get_image (public image)",
        "AAAAU",
    ),
    case(
        "GET",
        "/v2.1/images/{image}/metadata/nokey",
        None,
        None,
        "glance get_image (no such key: 404)",
        "aaaaU",
    ),
    case(
        "POST",
        "/v2.1/images/{kept_image}/metadata",
        None,
        Some(r#"{"metadata": {"k": "v"}}"#),
        "glance modify_image (member of the owner)",
        "aaFHU",
    ),
    case(
        "PUT",
        "/v2.1/images/{kept_image}/metadata",
        None,
        Some(r#"{"metadata": {"k": "v"}}"#),
        "glance modify_image (member of the owner)",
        "aaFHU",
    ),
    case(
        "PUT",
        "/v2.1/images/{kept_image}/metadata/k",
        None,
        Some(r#"{"meta": {"k": "v"}}"#),
        "glance modify_image (member of the owner)",
        "aaFHU",
    ),
    case(
        "DELETE",
        "/v2.1/images/{kept_image}/metadata/nokey",
        None,
        None,
        "glance modify_image (no such key: 404)",
        "aaaaU",
    ),
    case(
        "GET",
        "/v2.1/extensions",
        None,
        None,
        "os_compute_api:extensions RULE_ANY",
        "AAAAU",
    ),
    case(
        "GET",
        "/v2.1/extensions/os-hosts",
        None,
        None,
        "os_compute_api:extensions RULE_ANY",
        "AAAAU",
    ),
    case(
        "GET",
        "/v2.1/os-networks",
        None,
        None,
        "os_compute_api:os-networks:list PROJECT_READER_OR_ADMIN",
        "AAAAU",
    ),
    case(
        "GET",
        "/v2.1/os-networks/net1",
        None,
        None,
        "os_compute_api:os-networks:show PROJECT_READER_OR_ADMIN (none: 404)",
        "aaaaU",
    ),
    case(
        "POST",
        "/v2.1/os-networks",
        None,
        Some(r#"{}"#),
        "removed with nova-network (410)",
        "aaaaU",
    ),
    case(
        "POST",
        "/v2.1/os-networks/add",
        None,
        Some(r#"{}"#),
        "removed with nova-network (410)",
        "aaaaU",
    ),
    case(
        "GET",
        "/v2.1/os-networks/add",
        None,
        None,
        "os_compute_api:os-networks:show (none: 404)",
        "aaaaU",
    ),
    case(
        "DELETE",
        "/v2.1/os-networks/add",
        None,
        None,
        "removed with nova-network (410)",
        "aaaaU",
    ),
    case(
        "DELETE",
        "/v2.1/os-networks/net1",
        None,
        None,
        "removed with nova-network (410)",
        "aaaaU",
    ),
    case(
        "POST",
        "/v2.1/os-networks/net1/action",
        None,
        Some(r#"{}"#),
        "removed with nova-network (410)",
        "aaaaU",
    ),
    case(
        "GET",
        "/v2.1/os-instance_usage_audit_log",
        None,
        None,
        "os_compute_api:os-instance-usage-audit-log:list ADMIN",
        "AFFFU",
    ),
    case(
        "GET",
        "/v2.1/os-instance_usage_audit_log/2026-01-01%2000:00:00",
        None,
        None,
        "os_compute_api:os-instance-usage-audit-log:show ADMIN",
        "AFFFU",
    ),
    case(
        "POST",
        "/v2.1/os-server-external-events",
        None,
        Some(r#"{"events": [{"name": "network-changed", "server_uuid": "{s1}"}]}"#),
        "os_compute_api:os-server-external-events:create SERVICE_ROLE (and admin)",
        "AFFFU",
    ),
    // What a server has attached: nothing (no NUMA pinning, no volume,
    // network or share service), so the reads answer empty and the rest
    // Nova's 404 for the volume, port or share; the policy comes first.
    case(
        "GET",
        "/v2.1/servers/{s1}/topology",
        Some("2.78"),
        None,
        "compute:server:topology:index PROJECT_READER_OR_ADMIN",
        "AAAHU",
    ),
    case(
        "GET",
        "/v2.1/servers/{s1}/os-volume_attachments",
        None,
        None,
        "os_compute_api:os-volumes-attachments:index PROJECT_READER_OR_ADMIN",
        "AAAHU",
    ),
    case(
        "POST",
        "/v2.1/servers/{s1}/os-volume_attachments",
        None,
        Some(r#"{"volumeAttachment": {"volumeId": "5ed4b2d0-8c5e-4c8b-9a3b-1d2f3e4a5b6c"}}"#),
        "os_compute_api:os-volumes-attachments:create PROJECT_MEMBER_OR_ADMIN",
        "aaFHU",
    ),
    case(
        "GET",
        "/v2.1/servers/{s1}/os-volume_attachments/5ed4b2d0-8c5e-4c8b-9a3b-1d2f3e4a5b6c",
        None,
        None,
        "os_compute_api:os-volumes-attachments:show PROJECT_READER_OR_ADMIN (none: 404)",
        "aaaHU",
    ),
    case(
        "PUT",
        "/v2.1/servers/{s1}/os-volume_attachments/5ed4b2d0-8c5e-4c8b-9a3b-1d2f3e4a5b6c",
        None,
        Some(r#"{"volumeAttachment": {"volumeId": "5ed4b2d0-8c5e-4c8b-9a3b-1d2f3e4a5b6c"}}"#),
        "os_compute_api:os-volumes-attachments:swap ADMIN (before 2.85)",
        "aFFHU",
    ),
    case(
        "DELETE",
        "/v2.1/servers/{s1}/os-volume_attachments/5ed4b2d0-8c5e-4c8b-9a3b-1d2f3e4a5b6c",
        None,
        None,
        "os_compute_api:os-volumes-attachments:delete PROJECT_MEMBER_OR_ADMIN",
        "aaFHU",
    ),
    case(
        "GET",
        "/v2.1/servers/{s1}/os-interface",
        None,
        None,
        "os_compute_api:os-attach-interfaces:list PROJECT_READER_OR_ADMIN",
        "AAAHU",
    ),
    case(
        "POST",
        "/v2.1/servers/{s1}/os-interface",
        None,
        Some(r#"{"interfaceAttachment": {}}"#),
        "os_compute_api:os-attach-interfaces:create PROJECT_MEMBER_OR_ADMIN",
        "aaFHU",
    ),
    case(
        "GET",
        "/v2.1/servers/{s1}/os-interface/5ed4b2d0-8c5e-4c8b-9a3b-1d2f3e4a5b6c",
        None,
        None,
        "os_compute_api:os-attach-interfaces:show PROJECT_READER_OR_ADMIN (none: 404)",
        "aaaHU",
    ),
    case(
        "DELETE",
        "/v2.1/servers/{s1}/os-interface/5ed4b2d0-8c5e-4c8b-9a3b-1d2f3e4a5b6c",
        None,
        None,
        "os_compute_api:os-attach-interfaces:delete PROJECT_MEMBER_OR_ADMIN",
        "aaFHU",
    ),
    case(
        "GET",
        "/v2.1/servers/{s1}/shares",
        Some("2.97"),
        None,
        "os_compute_api:os-shares:index PROJECT_READER_OR_ADMIN",
        "AAAHU",
    ),
    case(
        "POST",
        "/v2.1/servers/{s1}/shares",
        Some("2.97"),
        Some(r#"{"share": {"share_id": "5ed4b2d0-8c5e-4c8b-9a3b-1d2f3e4a5b6c"}}"#),
        "os_compute_api:os-shares:create PROJECT_MEMBER_OR_ADMIN",
        "aaFHU",
    ),
    case(
        "GET",
        "/v2.1/servers/{s1}/shares/5ed4b2d0-8c5e-4c8b-9a3b-1d2f3e4a5b6c",
        Some("2.97"),
        None,
        "os_compute_api:os-shares:show PROJECT_READER_OR_ADMIN (none: 404)",
        "aaaHU",
    ),
    case(
        "DELETE",
        "/v2.1/servers/{s1}/shares/5ed4b2d0-8c5e-4c8b-9a3b-1d2f3e4a5b6c",
        Some("2.97"),
        None,
        "os_compute_api:os-shares:delete PROJECT_MEMBER_OR_ADMIN",
        "aaFHU",
    ),
];

fn expectation(c: char) -> Expect {
    match c {
        'A' => Expect::Allowed,
        'a' => Expect::Passes,
        'F' => Expect::Forbidden,
        'U' => Expect::Unauthorized,
        'H' => Expect::Hidden,
        other => panic!("unknown expectation {other}"),
    }
}

fn meets(expect: Expect, method: &str, status: u16) -> bool {
    match expect {
        Expect::Allowed => status != 401 && status != 403 && (method != "GET" || status < 400),
        Expect::Passes => status != 401 && status != 403,
        Expect::Forbidden => status == 403,
        Expect::Unauthorized => status == 401,
        Expect::Hidden => status == 404,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_and_role_gets_what_the_default_policies_say() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = Cloud::start(dir.path()).await;
    let f = fixtures(&cloud).await;
    let image = demo_image_id().to_string();
    let s3 = cloud
        .must(Role::Member, Method::POST, "/v2.1/servers", None,
            Some(json!({"server": {"name": "pol-doomed", "flavorRef": "1", "imageRef": image, "networks": "none"}})))
        .await["server"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // forceDelete deletes whatever its state (Nova's force_delete).
    let s4 = cloud
        .must(Role::Member, Method::POST, "/v2.1/servers", None,
            Some(json!({"server": {"name": "pol-forced", "flavorRef": "1", "imageRef": image, "networks": "none"}})))
        .await["server"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let private_flavor = cloud
        .must(Role::Admin, Method::POST, "/v2.1/flavors", None,
            Some(json!({"flavor": {"name": "pol-private", "ram": 64, "vcpus": 1, "disk": 0, "os-flavor-access:is_public": false}})))
        .await["flavor"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let services = cloud
        .must(Role::Admin, Method::GET, "/v2.1/os-services", None, None)
        .await;
    let host = services["services"][0]["host"].as_str().unwrap().to_owned();
    let alice_auth = json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "alice", "domain": {"id": "default"}, "password": "alice-secret"}}},
        "scope": {"project": {"name": "p1", "domain": {"id": "default"}}},
    }})
    .to_string();
    let first = |k: &str| f.by_param[k][0].clone();
    let fill = |s: &str| {
        s.replace("{s1}", &first("servers"))
            .replace("{s3}", &s3)
            .replace("{s4}", &s4)
            .replace("{p1}", &cloud.projects["alice"])
            .replace("{p2}", &cloud.projects["bob"])
            .replace("{image}", &image)
            .replace("{own_image}", &f.by_param["images"][1])
            .replace("{kept_image}", &f.by_param["images"][4])
            .replace("{req}", &first("os-instance-actions"))
            .replace("{group}", &first("os-server-groups"))
            .replace("{agg}", &first("os-aggregates"))
            .replace("{service}", &first("os-services"))
            .replace("{hypervisor}", &first("os-hypervisors"))
            .replace("{host}", &host)
            .replace("{private_flavor}", &private_flavor)
            .replace("{alice}", &cloud.users["alice"])
            .replace("{alice_auth}", &alice_auth)
    };
    // Every documented operation has its row.
    let doc = cloud
        .must(Role::NoToken, Method::GET, "/openapi.json", None, None)
        .await;
    let same = |template: &str, path: &str| {
        let path = path.split('?').next().unwrap();
        let (t, p): (Vec<&str>, Vec<&str>) =
            (template.split('/').collect(), path.split('/').collect());
        t.len() == p.len() && t.iter().zip(&p).all(|(a, b)| a == b || a.starts_with('{'))
    };
    let mut missing = Vec::new();
    for (template, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let covered = POLICY_TABLE
                .iter()
                .any(|c| c.method.eq_ignore_ascii_case(method) && same(template, c.path))
                || POLICY_TESTED_ELSEWHERE
                    .iter()
                    .any(|(m, t)| m.eq_ignore_ascii_case(method) && t == template);
            if !covered {
                missing.push(format!("{method} {template}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "operations without a policy row: {missing:?}"
    );
    let mut wrong = Vec::new();
    let mut checked = 0;
    // Callers least likely to change anything first, so a write that is
    // allowed happens after every refusal was checked.
    let order = [
        Role::NoToken,
        Role::OtherMember,
        Role::Reader,
        Role::Member,
        Role::Admin,
    ];
    for c in POLICY_TABLE {
        let path = fill(c.path);
        let expects: Vec<Expect> = c.expect.chars().map(expectation).collect();
        assert_eq!(expects.len(), 5, "{} {}", c.method, c.path);
        for role in order {
            let expect = expects[ROLES.iter().position(|r| *r == role).unwrap()];
            let method = Method::from_bytes(c.method.as_bytes()).unwrap();
            let mut req = cloud.http.request(method, format!("{}{path}", cloud.base));
            if let Some(token) = cloud.tokens.get(&role) {
                req = req.header("X-Auth-Token", token);
                if path.ends_with("/auth/tokens") {
                    // A revocation takes a token issued for it, so the
                    // roles keep their own.
                    let subject = if c.method == "DELETE" {
                        cloud.token("alice", "p1").await.unwrap().0
                    } else {
                        token.clone()
                    };
                    req = req.header("X-Subject-Token", subject);
                }
            }
            if let Some(v) = c.version {
                req = req.header("OpenStack-API-Version", format!("compute {v}"));
            }
            if let Some(body) = c.body {
                let body = fill(body);
                let content_type = if c.method == "PATCH" {
                    "application/openstack-images-v2.1-json-patch"
                } else if path.ends_with("/file") {
                    "application/octet-stream"
                } else {
                    "application/json"
                };
                req = req.header("Content-Type", content_type).body(body);
            }
            checked += 1;
            match req.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    if !meets(expect, c.method, status) {
                        let text = resp.text().await.unwrap_or_default();
                        wrong.push(format!(
                            "{role:?} {} {path}: {status}, expected {expect:?} by {} ({})",
                            c.method,
                            c.policy,
                            text.chars().take(200).collect::<String>()
                        ));
                    }
                }
                Err(e) => wrong.push(format!("{role:?} {} {path}: {e}", c.method)),
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {checked} route × role outcomes differ from the default policies:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    cloud.system.stop().await.unwrap();
}
