//! The proxies under test as child processes: `corral-gateway` and nginx,
//! each with its log in the run's directory, stopped when dropped.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// A child process the bench started.
pub struct Process {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Process {
    fn spawn(name: &str, mut command: Command, log: PathBuf) -> anyhow::Result<Self> {
        let out = std::fs::File::create(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let err = out.try_clone()?;
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("cannot start {name} ({:?})", command.get_program()))?;
        Ok(Self {
            name: name.to_owned(),
            child,
            log,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// An error with the end of the log if the process has exited.
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            bail!(
                "{} exited ({status}); the end of {}:\n{}",
                self.name,
                self.log.display(),
                tail.join("\n")
            );
        }
        Ok(())
    }

    /// Waits until something accepts connections on `addr`.
    pub async fn wait_listening(&mut self, addr: SocketAddr) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            self.check_running()?;
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not listen on {addr} within 30 s (log: {})",
                    self.name,
                    self.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Process {
    /// SIGTERM first, so nginx's master stops its workers and the gateway
    /// shuts down cleanly; SIGKILL after two seconds.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `N` distinct loopback ports nothing listens on right now.
pub fn free_ports<const N: usize>() -> anyhow::Result<[u16; N]> {
    // Held together until all are picked, so that none is handed out twice.
    let held = (0..N)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<Result<Vec<_>, _>>()?;
    let mut ports = [0; N];
    for (port, l) in ports.iter_mut().zip(&held) {
        *port = l.local_addr()?.port();
    }
    Ok(ports)
}

/// What `corral-gateway` needs to run.
pub struct GatewayConfig<'a> {
    pub bin: &'a Path,
    pub port: u16,
    pub upstream: SocketAddr,
    pub database_url: &'a str,
    pub pepper: &'a str,
    pub dir: &'a Path,
    pub workers: u16,
}

/// Starts `corral-gateway` in front of one upstream.
pub fn spawn_gateway(name: &str, c: &GatewayConfig<'_>) -> anyhow::Result<Process> {
    let mut command = Command::new(c.bin);
    // Only the settings given here: a stray CORRAL_* variable would change them.
    for (var, _) in std::env::vars().filter(|(k, _)| k.starts_with("CORRAL_")) {
        command.env_remove(var);
    }
    command
        .env("CORRAL_DATABASE__URL", c.database_url)
        .env("CORRAL_GATEWAY__HOST", "127.0.0.1")
        .env("CORRAL_GATEWAY__PORT", c.port.to_string())
        .env(
            "CORRAL_GATEWAY__UPSTREAMS",
            format!("http://{}", c.upstream),
        )
        .env("CORRAL_KEYS__PEPPER", c.pepper)
        .env("CORRAL_GATEWAY__WORKERS", c.workers.to_string())
        .env(
            "CORRAL_GATEWAY__SPOOL_DIR",
            c.dir.join(format!("{name}-spool")),
        )
        .env("CORRAL_LOG__FILTER", "info,sqlx=warn");
    Process::spawn(name, command, c.dir.join(format!("{name}.log")))
}

/// One nginx `server`: a port and the upstream it proxies to.
pub struct NginxServer {
    pub port: u16,
    pub upstream: SocketAddr,
}

/// nginx as the seed article runs it in front of Ollama: a static
/// `X-API-Key` check, then `proxy_pass` with buffering off. Keep-alive on
/// both sides and no per-connection request cap, so that no side pays for
/// reconnecting; the access log stays on, as nginx ships it.
pub fn nginx_conf(prefix: &Path, key: &str, servers: &[NginxServer]) -> String {
    let p = prefix.display();
    let mut conf = format!(
        "worker_processes auto;
error_log {p}/nginx-error.log warn;
pid {p}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    access_log {p}/nginx-access.log;
    client_body_temp_path {p}/nginx-client-body;
    proxy_temp_path {p}/nginx-proxy;
    fastcgi_temp_path {p}/nginx-fastcgi;
    uwsgi_temp_path {p}/nginx-uwsgi;
    scgi_temp_path {p}/nginx-scgi;
    keepalive_timeout 300s;
    keepalive_requests 1000000;
"
    );
    for (i, s) in servers.iter().enumerate() {
        let _ = write!(
            conf,
            "    upstream ollama{i} {{
        server {up};
        keepalive 128;
        keepalive_requests 1000000;
        keepalive_timeout 300s;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            if ($http_x_api_key != \"{key}\") {{
                return 401;
            }}
            proxy_pass http://ollama{i};
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_buffering off;
            proxy_read_timeout 1h;
        }}
    }}
",
            up = s.upstream,
            port = s.port,
        );
    }
    conf.push_str("}\n");
    conf
}

/// Starts nginx in the foreground with `conf`, everything under `prefix`.
pub fn spawn_nginx(bin: &Path, prefix: &Path, conf: &str) -> anyhow::Result<Process> {
    let path = prefix.join("nginx.conf");
    std::fs::write(&path, conf)?;
    let mut command = Command::new(bin);
    command
        .arg("-p")
        .arg(prefix)
        .arg("-c")
        .arg(&path)
        .arg("-e")
        .arg(prefix.join("nginx-error.log"))
        .args(["-g", "daemon off;"]);
    Process::spawn("nginx", command, prefix.join("nginx.log"))
}

/// Resident and peak resident memory of a process, in KiB (`VmRSS`, `VmHWM`).
pub fn memory_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Resident memory of a process and its children (nginx's master and
/// workers), in KiB.
pub fn tree_rss_kib(pid: u32) -> Option<u64> {
    let own = memory_kib(pid)?.0;
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
    Some(
        own + children
            .split_whitespace()
            .filter_map(|c| c.parse().ok())
            .filter_map(memory_kib)
            .map(|(rss, _)| rss)
            .sum::<u64>(),
    )
}
