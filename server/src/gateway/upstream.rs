//! The Ollama upstreams: the least-busy upstream chosen per request,
//! in-flight counts that become `ollama_queue_depth`, and the connections
//! to them. Each upstream's address is parsed once, at start-up, not per
//! request.
//!
//! Connections are HTTP/1.1 (rustls for `https://` upstreams), kept open
//! between requests in a [`Client`]: one per gateway worker thread, so a
//! connection is opened, used and driven on one thread. The request task
//! itself writes the request and reads the reply ([`super::wire`] says what
//! the bytes mean): no connection task, no channel between the two, and a
//! stream's pieces are taken from the socket as they come. A connection
//! goes back to its pool only once its reply has been read whole; one whose
//! reply was cut short (a client hung up) is closed, which is what stops
//! Ollama generating.

use std::collections::VecDeque;
use std::future::Future as _;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use axum::http::{HeaderValue, Method};
use bytes::{Buf as _, Bytes, BytesMut};
use prometheus::IntGauge;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::TcpStream;

use super::metrics::GatewayMetrics;
use super::wire::{Decoder, RequestOut, WireError, parse_head};

/// How long an unused connection is kept.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Unused connections kept per upstream and client.
const MAX_IDLE: usize = 1024;
/// How often unused connections past [`IDLE_TIMEOUT`] are closed.
pub const PRUNE_EVERY: Duration = Duration::from_secs(30);
/// How long opening a connection (TCP, and TLS) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A request up to this size is written in one piece with its head.
const ONE_WRITE_BYTES: usize = 256 * 1024;

/// One Ollama server.
pub struct Upstream {
    /// `http://ollama:11434`, no trailing slash.
    pub base: String,
    /// Its place in [`Upstreams`], and in each client's pools.
    index: usize,
    /// What connections are opened to.
    host: String,
    port: u16,
    /// The name the TLS certificate must have, for `https://`.
    tls: Option<rustls::pki_types::ServerName<'static>>,
    /// The `Host` header of every request.
    host_header: HeaderValue,
    /// A path the upstream is mounted under (`/ollama`), or empty.
    prefix: String,
    /// Basic credentials from the address, sent with every request.
    authorization: Option<HeaderValue>,
    in_flight: AtomicUsize,
    parallel: usize,
    queue_gauge: IntGauge,
    in_flight_gauge: IntGauge,
}

/// All upstreams, and what opens TLS connections to them.
pub struct Upstreams {
    /// The client of the gateway inside `corral` (one runtime, many threads).
    pub client: Client,
    tls: tokio_rustls::TlsConnector,
    list: Vec<Arc<Upstream>>,
}

/// `Basic …` for an address's user and password, if it has them.
fn basic_auth(u: &url::Url) -> Option<HeaderValue> {
    use base64::Engine as _;
    if u.username().is_empty() && u.password().is_none() {
        return None;
    }
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let pair = format!(
        "{}:{}",
        decode(u.username()),
        decode(u.password().unwrap_or(""))
    );
    let mut v = HeaderValue::from_str(&format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    ))
    .ok()?;
    v.set_sensitive(true);
    Some(v)
}

/// Holds a place on an upstream until dropped (the reply ended, or the
/// client went away).
pub struct Lease {
    pub upstream: Arc<Upstream>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let n = self.upstream.in_flight.fetch_sub(1, Ordering::AcqRel) - 1;
        self.upstream.update_gauges(n);
    }
}

/// A request for an upstream: what the client asked, less what the
/// gateway keeps to itself (the client's key, its other headers).
pub struct Outgoing<'a> {
    pub method: &'a Method,
    /// Path and query as the client sent them; the upstream's prefix is
    /// put in front.
    pub path_and_query: &'a str,
    pub content_type: Option<&'a HeaderValue>,
    pub accept: Option<&'a HeaderValue>,
    pub body: &'a [u8],
}

