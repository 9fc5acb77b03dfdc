//! `state-at <server-id> --at <time | topic/partition/offset>`: the server
//! as `GET /v2.1/servers/{id}` showed it then, folded by the shared
//! `evolve` from the instance's own records (found through [`Index`]) and
//! shown by the API's own view.

use novalog_api::microversion::ApiVersion;
use novalog_api::views::Links;
use novalog_api::views::servers::{ViewContext, show};
use novalog_schemas::Instance;
use novalog_schemas::instance::evolve;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::index::Index;
use crate::records::Position;
use crate::{Error, Result, Silent, Source, format_time};

/// The instant to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum At {
    /// Every record that occurred at or before this time (ms).
    Time(i64),
    /// Every record up to and including this one.
    Record(Position),
}

impl At {
    pub fn parse(s: &str) -> Result<Self> {
        if let Some(p) = Position::parse(s) {
            return Ok(At::Record(p));
        }
        crate::parse_time(s).map(At::Time)
    }
}

/// The instance as folded up to `at`.
pub async fn instance_at(src: &Source, index: &Index, id: Uuid, at: &At) -> Result<Instance> {
    index.catch_up(src, &Silent).await?;
    let mut entries = index.entries(&id)?;
    if entries.is_empty() {
        return Err(Error::BadInput(format!("unknown server {id}")));
    }
    // One instance's records are in one partition (keyed by project), in
    // the order the conductor wrote them.
    entries.sort_by_key(|e| (e.partition, e.offset));
    let instances = &src.topics().instances;
    let keep: Box<dyn Fn(&crate::index::Entry) -> bool> = match at {
        At::Time(t) => {
            let first = index.first_ms()?.unwrap_or(i64::MIN);
            if *t < first {
                return Err(Error::BadInput(format!(
                    "{} is before the first record of the log ({})",
                    format_time(*t),
                    format_time(first)
                )));
            }
            let t = *t;
            Box::new(move |e: &crate::index::Entry| e.occurred_at_ms <= t)
        }
        At::Record(p) => {
            let topic = src.topic(&p.topic)?;
            if &topic == instances && entries.iter().all(|e| e.partition == p.partition) {
                let o = p.offset;
                Box::new(move |e: &crate::index::Entry| e.offset <= o)
            } else {
                let Some(rec) = src.read_one(&topic, p.partition, p.offset).await? else {
                    return Err(Error::BadInput(format!("no record at {p}")));
                };
                let t = novalog_schemas::decode(&rec.value)
                    .map(|env| env.meta.occurred_at_ms)
                    .unwrap_or(rec.timestamp_ms);
                Box::new(move |e: &crate::index::Entry| e.occurred_at_ms <= t)
            }
        }
    };
    let mut state: Option<Instance> = None;
    let mut first_seen = None;
    for e in &entries {
        first_seen.get_or_insert(e.occurred_at_ms);
        if !keep(e) {
            continue;
        }
        let Some(rec) = src.read_one(instances, e.partition, e.offset).await? else {
            continue;
        };
        if let Ok(env) = novalog_schemas::decode(&rec.value) {
            state = evolve(state, &env);
        }
    }
    state.ok_or_else(|| {
        Error::BadInput(format!(
            "server {id} did not exist yet then (its first record is at {})",
            format_time(first_seen.unwrap_or_default())
        ))
    })
}

/// The `GET /v2.1/servers/{id}` body of `inst` at microversion `version`,
/// as an administrator sees it.
pub fn server_body(inst: &Instance, version: ApiVersion, now_ms: i64) -> Value {
    let links = Links::new("http://novalog");
    let cx = ViewContext {
        links: &links,
        version,
        is_admin: true,
        show_extended_attributes: true,
        // host_status needs the host's heartbeats at that instant, which
        // the instance's records do not carry.
        show_host_status: false,
        now_ms,
        service_down_time_ms: 0,
    };
    json!({ "server": show(&cx, inst, None) })
}

/// Parses `--microversion` (`2.1` … the API's newest).
pub fn parse_version(s: &str) -> Result<ApiVersion> {
    let v =
        ApiVersion::parse(s).ok_or_else(|| Error::BadInput(format!("not a microversion: {s}")))?;
    if v < novalog_api::microversion::MIN_VERSION || v > novalog_api::microversion::MAX_VERSION {
        return Err(Error::BadInput(format!(
            "microversion {s} is outside {}..{}",
            novalog_api::microversion::MIN_VERSION,
            novalog_api::microversion::MAX_VERSION
        )));
    }
    Ok(v)
}
