//! Nova's quotas (nova/quota.py): the resources, their defaults
//! (nova.conf `[quota]`), a project's limits, and the check the conductor
//! makes when it accepts a create.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Every quota resource Nova shows, in its order.
pub const RESOURCES: &[&str] = &[
    "instances",
    "cores",
    "ram",
    "metadata_items",
    "injected_files",
    "injected_file_content_bytes",
    "injected_file_path_bytes",
    "key_pairs",
    "server_groups",
    "server_group_members",
    "fixed_ips",
    "floating_ips",
    "security_groups",
    "security_group_rules",
];

/// The defaults every project has until an administrator sets its own
/// (nova.conf `[quota]`; -1 is unlimited).
/// Read only from the config file, where an unknown key is an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuotaDefaults {
    pub instances: i64,
    pub cores: i64,
    /// MiB.
    pub ram: i64,
    pub metadata_items: i64,
    pub injected_files: i64,
    pub injected_file_content_bytes: i64,
    pub injected_file_path_bytes: i64,
    pub key_pairs: i64,
    pub server_groups: i64,
    pub server_group_members: i64,
}

impl Default for QuotaDefaults {
    fn default() -> Self {
        QuotaDefaults {
            instances: 10,
            cores: 20,
            ram: 51_200,
            metadata_items: 128,
            injected_files: 5,
            injected_file_content_bytes: 10_240,
            injected_file_path_bytes: 255,
            key_pairs: 100,
            server_groups: 10,
            server_group_members: 10,
        }
    }
}

impl QuotaDefaults {
    /// The default of `resource` (the nova-network ones are fixed).
    pub fn get(&self, resource: &str) -> Option<i64> {
        Some(match resource {
            "instances" => self.instances,
            "cores" => self.cores,
            "ram" => self.ram,
            "metadata_items" => self.metadata_items,
            "injected_files" => self.injected_files,
            "injected_file_content_bytes" => self.injected_file_content_bytes,
            "injected_file_path_bytes" => self.injected_file_path_bytes,
            "key_pairs" => self.key_pairs,
            "server_groups" => self.server_groups,
            "server_group_members" => self.server_group_members,
            "fixed_ips" => -1,
            "floating_ips" => 10,
            "security_groups" => 10,
            "security_group_rules" => 20,
            _ => return None,
        })
    }

    /// Every resource's limit for a project with its own `overrides`,
    /// falling back to quota class `default`'s limits and then to these
    /// defaults (Nova's `DbQuotaDriver`).
    pub fn limits_in_class(
        &self,
        class_default: &BTreeMap<String, i64>,
        overrides: &BTreeMap<String, i64>,
    ) -> BTreeMap<&'static str, i64> {
        let mut merged = class_default.clone();
        merged.extend(overrides.iter().map(|(k, v)| (k.clone(), *v)));
        self.limits(&merged)
    }

    /// Every resource's limit for a project with `overrides`.
    pub fn limits(&self, overrides: &BTreeMap<String, i64>) -> BTreeMap<&'static str, i64> {
        RESOURCES
            .iter()
            .map(|r| {
                let limit = overrides
                    .get(*r)
                    .copied()
                    .or_else(|| self.get(r))
                    .unwrap_or(-1);
                (*r, limit)
            })
            .collect()
    }
}

/// What a project uses of the resources a create counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub instances: i64,
    pub cores: i64,
    pub ram: i64,
}

impl Usage {
    /// What one instance of `flavor` uses. Sizes past `i64::MAX` count as
    /// `i64::MAX`: more than any limit, never a negative (wrapped) usage.
    pub fn of_flavor(flavor: &crate::Flavor) -> Usage {
        Usage {
            instances: 1,
            cores: i64::from(flavor.vcpus),
            ram: i64::try_from(flavor.ram_mb).unwrap_or(i64::MAX),
        }
    }

    /// `self + other`, saturating (the sizes are users' numbers).
    pub fn plus(self, other: Usage) -> Usage {
        Usage {
            instances: self.instances.saturating_add(other.instances),
            cores: self.cores.saturating_add(other.cores),
            ram: self.ram.saturating_add(other.ram),
        }
    }

    /// `self - other`, saturating.
    pub fn minus(self, other: Usage) -> Usage {
        Usage {
            instances: self.instances.saturating_sub(other.instances),
            cores: self.cores.saturating_sub(other.cores),
            ram: self.ram.saturating_sub(other.ram),
        }
    }

    /// `self * n`, saturating.
    pub fn times(self, n: i64) -> Usage {
        Usage {
            instances: self.instances.saturating_mul(n),
            cores: self.cores.saturating_mul(n),
            ram: self.ram.saturating_mul(n),
        }
    }

