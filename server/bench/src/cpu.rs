//! CPU time of the processes involved, from `/proc/<pid>/stat`, to tell what
//! each request costs whichever way the machine is loaded.

use std::time::Duration;

/// Clock ticks per second of `/proc` CPU times (`getconf CLK_TCK`).
pub fn ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .filter(|&n: &u64| n > 0)
        .unwrap_or(100)
}

/// User + system ticks of one process (all its threads), and its name.
fn process(pid: &str) -> Option<(String, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The name is in parentheses and may hold spaces; fields follow the last ')'.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat[open + 1..close].to_owned();
    let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((name, utime + stime))
}

/// CPU ticks used so far by the processes the bench watches.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ticks {
    /// This process: the load client and the simulators.
    pub bench: u64,
    pub gateway: u64,
    /// nginx's master and workers.
    pub nginx: u64,
    /// Every `postgres` process (the gateway's usage writes land there).
    pub postgres: u64,
}

impl Ticks {
    /// Reads the counters now.
    pub fn read(gateway: u32, nginx: u32) -> Self {
        let own = |pid: u32| process(&pid.to_string()).map_or(0, |(_, t)| t);
        let children = std::fs::read_to_string(format!("/proc/{nginx}/task/{nginx}/children"))
            .unwrap_or_default();
        let nginx_ticks = own(nginx)
            + children
                .split_whitespace()
                .filter_map(|c| process(c).map(|(_, t)| t))
                .sum::<u64>();
        let postgres = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
            .filter_map(|pid| process(&pid))
            .filter(|(name, _)| name == "postgres")
            .map(|(_, t)| t)
            .sum();
        Self {
            bench: own(std::process::id()),
            gateway: own(gateway),
            nginx: nginx_ticks,
            postgres,
        }
    }

    /// What was used between `self` and the later reading `after`.
    pub fn until(&self, after: &Self) -> Self {
        Self {
            bench: after.bench.saturating_sub(self.bench),
            gateway: after.gateway.saturating_sub(self.gateway),
            nginx: after.nginx.saturating_sub(self.nginx),
            postgres: after.postgres.saturating_sub(self.postgres),
        }
    }
}

/// `ticks` of CPU spread over `requests`.
pub fn per_request(ticks: u64, per_second: u64, requests: u64) -> Option<Duration> {
    (requests > 0 && per_second > 0).then(|| {
        Duration::from_nanos(
            u64::try_from(
                u128::from(ticks) * 1_000_000_000 / u128::from(per_second) / u128::from(requests),
            )
            .unwrap_or(u64::MAX),
        )
    })
}

/// The machine's CPU counters from `/proc/stat`: all, idle, stolen.
#[derive(Clone, Copy, Debug, Default)]
pub struct Machine {
    total: u64,
    idle: u64,
    steal: u64,
}

impl Machine {
    /// Reads the counters now (zeros when unknown).
    pub fn read() -> Self {
        let read = || -> Option<Self> {
            let stat = std::fs::read_to_string("/proc/stat").ok()?;
            let line = stat.lines().next()?.strip_prefix("cpu ")?;
            let v: Vec<u64> = line
                .split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect();
            Some(Self {
                // user nice system idle iowait irq softirq steal
                total: v.iter().take(8).sum(),
                idle: v.get(3)? + v.get(4).copied().unwrap_or(0),
                steal: v.get(7).copied().unwrap_or(0),
            })
        };
        read().unwrap_or_default()
    }

    /// Shares of the time since `self` that the CPUs were busy, and that
    /// the hypervisor gave to others (steal).
    pub fn busy_and_steal_until(&self, later: &Self) -> (f64, f64) {
        let total = later.total.saturating_sub(self.total);
        if total == 0 {
            return (0.0, 0.0);
        }
        let idle = later.idle.saturating_sub(self.idle);
        let steal = later.steal.saturating_sub(self.steal);
        (
            1.0 - idle as f64 / total as f64,
            steal as f64 / total as f64,
        )
    }
}

/// The share of the machine's CPU time that was busy over `window`.
pub async fn machine_busy(window: Duration) -> f64 {
    let before = Machine::read();
    tokio::time::sleep(window).await;
    before.busy_and_steal_until(&Machine::read()).0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_a_name_and_cpu_time() {
        let (name, _) = process(&std::process::id().to_string()).unwrap();
        assert!(!name.is_empty());
        assert_eq!(per_request(100, 100, 1000), Some(Duration::from_millis(1)));
        assert_eq!(per_request(1, 100, 0), None);
    }
}
