//! Host filters, configured by name as in nova.conf's `enabled_filters`.
//! Each one file, each a pure `host_passes(host, spec, ctx)`.

mod availability_zone;
mod compute;
mod core;
mod disk;
mod image_properties;
mod ram;
mod retry;

use novalog_schemas::events::SelectHostsRequested;

use crate::host_state::HostState;

pub use availability_zone::AvailabilityZoneFilter;
pub use compute::ComputeFilter;
pub use core::CoreFilter;
pub use disk::DiskFilter;
pub use image_properties::ImagePropertiesFilter;
pub use ram::RamFilter;
pub use retry::RetryFilter;

/// What filters and weighers may consult besides host and request.
#[derive(Debug, Clone)]
pub struct Context {
    pub now_ms: i64,
    pub service_down_time_ms: i64,
    pub cpu_allocation_ratio: f64,
    pub ram_allocation_ratio: f64,
    pub disk_allocation_ratio: f64,
}

impl Default for Context {
    fn default() -> Self {
        Context {
            now_ms: 0,
            service_down_time_ms: 60_000,
            cpu_allocation_ratio: 16.0,
            ram_allocation_ratio: 1.5,
            disk_allocation_ratio: 1.0,
        }
    }
}

pub trait Filter: Send + Sync {
    fn name(&self) -> &'static str;
    fn host_passes(&self, host: &HostState, spec: &SelectHostsRequested, ctx: &Context) -> bool;
}

/// Builds the filters named in `names`; an unknown name is an error.
pub fn by_names(names: &[String]) -> Result<Vec<Box<dyn Filter>>, String> {
    names
        .iter()
        .map(|n| -> Result<Box<dyn Filter>, String> {
            Ok(match n.as_str() {
                "RetryFilter" => Box::new(RetryFilter),
                "AvailabilityZoneFilter" => Box::new(AvailabilityZoneFilter),
                "ComputeFilter" => Box::new(ComputeFilter),
                "RamFilter" => Box::new(RamFilter),
                "CoreFilter" => Box::new(CoreFilter),
                "DiskFilter" => Box::new(DiskFilter),
                "ImagePropertiesFilter" => Box::new(ImagePropertiesFilter),
                other => return Err(format!("unknown filter {other:?}")),
            })
        })
        .collect()
}

#[cfg(test)]
pub(crate) fn test_spec(vcpus: u32, memory_mb: u64, disk_gb: u64) -> SelectHostsRequested {
    SelectHostsRequested {
        request_id: uuid::Uuid::nil(),
        instance_id: uuid::Uuid::nil(),
        project_id: "p".into(),
        resources: novalog_schemas::Resources {
            vcpus,
            memory_mb,
            disk_gb,
        },
        image_properties: Default::default(),
        extra_specs: Default::default(),
        availability_zone: None,
        ignore_hosts: Vec::new(),
        num_alternates: 2,
    }
}
