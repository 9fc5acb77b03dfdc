//! `sort_key` / `sort_dir` of `GET /servers[/detail]`, as Nova reads
//! them: keys and directions are lists paired by position; keys Nova
//! accepts but no longer sorts by are dropped with their direction; `host`
//! and `node` are for administrators; `created_at` and `id` are appended
//! when missing, in the first direction given (descending by default), so
//! the order is total and a marker names one place in it.

use std::cmp::Ordering;

use novalog_schemas::instance::Instance;

use crate::error::ApiError;
use crate::microversion::ApiVersion;

/// Nova's `VALID_SORT_KEYS` for servers: the keys it sorts by, then
/// ([`IGNORED`]) the ones its schema still accepts but ignores.
pub const SORT_KEYS: &[&str] = &[
    "access_ip_v4",
    "access_ip_v6",
    "auto_disk_config",
    "availability_zone",
    "config_drive",
    "created_at",
    "display_description",
    "display_name",
    "host",
    "hostname",
    "image_ref",
    "instance_type_id",
    "kernel_id",
    "key_name",
    "launch_index",
    "launched_at",
    "locked_by",
    "node",
    "power_state",
    "progress",
    "project_id",
    "ramdisk_id",
    "root_device_name",
    "task_state",
    "terminated_at",
    "updated_at",
    "user_id",
    "uuid",
    "vm_state",
    "architecture",
    "cell_name",
    "cleaned",
    "default_ephemeral_device",
    "default_swap_device",
    "deleted",
    "deleted_at",
    "disable_terminate",
    "ephemeral_gb",
    "ephemeral_key_uuid",
    "id",
    "key_data",
    "launched_on",
    "locked",
    "memory_mb",
    "os_type",
    "reservation_id",
    "root_gb",
    "shutdown_terminate",
    "user_data",
    "vcpus",
    "vm_mode",
];

/// Keys Nova's schema still accepts but ignores (its
/// `SERVER_LIST_IGNORE_SORT_KEY`); `locked` sorts from 2.73.
const IGNORED: &[&str] = SORT_KEYS.split_at(29).1;

/// Nova's `VALID_SORT_KEYS` without the ignored ones: from 2.75 (with
/// `locked`) the only keys its query schema accepts.
const VALID: &[&str] = SORT_KEYS.split_at(29).0;

/// A column servers are ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    AccessIpV4,
    AccessIpV6,
    AutoDiskConfig,
    AvailabilityZone,
    ConfigDrive,
    CreatedAt,
    DisplayDescription,
    DisplayName,
    Host,
    Hostname,
    ImageRef,
    InstanceTypeId,
    KernelId,
    KeyName,
    LaunchIndex,
    LaunchedAt,
    Locked,
    LockedBy,
    Node,
    PowerState,
    Progress,
    ProjectId,
    RamdiskId,
    RootDeviceName,
    TaskState,
    TerminatedAt,
    UpdatedAt,
    UserId,
    Uuid,
    VmState,
    /// Nova's integer row id, i.e. creation order; only as the appended
    /// tie-breaker (a `sort_key=id` from a client is ignored, as in Nova).
    Id,
}

