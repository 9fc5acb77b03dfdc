//! AggregateMultiTenancyIsolation: a host in an aggregate with
//! `filter_tenant_id*` metadata takes only those projects; hosts in no such
//! aggregate take anyone (Nova's filter of the same name).

use novalog_schemas::events::SelectHostsRequested;

use super::{Context, Filter, Scope};
use crate::host_state::HostState;

pub struct AggregateMultiTenancyIsolation;

impl Filter for AggregateMultiTenancyIsolation {
    fn name(&self) -> &'static str {
        "AggregateMultiTenancyIsolation"
    }

    fn host_passes(&self, host: &HostState, spec: &SelectHostsRequested, _ctx: &Context) -> bool {
        let mut restricted = false;
        for a in &host.aggregates {
            for (k, v) in &a.metadata {
                if k.starts_with("filter_tenant_id") {
                    restricted = true;
                    if v.split(',').any(|t| t.trim() == spec.project_id) {
                        return true;
                    }
                }
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

    #[test]
    fn restricted_aggregates_take_only_their_projects() {
        let ctx = Context::default();
        let mut spec = test_spec(1, 1, 1);
        let mut h = test_host("h");
        assert!(
            AggregateMultiTenancyIsolation.host_passes(&h, &spec, &ctx),
            "no aggregate"
        );
        h.aggregates = vec![aggregate("open", &[("ssd", "true")])];
        assert!(
            AggregateMultiTenancyIsolation.host_passes(&h, &spec, &ctx),
            "unrestricted"
        );
        h.aggregates.push(aggregate(
            "t",
            &[("filter_tenant_id", "a, b"), ("filter_tenant_id2", "c")],
        ));
        spec.project_id = "b".into();
        assert!(AggregateMultiTenancyIsolation.host_passes(&h, &spec, &ctx));
        spec.project_id = "c".into();
        assert!(AggregateMultiTenancyIsolation.host_passes(&h, &spec, &ctx));
        spec.project_id = "p".into();
        assert!(!AggregateMultiTenancyIsolation.host_passes(&h, &spec, &ctx));
    }
}
