//! Thin HTTP controllers: extract, validate, call the domain
//! ([`crate::compute`], [`crate::catalog`]), render with [`crate::views`].

pub mod aggregates;
pub mod availability_zones;
pub mod flavors;
pub mod hypervisors;
pub mod images;
pub mod keypairs;
pub mod server_groups;
pub mod servers;
pub mod services;
pub mod versions;
