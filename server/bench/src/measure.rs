//! The measurements, each the same for every target: latency at one
//! connection, closed-loop throughput, stream timing, and hang-up to
//! upstream cancel.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper::StatusCode;
use ollama_sim::Sim;
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::task::JoinSet;

use crate::client::{Call, Conn, expect_status};
use crate::stats::Samples;

/// Where requests go: ollama-sim itself, or a proxy in front of it.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    pub name: &'static str,
    pub addr: SocketAddr,
}

/// Requests in a row to one target before the next takes over.
const LATENCY_BLOCK: usize = 250;

/// Sends `n` requests to each target over one connection each, one at a
/// time. The targets take turns in blocks, so that drift hits all alike
/// while the work a target leaves behind (the gateway's batched usage
/// writes) mostly lands in its own block.
pub async fn latency(targets: &[Target], call: &Call, n: usize) -> anyhow::Result<Vec<Samples>> {
    let mut conns = Vec::new();
    for t in targets {
        conns.push(Conn::open(t.addr).await?);
    }
    let mut samples = vec![Samples::with_capacity(n); targets.len()];
    let mut done = 0;
    while done < n {
        let block = LATENCY_BLOCK.min(n - done);
        for (j, conn) in conns.iter_mut().enumerate() {
            for _ in 0..block {
                let t0 = Instant::now();
                let status = conn.roundtrip(call).await?;
                let elapsed = t0.elapsed();
                expect_status(targets[j].name, status, StatusCode::OK)?;
                samples[j].push(elapsed);
            }
        }
        done += block;
    }
    samples.iter_mut().for_each(Samples::sort);
    Ok(samples)
}

/// One closed-loop throughput step.
#[derive(Clone, Debug)]
pub struct Step {
    pub concurrency: usize,
    /// Requests completed per second in the measured window.
    pub rate: f64,
    pub p99: Duration,
    pub errors: u64,
    pub first_error: Option<String>,
    /// Requests answered over the whole step, warm-up included.
    pub answered: u64,
    /// CPU used over the whole step (filled in by the caller).
    pub cpu: crate::cpu::Ticks,
}

/// `concurrency` connections, each sending the next request as soon as the
/// last one is answered; only requests that start after `warmup` and end
/// within the following `duration` are counted.
pub async fn throughput(
    target: Target,
    call: &Call,
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<Step> {
    let mut conns = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        conns.push(Conn::open(target.addr).await?);
    }
    let start = tokio::time::Instant::now() + Duration::from_millis(5);
    let measure_from = (start + warmup).into_std();
    let deadline = measure_from + duration;
    let mut tasks = JoinSet::new();
    for mut conn in conns {
        let call = call.clone();
        tasks.spawn(async move {
            let mut samples = Samples::with_capacity(4096);
            let mut answered = 0u64;
            let mut errors = 0u64;
            let mut first_error = None;
            tokio::time::sleep_until(start).await;
            loop {
                let t0 = Instant::now();
                if t0 >= deadline {
                    break;
                }
                let ok = match conn.roundtrip(&call).await {
                    Ok(StatusCode::OK) => true,
                    Ok(status) => {
                        first_error.get_or_insert_with(|| format!("status {status}"));
                        false
                    }
                    Err(e) => {
                        first_error.get_or_insert_with(|| format!("{e:#}"));
                        false
                    }
                };
                let done = Instant::now();
                answered += u64::from(ok);
                if t0 >= measure_from && done <= deadline {
                    if ok {
                        samples.push(done - t0);
                    } else {
                        errors += 1;
                    }
                }
            }
            (samples, answered, errors, first_error)
        });
    }
    let mut all = Samples::with_capacity(4096 * concurrency);
    let mut errors = 0;
    let mut answered = 0;
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        let (s, a, e, f) = joined.context("a load task panicked")?;
        all.extend(s);
        answered += a;
        errors += e;
        first_error = first_error.or(f);
    }
    all.sort();
    Ok(Step {
        concurrency,
        rate: all.len() as f64 / duration.as_secs_f64(),
        p99: all.percentile(99.0),
        errors,
        first_error,
        answered,
        cpu: crate::cpu::Ticks::default(),
    })
}

/// Timing of streamed replies as one target delivers them.
#[derive(Clone, Debug, Default)]
pub struct StreamTiming {
    /// Request sent to first body bytes.
    pub ttft: Samples,
    /// Between two body chunks of one reply.
    pub gaps: Samples,
    /// From the simulator stamping a line (`created_at`) to the client
    /// holding all of it: the one-way delivery time of each chunk.
    pub delivery: Samples,
}