impl Key {
    fn parse(name: &str) -> Option<Key> {
        Some(match name {
            "access_ip_v4" => Key::AccessIpV4,
            "access_ip_v6" => Key::AccessIpV6,
            "auto_disk_config" => Key::AutoDiskConfig,
            "availability_zone" => Key::AvailabilityZone,
            "config_drive" => Key::ConfigDrive,
            "created_at" => Key::CreatedAt,
            "display_description" => Key::DisplayDescription,
            "display_name" => Key::DisplayName,
            "host" => Key::Host,
            "hostname" => Key::Hostname,
            "image_ref" => Key::ImageRef,
            "instance_type_id" => Key::InstanceTypeId,
            "kernel_id" => Key::KernelId,
            "key_name" => Key::KeyName,
            "launch_index" => Key::LaunchIndex,
            "launched_at" => Key::LaunchedAt,
            "locked" => Key::Locked,
            "locked_by" => Key::LockedBy,
            "node" => Key::Node,
            "power_state" => Key::PowerState,
            "progress" => Key::Progress,
            "project_id" => Key::ProjectId,
            "ramdisk_id" => Key::RamdiskId,
            "root_device_name" => Key::RootDeviceName,
            "task_state" => Key::TaskState,
            "terminated_at" => Key::TerminatedAt,
            "updated_at" => Key::UpdatedAt,
            "user_id" => Key::UserId,
            "uuid" => Key::Uuid,
            "vm_state" => Key::VmState,
            _ => return None,
        })
    }

    /// The instance's value of this column, as the database would order
    /// it (a missing value first when ascending, as MySQL's NULL).
    fn value(self, i: &Instance) -> Value {
        let text = |s: Option<&str>| Value::Text(s.map(str::to_owned));
        match self {
            Key::AccessIpV4 => Value::Text(i.access.access_ip_v4.map(|a| a.to_string())),
            Key::AccessIpV6 => Value::Text(i.access.access_ip_v6.map(|a| a.to_string())),
            Key::AutoDiskConfig => Value::Int(Some(i64::from(i.access.auto_disk_config))),
            // Columns Novalog keeps no value in (no config drive, no kernel
            // or ramdisk images, no root device name): equal for every
            // server, as Nova's NULLs or ''.
            Key::ConfigDrive
            | Key::KernelId
            | Key::RamdiskId
            | Key::RootDeviceName
            | Key::Progress => Value::Text(None),
            Key::AvailabilityZone => text(i.availability_zone.as_deref()),
            Key::CreatedAt => Value::Int(Some(i.created_at_ms)),
            Key::DisplayDescription => text(i.description.as_deref()),
            Key::DisplayName => text(Some(&i.name)),
            Key::Host | Key::Node => text(i.host.as_deref()),
            Key::Hostname => Value::Text(Some(super::compute::hostname(&i.name, &i.id))),
            Key::ImageRef => Value::Text(Some(i.image.id.to_string())),
            Key::InstanceTypeId => text(Some(&i.flavor.id)),
            Key::KeyName => text(i.key_name.as_deref()),
            Key::LaunchIndex => Value::Int(Some(i64::from(i.launch_index))),
            Key::LaunchedAt => Value::Int(i.launched_at_ms),
            Key::Locked => Value::Int(Some(i64::from(i.is_locked()))),
            Key::LockedBy => text(i.locked_by.as_deref()),
            Key::PowerState => Value::Int(Some(i64::from(i.power_state.code()))),
            Key::ProjectId => text(Some(&i.project_id)),
            Key::TaskState => text(i.task_state.map(|t| t.as_str())),
            Key::TerminatedAt => Value::Int(i.deleted_at_ms),
            Key::UpdatedAt => Value::Int(Some(i.updated_at_ms)),
            Key::UserId => text(Some(&i.user_id)),
            Key::Uuid => Value::Text(Some(i.id.to_string())),
            Key::VmState => text(Some(i.vm_state.as_str())),
            Key::Id => Value::Order(i.created_at_ms, i.id),
        }
    }
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Value {
    Text(Option<String>),
    Int(Option<i64>),
    Order(i64, uuid::Uuid),
}

/// The order a list asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    keys: Vec<(Key, bool)>,
}

impl Order {
    /// Nova's default: newest first.
    pub fn newest_first() -> Order {
        Order {
            keys: vec![(Key::CreatedAt, false), (Key::Id, false)],
        }
    }

    /// Whether this is the default order, which the projection's
    /// creation-time index serves without sorting.
    pub fn is_newest_first(&self) -> bool {
        *self == Order::newest_first()
    }

