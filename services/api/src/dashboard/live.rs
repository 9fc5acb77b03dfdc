//! The live server list: what the console shows of a server, which
//! servers a caller may see, and what changed between two looks at the
//! projection (what the event stream sends). Pure.

use std::collections::BTreeMap;

use novalog_schemas::Instance;
use serde::Serialize;
use uuid::Uuid;

use crate::auth::Context;

/// A server as a row of the console's list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerRow {
    pub id: Uuid,
    pub name: String,
    pub project_id: String,
    /// The API's status (ACTIVE, BUILD, SHUTOFF, ...).
    pub status: String,
    pub vm_state: String,
    /// `None` when no task runs.
    pub task_state: Option<String>,
    pub power_state: String,
    /// Only administrators see hosts (Nova's extended server attributes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    pub flavor: String,
    pub image: String,
    pub availability_zone: Option<String>,
    pub key_name: Option<String>,
    pub locked: bool,
    /// Why it is in ERROR.
    pub fault: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
}

impl ServerRow {
    /// `i` as `ctx` may see it.
    pub fn of(i: &Instance, ctx: &Context) -> Self {
        ServerRow {
            id: i.id,
            name: i.name.clone(),
            project_id: i.project_id.clone(),
            status: i.status().to_owned(),
            vm_state: i.vm_state.as_str().to_owned(),
            task_state: i.task_state.map(|t| t.as_str().to_owned()),
            power_state: format!("{:?}", i.power_state).to_lowercase(),
            host: if ctx.is_admin { i.host.clone() } else { None },
            flavor: i.flavor.name.clone(),
            image: i.image.name.clone(),
            availability_zone: i.availability_zone.clone(),
            key_name: i.key_name.clone(),
            locked: i.is_locked(),
            fault: i.fault.as_ref().map(|f| f.message.clone()),
            created_ms: i.created_at_ms,
            updated_ms: i.updated_at_ms,
        }
    }
}

/// The projects whose servers `ctx` sees: its own, or every one (`None`)
/// for an administrator, as the API's policy has it (an administrator
/// lists every project's servers with `all_tenants`).
pub fn scope(ctx: &Context) -> Option<&str> {
    if ctx.is_admin {
        None
    } else {
        Some(&ctx.project_id)
    }
}

/// Whether `ctx` may see server `i` at all.
pub fn visible(ctx: &Context, i: &Instance) -> bool {
    scope(ctx).is_none_or(|p| p == i.project_id)
}

/// What changed from `before` to `now`: rows added or changed, and the
/// ids of servers gone (deleted, or no longer visible).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Changes {
    pub servers: Vec<ServerRow>,
    pub deleted: Vec<Uuid>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty() && self.deleted.is_empty()
    }
}

pub type Rows = BTreeMap<Uuid, ServerRow>;

/// The rows of `servers` that `ctx` may see, by id.
pub fn rows<'a>(ctx: &Context, servers: impl IntoIterator<Item = &'a Instance>) -> Rows {
    servers
        .into_iter()
        .filter(|i| visible(ctx, i))
        .map(|i| (i.id, ServerRow::of(i, ctx)))
        .collect()
}

pub fn diff(before: &Rows, now: &Rows) -> Changes {
    Changes {
        servers: now
            .iter()
            .filter(|(id, row)| before.get(id) != Some(row))
            .map(|(_, row)| row.clone())
            .collect(),
        deleted: before
            .keys()
            .filter(|id| !now.contains_key(id))
            .copied()
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: u128, status: &str) -> ServerRow {
        ServerRow {
            id: Uuid::from_u128(id),
            name: format!("vm{id}"),
            project_id: "p1".into(),
            status: status.into(),
            vm_state: "building".into(),
            task_state: None,
            power_state: "nostate".into(),
            host: None,
            flavor: "m1.tiny".into(),
            image: "cirros".into(),
            availability_zone: None,
            key_name: None,
            locked: false,
            fault: None,
            created_ms: 0,
            updated_ms: 0,
        }
    }

    fn rows_of(rs: &[ServerRow]) -> Rows {
        rs.iter().map(|r| (r.id, r.clone())).collect()
    }

    #[test]
    fn only_what_changed_is_sent() {
        let before = rows_of(&[row(1, "BUILD"), row(2, "ACTIVE"), row(3, "ACTIVE")]);
        let now = rows_of(&[row(1, "ACTIVE"), row(2, "ACTIVE"), row(4, "BUILD")]);
        let c = diff(&before, &now);
        let ids: Vec<_> = c
            .servers
            .iter()
            .map(|r| (r.id.as_u128(), r.status.as_str()))
            .collect();
        assert_eq!(ids, [(1, "ACTIVE"), (4, "BUILD")]);
        assert_eq!(c.deleted, [Uuid::from_u128(3)]);
        assert!(diff(&now, &now).is_empty());
    }

    #[test]
    fn a_member_sees_its_project_and_an_admin_every_one() {
        let member = Context::new("alice", "p1", vec!["member".into()]);
        assert_eq!(scope(&member), Some("p1"));
        assert_eq!(scope(&Context::admin()), None);
    }
}