    pub fn get(&self, resource: &str) -> i64 {
        match resource {
            "instances" => self.instances,
            "cores" => self.cores,
            "ram" => self.ram,
            _ => 0,
        }
    }
}

/// Nova's check of a create of `requested` against `limits` with `used`
/// already: `Err` with its 403 message ("Quota exceeded for instances:
/// Requested 1, but already used 10 of 10 instances"), the resources over
/// quota named together when several are.
/// Whether `items` metadata items fit the `metadata_items` limit (-1:
/// unlimited), with Nova's `MetadataLimitExceeded` message if not. Nova
/// checks a create's metadata and every metadata change against the
/// project's limit, not a fixed number.
pub fn check_metadata(limits: &BTreeMap<&'static str, i64>, items: usize) -> Result<(), String> {
    let allowed = limits.get("metadata_items").copied().unwrap_or(-1);
    if allowed >= 0 && i64::try_from(items).unwrap_or(i64::MAX) > allowed {
        return Err(format!(
            "Maximum number of metadata items exceeds {allowed}"
        ));
    }
    Ok(())
}

pub fn check(
    limits: &BTreeMap<&'static str, i64>,
    used: Usage,
    requested: Usage,
) -> Result<(), String> {
    let overs: Vec<&str> = ["cores", "instances", "ram"]
        .into_iter()
        .filter(|r| {
            let limit = limits.get(r).copied().unwrap_or(-1);
            limit >= 0 && used.get(r).saturating_add(requested.get(r)) > limit
        })
        .collect();
    if overs.is_empty() {
        return Ok(());
    }
    let join =
        |f: &dyn Fn(&str) -> String| overs.iter().map(|r| f(r)).collect::<Vec<_>>().join(", ");
    let names = overs.join(", ");
    Err(format!(
        "Quota exceeded for {names}: Requested {}, but already used {} of {} {names}",
        join(&|r| requested.get(r).to_string()),
        join(&|r| used.get(r).to_string()),
        join(&|r| limits.get(r).copied().unwrap_or(-1).to_string()),
    ))
}

/// How many of `min..=max` instances, each using `each`, fit `limits`
/// with `used` already (Nova's `check_num_instances_quota`): the most that
/// fit, or, when fewer than `min` do, Nova's 403 message for the whole
/// request ("Requested 2-5, ...").
pub fn admit(
    limits: &BTreeMap<&'static str, i64>,
    used: Usage,
    each: Usage,
    min: u32,
    max: u32,
) -> Result<u32, String> {
    let (min, max) = (min.max(1), max.max(min).max(1));
    let times = |n: u32| each.times(i64::from(n));
    // The most that fit, computed rather than searched: `max` is a user's
    // number (up to u32::MAX), and the check is monotone in the count.
    let fit = ["cores", "instances", "ram"]
        .into_iter()
        .filter_map(|r| {
            let limit = limits.get(r).copied().unwrap_or(-1);
            let per = each.get(r);
            (limit >= 0 && per > 0).then(|| limit.saturating_sub(used.get(r)).div_euclid(per))
        })
        .min()
        .map_or(i64::from(max), |n| n.min(i64::from(max)));
    if let Ok(n) = u32::try_from(fit)
        && n >= min
        && check(limits, used, times(n)).is_ok()
    {
        return Ok(n);
    }
    let message = check(limits, used, times(max)).unwrap_err();
    if min == max {
        return Err(message);
    }
    Err(with_range(&message, min, max))
}

