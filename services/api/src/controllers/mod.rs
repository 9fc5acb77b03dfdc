//! Thin HTTP controllers: extract, validate, call the domain
//! ([`crate::compute`], [`crate::catalog`]), render with [`crate::views`].

pub mod flavors;
pub mod servers;
pub mod versions;
