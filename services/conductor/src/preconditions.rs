//! When an action may start: Nova's `check_instance_lock`,
//! `check_instance_host` and `check_instance_state`, one table for every
//! reader of instance state, kept in `novalog_schemas::preconditions`
//! (the API's web console shows with it which actions are allowed).

pub use novalog_schemas::preconditions::*;