impl Upstream {
    /// `req` as bytes for this upstream: its path prefix, `Host`, and
    /// credentials if the address had them.
    fn encode(&self, req: &Outgoing<'_>, out: &mut Vec<u8>) {
        let joined;
        let target = if self.prefix.is_empty() {
            req.path_and_query
        } else {
            joined = format!("{}{}", self.prefix, req.path_and_query);
            &joined
        };
        let mut headers: [(&str, &HeaderValue); 3] = [("", &self.host_header); 3];
        let mut n = 0;
        for (name, value) in [
            ("authorization", self.authorization.as_ref()),
            ("content-type", req.content_type),
            ("accept", req.accept),
        ] {
            if let Some(v) = value {
                headers[n] = (name, v);
                n += 1;
            }
        }
        RequestOut {
            method: req.method,
            target,
            host: &self.host_header,
            headers: &headers[..n],
            body: req.body,
        }
        .encode(out);
    }

    fn update_gauges(&self, in_flight: usize) {
        self.in_flight_gauge.set(in_flight as i64);
        self.queue_gauge
            .set(in_flight.saturating_sub(self.parallel) as i64);
    }
}

impl Upstreams {
    pub fn new(
        urls: Vec<url::Url>,
        parallel: usize,
        metrics: GatewayMetrics,
    ) -> anyhow::Result<Self> {
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        })
        .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config));
        let list = urls
            .into_iter()
            .enumerate()
            .map(|(index, mut u)| {
                // Credentials in the address (http://user:pass@ollama) go in
                // an Authorization header, never in labels or usage rows.
                let authorization = basic_auth(&u);
                let _ = u.set_username("");
                let _ = u.set_password(None);
                let base = u.as_str().trim_end_matches('/').to_owned();
                let bad = |what: &str| anyhow::anyhow!("gateway.upstreams: {base}: {what}");
                let secure = match u.scheme() {
                    "http" => false,
                    "https" => true,
                    other => return Err(bad(&format!("scheme {other} (http or https)"))),
                };
                let host = match u.host().ok_or_else(|| bad("no host"))? {
                    url::Host::Domain(d) => d.to_owned(),
                    url::Host::Ipv4(ip) => ip.to_string(),
                    url::Host::Ipv6(ip) => ip.to_string(),
                };
                let port = u.port_or_known_default().ok_or_else(|| bad("no port"))?;
                let tls = secure
                    .then(|| rustls::pki_types::ServerName::try_from(host.clone()))
                    .transpose()
                    .map_err(|e| bad(&e.to_string()))?;
                // `host:port` as the address wrote it ([…] for IPv6).
                let authority = match u.port() {
                    Some(p) => format!("{}:{p}", u.host_str().unwrap_or_default()),
                    None => u.host_str().unwrap_or_default().to_owned(),
                };
                let host_header =
                    HeaderValue::from_str(&authority).map_err(|e| bad(&e.to_string()))?;
                let prefix = u.path().trim_end_matches('/').to_owned();
                Ok(Arc::new(Upstream {
                    queue_gauge: metrics.queue_depth.with_label_values(&[&base]),
                    in_flight_gauge: metrics.upstream_in_flight.with_label_values(&[&base]),
                    base,
                    index,
                    host,
                    port,
                    tls,
                    host_header,
                    prefix,
                    authorization,
                    in_flight: AtomicUsize::new(0),
                    parallel,
                }))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        for u in &list {
            u.update_gauges(0);
        }
        Ok(Self {
            client: Client::new(tls.clone(), list.len()),
            tls,
            list,
        })
    }

    /// A client with connections of its own, for one worker thread: they
    /// are opened, and then driven, on that thread.
    pub fn new_client(&self) -> Client {
        Client::new(self.tls.clone(), self.list.len())
    }

    /// Takes a place on the least busy upstream.
    pub fn lease(&self) -> Lease {
        let upstream = self
            .list
            .iter()
            .min_by_key(|u| u.in_flight.load(Ordering::Acquire))
            .expect("at least one upstream (checked by the settings)")
            .clone();
        let n = upstream.in_flight.fetch_add(1, Ordering::AcqRel) + 1;
        upstream.update_gauges(n);
        Lease { upstream }
    }
}

/// Why a request did not get (all of) its reply from Ollama.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("connection failed: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("Ollama closed the connection before its reply ended")]
    Closed,
}

impl UpstreamError {
    pub fn is_connect(&self) -> bool {
        matches!(self, Self::Connect(_))
    }
}

