//! Server diagnostics (nova's `get_diagnostics` / `get_instance_diagnostics`
//! driver calls) as data, per virt driver. Each driver that can answer
//! implements [`DriverDiagnostics`] and is found by the hypervisor type its
//! hosts register with ([`for_hypervisor`]); a driver without one answers
//! 501, as a Nova driver that raises `NotImplementedError`.
//!
//! The fake driver answers Nova's `FakeDriver` figures, which clients'
//! and Nova's own tests know.

use serde_json::{Value, json};

use uuid::Uuid;

/// Nova's standard diagnostics (2.48, `objects.Diagnostics`).
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostics {
    pub state: &'static str,
    pub driver: &'static str,
    pub hypervisor: &'static str,
    pub hypervisor_os: &'static str,
    pub uptime: u64,
    pub config_drive: bool,
    pub cpus: Vec<CpuDiagnostics>,
    pub nics: Vec<NicDiagnostics>,
    pub disks: Vec<DiskDiagnostics>,
    /// `(maximum, used)` in KiB.
    pub memory: (u64, u64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct CpuDiagnostics {
    pub id: u32,
    /// Nanoseconds.
    pub time: u64,
    /// Percent.
    pub utilisation: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NicDiagnostics {
    pub mac_address: &'static str,
    pub rx_octets: u64,
    pub rx_errors: u64,
    pub rx_drop: u64,
    pub rx_packets: u64,
    pub rx_rate: u64,
    pub tx_octets: u64,
    pub tx_errors: u64,
    pub tx_drop: u64,
    pub tx_packets: u64,
    pub tx_rate: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DiskDiagnostics {
    pub read_bytes: u64,
    pub read_requests: u64,
    pub write_bytes: u64,
    pub write_requests: u64,
    pub errors_count: i64,
}

impl Diagnostics {
    /// The 2.48 body (Nova's diagnostics view).
    pub fn render(&self) -> Value {
        json!({
            "state": self.state,
            "driver": self.driver,
            "hypervisor": self.hypervisor,
            "hypervisor_os": self.hypervisor_os,
            "uptime": self.uptime,
            "config_drive": self.config_drive,
            "num_cpus": self.cpus.len(),
            "num_nics": self.nics.len(),
            "num_disks": self.disks.len(),
            "cpu_details": self.cpus.iter().map(|c| json!({
                "id": c.id, "time": c.time, "utilisation": c.utilisation,
            })).collect::<Vec<_>>(),
            "nic_details": self.nics.iter().map(|n| json!({
                "mac_address": n.mac_address,
                "rx_octets": n.rx_octets, "rx_errors": n.rx_errors,
                "rx_drop": n.rx_drop, "rx_packets": n.rx_packets, "rx_rate": n.rx_rate,
                "tx_octets": n.tx_octets, "tx_errors": n.tx_errors,
                "tx_drop": n.tx_drop, "tx_packets": n.tx_packets, "tx_rate": n.tx_rate,
            })).collect::<Vec<_>>(),
            "disk_details": self.disks.iter().map(|d| json!({
                "read_bytes": d.read_bytes, "read_requests": d.read_requests,
                "write_bytes": d.write_bytes, "write_requests": d.write_requests,
                "errors_count": d.errors_count,
            })).collect::<Vec<_>>(),
            "memory_details": {"maximum": self.memory.0, "used": self.memory.1},
        })
    }
}

/// What a virt driver reports about one of its running guests, the guest
/// named as the driver names it (`VirtDriver::get_info`'s arguments).
pub trait DriverDiagnostics: Sync {
    /// Before 2.48: the driver's own flat map of counters.
    fn legacy(&self, host: &str, instance_id: Uuid) -> Value;
    /// From 2.48: the standard format.
    fn standard(&self, host: &str, instance_id: Uuid) -> Diagnostics;
}

/// Nova's `FakeDriver` figures.
pub struct Fake;

impl DriverDiagnostics for Fake {
    fn legacy(&self, _: &str, _: Uuid) -> Value {
        json!({
            "cpu0_time": 17_300_000_000u64,
            "memory": 524_288,
            "vda_errors": -1,
            "vda_read": 262_144,
            "vda_read_req": 112,
            "vda_write": 5_778_432,
            "vda_write_req": 488,
            "vnet1_rx": 2_070_139,
            "vnet1_rx_drop": 0,
            "vnet1_rx_errors": 0,
            "vnet1_rx_packets": 26_701,
            "vnet1_tx": 140_208,
            "vnet1_tx_drop": 0,
            "vnet1_tx_errors": 0,
            "vnet1_tx_packets": 662,
        })
    }

    fn standard(&self, _: &str, _: Uuid) -> Diagnostics {
        Diagnostics {
            state: "running",
            driver: "libvirt",
            hypervisor: "kvm",
            hypervisor_os: "ubuntu",
            uptime: 46_664,
            config_drive: true,
            cpus: vec![CpuDiagnostics {
                id: 0,
                time: 17_300_000_000,
                utilisation: 15,
            }],
            nics: vec![NicDiagnostics {
                mac_address: "01:23:45:67:89:ab",
                rx_octets: 2_070_139,
                rx_errors: 100,
                rx_drop: 200,
                rx_packets: 26_701,
                rx_rate: 300,
                tx_octets: 140_208,
                tx_errors: 400,
                tx_drop: 500,
                tx_packets: 662,
                tx_rate: 600,
            }],
            disks: vec![DiskDiagnostics {
                read_bytes: 262_144,
                read_requests: 112,
                write_bytes: 5_778_432,
                write_requests: 488,
                errors_count: 1,
            }],
            memory: (524_288, 0),
        }
    }
}

/// The diagnostics of the driver behind hosts of `hypervisor_type`, if it
/// has any.
pub fn for_hypervisor(hypervisor_type: &str) -> Option<&'static dyn DriverDiagnostics> {
    match hypervisor_type {
        "fake" => Some(&Fake),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_view_counts_its_details() {
        let v = Fake.standard("h", Uuid::nil()).render();
        assert_eq!(v["num_cpus"], 1);
        assert_eq!(v["num_nics"], 1);
        assert_eq!(v["num_disks"], 1);
        assert_eq!(v["memory_details"], json!({"maximum": 524288, "used": 0}));
        assert_eq!(v["nic_details"][0]["tx_rate"], 600);
        assert_eq!(Fake.legacy("h", Uuid::nil())["vda_errors"], -1);
        assert!(for_hypervisor("fake").is_some());
        assert!(for_hypervisor("QEMU").is_none());
    }
}
