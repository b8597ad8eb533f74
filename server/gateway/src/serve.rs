//! The client side of the gateway on hyper's HTTP/1.1 server: heads,
//! bodies, keep-alive, pipelining, `Expect: 100-continue` and HTTP/1.0 by
//! hyper's rules, with the gateway's own on top:
//!
//! - the path and the key are checked from the head, before any of the body
//!   is read or asked for (hyper sends `100 Continue` only when the body is
//!   first read), and a body over the limit is never read;
//! - only the `chunked` transfer-coding and only `100-continue` expectations;
//! - a client that stops reading a reply is cut after the send timeout (an
//!   idle Ollama slot and `ollama_queue_depth` are not held for ever);
//! - a client that hangs up drops its request, and with it the request to
//!   Ollama (hyper closes a connection at EOF mid-request).

use std::convert::Infallible;
use std::pin::Pin;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_io_timeout::TimeoutStream;
use tower::ServiceExt as _;

use super::GatewayService;

/// How long a request head may take to come, counted from when the
/// connection starts waiting for it (so an idle connection closes after it
/// too).
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest request head, and what hyper buffers of a connection while
/// it waits for one. (hyper's buffer bound alone lets a head a little over
/// it through when the head came in one read, so the gateway also measures
/// each head it gets.)
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
pub const MAX_HEADERS: usize = 100;
/// How long a request body may take to come, whole.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(120);
/// After a connection ends (a refusal that left a body unread, an error
/// hyper answered): how long, and how much, is read and dropped before the
/// socket closes, so that the reply is not lost to a reset.
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 1024 * 1024;
/// TCP keepalive on accepted sockets: a peer that vanished (no FIN, no
/// RST) is noticed within about two minutes.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_RETRIES: u32 = 6;
/// The kernel's send buffer of an accepted socket (Linux doubles it). Left
/// to autotuning it grows to 4 MiB, which a token stream at a few KiB/s
/// takes minutes to fill: only then does a write wait and the send timeout
/// start, so a client that stopped reading would hold its Ollama slot that
/// long. 64 KiB still moves over 100 MB/s at a LAN's round trip.
const SEND_BUFFER_BYTES: usize = 64 * 1024;

/// A request body as read, whole; one larger than the gateway takes is not
/// read, and its handler answers 413 (in the client's API's error format).
pub enum Inbound {
    Full(Option<Bytes>),
    /// Over this many bytes.
    TooLarge(usize),
}

/// A connection's socket: a write that cannot go on for the send timeout
/// (the client stopped reading) fails, and with it the connection.
type Io = TokioIo<Pin<Box<TimeoutStream<TcpStream>>>>;

/// Serves one client connection until it closes, fails, or `stop` says so
/// (then hyper finishes the request under way and closes).
pub async fn serve_connection(
    stream: TcpStream,
    service: GatewayService,
    mut stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL)
        .with_retries(KEEPALIVE_RETRIES);
    let socket = socket2::SockRef::from(&stream);
    let _ = socket.set_tcp_keepalive(&keepalive);
    let _ = socket.set_send_buffer_size(SEND_BUFFER_BYTES);
    let mut timed = TimeoutStream::new(stream);
    timed.set_write_timeout(Some(service.state.gw.send_timeout));
    let io: Io = TokioIo::new(Box::pin(timed));
    let mut conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .max_buf_size(MAX_HEAD_BYTES)
        .max_headers(MAX_HEADERS)
        .keep_alive(true)
        .serve_connection(io, service);
    let mut stopping = false;
    let ended = loop {
        tokio::select! {
            r = std::future::poll_fn(|cx| conn.poll_without_shutdown(cx)) => break r,
            _ = stop.wait_for(|s| *s), if !stopping => {
                stopping = true;
                Pin::new(&mut conn).graceful_shutdown();
            }
        }
    };
    if let Err(e) = &ended {
        tracing::debug!(error = %e, "gateway connection ended with an error");
    }
    let mut stream = conn.into_parts().io.into_inner();
    linger_close(stream.as_mut().get_pin_mut()).await;
}

/// Closes a connection whose last reply may have left part of a request
/// unread: our side is shut first, and what the client still sends is read
/// and dropped for a moment, so that the reply is not lost to a reset.
async fn linger_close(mut stream: Pin<&mut TcpStream>) {
    if stream.shutdown().await.is_err() {
        return;
    }
    let mut scratch = [0u8; 8192];
    let mut drained = 0usize;
    let _ = tokio::time::timeout(LINGER, async {
        while drained < LINGER_BYTES {
            match stream.read(&mut scratch).await {
                Ok(0) | Err(_) => return,
                Ok(n) => drained += n,
            }
        }
    })
    .await;
}

type ServiceFuture =
    Pin<Box<dyn std::future::Future<Output = Result<Response<Body>, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for GatewayService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ServiceFuture;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let service = self.clone();
        Box::pin(async move { Ok(service.respond(req).await) })
    }
}

/// The gateway's own routes, served by axum.
fn is_own(path: &str) -> bool {
    matches!(path, "/" | "/healthz" | "/metrics")
}

