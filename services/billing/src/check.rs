//! `novalog-billing check-prices`: which flavors the price table does not
//! name, so that their servers are billed at the default per-resource rates.

use std::collections::BTreeMap;

use novalog_schemas::{CatalogEvent, Envelope, Event, InstanceEvent};

use crate::meter::FlavorSpec;
use crate::money::{Amount, MICRO, MS_PER_HOUR, Rounding};
use crate::rate::PriceTable;

/// Every flavor met in the log, by name: the catalog's and those servers
/// were created or resized with (a flavor deleted since still bills).
#[derive(Debug, Default)]
pub struct FlavorsSeen {
    pub flavors: BTreeMap<String, FlavorSpec>,
}

impl FlavorsSeen {
    pub fn observe(&mut self, env: &Envelope) {
        let mut add = |f: &novalog_schemas::Flavor| {
            self.flavors.insert(f.name.clone(), FlavorSpec::from(f));
        };
        match &env.event {
            Event::Catalog(CatalogEvent::FlavorCreated(f) | CatalogEvent::FlavorUpdated(f)) => {
                add(f)
            }
            Event::Instance(InstanceEvent::InstanceCreated(c)) => add(&c.flavor),
            Event::Instance(InstanceEvent::MigrationStarted(m)) => add(&m.new_flavor),
            _ => {}
        }
    }

    /// One line per flavor without a price: what it is billed per hour
    /// by its resources (running, before the state multiplier).
    pub fn unpriced(&self, table: &PriceTable) -> Vec<String> {
        self.flavors
            .values()
            .filter(|f| table.flavor_price(f).is_none())
            .map(|f| {
                let (rate, _) = table.hourly_micro_1024(f);
                let hourly = Amount(rate * MICRO * MS_PER_HOUR).round(6, Rounding::HalfEven);
                format!(
                    "{} (id {}): not in [billing] flavors; billed at the default rates, \
                     {} vCPU, {} MiB RAM, {} GB disk = {} {}/h",
                    f.name,
                    f.id,
                    f.vcpus,
                    f.ram_mb,
                    f.disk_gb + f.ephemeral_gb,
                    hourly,
                    table.currency
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario_tests::{cloud, table};

    #[test]
    fn flavors_without_a_price_are_listed_with_their_default_rate() {
        let mut seen = FlavorsSeen::default();
        for e in cloud() {
            seen.observe(&e);
        }
        assert_eq!(
            seen.unpriced(&table()),
            vec![
                "m1.medium (id 3): not in [billing] flavors; billed at the default rates, \
                 2 vCPU, 4096 MiB RAM, 40 GB disk = 0.044000 USD/h"
                    .to_owned()
            ]
        );
    }
}