/// A connection to an upstream: TCP, or TLS over it.
enum Io {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// An open connection and what has been read from it but not yet used.
struct Wire {
    io: Io,
    buf: BytesMut,
}

impl Wire {
    /// Reads what has come into `buf`: `Ready(Ok(0))` when Ollama closed.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        if self.buf.capacity() - self.buf.len() < 1024 {
            self.buf.reserve(16 * 1024);
        }
        pin!(self.io.read_buf(&mut self.buf)).poll(cx)
    }

    /// Still open, with nothing unasked-for on it: a read finds nothing
    /// waiting (a close, an error or stray bytes say otherwise).
    fn idle_and_open(&mut self) -> bool {
        self.buf.is_empty()
            && self
                .poll_fill(&mut Context::from_waker(Waker::noop()))
                .is_pending()
    }
}

/// Open connections to the upstreams, reused request after request.
#[derive(Clone)]
pub struct Client(Arc<Pools>);

struct Pools {
    tls: tokio_rustls::TlsConnector,
    /// Unused connections per upstream, the most recently used last.
    idle: Vec<Mutex<VecDeque<Idle>>>,
}

struct Idle {
    wire: Wire,
    since: Instant,
}

impl Idle {
    fn expired(&self, now: Instant) -> bool {
        now.duration_since(self.since) > IDLE_TIMEOUT
    }
}

/// A reply from Ollama, its body read from the connection as it comes.
/// Read whole, the connection goes back to its pool; dropped before
/// that, the connection closes.
pub struct Reply {
    pub status: u16,
    pub content_type: Option<HeaderValue>,
    wire: Option<Wire>,
    decoder: Decoder,
    keep_alive: bool,
    pools: Arc<Pools>,
    index: usize,
}