    /// The order `params` ask for (the query schema already checked each
    /// `sort_key` against Nova's list).
    pub fn from_params(
        params: &[(String, String)],
        version: ApiVersion,
        is_admin: bool,
    ) -> Result<Order, ApiError> {
        let mut keys: Vec<&str> = Vec::new();
        let mut dirs: Vec<&str> = Vec::new();
        for (k, v) in params {
            match k.as_str() {
                "sort_key" => keys.push(v.trim()),
                "sort_dir" => dirs.push(v.trim()),
                _ => {}
            }
        }
        // Ignored keys go with the direction at their position, if any;
        // from 2.75 Nova's query schema refuses them instead.
        let mut i = 0;
        while i < keys.len() {
            let ignored =
                IGNORED.contains(&keys[i]) && !(keys[i] == "locked" && version.at_least(2, 73));
            if ignored && version.at_least(2, 75) {
                let valid: Vec<String> = VALID
                    .iter()
                    .chain(["locked"].iter())
                    .map(|k| format!("'{k}'"))
                    .collect();
                return Err(ApiError::bad_request(format!(
                    "Invalid input for query parameters sort_key. Value: {key}. '{key}' is not one of [{}]",
                    valid.join(", "),
                    key = keys[i]
                )));
            }
            if ignored {
                keys.remove(i);
                if dirs.len() > i {
                    dirs.remove(i);
                }
                continue;
            }
            if matches!(keys[i], "host" | "node") && !is_admin {
                return Err(ApiError::forbidden(format!(
                    "Only administrators can sort servers by {}",
                    keys[i]
                )));
            }
            i += 1;
        }
        let mut ascending = Vec::with_capacity(dirs.len());
        for d in &dirs {
            match *d {
                "asc" => ascending.push(true),
                "desc" => ascending.push(false),
                _ => {
                    return Err(ApiError::bad_request(
                        "Unknown sort direction, must be 'desc' or 'asc'",
                    ));
                }
            }
        }
        if ascending.len() > keys.len().max(1) {
            return Err(ApiError::bad_request(
                "Sort direction size exceeds sort key size",
            ));
        }
        let default_dir = ascending.first().copied().unwrap_or(false);
        let mut order = Vec::new();
        for (n, name) in keys.iter().enumerate() {
            let key = Key::parse(name)
                .ok_or_else(|| ApiError::bad_request(format!("Invalid sort key {name}")))?;
            if !order.iter().any(|(k, _)| *k == key) {
                order.push((key, ascending.get(n).copied().unwrap_or(default_dir)));
            }
        }
        for key in [Key::CreatedAt, Key::Id] {
            if !order.iter().any(|(k, _)| *k == key) {
                order.push((key, default_dir));
            }
        }
        Ok(Order { keys: order })
    }