#[derive(Deserialize)]
struct Line<'a> {
    #[serde(borrow)]
    created_at: &'a str,
    #[serde(default)]
    done: bool,
}

/// Streams `n` replies from each target (rotating), each `lines` NDJSON lines
/// long, over one keep-alive connection per target.
pub async fn streams(
    targets: &[Target],
    call: &Call,
    n: usize,
    lines: usize,
) -> anyhow::Result<Vec<StreamTiming>> {
    let mut conns = Vec::new();
    for t in targets {
        conns.push(Conn::open(t.addr).await?);
    }
    let mut timing = vec![StreamTiming::default(); targets.len()];
    for i in 0..n {
        for k in 0..targets.len() {
            let j = (i + k) % targets.len();
            stream_once(&mut conns[j], call, lines, &mut timing[j])
                .await
                .with_context(|| format!("a stream through {}", targets[j].name))?;
        }
    }
    for t in &mut timing {
        t.ttft.sort();
        t.gaps.sort();
        t.delivery.sort();
    }
    Ok(timing)
}

async fn stream_once(
    conn: &mut Conn,
    call: &Call,
    lines: usize,
    timing: &mut StreamTiming,
) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let res = conn.send(call).await?;
    expect_status("stream", res.status(), StatusCode::OK)?;
    let mut body = res.into_body();
    // (arrival, wall clock at arrival, bytes) of every data frame.
    let mut frames: Vec<(Instant, OffsetDateTime, Bytes)> = Vec::with_capacity(lines + 1);
    while let Some(frame) = body.frame().await {
        let frame = frame?;
        let at = Instant::now();
        let wall = OffsetDateTime::now_utc();
        if let Ok(data) = frame.into_data()
            && !data.is_empty()
        {
            frames.push((at, wall, data));
        }
    }
    let Some(first) = frames.first() else {
        bail!("an empty stream");
    };
    timing.ttft.push(first.0 - t0);
    for w in frames.windows(2) {
        timing.gaps.push(w[1].0 - w[0].0);
    }
    // A line is delivered when the frame holding its end arrives.
    let mut pending: Vec<u8> = Vec::new();
    let mut seen = 0;
    let mut done = false;
    for (_, wall, data) in &frames {
        pending.extend_from_slice(data);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let line = &line[..end];
            if line.is_empty() {
                continue;
            }
            let parsed: Line<'_> = serde_json::from_slice(line).with_context(|| {
                format!("not an Ollama line: {}", String::from_utf8_lossy(line))
            })?;
            let stamped = OffsetDateTime::parse(parsed.created_at, &Rfc3339)
                .with_context(|| format!("bad created_at {:?}", parsed.created_at))?;
            let nanos = (*wall - stamped).whole_nanoseconds().max(0);
            timing.delivery.push(Duration::from_nanos(
                u64::try_from(nanos).unwrap_or(u64::MAX),
            ));
            seen += 1;
            done |= parsed.done;
        }
    }
    if seen != lines || !done {
        bail!("expected {lines} lines ending with \"done\":true, got {seen} (done: {done})");
    }
    Ok(())
}

/// Starts a long stream, reads its first chunk, hangs up, and returns how
/// long until `sim` counted the generation as cancelled (`None`: not within
/// `limit`).
pub async fn hang_up(
    target: Target,
    call: &Call,
    sim: &Sim,
    limit: Duration,
) -> anyhow::Result<Option<Duration>> {
    // Start from a quiet simulator, so the count moves for this stream only.
    let quiet = Instant::now();
    while sim.stats().active + sim.stats().queued > 0 {
        if quiet.elapsed() > limit {
            bail!("the simulator still runs an earlier generation");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let before = sim.stats().cancelled;
    let mut conn = Conn::open(target.addr).await?;
    let res = conn.send(call).await?;
    expect_status(target.name, res.status(), StatusCode::OK)?;
    let mut body = res.into_body();
    loop {
        match tokio::time::timeout(limit, body.frame()).await {
            Ok(Some(Ok(f))) if f.data_ref().is_some_and(|d| !d.is_empty()) => break,
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => return Err(e).context("the stream failed before its first chunk"),
            Ok(None) => bail!("the stream ended before it could be cut"),
            Err(_) => bail!("no first chunk within {limit:?}"),
        }
    }
    let t0 = Instant::now();
    drop(body);
    drop(conn);
    loop {
        if sim.stats().cancelled > before {
            return Ok(Some(t0.elapsed()));
        }
        if t0.elapsed() > limit {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
