//! JsonFilter: the `query` hint, a JSON expression over host attributes,
//! holds for the host (Nova's filter of the same name).
//!
//! `["op", arg, ...]` with `=`, `<`, `>`, `<=`, `>=` (the first argument
//! against each of the rest), `in` (the first among the rest), `not` (each
//! negated, a list), `and`, `or`; arguments are literals, nested
//! expressions, or `$attribute` lookups: `$free_ram_mb`, `$free_disk_mb`,
//! `$total_usable_ram_mb`, `$total_usable_disk_gb`, `$vcpus_total`,
//! `$vcpus_used`, `$num_instances`, `$num_io_ops`, `$host`,
//! `$hypervisor_type`, `$hypervisor_version`, `$cpu_arch`,
//! `$availability_zone`, `$capabilities.<key>` (also `$stats.<key>`) and
//! `$metrics.<name>`. A lookup that finds nothing drops the argument. A
//! malformed query, an unknown operator, or comparing a string with a
//! number (an exception in Nova) fails the host.

use std::cmp::Ordering;

use novalog_schemas::events::SelectHostsRequested;
use serde_json::Value as Json;

use super::{Context, Filter, Scope, hint};
use crate::host_state::HostState;

pub struct JsonFilter;

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Bool(bool),
    Num(f64),
    Str(String),
    List(Vec<Value>),
}

impl Value {
    fn truthy(&self) -> bool {
        match self {
            Value::Bool(b) => *b,
            Value::Num(n) => *n != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
        }
    }

    fn number(&self) -> Option<f64> {
        match self {
            Value::Num(n) => Some(*n),
            Value::Bool(b) => Some(f64::from(u8::from(*b))),
            _ => None,
        }
    }
}

/// Python's comparison: numbers with numbers, strings with strings;
/// anything else has no order (and is unequal).
fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => Some(x.cmp(y)),
        _ => a.number()?.partial_cmp(&b.number()?),
    }
}

fn lookup(host: &HostState, path: &str) -> Option<Value> {
    let mut parts = path.split('.');
    let head = parts.next()?;
    let num = |n: f64| Some(Value::Num(n));
    let v = match head {
        "free_ram_mb" => num(host.free_ram_mb()),
        "free_disk_mb" => num(host.free_disk_mb()),
        "total_usable_ram_mb" => num(host.capacity.memory_mb as f64),
        "total_usable_disk_gb" => num(host.capacity.disk_gb as f64),
        "vcpus_total" => num(f64::from(host.capacity.vcpus)),
        "vcpus_used" => num(host.used_vcpus() as f64),
        "num_instances" => num(f64::from(host.num_instances())),
        "num_io_ops" => num(f64::from(host.num_io_ops())),
        "hypervisor_version" => num(host.hypervisor_version as f64),
        "host" | "nodename" => Some(Value::Str(host.name.clone())),
        "hypervisor_type" => Some(Value::Str(host.hypervisor_type.clone())),
        "cpu_arch" => Some(Value::Str(host.cpu_arch.clone())),
        "availability_zone" => Some(Value::Str(host.zone().to_owned())),
        "capabilities" | "stats" => {
            let key = parts.next()?;
            return host.capabilities.get(key).map(|v| Value::Str(v.clone()));
        }
        "metrics" => {
            let key = parts.collect::<Vec<_>>().join(".");
            return host.metrics.get(&key).map(|v| Value::Num(*v));
        }
        _ => None,
    };
    if parts.next().is_some() { None } else { v }
}