impl Reply {
    /// Moves what has come of the body to `out`. `Ready(Ok(true))` once
    /// the body has ended (the connection is then back in its pool, or
    /// closed); `Ready(Ok(false))` when something came; `Pending` when
    /// nothing has.
    pub fn poll_data(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut BytesMut,
    ) -> Poll<Result<bool, UpstreamError>> {
        let Some(wire) = self.wire.as_mut() else {
            return Poll::Ready(Ok(true));
        };
        loop {
            let before = out.len();
            if self.decoder.decode(&mut wire.buf, out)? {
                self.finish();
                return Poll::Ready(Ok(true));
            }
            if out.len() > before {
                return Poll::Ready(Ok(false));
            }
            match wire.poll_fill(cx) {
                Poll::Ready(Ok(0)) => {
                    // Closed: the end, if the body runs up to the close.
                    self.wire = None;
                    return Poll::Ready(if self.decoder.end_of_input() {
                        Ok(true)
                    } else {
                        Err(UpstreamError::Closed)
                    });
                }
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => {
                    self.wire = None;
                    return Poll::Ready(Err(e.into()));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// The whole body.
    pub async fn read_to_end(mut self) -> Result<Bytes, UpstreamError> {
        let mut out = BytesMut::new();
        while !std::future::poll_fn(|cx| self.poll_data(cx, &mut out)).await? {}
        Ok(out.freeze())
    }

    /// The body has ended: its connection goes back to the pool if it can
    /// carry another request.
    fn finish(&mut self) {
        let Some(wire) = self.wire.take() else {
            return;
        };
        if !self.keep_alive || !wire.buf.is_empty() {
            return;
        }
        let Ok(mut idle) = self.pools.idle[self.index].lock() else {
            return;
        };
        let now = Instant::now();
        while idle.front().is_some_and(|i| i.expired(now)) {
            idle.pop_front();
        }
        if idle.len() < MAX_IDLE {
            idle.push_back(Idle { wire, since: now });
        }
    }
}

impl Client {
    fn new(tls: tokio_rustls::TlsConnector, upstreams: usize) -> Self {
        Self(Arc::new(Pools {
            tls,
            idle: (0..upstreams).map(|_| Mutex::default()).collect(),
        }))
    }

    /// Sends `req` to `upstream` on an open connection, or on a new one,
    /// and reads the reply's head. A connection Ollama closed meanwhile is
    /// passed over; a request that reached Ollama whole is never sent twice.
    pub async fn send(
        &self,
        upstream: &Upstream,
        req: &Outgoing<'_>,
    ) -> Result<Reply, UpstreamError> {
        let mut head = Vec::new();
        upstream.encode(req, &mut head);
        // A large body is written after the head, not copied behind it.
        let body_apart = head.len() > ONE_WRITE_BYTES;
        if body_apart {
            head.truncate(head.len() - req.body.len());
        }
        let head_request = *req.method == Method::HEAD;
        while let Some(mut wire) = self.checkout(upstream.index) {
            // Written only in part, a request is not one Ollama can answer,
            // so it may go on another connection.
            if wire.io.write_all(&head).await.is_err() {
                continue;
            }
            if body_apart && wire.io.write_all(req.body).await.is_err() {
                continue;
            }
            // TLS holds records back until flushed.
            if wire.io.flush().await.is_err() {
                continue;
            }
            return self.receive(wire, upstream, head_request).await;
        }
        let mut wire = self.connect(upstream).await?;
        wire.io.write_all(&head).await?;
        if body_apart {
            wire.io.write_all(req.body).await?;
        }
        wire.io.flush().await?;
        self.receive(wire, upstream, head_request).await
    }

    async fn connect(&self, upstream: &Upstream) -> Result<Wire, UpstreamError> {
        let open = async {
            let tcp = TcpStream::connect((upstream.host.as_str(), upstream.port))
                .await
                .map_err(|e| UpstreamError::Connect(e.to_string()))?;
            let _ = tcp.set_nodelay(true);
            let io = match &upstream.tls {
                None => Io::Plain(tcp),
                Some(name) => Io::Tls(Box::new(
                    self.0
                        .tls
                        .connect(name.clone(), tcp)
                        .await
                        .map_err(|e| UpstreamError::Connect(format!("TLS: {e}")))?,
                )),
            };
            Ok(Wire {
                io,
                buf: BytesMut::with_capacity(16 * 1024),
            })
        };
        tokio::time::timeout(CONNECT_TIMEOUT, open)
            .await
            .map_err(|_| {
                UpstreamError::Connect(format!("no connection within {CONNECT_TIMEOUT:?}"))
            })?
    }

    /// Reads a reply's head (passing over informational ones).
    async fn receive(
        &self,
        mut wire: Wire,
        upstream: &Upstream,
        head_request: bool,
    ) -> Result<Reply, UpstreamError> {
        loop {
            if let Some((len, head)) = parse_head(&wire.buf, head_request)? {
                wire.buf.advance(len);
                if (100..200).contains(&head.status) {
                    if head.status == 101 {
                        return Err(WireError::Head("101 Switching Protocols".into()).into());
                    }
                    continue;
                }
                return Ok(Reply {
                    status: head.status,
                    content_type: head.content_type,
                    decoder: Decoder::new(head.framing),
                    keep_alive: head.keep_alive,
                    wire: Some(wire),
                    pools: self.0.clone(),
                    index: upstream.index,
                });
            }
            if std::future::poll_fn(|cx| wire.poll_fill(cx)).await? == 0 {
                return Err(UpstreamError::Closed);
            }
        }
    }

    /// The most recently used connection that is still open.
    fn checkout(&self, index: usize) -> Option<Wire> {
        let mut idle = self.0.idle[index].lock().ok()?;
        let now = Instant::now();
        while let Some(mut i) = idle.pop_back() {
            if !i.expired(now) && i.wire.idle_and_open() {
                return Some(i.wire);
            }
        }
        None
    }

    /// Closes connections unused for longer than the idle timeout, and
    /// forgets those Ollama closed.
    pub fn prune(&self) {
        let now = Instant::now();
        for pool in &self.0.idle {
            if let Ok(mut idle) = pool.lock() {
                idle.retain_mut(|i| !i.expired(now) && i.wire.idle_and_open());
            }
        }
    }

    /// [`Client::prune`], every `period`, forever.
    pub async fn prune_every(self, period: Duration) {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.prune();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `u` writes for `GET path`.
    fn written(u: &Upstream, path: &str) -> String {
        let mut out = Vec::new();
        u.encode(&get(path), &mut out);
        String::from_utf8(out).unwrap()
    }

    fn get(path: &str) -> Outgoing<'_> {
        Outgoing {
            method: &Method::GET,
            path_and_query: path,
            content_type: None,
            accept: None,
            body: b"",
        }
    }

    #[test]
    fn upstream_addresses_are_parsed_once_and_keep_their_path() {
        let ups = Upstreams::new(
            vec![
                "http://127.0.0.1:11434".parse().unwrap(),
                "https://gpu.example:8443/ollama/".parse().unwrap(),
                "http://[::1]:11434".parse().unwrap(),
            ],
            4,
            GatewayMetrics::new(),
        )
        .unwrap();
        assert_eq!(
            written(&ups.list[0], "/api/chat?x=1"),
            "GET /api/chat?x=1 HTTP/1.1\r\nhost: 127.0.0.1:11434\r\n\r\n"
        );
        assert_eq!(
            (ups.list[0].host.as_str(), ups.list[0].port),
            ("127.0.0.1", 11434)
        );
        assert!(ups.list[0].tls.is_none());
        assert_eq!(ups.list[1].base, "https://gpu.example:8443/ollama");
        assert_eq!(
            written(&ups.list[1], "/v1/models"),
            "GET /ollama/v1/models HTTP/1.1\r\nhost: gpu.example:8443\r\n\r\n"
        );
        assert!(ups.list[1].tls.is_some());
        assert_eq!(
            (ups.list[2].host.as_str(), ups.list[2].port),
            ("::1", 11434)
        );
        assert!(written(&ups.list[2], "/").contains("host: [::1]:11434\r\n"));
        assert!(ups.list[0].authorization.is_none());
    }

    #[test]
    fn credentials_in_an_upstream_address_become_a_header_and_leave_the_labels() {
        let ups = Upstreams::new(
            vec!["http://corral:s%40cret@ollama:11434".parse().unwrap()],
            4,
            GatewayMetrics::new(),
        )
        .unwrap();
        let u = &ups.list[0];
        assert_eq!(u.base, "http://ollama:11434");
        // base64("corral:s@cret")
        assert_eq!(
            written(u, "/api/tags"),
            "GET /api/tags HTTP/1.1\r\nhost: ollama:11434\r\n\
             authorization: Basic Y29ycmFsOnNAY3JldA==\r\n\r\n"
        );
        assert!(u.authorization.as_ref().unwrap().is_sensitive());
    }

    /// How the test server answers.
    #[derive(Clone, Copy)]
    enum Answer {
        /// 100,000 bytes with a `content-length`.
        Sized,
        /// Three lines, chunked, as Ollama streams.
        Chunked,
    }

    /// A listener on a free loopback port, and its `http://` URL.
    async fn loopback() -> (tokio::net::TcpListener, url::Url) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        (listener, url)
    }

    /// An HTTP/1.1 server (hyper's) on loopback giving `answer` to
    /// everything; returns its address and how many connections it has
    /// accepted.
    async fn counting_server(keep_alive: bool, answer: Answer) -> (url::Url, Arc<AtomicUsize>) {
        let (listener, url) = loopback().await;
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |_req| async move {
                        let body = match answer {
                            Answer::Sized => {
                                axum::body::Body::from(Bytes::from_static(&[b'x'; 100_000]))
                            }
                            Answer::Chunked => axum::body::Body::from_stream(
                                futures_util::stream::iter((0..3).map(|i| {
                                    Ok::<_, std::convert::Infallible>(format!("{{\"n\":{i}}}\n"))
                                })),
                            ),
                        };
                        Ok::<_, std::convert::Infallible>(axum::http::Response::new(body))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(keep_alive)
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        (url, accepted)
    }

    fn idle(client: &Client) -> usize {
        client.0.idle[0].lock().unwrap().len()
    }

    #[tokio::test]
    async fn a_connection_is_reused_after_a_whole_reply_and_closed_after_a_cut_one() {
        let (url, accepted) = counting_server(true, Answer::Sized).await;
        let ups = Upstreams::new(vec![url], 4, GatewayMetrics::new()).unwrap();
        let client = ups.new_client();
        let u = &ups.list[0];
        for _ in 0..3 {
            let reply = client.send(u, &get("/api/tags")).await.unwrap();
            assert_eq!(reply.status, 200);
            assert_eq!(reply.read_to_end().await.unwrap().len(), 100_000);
        }
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "one connection for three whole replies"
        );
        // A reply dropped half read takes its connection with it.
        let reply = client.send(u, &get("/api/tags")).await.unwrap();
        drop(reply);
        assert_eq!(idle(&client), 0);
        let reply = client.send(u, &get("/api/tags")).await.unwrap();
        assert_eq!(reply.read_to_end().await.unwrap().len(), 100_000);
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        client.prune();
        assert_eq!(idle(&client), 1, "a fresh connection stays");
    }

    #[tokio::test]
    async fn a_connection_is_reused_right_after_a_streamed_reply() {
        let (url, accepted) = counting_server(true, Answer::Chunked).await;
        let ups = Upstreams::new(vec![url], 4, GatewayMetrics::new()).unwrap();
        let client = ups.new_client();
        let u = &ups.list[0];
        for _ in 0..5 {
            let mut reply = client.send(u, &get("/api/chat")).await.unwrap();
            let mut body = BytesMut::new();
            while !std::future::poll_fn(|cx| reply.poll_data(cx, &mut body))
                .await
                .unwrap()
            {}
            assert_eq!(&body[..], b"{\"n\":0}\n{\"n\":1}\n{\"n\":2}\n");
            assert_eq!(idle(&client), 1, "back in the pool as the body ends");
        }
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "one connection for five streams"
        );
    }

    #[tokio::test]
    async fn a_connection_that_says_close_is_not_kept() {
        let (url, accepted) = counting_server(false, Answer::Sized).await;
        let ups = Upstreams::new(vec![url], 4, GatewayMetrics::new()).unwrap();
        let client = ups.new_client();
        let u = &ups.list[0];
        for _ in 0..3 {
            let reply = client.send(u, &get("/api/tags")).await.unwrap();
            reply.read_to_end().await.unwrap();
            assert_eq!(idle(&client), 0);
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    /// A server that answers one request per connection as if it kept the
    /// connection (no `connection: close`), then closes it; returns its
    /// address and how many requests reached it whole.
    async fn closing_server() -> (url::Url, Arc<AtomicUsize>) {
        let (listener, url) = loopback().await;
        let requests = Arc::new(AtomicUsize::new(0));
        let count = requests.clone();
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                let count = count.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !buf.ends_with(b"\r\n\r\n") {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    count.fetch_add(1, Ordering::SeqCst);
                    let _ = stream
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                        .await;
                });
            }
        });
        (url, requests)
    }

