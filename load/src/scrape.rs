//! What the hosts say about themselves: `GET /metrics` (the inbox depth,
//! deliveries applied and failed) and, from `/proc`, their memory.

use anyhow::Context;

/// One reading of every host.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub at: std::time::Instant,
    /// Deliveries waiting or being processed (the store's count: every
    /// replica sharing a database reads the same).
    pub depth: f64,
    /// Deliveries applied, summed over the hosts.
    pub applied: f64,
    /// Deliveries failed or dead, summed over the hosts.
    pub failed: f64,
}

/// Reads `/metrics` of every host in `urls`.
pub async fn sample(http: &reqwest::Client, urls: &[String]) -> anyhow::Result<Sample> {
    let mut s = Sample {
        at: std::time::Instant::now(),
        depth: 0.0,
        applied: 0.0,
        failed: 0.0,
    };
    for (i, url) in urls.iter().enumerate() {
        let text = http
            .get(format!("{url}/metrics"))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .with_context(|| format!("cannot read {url}/metrics"))?
            .text()
            .await?;
        for line in text.lines() {
            let Some((name, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            if name == "sluice_inbox_depth" && i == 0 {
                s.depth = value;
            } else if name.starts_with("sluice_deliveries_total{") {
                if name.contains("outcome=\"applied\"") {
                    s.applied += value;
                } else if name.contains("outcome=\"failed\"") || name.contains("outcome=\"dead\"") {
                    s.failed += value;
                }
            }
        }
    }
    Ok(s)
}

/// Resident memory now and at its peak, in MiB, of each process in `pids`.
pub fn memory(pids: &[u32]) -> Vec<(f64, f64)> {
    pids.iter()
        .map(|pid| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let field = |name: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .and_then(|v| v.split_whitespace().next())
                    .and_then(|kb| kb.parse::<f64>().ok())
                    .map_or(0.0, |kb| kb / 1024.0)
            };
            (field("VmRSS:"), field("VmHWM:"))
        })
        .collect()
}
