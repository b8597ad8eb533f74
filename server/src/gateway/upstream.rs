//! The Ollama upstreams: the least-busy upstream chosen per request,
//! in-flight counts that become `ollama_queue_depth`, and the connections
//! to them. Each upstream's address is parsed once, at start-up, not per
//! request.
//!
//! Connections are HTTP/1.1 (rustls for `https://` upstreams), kept open
//! between requests in a [`Client`]: one per gateway worker thread, so a
//! connection is opened, used and driven on one thread. A connection goes
//! back to its pool only once its reply has been read whole; one whose
//! reply was cut short (a client hung up) is closed, which is what stops
//! Ollama generating.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::uri::{Authority, PathAndQuery, Scheme};
use axum::http::{HeaderValue, Method, Request, Response, Uri, header};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::client::legacy::connect::HttpConnector;
use prometheus::IntGauge;
use tower::{Service as _, ServiceExt as _};

use super::metrics::GatewayMetrics;

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// How long an unused connection is kept.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Unused connections kept per upstream and client.
const MAX_IDLE: usize = 1024;
/// How often unused connections past [`IDLE_TIMEOUT`] are closed.
pub const PRUNE_EVERY: Duration = Duration::from_secs(30);

/// One Ollama server.
pub struct Upstream {
    /// `http://ollama:11434`, no trailing slash.
    pub base: String,
    /// Its place in [`Upstreams`], and in each client's pools.
    index: usize,
    /// `scheme://host:port`, what connections are opened to.
    origin: Uri,
    /// The `Host` header of every request.
    host: HeaderValue,
    /// A path the upstream is mounted under (`/ollama`), or empty.
    prefix: String,
    /// Basic credentials from the address, sent with every request.
    authorization: Option<HeaderValue>,
    in_flight: AtomicUsize,
    parallel: usize,
    queue_gauge: IntGauge,
    in_flight_gauge: IntGauge,
}

/// All upstreams, and what opens connections to them.
pub struct Upstreams {
    /// The client of the gateway inside `corral` (one runtime, many threads).
    pub client: Client,
    connector: Connector,
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

impl Upstream {
    /// A request for `path_and_query` on this upstream, in origin form,
    /// with its `Host` (and credentials, if the address had them).
    pub fn request(
        &self,
        method: Method,
        path_and_query: &str,
    ) -> Result<axum::http::request::Builder, axum::http::Error> {
        let uri = if self.prefix.is_empty() {
            PathAndQuery::try_from(path_and_query)?
        } else {
            PathAndQuery::try_from(format!("{}{path_and_query}", self.prefix))?
        };
        let mut rb = Request::builder()
            .method(method)
            .uri(Uri::from(uri))
            .header(header::HOST, self.host.clone());
        if let Some(a) = &self.authorization {
            rb = rb.header(header::AUTHORIZATION, a.clone());
        }
        Ok(rb)
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
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(Duration::from_secs(5)));
        http.set_nodelay(true);
        http.enforce_http(false);
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        })
        .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
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
                let uri: Uri = base
                    .parse()
                    .map_err(|e| anyhow::anyhow!("gateway.upstreams: {base}: {e}"))?;
                let scheme = uri.scheme().cloned().unwrap_or(Scheme::HTTP);
                let authority: Authority = uri
                    .authority()
                    .cloned()
                    .ok_or_else(|| anyhow::anyhow!("gateway.upstreams: {base}: no host"))?;
                let host = HeaderValue::from_str(authority.as_str())
                    .map_err(|e| anyhow::anyhow!("gateway.upstreams: {base}: {e}"))?;
                let origin = Uri::builder()
                    .scheme(scheme)
                    .authority(authority)
                    .path_and_query("/")
                    .build()
                    .map_err(|e| anyhow::anyhow!("gateway.upstreams: {base}: {e}"))?;
                let prefix = uri.path().trim_end_matches('/').to_owned();
                Ok(Arc::new(Upstream {
                    queue_gauge: metrics.queue_depth.with_label_values(&[&base]),
                    in_flight_gauge: metrics.upstream_in_flight.with_label_values(&[&base]),
                    base,
                    index,
                    origin,
                    host,
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
            client: Client::new(connector.clone(), list.len()),
            connector,
            list,
        })
    }

    /// A client with connections of its own, for one worker thread: they
    /// are opened, and then driven, on that thread.
    pub fn new_client(&self) -> Client {
        Client::new(self.connector.clone(), self.list.len())
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

/// Why a request did not get a reply from Ollama.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("cannot connect: {0}")]
    Connect(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error(transparent)]
    Http(#[from] hyper::Error),
}

impl UpstreamError {
    pub fn is_connect(&self) -> bool {
        matches!(self, Self::Connect(_))
    }
}

/// Open connections to the upstreams, reused request after request.
#[derive(Clone)]
pub struct Client(Arc<Pools>);

#[derive(Debug)]
struct Pools {
    connector: Connector,
    /// Unused connections per upstream, the most recently used last.
    idle: Vec<Mutex<VecDeque<Idle>>>,
}

#[derive(Debug)]
struct Idle {
    sender: SendRequest<Full<Bytes>>,
    since: Instant,
}

impl Idle {
    fn expired(&self, now: Instant) -> bool {
        now.duration_since(self.since) > IDLE_TIMEOUT
    }

    /// Open (as far as we know) and not idle too long.
    fn usable(&self, now: Instant) -> bool {
        !self.sender.is_closed() && !self.expired(now)
    }
}

/// A connection lent to one request. [`Conn::release`] gives it back once
/// the reply has been read whole; dropped instead, it closes.
#[derive(Debug)]
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
    pools: Arc<Pools>,
    index: usize,
}