    #[tokio::test]
    async fn a_request_goes_on_a_new_connection_when_ollama_closed_the_old_one() {
        let (url, requests) = closing_server().await;
        let ups = Upstreams::new(vec![url], 4, GatewayMetrics::new()).unwrap();
        let client = ups.new_client();
        let u = &ups.list[0];
        for i in 1..=3 {
            let reply = client.send(u, &get("/api/tags")).await.unwrap();
            assert_eq!(&reply.read_to_end().await.unwrap()[..], b"ok");
            assert_eq!(idle(&client), 1, "kept: nothing said otherwise");
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert_eq!(requests.load(Ordering::SeqCst), i, "each request sent once");
        }
        client.prune();
        assert_eq!(idle(&client), 0, "closed connections are forgotten");
    }

    #[tokio::test]
    async fn an_upstream_that_refuses_connections_is_a_connect_error() {
        let (listener, url) = loopback().await;
        drop(listener);
        let ups = Upstreams::new(vec![url], 4, GatewayMetrics::new()).unwrap();
        let u = &ups.list[0];
        let Err(e) = ups.new_client().send(u, &get("/api/tags")).await else {
            panic!("a reply from a closed port");
        };
        assert!(e.is_connect(), "{e}");
        assert!(e.to_string().starts_with("cannot connect"), "{e}");
    }

    #[tokio::test]
    async fn a_reply_cut_short_is_an_error_and_its_connection_is_not_kept() {
        let (listener, url) = loopback().await;
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut chunk = [0u8; 1024];
            let _ = stream.read(&mut chunk).await;
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n")
                .await;
        });
        let ups = Upstreams::new(vec![url], 4, GatewayMetrics::new()).unwrap();
        let client = ups.new_client();
        let reply = client.send(&ups.list[0], &get("/api/chat")).await.unwrap();
        let e = reply.read_to_end().await.unwrap_err();
        assert!(matches!(e, UpstreamError::Closed), "{e}");
        assert_eq!(idle(&client), 0);
    }
}
