//! RAMWeigher: free RAM. A positive multiplier spreads instances across
//! hosts, a negative one stacks them.

use novalog_schemas::events::SelectHostsRequested;

use super::Weigher;
use crate::filters::Context;
use crate::host_state::HostState;

pub struct RamWeigher {
    pub multiplier: f64,
}

impl Weigher for RamWeigher {
    fn name(&self) -> &'static str {
        "RAMWeigher"
    }

    fn multiplier(&self) -> f64 {
        self.multiplier
    }

    fn weight(&self, host: &HostState, _spec: &SelectHostsRequested, _ctx: &Context) -> f64 {
        host.free_ram_mb()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::test_spec;
    use crate::host_state::test_host;
    use crate::weighers::weigh;

    #[test]
    fn positive_spreads_negative_stacks() {
        let empty = test_host("empty");
        let mut busy = test_host("busy");
        busy.usage.memory_mb_used = 8_192;
        let hosts = [&empty, &busy];
        let spec = test_spec(1, 512, 1);
        let ctx = Context::default();
        let spread: Vec<Box<dyn Weigher>> = vec![Box::new(RamWeigher { multiplier: 1.0 })];
        let w = weigh(&spread, &hosts, &spec, &ctx);
        assert!(w[0] > w[1], "spreading prefers the emptier host");
        let stack: Vec<Box<dyn Weigher>> = vec![Box::new(RamWeigher { multiplier: -1.0 })];
        let w = weigh(&stack, &hosts, &spec, &ctx);
        assert!(w[1] > w[0], "stacking prefers the fuller host");
    }
}
