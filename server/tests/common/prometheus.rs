//! A real Prometheus (Debian's, scripts/setup installs it) on a free
//! loopback port for one test, optionally over history backfilled with
//! `promtool tsdb create-blocks-from openmetrics`; it can be stopped and
//! started again on the same port and data.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Prometheus {
    child: Option<Child>,
    pub url: String,
    port: u16,
    dir: PathBuf,
}

impl Prometheus {
    /// Starts one scraping `targets` (`host:port`, as job `corral-gateway`)
    /// every second, over no history.
    pub async fn scraping(targets: &[String]) -> Self {
        let list = targets
            .iter()
            .map(|t| format!("\"{t}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let config = format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: corral-gateway\n    static_configs: [{{ targets: [{list}] }}]\n"
        );
        Self::start_with(None, &config).await
    }

    /// Starts one over the OpenMetrics text `history` (ending in `# EOF`).
    pub async fn with_history(history: &str) -> Self {
        Self::start_with(Some(history), "global:\n  scrape_interval: 1s\n").await
    }

    async fn start_with(history: Option<&str>, config: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "corral-prometheus-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        std::fs::create_dir_all(dir.join("data")).unwrap();
        if let Some(history) = history {
            let file = dir.join("history.om");
            std::fs::write(&file, history).unwrap();
            let out = Command::new("promtool")
                .args(["tsdb", "create-blocks-from", "openmetrics"])
                .arg(&file)
                .arg(dir.join("data"))
                .output()
                .expect("promtool runs (scripts/setup --test installs Debian's prometheus)");
            assert!(
                out.status.success(),
                "backfill failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::fs::write(dir.join("prometheus.yml"), config).unwrap();
        let mut p = Self {
            child: None,
            url: String::new(),
            port: 0,
            dir,
        };
        for _ in 0..5 {
            p.port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            if p.try_start().await {
                return p;
            }
        }
        panic!("Prometheus did not start: {}", p.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    async fn try_start(&mut self) -> bool {
        self.url = format!("http://127.0.0.1:{}", self.port);
        let log = std::fs::File::create(self.dir.join("prometheus.log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                self.dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                self.dir.join("data").display()
            ))
            .arg("--storage.tsdb.retention.time=100y")
            .arg(format!("--web.listen-address=127.0.0.1:{}", self.port))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("prometheus runs (scripts/setup --test installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        let http = reqwest::Client::new();
        while Instant::now() < deadline {
            if http
                .get(format!("{}/-/ready", self.url))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return true;
            }
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(_)) = c.try_wait()
            {
                self.child = None;
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.stop();
        false
    }

    /// Stops it (as an outage would).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port and data.
    pub async fn start_again(&mut self) {
        for _ in 0..20 {
            if self.try_start().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("Prometheus did not start again: {}", self.log());
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