/// Evaluates one expression; `None` where Nova would raise.
fn eval(query: &[Json], host: &HostState) -> Option<Value> {
    let Some((op, args)) = query.split_first() else {
        return Some(Value::Bool(true));
    };
    let mut cooked = Vec::with_capacity(args.len());
    for arg in args {
        let v = match arg {
            Json::Array(q) => Some(eval(q, host)?),
            Json::String(s) if s.is_empty() => None,
            Json::String(s) => match s.strip_prefix('$') {
                Some(path) => lookup(host, path),
                None => Some(Value::Str(s.clone())),
            },
            Json::Number(n) => Some(Value::Num(n.as_f64()?)),
            Json::Bool(b) => Some(Value::Bool(*b)),
            Json::Null => None,
            Json::Object(_) => return None,
        };
        cooked.extend(v);
    }
    let all_rest = |f: fn(Ordering) -> bool| -> Option<Value> {
        if cooked.len() < 2 {
            return Some(Value::Bool(false));
        }
        let mut ok = true;
        for b in &cooked[1..] {
            ok &= f(compare(&cooked[0], b)?);
        }
        Some(Value::Bool(ok))
    };
    match op.as_str()? {
        "=" => Some(Value::Bool(
            cooked.len() >= 2
                && cooked[1..]
                    .iter()
                    .all(|b| compare(&cooked[0], b) == Some(Ordering::Equal)),
        )),
        "<" => all_rest(|o| o == Ordering::Less),
        ">" => all_rest(|o| o == Ordering::Greater),
        "<=" => all_rest(|o| o != Ordering::Greater),
        ">=" => all_rest(|o| o != Ordering::Less),
        "in" => Some(Value::Bool(
            cooked.len() >= 2
                && cooked[1..]
                    .iter()
                    .any(|b| compare(&cooked[0], b) == Some(Ordering::Equal)),
        )),
        "not" => Some(Value::List(
            cooked.iter().map(|v| Value::Bool(!v.truthy())).collect(),
        )),
        "or" => Some(Value::Bool(cooked.iter().any(Value::truthy))),
        "and" => Some(Value::Bool(cooked.iter().all(Value::truthy))),
        _ => None,
    }
}

impl Filter for JsonFilter {
    fn name(&self) -> &'static str {
        "JsonFilter"
    }

    fn host_passes(&self, host: &HostState, spec: &SelectHostsRequested, _ctx: &Context) -> bool {
        let Some(query) = hint(spec, "query").first().filter(|q| !q.is_empty()) else {
            return true;
        };
        let Ok(Json::Array(q)) = serde_json::from_str::<Json>(query) else {
            return false;
        };
        match eval(&q, host) {
            Some(Value::List(l)) => l.iter().any(Value::truthy),
            Some(v) => v.truthy(),
            None => false,
        }
    }

    fn scope(&self, spec: &SelectHostsRequested, _ctx: &Context) -> Scope {
        if hint(spec, "query").first().is_none_or(|q| q.is_empty()) {
            Scope::All
        } else {
            Scope::Host
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::test_spec;
    use crate::host_state::test_host;

    fn passes(host: &HostState, query: &str) -> bool {
        let mut spec = test_spec(1, 1, 1);
        spec.scheduler_hints
            .insert("query".into(), vec![query.into()]);
        JsonFilter.host_passes(host, &spec, &Context::default())
    }

    #[test]
    fn nova_query_grammar() {
        let mut h = test_host("h1"); // 16384 MB, 100 GB, 8 vcpus
        h.usage.memory_mb_used = 4_096;
        h.capabilities.insert("ssd".into(), "true".into());
        h.metrics.insert("cpu.percent".into(), 35.0);
        assert!(
            JsonFilter.host_passes(&h, &test_spec(1, 1, 1), &Context::default()),
            "no query"
        );
        assert!(passes(&h, r#"[">=", "$free_ram_mb", 1024]"#));
        assert!(!passes(&h, r#"[">=", "$free_ram_mb", 16384]"#));
        assert!(passes(
            &h,
            r#"["and", [">=", "$free_ram_mb", 1024], ["=", "$capabilities.ssd", "true"]]"#
        ));
        assert!(passes(
            &h,
            r#"["or", ["<", "$vcpus_total", 4], ["in", "$host", "h0", "h1"]]"#
        ));
        assert!(!passes(&h, r#"["not", ["=", "$hypervisor_type", "fake"]]"#));
        assert!(passes(&h, r#"["<", "$metrics.cpu.percent", 50]"#));
        assert!(
            !passes(&h, r#"["<", "$metrics.absent", 50]"#),
            "a dropped argument leaves one"
        );
        assert!(!passes(&h, r#"["<", "$host", 5]"#), "string against number");
        assert!(!passes(&h, r#"["~", "$host", 5]"#), "unknown operator");
        assert!(!passes(&h, "not json"));
        assert!(passes(&h, "[]"), "empty query");
    }
}