impl Conn {
    /// The reply was read whole: the connection can carry the next request.
    pub fn release(self) {
        let Ok(mut idle) = self.pools.idle[self.index].lock() else {
            return;
        };
        let now = Instant::now();
        while idle.front().is_some_and(|i| i.expired(now)) {
            idle.pop_front();
        }
        if idle.len() < MAX_IDLE {
            idle.push_back(Idle {
                sender: self.sender,
                since: now,
            });
        }
    }
}

impl Client {
    fn new(connector: Connector, upstreams: usize) -> Self {
        Self(Arc::new(Pools {
            connector,
            idle: (0..upstreams).map(|_| Mutex::default()).collect(),
        }))
    }

    /// Sends `req` to `upstream` on an open connection, or on a new one.
    /// A request that an open connection could not take (Ollama closed it
    /// meanwhile) goes on the next; one that was sent is never sent twice.
    pub async fn send(
        &self,
        upstream: &Upstream,
        mut req: Request<Full<Bytes>>,
    ) -> Result<(Response<Incoming>, Conn), UpstreamError> {
        while let Some(mut sender) = self.checkout(upstream.index) {
            match sender.try_send_request(req).await {
                Ok(res) => return Ok((res, self.conn(sender, upstream))),
                Err(mut e) => match e.take_message() {
                    Some(back) => req = back,
                    None => return Err(e.into_error().into()),
                },
            }
        }
        let mut connector = self.0.connector.clone();
        let io = connector
            .ready()
            .await
            .map_err(UpstreamError::Connect)?
            .call(upstream.origin.clone())
            .await
            .map_err(UpstreamError::Connect)?;
        let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
            .handshake(io)
            .await?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "Ollama connection ended with an error");
            }
        });
        let res = sender.send_request(req).await?;
        Ok((res, self.conn(sender, upstream)))
    }

    fn conn(&self, sender: SendRequest<Full<Bytes>>, upstream: &Upstream) -> Conn {
        Conn {
            sender,
            pools: self.0.clone(),
            index: upstream.index,
        }
    }

    /// The most recently used open connection that can take a request.
    fn checkout(&self, index: usize) -> Option<SendRequest<Full<Bytes>>> {
        let mut idle = self.0.idle[index].lock().ok()?;
        let now = Instant::now();
        let mut busy = Vec::new();
        let mut found = None;
        while let Some(i) = idle.pop_back() {
            if !i.usable(now) {
                continue;
            }
            if i.sender.is_ready() {
                found = Some(i.sender);
                break;
            }
            // Still finishing its last reply; it stays.
            busy.push(i);
        }
        idle.extend(busy.into_iter().rev());
        found
    }

    /// Closes connections unused for longer than the idle timeout, and
    /// forgets those Ollama closed.
    pub fn prune(&self) {
        let now = Instant::now();
        for pool in &self.0.idle {
            if let Ok(mut idle) = pool.lock() {
                idle.retain(|i| i.usable(now));
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

    #[test]
    fn upstream_addresses_are_parsed_once_and_keep_their_path() {
        let ups = Upstreams::new(
            vec![
                "http://127.0.0.1:11434".parse().unwrap(),
                "https://gpu.example:8443/ollama/".parse().unwrap(),
            ],
            4,
            GatewayMetrics::new(),
        )
        .unwrap();
        let req =
            |u: &Upstream, path: &str| u.request(Method::GET, path).unwrap().body(()).unwrap();
        let first = req(&ups.list[0], "/api/chat?x=1");
        assert_eq!(first.uri(), "/api/chat?x=1");
        assert_eq!(first.headers()["host"], "127.0.0.1:11434");
        assert_eq!(ups.list[0].origin, "http://127.0.0.1:11434/");
        assert_eq!(ups.list[1].base, "https://gpu.example:8443/ollama");
        let second = req(&ups.list[1], "/v1/models");
        assert_eq!(second.uri(), "/ollama/v1/models");
        assert_eq!(second.headers()["host"], "gpu.example:8443");
        assert_eq!(ups.list[1].origin, "https://gpu.example:8443/");
        assert!(ups.list[0].authorization.is_none());
    }

    /// How the test server answers.
    #[derive(Clone, Copy)]
    enum Reply {
        /// 100,000 bytes with a `content-length`.
        Sized,
        /// Three lines, chunked, as Ollama streams.
        Chunked,
    }

    /// An HTTP/1.1 server on loopback answering `reply` to everything;
    /// returns its address and how many connections it has accepted.
    async fn counting_server(keep_alive: bool, reply: Reply) -> (url::Url, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |_req| async move {
                        let body = match reply {
                            Reply::Sized => {
                                axum::body::Body::from(Bytes::from_static(&[b'x'; 100_000]))
                            }
                            Reply::Chunked => axum::body::Body::from_stream(
                                futures_util::stream::iter((0..3).map(|i| {
                                    Ok::<_, std::convert::Infallible>(format!("{{\"n\":{i}}}\n"))
                                })),
                            ),
                        };
                        Ok::<_, std::convert::Infallible>(Response::new(body))
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

    fn get(u: &Upstream) -> Request<Full<Bytes>> {
        u.request(Method::GET, "/api/tags")
            .unwrap()
            .body(Full::new(Bytes::new()))
            .unwrap()
    }

    #[tokio::test]
    async fn a_connection_is_reused_after_a_whole_reply_and_closed_after_a_cut_one() {
        use http_body_util::BodyExt as _;
        let (url, accepted) = counting_server(true, Reply::Sized).await;
        let ups = Upstreams::new(vec![url], 4, GatewayMetrics::new()).unwrap();
        let client = ups.new_client();
        let u = &ups.list[0];
        for _ in 0..3 {
            let (res, conn) = client.send(u, get(u)).await.unwrap();
            assert_eq!(
                res.into_body().collect().await.unwrap().to_bytes().len(),
                100_000
            );
            conn.release();
        }
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "one connection for three whole replies"
        );
        // A reply dropped half read takes its connection with it.
        let (res, conn) = client.send(u, get(u)).await.unwrap();
        drop((res, conn));
        let (res, conn) = client.send(u, get(u)).await.unwrap();
        assert_eq!(
            res.into_body().collect().await.unwrap().to_bytes().len(),
            100_000
        );
        conn.release();
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        client.prune();
        assert_eq!(
            client.0.idle[0].lock().unwrap().len(),
            1,
            "a fresh connection stays"
        );
    }

    #[tokio::test]
    async fn a_connection_is_reused_right_after_a_streamed_reply() {
        use http_body_util::BodyExt as _;
        let (url, accepted) = counting_server(true, Reply::Chunked).await;
        let ups = Upstreams::new(vec![url], 4, GatewayMetrics::new()).unwrap();
        let client = ups.new_client();
        let u = &ups.list[0];
        for _ in 0..5 {
            let (res, conn) = client.send(u, get(u)).await.unwrap();
            assert!(res.headers().get("content-length").is_none());
            let mut body = res.into_body();
            while let Some(frame) = body.frame().await {
                frame.unwrap();
            }
            conn.release();
        }
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "one connection for five streams"
        );
    }

    #[tokio::test]
    async fn a_request_goes_on_a_new_connection_when_ollama_closed_the_old_one() {
        use http_body_util::BodyExt as _;
        let (url, accepted) = counting_server(false, Reply::Sized).await;
        let ups = Upstreams::new(vec![url], 4, GatewayMetrics::new()).unwrap();
        let client = ups.new_client();
        let u = &ups.list[0];
        for _ in 0..3 {
            let (res, conn) = client.send(u, get(u)).await.unwrap();
            res.into_body().collect().await.unwrap();
            conn.release();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
        client.prune();
        assert!(
            client.0.idle[0].lock().unwrap().is_empty(),
            "closed connections are forgotten"
        );
    }

    #[tokio::test]
    async fn an_upstream_that_refuses_connections_is_a_connect_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        drop(listener);
        let ups = Upstreams::new(vec![url], 4, GatewayMetrics::new()).unwrap();
        let u = &ups.list[0];
        let e = ups.new_client().send(u, get(u)).await.unwrap_err();
        assert!(e.is_connect(), "{e}");
        assert!(e.to_string().starts_with("cannot connect"), "{e}");
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
        assert_eq!(u.origin, "http://ollama:11434/");
        let req = u
            .request(Method::GET, "/api/tags")
            .unwrap()
            .body(())
            .unwrap();
        // base64("corral:s@cret")
        assert_eq!(req.headers()["authorization"], "Basic Y29ycmFsOnNAY3JldA==");
        assert!(req.headers()["authorization"].is_sensitive());
    }
}
