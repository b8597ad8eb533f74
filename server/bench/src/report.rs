//! The figures of a run and the tables that show them.

use std::fmt::Write as _;
use std::time::Duration;

use crate::measure::{Step, StreamTiming};
use crate::stats::Samples;

/// Index of each target in the per-target arrays.
pub const DIRECT: usize = 0;
pub const GATEWAY: usize = 1;
pub const NGINX: usize = 2;
pub const NAMES: [&str; 3] = ["direct", "gateway", "nginx"];

/// The targets the issue sets, checked in the summary.
pub const TARGET_ADDED_P99: Duration = Duration::from_micros(150);
pub const TARGET_THROUGHPUT_RATIO: f64 = 0.8;
pub const TARGET_ADDED_TTFT: Duration = Duration::from_micros(300);
pub const TARGET_CANCEL: Duration = Duration::from_millis(250);
pub const TARGET_RSS_BYTES: u64 = 30_000_000;
/// The latency bound of "max throughput".
pub const THROUGHPUT_P99_BOUND: Duration = Duration::from_millis(5);

/// How the run was set up, for the header.
pub struct Setup {
    pub cores: usize,
    pub nginx_version: String,
    pub requests: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub streams: usize,
    pub stream_tokens: usize,
    pub stream_gap: Duration,
    pub cancel_gap: Duration,
    pub cancels: usize,
    pub reply_tokens: usize,
    pub quick: bool,
    pub dir: String,
    /// The machine's busy share in the second before the bench started.
    pub busy_before: f64,
    /// The share of CPU time the hypervisor gave to others during the run.
    pub steal: f64,
    pub ticks_per_second: u64,
}

/// Resident memory, in KiB.
#[derive(Default)]
pub struct Memory {
    pub gateway_idle: u64,
    pub gateway_after: u64,
    pub gateway_peak: u64,
    pub nginx_idle: u64,
    pub nginx_after: u64,
}

/// Everything one run measured.
pub struct Report {
    pub setup: Setup,
    pub latency: Vec<Samples>,
    /// Per concurrency level, one step per target.
    pub steps: Vec<Vec<Step>>,
    pub streams: Vec<StreamTiming>,
    /// Per target, each hang-up's time to cancel (`None`: not within the limit).
    pub cancels: Vec<Vec<Option<Duration>>>,
    pub cancel_limit: Duration,
    pub memory: Memory,
    /// The gateway's own `corral_gateway_overhead_seconds`: mean and count.
    pub overhead: Option<(Duration, u64)>,
}

