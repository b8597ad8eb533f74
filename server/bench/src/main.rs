//! `corral-bench`: ollama-sim direct, through `corral-gateway`, and through
//! nginx's static `X-API-Key` check, side by side in one run on loopback.
//! Prints added latency, throughput under a p99 bound, stream timing,
//! hang-up-to-cancel time and the gateway's memory, each against its target.
//! Exits 0 whatever the verdicts (it is a report), non-zero when a
//! measurement could not run.

mod client;
mod cpu;
mod database;
mod key;
mod measure;
mod options;
mod processes;
mod report;
mod stats;
mod verify;

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use ollama_sim::{MARKER_TOKENS, Sim, SimConfig};
use tokio::runtime::{Builder, Handle};

use crate::client::{Call, Conn};
use crate::measure::Target;
use crate::options::{Options, USAGE};
use crate::processes::{GatewayConfig, NginxServer, Process};
use crate::report::{DIRECT, GATEWAY, Memory, NAMES, NGINX, Report, Setup};

/// Completion tokens of the non-streamed reply of the latency and throughput runs.
const REPLY_TOKENS: usize = 24;
/// Tokens and their spacing in the stream timing run.
const STREAM_TOKENS: usize = 32;
const STREAM_GAP: Duration = Duration::from_millis(2);
/// Token spacing while a hang-up is measured: far above the target, so that
/// a proxy that only notices the hang-up on its next write shows.
const CANCEL_GAP: Duration = Duration::from_secs(1);
const CANCEL_LIMIT: Duration = Duration::from_secs(5);
const MODEL: &str = "llama3.2";
/// CPU already this busy before the start makes the figures suspect.
const BUSY_WARNING: f64 = 0.15;

