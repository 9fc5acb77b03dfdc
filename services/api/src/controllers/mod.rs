//! Thin HTTP controllers: extract, validate, call the domain
//! ([`crate::domain::compute`], [`crate::domain::catalog`]), render with [`crate::views`].

pub mod aggregates;
pub mod availability_zones;
pub mod billing;
pub mod flavors;
pub mod hypervisors;
pub mod instance_actions;
pub mod keypairs;
pub mod migrations;
pub mod quota_sets;
pub mod saga_actions;
pub mod server_actions;
pub mod server_groups;
pub mod server_metadata;
pub mod server_tags;
pub mod servers;
pub mod services;
pub mod shelve_rescue;
pub mod tenant_usage;
pub mod versions;