fn us(d: Duration) -> String {
    let n = d.as_nanos();
    if n < 999_500 {
        format!("{} µs", (n + 500) / 1000)
    } else if n < 999_995_000 {
        format!("{:.2} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

/// `a − b`, signed, in nanoseconds.
fn minus(a: Duration, b: Duration) -> i128 {
    a.as_nanos() as i128 - b.as_nanos() as i128
}

fn signed(nanos: i128) -> String {
    let sign = if nanos < 0 { "−" } else { "+" };
    format!(
        "{sign}{}",
        us(Duration::from_nanos(nanos.unsigned_abs() as u64))
    )
}

fn rate(r: f64) -> String {
    let n = r.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    format!("{out}/s")
}

fn mb(kib: u64) -> String {
    format!("{:.1} MB", (kib * 1024) as f64 / 1e6)
}

fn verdict(pass: bool) -> &'static str {
    if pass { "PASS" } else { "MISS" }
}

/// The best step whose p99 is under the bound, without errors.
pub fn best(steps: &[Vec<Step>], target: usize) -> Option<&Step> {
    steps
        .iter()
        .map(|level| &level[target])
        .filter(|s| s.errors == 0 && s.p99 < THROUGHPUT_P99_BOUND && s.rate > 0.0)
        .max_by(|a, b| a.rate.total_cmp(&b.rate))
}

fn cancel_stats(c: &[Option<Duration>]) -> (Option<Duration>, Option<Duration>, usize) {
    let mut done: Vec<Duration> = c.iter().flatten().copied().collect();
    done.sort();
    let missed = c.len() - done.len();
    let p50 = done.get(done.len().saturating_sub(1) / 2).copied();
    let max = if missed > 0 {
        None
    } else {
        done.last().copied()
    };
    (p50, max, missed)
}

impl Report {
    /// The whole report, as printed.
    pub fn render(&self) -> String {
        let mut o = String::new();
        let s = &self.setup;
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "Corral gateway bench{}: ollama-sim direct vs corral-gateway vs nginx, on loopback",
            if s.quick {
                " (--quick: a smoke run, figures are rough)"
            } else {
                ""
            }
        );
        let _ = writeln!(
            o,
            "  {} CPU cores, shared by everything: this process (load client on 1 thread, ollama-sim on 2),\n  \
             corral-gateway (gateway.workers = 0: one event-loop thread per core), nginx {} (worker_processes auto = one per core,\n  \
             access log on) and Postgres (the gateway's usage events). Compare the columns, not the machine.",
            s.cores, s.nginx_version
        );
        let _ = writeln!(
            o,
            "  Request: POST /api/chat, stream:false, {}-token reply, keep-alive. The gateway checks a Corral\n  \
             key (cache + HMAC, limits, usage event); nginx compares X-API-Key with a static string.\n  \
             Logs and configs: {}",
            s.reply_tokens, s.dir
        );

        if s.steal >= 0.02 {
            let _ = writeln!(
                o,
                "  NOTE: the hypervisor took {:.1}% of the CPU time during the run (steal): figures are noisier.",
                s.steal * 100.0
            );
        }
        if s.busy_before >= 0.15 {
            let _ = writeln!(
                o,
                "  WARNING: the CPU was {:.0}% busy before the bench started: other work on this machine\n  \
                 skews every figure; run it again on a quiet machine.",
                s.busy_before * 100.0
            );
        }

        // 1. Latency.
        let direct = (
            self.latency[DIRECT].percentile(50.0),
            self.latency[DIRECT].percentile(99.0),
        );
        let _ = writeln!(
            o,
            "\n1. Latency at 1 connection ({} sequential requests each, targets taking turns in blocks of 250)",
            s.requests
        );
        let _ = writeln!(
            o,
            "   {:<9}{:>10}{:>10}{:>10}{:>12}{:>12}",
            "", "p50", "p90", "p99", "added p50", "added p99"
        );
        for (i, name) in NAMES.iter().enumerate() {
            let l = &self.latency[i];
            let (p50, p90, p99) = (l.percentile(50.0), l.percentile(90.0), l.percentile(99.0));
            let (a50, a99) = if i == DIRECT {
                ("".to_owned(), "".to_owned())
            } else {
                (signed(minus(p50, direct.0)), signed(minus(p99, direct.1)))
            };
            let _ = writeln!(
                o,
                "   {name:<9}{:>10}{:>10}{:>10}{a50:>12}{a99:>12}",
                us(p50),
                us(p90),
                us(p99)
            );
        }

        if direct.1 > direct.0 * 4 {
            let _ = writeln!(
                o,
                "   direct's own p99 is {:.0}× its p50: the tails are mostly the machine (other work, steal),\n   \
                 so the added p99 is noisy; the p50s and a repeat run tell more.",
                direct.1.as_secs_f64() / direct.0.as_secs_f64().max(1e-9)
            );
        }

        // 2. Throughput.
        let _ = writeln!(
            o,
            "\n2. Throughput, closed loop ({:.1} s measured per step after {:.1} s warm-up): req/s and p99",
            s.duration.as_secs_f64(),
            s.warmup.as_secs_f64()
        );
        let _ = writeln!(
            o,
            "   {:<7}{:>22}{:>22}{:>22}",
            "conns", "direct", "gateway", "nginx"
        );
        for level in &self.steps {
            let mut line = format!("   {:<7}", level[0].concurrency);
            for step in level {
                let cell = if step.errors > 0 {
                    format!("{} errors", step.errors)
                } else {
                    format!("{} {:>8}", rate(step.rate), us(step.p99))
                };
                let _ = write!(line, "{cell:>22}");
            }
            let _ = writeln!(o, "{line}");
        }
        for level in &self.steps {
            for (i, step) in level.iter().enumerate() {
                if let Some(e) = &step.first_error {
                    let _ = writeln!(
                        o,
                        "   {} at {} connections: {} errors, first: {e}",
                        NAMES[i], step.concurrency, step.errors
                    );
                }
            }
        }
        let best_cell = |i: usize| match best(&self.steps, i) {
            Some(b) => format!("{} ({} conns)", rate(b.rate), b.concurrency),
            None => "none".to_owned(),
        };
        let _ = writeln!(
            o,
            "   best with p99 < {}: direct {}, gateway {}, nginx {}",
            us(THROUGHPUT_P99_BOUND),
            best_cell(DIRECT),
            best_cell(GATEWAY),
            best_cell(NGINX)
        );

        let cpu = |ticks: u64, step: &Step| {
            crate::cpu::per_request(ticks, s.ticks_per_second, step.answered)
                .map_or("?".to_owned(), us)
        };
        let _ = writeln!(
            o,
            "   CPU time per request over each whole step, from /proc/<pid>/stat (client+sim = this process):"
        );
        let _ = writeln!(
            o,
            "   {:<7}{:>10}{:>11}{:>12}  |{:>9}{:>12}  |{:>12}",
            "conns", "gateway", "Postgres*", "client+sim", "nginx", "client+sim", "client+sim"
        );
        for level in &self.steps {
            let (d, g, n) = (&level[DIRECT], &level[GATEWAY], &level[NGINX]);
            let _ = writeln!(
                o,
                "   {:<7}{:>10}{:>11}{:>12}  |{:>9}{:>12}  |{:>12}",
                d.concurrency,
                cpu(g.cpu.gateway, g),
                cpu(g.cpu.postgres, g),
                cpu(g.cpu.bench, g),
                cpu(n.cpu.nginx, n),
                cpu(n.cpu.bench, n),
                cpu(d.cpu.bench, d),
            );
        }
        let _ = writeln!(
            o,
            "   (*) every postgres process during the gateway's step: the usage events it writes"
        );

        // 3. Streams.
        let _ = writeln!(
            o,
            "\n3. Streams: stream:true, {} tokens {} apart, {} streams each (targets interleaved)",
            s.stream_tokens,
            us(s.stream_gap),
            s.streams
        );
        let _ = writeln!(
            o,
            "   {:<9}{:>10}{:>10}{:>12}{:>15}{:>10}{:>12}{:>10}",
            "",
            "TTFT p50",
            "TTFT p99",
            "added TTFT",
            "chunk deliv.",
            "p99",
            "added p50",
            "mean gap"
        );
        let d_ttft = self.streams[DIRECT].ttft.percentile(50.0);
        let d_delivery = self.streams[DIRECT].delivery.percentile(50.0);
        for (i, name) in NAMES.iter().enumerate() {
            let t = &self.streams[i];
            let (ttft, ttft99) = (t.ttft.percentile(50.0), t.ttft.percentile(99.0));
            let (dl, dl99) = (t.delivery.percentile(50.0), t.delivery.percentile(99.0));
            let (at, ad) = if i == DIRECT {
                ("".to_owned(), "".to_owned())
            } else {
                (signed(minus(ttft, d_ttft)), signed(minus(dl, d_delivery)))
            };
            let _ = writeln!(
                o,
                "   {name:<9}{:>10}{:>10}{at:>12}{:>15}{:>10}{ad:>12}{:>10}",
                us(ttft),
                us(ttft99),
                us(dl),
                us(dl99),
                us(t.gaps.mean())
            );
        }
        let _ = writeln!(
            o,
            "   chunk delivery: from the simulator stamping a line (created_at) to the client reading it"
        );

        // 4. Cancel.
        let _ = writeln!(
            o,
            "\n4. Hang-up to upstream cancel: read the first chunk, close the socket, wait for the\n   \
             simulator to count the generation cancelled (tokens {} apart, {} hang-ups each)",
            us(s.cancel_gap),
            s.cancels
        );
        let _ = writeln!(o, "   {:<9}{:>10}{:>10}", "", "p50", "max");
        for (i, name) in NAMES.iter().enumerate() {
            let (p50, max, missed) = cancel_stats(&self.cancels[i]);
            let show =
                |d: Option<Duration>| d.map_or_else(|| format!("> {}", us(self.cancel_limit)), us);
            let extra = if missed > 0 {
                format!(
                    "   ({missed} of {} never cancelled within {})",
                    self.cancels[i].len(),
                    us(self.cancel_limit)
                )
            } else {
                String::new()
            };
            let _ = writeln!(o, "   {name:<9}{:>10}{:>10}{extra}", show(p50), show(max));
        }

        // 5. Memory.
        let m = &self.memory;
        let _ = writeln!(o, "\n5. Memory (VmRSS)");
        let _ = writeln!(
            o,
            "   gateway: {} idle after start and warm-up, {} after the throughput steps (peak {})",
            mb(m.gateway_idle),
            mb(m.gateway_after),
            mb(m.gateway_peak)
        );
        let _ = writeln!(
            o,
            "   nginx master + workers: {} idle, {} after the throughput steps",
            mb(m.nginx_idle),
            mb(m.nginx_after)
        );
        if let Some((mean, count)) = self.overhead {
            let _ = writeln!(
                o,
                "   the gateway's own corral_gateway_overhead_seconds (before forwarding): mean {} over {count} requests",
                us(mean)
            );
        }

        // Summary.
        let added_p99 = |i: usize| minus(self.latency[i].percentile(99.0), direct.1);
        let added_p50 = |i: usize| minus(self.latency[i].percentile(50.0), direct.0);
        let _ = writeln!(o, "\nSummary");
        let _ = writeln!(
            o,
            "   {:<38}{:>12}{:>12}   {:<15}verdict",
            "figure", "gateway", "nginx", "target"
        );
        let mut row = |figure: &str, gw: String, ng: String, target: &str, v: String| {
            let _ = writeln!(o, "   {figure:<38}{gw:>12}{ng:>12}   {target:<15}{v}");
        };
        let gw99 = added_p99(GATEWAY);
        row(
            "added latency p99, 1 connection",
            signed(gw99),
            signed(added_p99(NGINX)),
            "≤ 150 µs",
            format!(
                "{}{}",
                verdict(gw99 <= TARGET_ADDED_P99.as_nanos() as i128),
                if direct.1 > direct.0 * 4 {
                    " (noisy tail, see 1.)"
                } else {
                    ""
                }
            ),
        );
        row(
            "added latency p50, 1 connection",
            signed(added_p50(GATEWAY)),
            signed(added_p50(NGINX)),
            "",
            String::new(),
        );
        let (bg, bn) = (best(&self.steps, GATEWAY), best(&self.steps, NGINX));
        let ratio = match (bg, bn) {
            (Some(g), Some(n)) => Some(g.rate / n.rate),
            _ => None,
        };
        row(
            "max throughput with p99 < 5 ms",
            bg.map_or("none".into(), |b| rate(b.rate)),
            bn.map_or("none".into(), |b| rate(b.rate)),
            "≥ 0.8× nginx",
            match ratio {
                Some(r) => format!("{} ({r:.2}×)", verdict(r >= TARGET_THROUGHPUT_RATIO)),
                None => "MISS (no step under 5 ms)".into(),
            },
        );
        let t = |i: usize| minus(self.streams[i].ttft.percentile(50.0), d_ttft);
        row(
            "added TTFT, streams (p50)",
            signed(t(GATEWAY)),
            signed(t(NGINX)),
            "≤ 300 µs",
            verdict(t(GATEWAY) <= TARGET_ADDED_TTFT.as_nanos() as i128).to_owned(),
        );
        let c = |i: usize| minus(self.streams[i].delivery.percentile(50.0), d_delivery);
        row(
            "added per-chunk delivery (p50)",
            signed(c(GATEWAY)),
            signed(c(NGINX)),
            "",
            String::new(),
        );
        let (_, gmax, _) = cancel_stats(&self.cancels[GATEWAY]);
        let (_, nmax, _) = cancel_stats(&self.cancels[NGINX]);
        let over = format!("> {}", us(self.cancel_limit));
        row(
            "hang-up → upstream cancel (max)",
            gmax.map_or(over.clone(), us),
            nmax.map_or(over, us),
            "≤ 250 ms",
            verdict(gmax.is_some_and(|d| d <= TARGET_CANCEL)).to_owned(),
        );
        row(
            "RSS idle",
            mb(m.gateway_idle),
            mb(m.nginx_idle),
            "≤ 30 MB",
            verdict(m.gateway_idle * 1024 <= TARGET_RSS_BYTES).to_owned(),
        );
        row(
            "RSS after load",
            mb(m.gateway_after),
            mb(m.nginx_after),
            "",
            String::new(),
        );
        let nz = |n: i128| n.max(1) as f64;
        let _ = writeln!(
            o,
            "\n   gateway/nginx: throughput {}, added p99 {:.1}×, added p50 {:.1}×, added TTFT {:.1}×",
            ratio.map_or("n/a".into(), |r| format!("{r:.2}×")),
            nz(gw99) / nz(added_p99(NGINX)),
            nz(added_p50(GATEWAY)) / nz(added_p50(NGINX)),
            nz(t(GATEWAY)) / nz(t(NGINX)),
        );
        let _ = writeln!(
            o,
            "   (MB = 10^6 bytes; \"added\" = the target's figure minus direct's at the same percentile)"
        );
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_read_the_way_the_readme_prints_them() {
        assert_eq!(us(Duration::from_nanos(87_400)), "87 µs");
        assert_eq!(us(Duration::from_micros(12_345)), "12.35 ms");
        assert_eq!(us(Duration::from_micros(999_400)), "999.40 ms");
        assert_eq!(us(Duration::from_secs(1)), "1.00 s");
        assert_eq!(signed(-3_000), "−3 µs");
        assert_eq!(rate(25_310.4), "25,310/s");
        assert_eq!(rate(999.0), "999/s");
        assert_eq!(mb(10_240), "10.5 MB");
    }

    #[test]
    fn the_best_step_is_the_fastest_under_the_bound() {
        let step = |c, rate, p99_ms, errors| Step {
            concurrency: c,
            rate,
            p99: Duration::from_millis(p99_ms),
            errors,
            first_error: None,
            answered: 0,
            cpu: crate::cpu::Ticks::default(),
        };
        let steps = vec![
            vec![step(1, 100.0, 1, 0)],
            vec![step(2, 300.0, 9, 0)],
            vec![step(4, 400.0, 1, 3)],
            vec![step(8, 200.0, 4, 0)],
        ];
        assert_eq!(best(&steps, 0).map(|s| s.concurrency), Some(8));
    }

    #[test]
    fn a_hang_up_never_cancelled_has_no_max() {
        let ms = |n| Some(Duration::from_millis(n));
        assert_eq!(cancel_stats(&[ms(3), ms(1), ms(2)]), (ms(2), ms(3), 0));
        assert_eq!(cancel_stats(&[ms(3), None]).1, None);
    }
}