/// A refusal at the HTTP level, before any handler: the status and why.
struct Bad(StatusCode, &'static str);

/// The gateway's framing rules beyond hyper's (which already refuses
/// differing lengths, non-digit lengths, codings that do not end in
/// `chunked`, and obs-text in either header): exactly one coding,
/// `chunked`, and no expectation but `100-continue`.
fn check_framing(headers: &HeaderMap) -> Result<(), Bad> {
    let mut codings = headers.get_all(header::TRANSFER_ENCODING).iter();
    if let Some(te) = codings.next() {
        let only_chunked = te.as_bytes().trim_ascii().eq_ignore_ascii_case(b"chunked");
        if !only_chunked || codings.next().is_some() {
            return Err(Bad(
                StatusCode::NOT_IMPLEMENTED,
                "only the chunked transfer-encoding is supported",
            ));
        }
    }
    if let Some(expect) = headers.get(header::EXPECT)
        && !expect.as_bytes().eq_ignore_ascii_case(b"100-continue")
    {
        return Err(Bad(
            StatusCode::EXPECTATION_FAILED,
            "only \"Expect: 100-continue\" is supported",
        ));
    }
    Ok(())
}

/// The size of `req`'s head as sent, near enough: request line and header
/// lines with their separators.
fn head_size<B>(req: &Request<B>) -> usize {
    let line = req.method().as_str().len() + req.uri().to_string().len() + 12;
    let fields: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    line + fields + 2
}

/// Whether the request has a body still to come.
fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
}

/// Marks `res` as the last reply on its connection: hyper closes it after.
fn closing(mut res: Response<Body>) -> Response<Body> {
    res.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    res
}

fn plain(Bad(status, why): Bad) -> Response<Body> {
    let mut res = Response::new(Body::from(format!("{why}\n")));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    closing(res)
}

/// The request's body, whole, within `max` bytes and [`BODY_TIMEOUT`];
/// one whose length says it is larger is not read at all.
async fn read_body(body: Incoming, headers: &HeaderMap, max: usize) -> Result<Inbound, Bad> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| std::str::from_utf8(v.as_bytes()).ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Ok(Inbound::TooLarge(max));
    }
    let limited = http_body_util::Limited::new(body, max);
    match tokio::time::timeout(BODY_TIMEOUT, limited.collect()).await {
        Ok(Ok(collected)) => {
            let bytes = collected.to_bytes();
            Ok(Inbound::Full((!bytes.is_empty()).then_some(bytes)))
        }
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Ok(Inbound::TooLarge(max)),
        Ok(Err(_)) => Err(Bad(
            StatusCode::BAD_REQUEST,
            "the request body could not be read whole",
        )),
        Err(_) => Err(Bad(
            StatusCode::REQUEST_TIMEOUT,
            "the request body did not come in time",
        )),
    }
}

impl GatewayService {
    /// The reply to one request: the gateway's own routes, or the proxy.
    async fn respond(&self, req: Request<Incoming>) -> Response<Body> {
        if head_size(&req) > MAX_HEAD_BYTES {
            return plain(Bad(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "the request head is over 64 KiB",
            ));
        }
        if let Err(bad) = check_framing(req.headers()) {
            return plain(bad);
        }
        // Absolute-form (`GET http://host/path`) is for proxies; the
        // gateway takes paths only.
        if req.uri().scheme().is_some() || !req.uri().path().starts_with('/') {
            return plain(Bad(
                StatusCode::BAD_REQUEST,
                "the request target must be a path",
            ));
        }
        if is_own(req.uri().path()) {
            return match self.own.clone().oneshot(req.map(Body::new)).await {
                Ok(res) => res,
                Err(e) => match e {},
            };
        }
        let state = &self.state;
        let unread = has_body(req.headers());
        // The path and the key are checked before any of the body is read
        // (or asked for with 100 Continue).
        let admitted =
            match super::proxy::admit(state, req.method(), req.uri().path(), req.headers()).await {
                Ok(a) => a,
                // A refusal leaves the body unread: the connection closes.
                Err(refusal) if unread => return closing(refusal),
                Err(refusal) => return refusal,
            };
        let (parts, body) = req.into_parts();
        let inbound = match read_body(body, &parts.headers, state.gw.max_body_bytes).await {
            Ok(b) => b,
            Err(bad) => return plain(bad),
        };
        let too_large = matches!(inbound, Inbound::TooLarge(_));
        let res = super::proxy::handle(state, admitted, Request::from_parts(parts, inbound)).await;
        if too_large { closing(res) } else { res }
    }
}

/// The reply to a connection beyond `gateway.max_connections`: written
/// without waiting (a socket's buffer takes it), then the connection closes.
pub fn refuse_connection(stream: TcpStream) {
    const WHY: &str = "the gateway is at its connection limit; retry shortly\n";
    let reply = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{WHY}",
        WHY.len()
    );
    let _ = stream.try_write(reply.as_bytes());
    // Closed at once: no task and no buffer for a connection over the limit.
    drop(stream);
}