    /// How `a` and `b` compare in this order.
    pub fn compare(&self, a: &Instance, b: &Instance) -> Ordering {
        for (key, ascending) in &self.keys {
            let o = key.value(a).cmp(&key.value(b));
            let o = if *ascending { o } else { o.reverse() };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn order(pairs: &[(&str, &str)]) -> Result<Order, ApiError> {
        Order::from_params(&params(pairs), ApiVersion::new(2, 1), true)
    }

    fn server(name: &str, created: i64) -> Instance {
        let mut i = crate::views::servers::tests::building("p");
        i.name = name.to_owned();
        i.created_at_ms = created;
        i
    }

    #[test]
    fn no_keys_is_newest_first() {
        assert!(order(&[]).unwrap().is_newest_first());
        assert!(
            order(&[("sort_key", "created_at"), ("sort_dir", "desc")])
                .unwrap()
                .is_newest_first()
        );
        assert!(
            !order(&[("sort_key", "display_name")])
                .unwrap()
                .is_newest_first()
        );
    }

    #[test]
    fn keys_sort_in_their_directions_with_creation_as_tie_breaker() {
        let a = server("a", 1);
        let b1 = server("b", 2);
        let b2 = server("b", 3);
        let by_name = order(&[("sort_key", "display_name"), ("sort_dir", "asc")]).unwrap();
        let mut list = [&b2, &a, &b1];
        list.sort_by(|x, y| by_name.compare(x, y));
        // Ascending names; the two b's in the direction given (ascending).
        assert_eq!(
            list.iter().map(|i| i.created_at_ms).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        let by_name_desc = order(&[("sort_key", "display_name")]).unwrap();
        list.sort_by(|x, y| by_name_desc.compare(x, y));
        assert_eq!(
            list.iter().map(|i| i.created_at_ms).collect::<Vec<_>>(),
            [3, 2, 1]
        );
        // Two keys, two directions.
        let mixed = order(&[
            ("sort_key", "display_name"),
            ("sort_dir", "desc"),
            ("sort_key", "created_at"),
            ("sort_dir", "asc"),
        ])
        .unwrap();
        list.sort_by(|x, y| mixed.compare(x, y));
        assert_eq!(
            list.iter().map(|i| i.created_at_ms).collect::<Vec<_>>(),
            [2, 3, 1]
        );
    }

    #[test]
    fn ignored_keys_are_refused_from_2_75_and_locked_is_a_key_from_2_73() {
        let at = |minor, key: &str| {
            Order::from_params(
                &params(&[("sort_key", key)]),
                ApiVersion::new(2, minor),
                false,
            )
        };
        assert!(at(74, "vcpus").unwrap().is_newest_first());
        let e = at(75, "vcpus").unwrap_err();
        assert!(
            e.message
                .starts_with("Invalid input for query parameters sort_key. Value: vcpus."),
            "{}",
            e.message
        );
        assert!(at(72, "locked").unwrap().is_newest_first());
        assert_eq!(at(73, "locked").unwrap().keys[0], (Key::Locked, false));
        assert_eq!(at(75, "locked").unwrap().keys[0], (Key::Locked, false));
    }

    #[test]
    fn ignored_keys_go_with_their_direction() {
        // `vcpus` is ignored with its `asc`; display_name keeps `desc`.
        let o = order(&[
            ("sort_key", "vcpus"),
            ("sort_dir", "asc"),
            ("sort_key", "display_name"),
            ("sort_dir", "desc"),
        ])
        .unwrap();
        assert_eq!(
            o.keys,
            [
                (Key::DisplayName, false),
                (Key::CreatedAt, false),
                (Key::Id, false)
            ]
        );
        // `locked` sorts from 2.73 only.
        let p = params(&[("sort_key", "locked")]);
        let old = Order::from_params(&p, ApiVersion::new(2, 72), false).unwrap();
        assert!(old.is_newest_first());
        let new = Order::from_params(&p, ApiVersion::new(2, 73), false).unwrap();
        assert_eq!(new.keys[0], (Key::Locked, false));
    }

    #[test]
    fn bad_directions_and_admin_keys_are_refused_as_nova() {
        let e = order(&[("sort_key", "display_name"), ("sort_dir", "up")]).unwrap_err();
        assert_eq!(e.status.as_u16(), 400);
        assert!(e.message.contains("Unknown sort direction"), "{e:?}");
        let e = order(&[
            ("sort_key", "display_name"),
            ("sort_dir", "asc"),
            ("sort_dir", "desc"),
        ])
        .unwrap_err();
        assert!(
            e.message
                .contains("Sort direction size exceeds sort key size")
        );
        let p = params(&[("sort_key", "host")]);
        let e = Order::from_params(&p, ApiVersion::new(2, 1), false).unwrap_err();
        assert_eq!(e.status.as_u16(), 403);
        assert_eq!(e.message, "Only administrators can sort servers by host");
        assert!(Order::from_params(&p, ApiVersion::new(2, 1), true).is_ok());
    }
}
