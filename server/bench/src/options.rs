//! Command-line options: sizes of each measurement and where things are.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};

pub const USAGE: &str = "\
usage: corral-bench --gateway-bin PATH [options]

  --quick               smoke run: short steps, few samples (about 30 s)
  --requests N          sequential requests per target at 1 connection (5000; quick 500)
  --duration SECS       measured time of each throughput step (3; quick 0.5)
  --warmup SECS         unmeasured lead-in of each throughput step (0.5; quick 0.1)
  --concurrency LIST    connections of the throughput steps (1,2,4,8,16,32,64)
  --streams N           streams per target for TTFT and chunk timing (100; quick 10)
  --cancels N           hang-ups per target (10; quick 3)
  --gateway-workers N   the gateway's gateway.workers (0 = one per core, its default)
  --gateway-bin PATH    the release corral-gateway binary
  --nginx-bin PATH      nginx (default: nginx on PATH, else /usr/sbin/nginx)
  --migrations DIR      Corral's migrations (default: ./migrations)
  --database-url URL    Postgres admin URL ($PG_ADMIN_URL, else
                        postgres://postgres@127.0.0.1:5432/postgres)
  --database NAME       database to drop, create and migrate (corral_bench)
";

/// What to measure, and with what.
#[derive(Clone, Debug)]
pub struct Options {
    pub quick: bool,
    pub requests: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub concurrency: Vec<usize>,
    pub streams: usize,
    pub cancels: usize,
    pub gateway_workers: u16,
    pub gateway_bin: PathBuf,
    pub nginx_bin: PathBuf,
    pub migrations: PathBuf,
    pub admin_url: String,
    pub database: String,
}

impl Options {
    /// Parses the arguments (without the program name); `Ok(None)` for `--help`.
    pub fn parse(args: impl IntoIterator<Item = String>) -> anyhow::Result<Option<Self>> {
        let args: Vec<String> = args.into_iter().collect();
        let quick = args.iter().any(|a| a == "--quick");
        let mut o = Self {
            quick,
            requests: if quick { 500 } else { 5000 },
            duration: Duration::from_millis(if quick { 500 } else { 3000 }),
            warmup: Duration::from_millis(if quick { 100 } else { 500 }),
            concurrency: vec![1, 2, 4, 8, 16, 32, 64],
            streams: if quick { 10 } else { 100 },
            cancels: if quick { 3 } else { 10 },
            gateway_workers: 0,
            gateway_bin: PathBuf::new(),
            nginx_bin: find_nginx(),
            migrations: PathBuf::from("migrations"),
            admin_url: std::env::var("PG_ADMIN_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned()),
            database: "corral_bench".to_owned(),
        };
        let mut it = args.into_iter();
        while let Some(flag) = it.next() {
            if flag == "--quick" {
                continue;
            }
            if flag == "-h" || flag == "--help" {
                return Ok(None);
            }
            let value = it.next().with_context(|| format!("{flag} needs a value"))?;
            let bad = || format!("{flag}: {value:?} is not valid");
            match flag.as_str() {
                "--requests" => o.requests = value.parse().with_context(bad)?,
                "--duration" => o.duration = seconds(&value).with_context(bad)?,
                "--warmup" => o.warmup = seconds(&value).with_context(bad)?,
                "--concurrency" => {
                    o.concurrency = value
                        .split(',')
                        .map(|n| n.trim().parse::<usize>())
                        .collect::<Result<_, _>>()
                        .with_context(bad)?;
                }
                "--streams" => o.streams = value.parse().with_context(bad)?,
                "--cancels" => o.cancels = value.parse().with_context(bad)?,
                "--gateway-workers" => o.gateway_workers = value.parse().with_context(bad)?,
                "--gateway-bin" => o.gateway_bin = value.into(),
                "--nginx-bin" => o.nginx_bin = value.into(),
                "--migrations" => o.migrations = value.into(),
                "--database-url" => o.admin_url = value,
                "--database" => o.database = value,
                _ => bail!("unknown option {flag}"),
            }
        }
        if o.gateway_bin.as_os_str().is_empty() {
            bail!("--gateway-bin is required (scripts/bench passes it)");
        }
        if o.requests == 0 || o.streams == 0 || o.cancels == 0 {
            bail!("--requests, --streams and --cancels must be at least 1");
        }
        if o.concurrency.is_empty() || o.concurrency.contains(&0) {
            bail!(
                "--concurrency: a comma-separated list of numbers of connections, each at least 1"
            );
        }
        if o.duration.is_zero() {
            bail!("--duration must be more than 0");
        }
        if !o
            .database
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            bail!("--database: lower-case letters, digits and _ only");
        }
        Ok(Some(o))
    }
}

fn seconds(s: &str) -> anyhow::Result<Duration> {
    let v: f64 = s.parse()?;
    if !(v.is_finite() && v >= 0.0) {
        bail!("not a number of seconds");
    }
    Ok(Duration::from_secs_f64(v))
}

fn find_nginx() -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain(["/usr/sbin".into()])
        .map(|d| d.join("nginx"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| "/usr/sbin/nginx".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> anyhow::Result<Option<Options>> {
        Options::parse(args.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn quick_shrinks_every_measurement_and_flags_override_it() {
        let o = parse(&["--gateway-bin", "/x", "--quick", "--duration", "2"])
            .unwrap()
            .unwrap();
        assert!(o.quick);
        assert_eq!(o.requests, 500);
        assert_eq!(o.duration, Duration::from_secs(2));
        let o = parse(&["--gateway-bin", "/x", "--concurrency", "1, 8"])
            .unwrap()
            .unwrap();
        assert_eq!(o.concurrency, [1, 8]);
        assert_eq!(o.requests, 5000);
    }

    #[test]
    fn bad_options_are_refused_with_their_name() {
        assert!(parse(&["--gateway-bin", "/x", "--concurrency", "0"]).is_err());
        let e = parse(&["--gateway-bin", "/x", "--streams", "many"]).unwrap_err();
        assert!(e.to_string().contains("--streams"), "{e}");
        assert!(parse(&[]).is_err());
        assert!(parse(&["--help"]).unwrap().is_none());
    }
}
