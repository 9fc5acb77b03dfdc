//! Thin HTTP controllers: extract, validate, call the domain
//! ([`crate::domain::compute`], [`crate::domain::catalog`]), render with [`crate::views`].

pub mod aggregates;
pub mod availability_zones;
pub mod billing;
pub mod extensions;
pub mod external_events;
pub mod flavors;
pub mod hosts;
pub mod hypervisors;
pub mod images;
pub mod instance_actions;
pub mod ips;
pub mod keypairs;
pub mod migrations;
pub mod networks;
pub mod quota_classes;
pub mod quota_sets;
pub mod remote_consoles;
pub mod saga_actions;
pub mod server_actions;
pub mod server_attachments;
pub mod server_diagnostics;
pub mod server_groups;
pub mod server_lifecycle;
pub mod server_metadata;
pub mod server_password;
pub mod server_tags;
pub mod servers;
pub mod services;
pub mod shelve_rescue;
pub mod tenant_usage;
pub mod usage_audit_log;
pub mod versions;
