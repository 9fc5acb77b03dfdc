//! AggregateTypeAffinityFilter: a host in aggregates with `instance_type`
//! metadata takes only the flavors named there (each value a
//! comma-separated list of flavor names); a host no aggregate sets it for
//! takes any flavor (Nova's filter of the same name).

use novalog_schemas::events::SelectHostsRequested;

use super::{Context, Filter, Scope};
use crate::host_state::HostState;

pub struct AggregateTypeAffinityFilter;

impl Filter for AggregateTypeAffinityFilter {
    fn name(&self) -> &'static str {
        "AggregateTypeAffinityFilter"
    }

    fn host_passes(&self, host: &HostState, spec: &SelectHostsRequested, _ctx: &Context) -> bool {
        let mut restricted = false;
        for a in &host.aggregates {
            if let Some(types) = a.metadata.get("instance_type") {
                if types.split(',').any(|t| t.trim() == spec.flavor_name) {
                    return true;
                }
                restricted = true;
            }
        }
        !restricted
    }

    fn scope(&self, _spec: &SelectHostsRequested, _ctx: &Context) -> Scope {
        Scope::Class
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::test_spec;
    use crate::host_state::{aggregate, test_host};

    fn passes(host: &HostState, flavor: &str) -> bool {
        let mut spec = test_spec(1, 1, 1);
        spec.flavor_name = flavor.into();
        AggregateTypeAffinityFilter.host_passes(host, &spec, &Context::default())
    }

    #[test]
    fn aggregates_naming_flavors_take_only_those() {
        let mut h = test_host("h");
        assert!(passes(&h, "m1.small"), "no aggregate: any flavor");
        h.aggregates = vec![aggregate("tags", &[("ssd", "true")])];
        assert!(passes(&h, "m1.small"), "aggregates without instance_type");
        h.aggregates.push(aggregate(
            "small",
            &[("instance_type", "m1.tiny, m1.small")],
        ));
        assert!(passes(&h, "m1.small"), "a name in the list, trimmed");
        assert!(!passes(&h, "m1.large"));
        h.aggregates
            .push(aggregate("large", &[("instance_type", "m1.large")]));
        assert!(passes(&h, "m1.large"), "any aggregate naming the flavor");
        assert!(!passes(&h, "m1.xlarge"));
    }
}