/// Nova names the instance count as the range asked for (`2-5`): puts it
/// where the count of `max` instances stands in `message`.
fn with_range(message: &str, min: u32, max: u32) -> String {
    let Some((head, rest)) = message.split_once(": Requested ") else {
        return message.to_owned();
    };
    let names: Vec<&str> = head
        .trim_start_matches("Quota exceeded for ")
        .split(", ")
        .collect();
    let (values, tail) = rest.split_once(", but already used").unwrap_or((rest, ""));
    let mut values: Vec<String> = values.split(", ").map(str::to_owned).collect();
    if let Some(pos) = names.iter().position(|n| *n == "instances")
        && values.get(pos).is_some_and(|v| *v == max.to_string())
    {
        values[pos] = format!("{min}-{max}");
    }
    format!(
        "{head}: Requested {}, but already used{tail}",
        values.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_projects_own_limit_beats_the_default_class_which_beats_the_config() {
        let class = BTreeMap::from([("cores".to_owned(), 40), ("ram".to_owned(), 1024)]);
        let own = BTreeMap::from([("ram".to_owned(), 2048)]);
        let limits = QuotaDefaults::default().limits_in_class(&class, &own);
        assert_eq!(limits["cores"], 40);
        assert_eq!(limits["ram"], 2048);
        assert_eq!(limits["instances"], 10);
    }

    #[test]
    fn sizes_at_the_top_of_the_range_are_over_quota_not_an_overflow() {
        let limits = QuotaDefaults::default().limits(&BTreeMap::new());
        let huge = Usage {
            instances: 1,
            cores: i64::MAX,
            ram: i64::MAX,
        };
        let used = Usage {
            instances: 1,
            cores: 1,
            ram: 1,
        };
        assert!(check(&limits, used, huge).is_err());
        assert!(admit(&limits, used, huge, 1, 1_000).is_err());
        let unlimited = QuotaDefaults::default().limits(&BTreeMap::from([
            ("cores".to_string(), -1),
            ("ram".to_string(), -1),
            ("instances".to_string(), -1),
        ]));
        assert_eq!(admit(&unlimited, used, huge, 1, 3), Ok(3));
    }

    #[test]
    fn the_edge_is_allowed_and_one_past_it_is_novas_403() {
        let limits = QuotaDefaults::default().limits(&BTreeMap::new());
        let one = Usage {
            instances: 1,
            cores: 1,
            ram: 512,
        };
        let used = Usage {
            instances: 9,
            cores: 9,
            ram: 4_608,
        };
        assert_eq!(check(&limits, used, one), Ok(()));
        let full = Usage {
            instances: 10,
            ..used
        };
        assert_eq!(
            check(&limits, full, one).unwrap_err(),
            "Quota exceeded for instances: Requested 1, but already used 10 of 10 instances"
        );
        let big = Usage {
            instances: 1,
            cores: 16,
            ram: 65_536,
        };
        assert_eq!(
            check(&limits, used, big).unwrap_err(),
            "Quota exceeded for cores, ram: Requested 16, 65536, but already used 9, 4608 of 20, 51200 cores, ram"
        );
        let unlimited =
            QuotaDefaults::default().limits(&BTreeMap::from([("instances".to_string(), -1)]));
        assert_eq!(check(&unlimited, full, one), Ok(()));
        // A multiple create gets as many as fit, or none below min_count.
        assert_eq!(admit(&limits, used, one, 1, 5), Ok(1));
        let seven = Usage {
            instances: 7,
            cores: 7,
            ram: 3_584,
        };
        assert_eq!(admit(&limits, seven, one, 2, 5), Ok(3));
        assert_eq!(
            admit(&limits, seven, one, 4, 5).unwrap_err(),
            "Quota exceeded for instances: Requested 4-5, but already used 7 of 10 instances"
        );
        assert_eq!(
            admit(&limits, seven, one, 4, 4).unwrap_err(),
            "Quota exceeded for instances: Requested 4, but already used 7 of 10 instances"
        );
        let zero = QuotaDefaults::default().limits(&BTreeMap::from([("cores".to_string(), 0)]));
        assert!(
            check(&zero, Usage::default(), one)
                .unwrap_err()
                .contains("of 0 cores")
        );
    }

    #[test]
    fn users_numbers_saturate_rather_than_overflow_or_wrap() {
        let limits = QuotaDefaults::default().limits(&BTreeMap::new());
        let flavor = crate::Flavor {
            id: "x".into(),
            name: "x".into(),
            vcpus: u32::MAX,
            ram_mb: u64::MAX,
            disk_gb: u64::MAX,
            ephemeral_gb: u64::MAX,
            swap_mb: u64::MAX,
            rxtx_factor: 1.0,
            is_public: true,
            extra_specs: BTreeMap::new(),
            description: None,
        };
        let each = Usage::of_flavor(&flavor);
        assert_eq!(each.ram, i64::MAX, "a u64 size is never a negative usage");
        assert_eq!(flavor.resources().disk_gb, u64::MAX);
        let used = Usage {
            instances: 1,
            cores: 1,
            ram: i64::MAX,
        };
        assert!(check(&limits, used, each).is_err());
        assert_eq!(used.plus(each).ram, i64::MAX);
        assert_eq!(each.times(i64::from(u32::MAX)).cores, i64::MAX);
        let unlimited = QuotaDefaults {
            instances: -1,
            cores: -1,
            ram: -1,
            ..QuotaDefaults::default()
        }
        .limits(&BTreeMap::new());
        // The count is computed, not searched down from u32::MAX.
        assert_eq!(
            admit(&unlimited, Usage::default(), each, 1, u32::MAX),
            Ok(u32::MAX)
        );
        let one = Usage {
            instances: 1,
            cores: 1,
            ram: 512,
        };
        assert_eq!(admit(&limits, Usage::default(), one, 1, u32::MAX), Ok(10));
        assert!(admit(&limits, Usage::default(), one, 11, u32::MAX).is_err());
    }
}
