//! AggregateInstanceExtraSpecsFilter: the flavor's extra specs match the
//! metadata of the host's aggregates (Nova's filter of the same name).
//!
//! Keys without a namespace, and keys in `aggregate_instance_extra_specs:`,
//! are looked up in the union of the host's aggregate metadata (values split
//! at commas); a key no aggregate sets fails the host, and one of its values
//! must match the requirement (see [`super::extra_specs_ops`]). Keys in other
//! namespaces are ignored. A flavor without extra specs passes everywhere.

use novalog_schemas::events::SelectHostsRequested;

use super::{Context, Filter, Scope, extra_specs_ops};
use crate::host_state::HostState;

pub struct AggregateInstanceExtraSpecsFilter;

const SCOPE: &str = "aggregate_instance_extra_specs";

impl Filter for AggregateInstanceExtraSpecsFilter {
    fn name(&self) -> &'static str {
        "AggregateInstanceExtraSpecsFilter"
    }

    fn host_passes(&self, host: &HostState, spec: &SelectHostsRequested, _ctx: &Context) -> bool {
        spec.extra_specs.iter().all(|(key, req)| {
            let key = match key.split_once(':') {
                Some((SCOPE, k)) => k,
                Some(_) => return true,
                None => key.as_str(),
            };
            let values = host.aggregate_values(key);
            !values.is_empty() && values.iter().any(|v| extra_specs_ops::matches(v, req))
        })
    }

    fn scope(&self, spec: &SelectHostsRequested, _ctx: &Context) -> Scope {
        if spec.extra_specs.is_empty() {
            Scope::All
        } else {
            Scope::Class
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::test_spec;
    use crate::host_state::{aggregate, test_host};

    fn passes(host: &HostState, specs: &[(&str, &str)]) -> bool {
        let mut spec = test_spec(1, 1, 1);
        spec.extra_specs = specs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        AggregateInstanceExtraSpecsFilter.host_passes(host, &spec, &Context::default())
    }

    #[test]
    fn flavor_specs_against_aggregate_metadata() {
        let mut h = test_host("h");
        h.aggregates = vec![aggregate(
            "fast",
            &[("ssd", "true"), ("tier", "gold, silver")],
        )];
        let bare = test_host("bare");
        assert!(passes(&bare, &[]), "no extra specs");
        assert!(passes(
            &h,
            &[("aggregate_instance_extra_specs:ssd", "true")]
        ));
        assert!(passes(&h, &[("ssd", "true")]), "unscoped keys count too");
        assert!(
            !passes(&bare, &[("ssd", "true")]),
            "a key no aggregate sets fails"
        );
        assert!(passes(&h, &[("tier", "silver")]), "comma-separated values");
        assert!(!passes(&h, &[("tier", "bronze")]));
        assert!(passes(&h, &[("tier", "<or> bronze <or> gold")]));
        assert!(
            passes(&bare, &[("hw:cpu_policy", "dedicated")]),
            "other namespaces ignored"
        );
    }
}