fn main() -> ExitCode {
    let options = match Options::parse(std::env::args().skip(1)) {
        Ok(Some(o)) => o,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("corral-bench: {e:#}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // The simulators get their own threads; the load client runs on this one.
    let runtimes = Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("ollama-sim")
        .enable_all()
        .build()
        .and_then(|sims| Ok((sims, Builder::new_current_thread().enable_all().build()?)));
    let (sims, client) = match runtimes {
        Ok(r) => r,
        Err(e) => {
            eprintln!("corral-bench: cannot start the runtimes: {e}");
            return ExitCode::FAILURE;
        }
    };
    match client.block_on(run(&options, sims.handle())) {
        Ok(report) => {
            println!("{}", report.render());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("corral-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn progress(message: &str) {
    eprintln!("\x1b[1;34m==>\x1b[0m {message}");
}

/// An in-process simulator listening on a loopback port.
struct SimServer {
    sim: Sim,
    addr: SocketAddr,
}

impl SimServer {
    fn start(runtime: &Handle, token_gap: Duration) -> anyhow::Result<Self> {
        let sim = Sim::new(SimConfig {
            ttft: Duration::ZERO,
            token_gap,
            // Never a queue: the proxies, not Ollama's slots, are measured.
            parallel: 4096,
            max_queue: 4096,
            ..SimConfig::default()
        });
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let served = sim.clone();
        runtime.spawn(async move {
            match tokio::net::TcpListener::from_std(listener) {
                Ok(l) => {
                    if let Err(e) = ollama_sim::serve(l, served).await {
                        eprintln!("corral-bench: ollama-sim on {addr} stopped: {e}");
                    }
                }
                Err(e) => eprintln!("corral-bench: ollama-sim cannot listen on {addr}: {e}"),
            }
        });
        Ok(Self { sim, addr })
    }
}

fn chat(tokens: usize, stream: bool, key: &str) -> Call {
    let body = serde_json::json!({
        "model": MODEL,
        "messages": [{"role": "user", "content": format!("Say something. {MARKER_TOKENS}{tokens}]")}],
        "stream": stream,
    });
    Call::post(
        "/api/chat",
        Bytes::from(serde_json::to_vec(&body).expect("JSON serialises")),
        Some(key),
    )
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// The three targets in front of one simulator each.
fn targets(direct: SocketAddr, gateway: u16, nginx: u16) -> [Target; 3] {
    [
        Target {
            name: NAMES[DIRECT],
            addr: direct,
        },
        Target {
            name: NAMES[GATEWAY],
            addr: loopback(gateway),
        },
        Target {
            name: NAMES[NGINX],
            addr: loopback(nginx),
        },
    ]
}

async fn run(o: &Options, sims: &Handle) -> anyhow::Result<Report> {
    let busy_before = cpu::machine_busy(Duration::from_secs(1)).await;
    let machine_at_start = cpu::Machine::read();
    if busy_before >= BUSY_WARNING {
        progress(&format!(
            "the CPU was {:.0}% busy before the bench started: something else is running, and it will skew the figures",
            busy_before * 100.0
        ));
    }
    // One directory, emptied at each run: configs, logs, the gateway's spool.
    let dir = std::env::temp_dir().join("corral-bench");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("cannot empty {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;

    progress(
        "starting ollama-sim (in process): fast, paced streams, and one slow per target for hang-ups",
    );
    let fast = SimServer::start(sims, Duration::ZERO)?;
    let paced = SimServer::start(sims, STREAM_GAP)?;
    let slow = [
        SimServer::start(sims, CANCEL_GAP)?,
        SimServer::start(sims, CANCEL_GAP)?,
        SimServer::start(sims, CANCEL_GAP)?,
    ];

    progress(&format!(
        "creating, migrating and seeding database {}",
        o.database
    ));
    let pepper = key::random_base62(48);
    let (database_url, key) =
        database::prepare(&o.admin_url, &o.database, &o.migrations, &pepper).await?;

    progress("starting corral-gateway (one per simulator) and nginx");
    let [g0, g1, g2, n0, n1, n2] = processes::free_ports::<6>()?;
    let (gateway_ports, nginx_ports) = ([g0, g1, g2], [n0, n1, n2]);
    let upstreams = [fast.addr, paced.addr, slow[GATEWAY].addr];
    let mut gateways: Vec<Process> = Vec::new();
    for (i, name) in ["gateway", "gateway-streams", "gateway-hang-ups"]
        .iter()
        .enumerate()
    {
        gateways.push(processes::spawn_gateway(
            name,
            &GatewayConfig {
                bin: &o.gateway_bin,
                port: gateway_ports[i],
                upstream: upstreams[i],
                database_url: &database_url,
                pepper: &pepper,
                dir: &dir,
                workers: o.gateway_workers,
            },
        )?);
    }
    let conf = processes::nginx_conf(
        &dir,
        &key.key,
        &[
            NginxServer {
                port: nginx_ports[0],
                upstream: fast.addr,
            },
            NginxServer {
                port: nginx_ports[1],
                upstream: paced.addr,
            },
            NginxServer {
                port: nginx_ports[2],
                upstream: slow[NGINX].addr,
            },
        ],
    );
    let mut nginx = processes::spawn_nginx(&o.nginx_bin, &dir, &conf)?;
    for (g, port) in gateways.iter_mut().zip(gateway_ports) {
        g.wait_listening(loopback(port)).await?;
        verify::healthy(Target {
            name: "gateway",
            addr: loopback(port),
        })
        .await?;
    }
    for port in nginx_ports {
        nginx.wait_listening(loopback(port)).await?;
    }

    let fast_targets = targets(fast.addr, gateway_ports[0], nginx_ports[0]);
    let paced_targets = targets(paced.addr, gateway_ports[1], nginx_ports[1]);
    let slow_targets = [
        Target {
            name: NAMES[DIRECT],
            addr: slow[DIRECT].addr,
        },
        Target {
            name: NAMES[GATEWAY],
            addr: loopback(gateway_ports[2]),
        },
        Target {
            name: NAMES[NGINX],
            addr: loopback(nginx_ports[2]),
        },
    ];

    progress("checking: 401 without a key and with a wrong one, 200 and a real reply with the key");
    let reply = chat(REPLY_TOKENS, false, &key.key);
    let short = chat(1, false, &key.key);
    verify::answers(fast_targets[DIRECT], &reply).await?;
    for i in [GATEWAY, NGINX] {
        verify::guarded(fast_targets[i], &reply, &key.wrong_key, &fast.sim).await?;
        verify::guarded(paced_targets[i], &short, &key.wrong_key, &paced.sim).await?;
        verify::guarded(slow_targets[i], &short, &key.wrong_key, &slow[i].sim).await?;
    }

    progress("warming up, then idle for 1 s");
    measure::latency(&fast_targets, &reply, (o.requests / 10).max(200)).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut memory = Memory {
        gateway_idle: processes::memory_kib(gateways[0].pid()).map_or(0, |m| m.0),
        nginx_idle: processes::tree_rss_kib(nginx.pid()).unwrap_or(0),
        ..Memory::default()
    };

    progress(&format!(
        "latency at 1 connection: {} requests per target",
        o.requests
    ));
    let latency = measure::latency(&fast_targets, &reply, o.requests).await?;

    let mut steps = Vec::new();
    for &c in &o.concurrency {
        let mut level = Vec::new();
        let pids = (gateways[0].pid(), nginx.pid());
        for t in fast_targets {
            let before = cpu::Ticks::read(pids.0, pids.1);
            let mut step = measure::throughput(t, &reply, c, o.warmup, o.duration).await?;
            step.cpu = before.until(&cpu::Ticks::read(pids.0, pids.1));
            level.push(step);
        }
        progress(&format!(
            "throughput at {c} connections: direct {:.0}/s, gateway {:.0}/s, nginx {:.0}/s",
            level[DIRECT].rate, level[GATEWAY].rate, level[NGINX].rate
        ));
        steps.push(level);
    }
    if let Some((rss, peak)) = processes::memory_kib(gateways[0].pid()) {
        memory.gateway_after = rss;
        memory.gateway_peak = peak;
    }
    memory.nginx_after = processes::tree_rss_kib(nginx.pid()).unwrap_or(0);
    for p in gateways.iter_mut().chain([&mut nginx]) {
        p.check_running()?;
    }

    progress(&format!("streams: {} per target", o.streams));
    let stream = chat(STREAM_TOKENS, true, &key.key);
    measure::streams(&paced_targets, &stream, 3, STREAM_TOKENS + 1).await?;
    let streams = measure::streams(&paced_targets, &stream, o.streams, STREAM_TOKENS + 1).await?;

    progress(&format!("hang-ups: {} per target", o.cancels));
    let long = chat(1000, true, &key.key);
    let mut cancels = vec![Vec::new(), Vec::new(), Vec::new()];
    for (i, t) in slow_targets.iter().enumerate() {
        for _ in 0..o.cancels {
            let took = measure::hang_up(*t, &long, &slow[i].sim, CANCEL_LIMIT)
                .await
                .with_context(|| format!("a hang-up through {}", t.name))?;
            cancels[i].push(took);
            if took.is_none() {
                // Its generation may still run; later hang-ups would not be alone.
                break;
            }
        }
    }

    let (_, steal) = machine_at_start.busy_and_steal_until(&cpu::Machine::read());
    let overhead = gateway_overhead(loopback(gateway_ports[0])).await;
    for p in gateways.iter_mut().chain([&mut nginx]) {
        p.check_running()?;
    }
    Ok(Report {
        setup: Setup {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            nginx_version: nginx_version(&o.nginx_bin),
            requests: o.requests,
            duration: o.duration,
            warmup: o.warmup,
            streams: o.streams,
            stream_tokens: STREAM_TOKENS,
            stream_gap: STREAM_GAP,
            cancel_gap: CANCEL_GAP,
            cancels: o.cancels,
            reply_tokens: REPLY_TOKENS,
            quick: o.quick,
            dir: dir.display().to_string(),
            busy_before,
            steal,
            ticks_per_second: cpu::ticks_per_second(),
        },
        latency,
        steps,
        streams,
        cancels,
        cancel_limit: CANCEL_LIMIT,
        memory,
        overhead,
    })
}

/// Mean and count of the gateway's `corral_gateway_overhead_seconds`.
async fn gateway_overhead(addr: SocketAddr) -> Option<(Duration, u64)> {
    let mut conn = Conn::open(addr).await.ok()?;
    let (_, body) = conn.fetch(&Call::get("/metrics")).await.ok()?;
    let text = String::from_utf8_lossy(&body);
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse::<f64>().ok())
    };
    let sum = value("corral_gateway_overhead_seconds_sum")?;
    let count = value("corral_gateway_overhead_seconds_count")?;
    (count > 0.0).then(|| (Duration::from_secs_f64(sum / count), count as u64))
}

fn nginx_version(bin: &std::path::Path) -> String {
    std::process::Command::new(bin)
        .arg("-v")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stderr)
                .trim()
                .rsplit('/')
                .next()
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "?".to_owned())
}
