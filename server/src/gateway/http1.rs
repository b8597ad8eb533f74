//! The client side of the gateway: HTTP/1.1 read and written by each
//! connection's own task. A request's head is parsed with `httparse`, its
//! body read whole (it is needed whole anyway: the model and the limits
//! come from it), the reply written head and body in one piece, or chunk
//! by chunk for a stream. No connection task beside the request, no
//! channel for the body.
//!
//! While a request is served, the connection is watched: a client that
//! hangs up drops its request, and with it the request to Ollama.

use std::io::Write as _;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::http::{
    HeaderMap, HeaderName, HeaderValue, Method, Request, Response, Uri, Version, header,
};
use bytes::{Buf as _, Bytes, BytesMut};
use http_body_util::Full;
use hyper::body::Body as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::GatewayService;
use super::wire::{Decoder, Framing, content_length, keeps_alive};

/// The longest request head accepted.
const MAX_HEAD_BYTES: usize = 64 * 1024;
const MAX_HEADERS: usize = 100;
/// How long a request head may take to come, from its first byte.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a connection may wait for a request (from its opening, or
/// from the end of the last reply) before it is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(75);
/// How long a request body may take to come, whole.
const BODY_TIMEOUT: Duration = Duration::from_secs(120);
/// Bytes of a pipelined next request held while one is served.
const MAX_AHEAD_BYTES: usize = 64 * 1024;
/// After a reply that leaves part of a request unread: how long, and how
/// much, is read and dropped before the connection is closed.
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 1024 * 1024;

/// A request body as read from the connection, whole; one larger than
/// the gateway takes is not read, and its handler answers 413 (in the
/// client's API's error format) before the connection closes.
pub enum Inbound {
    Full(Option<Bytes>),
    /// Over this many bytes.
    TooLarge(usize),
}

/// What a hang-up watch does with bytes past MAX_AHEAD_BYTES.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ahead {
    /// A next request (pipelined): read and dropped, so that a hang-up is
    /// still seen; the connection closes after this request.
    Drop,
    /// The body of the request being admitted: not read any further.
    Hold,
}

/// A refusal at the HTTP level, before any handler: the status and why.
struct Bad(u16, &'static str);

/// A client connection.
struct Conn {
    stream: TcpStream,
    /// Read and not yet used.
    buf: BytesMut,
    out: Vec<u8>,
    /// More of a pipelined next request came than is held: the connection
    /// closes after this request.
    overflowed: bool,
}

/// A request head, and how its body comes.
struct Head {
    request: Request<()>,
    /// For the gateway's own routes rather than the proxy.
    own: bool,
    framing: Framing,
    keep_alive: bool,
    continue_expected: bool,
}

/// Serves one client connection until it closes, fails, or `stop` says
/// so (between requests; a request under way is finished first).
pub async fn serve_connection(
    stream: TcpStream,
    service: GatewayService,
    mut stop: watch::Receiver<bool>,
) {
    let max_body = service.state.gw.max_body_bytes;
    let mut conn = Conn {
        stream,
        buf: BytesMut::with_capacity(8 * 1024),
        out: Vec::with_capacity(4 * 1024),
        overflowed: false,
    };
    // One timer for the connection's waits between requests, moved on
    // with each request rather than made anew.
    let timer = tokio::time::sleep(IDLE_TIMEOUT);
    tokio::pin!(timer);
    loop {
        let head = match conn.read_head(&mut stop, timer.as_mut()).await {
            Ok(Some(head)) => head,
            Ok(None) => return,
            Err(Bad(status, why)) => {
                let _ = conn.write_plain(status, why).await;
                conn.linger_close().await;
                return;
            }
        };
        let Head {
            request,
            own,
            framing,
            mut keep_alive,
            continue_expected,
        } = head;
        let head_request = request.method() == Method::HEAD;
        let version = request.version();
        // The path and the key are checked before any of the body is read
        // (or asked for with 100 Continue).
        let admitted = if own {
            None
        } else {
            let admit = super::proxy::admit(
                &service.state,
                request.method(),
                request.uri().path(),
                request.headers(),
            );
            let admitted = tokio::select! {
                biased;
                a = admit => a,
                // What comes meanwhile is this request's body.
                () = conn.hung_up(Ahead::Hold) => return,
            };
            match admitted {
                Ok(a) => Some(a),
                Err(refusal) => {
                    let unread = framing != Framing::Empty;
                    let went_on = conn
                        .write_response(refusal, head_request, version, keep_alive && !unread)
                        .await;
                    if unread || !keep_alive || !matches!(went_on, Ok(true)) {
                        conn.linger_close().await;
                        return;
                    }
                    continue;
                }
            }
        };
        let too_large = matches!(framing, Framing::Length(n) if n > max_body as u64);
        if continue_expected
            && framing != Framing::Empty
            && !too_large
            && conn
                .stream
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .await
                .is_err()
        {
            return;
        }
        let body = match tokio::time::timeout(BODY_TIMEOUT, conn.read_body(framing, max_body)).await
        {
            Ok(Ok(body)) => body,
            Ok(Err(Bad(status, why))) => {
                let _ = conn.write_plain(status, why).await;
                conn.linger_close().await;
                return;
            }
            Err(_) => {
                let _ = conn
                    .write_plain(408, "the request body did not come in time")
                    .await;
                conn.linger_close().await;
                return;
            }
        };
        if matches!(body, Inbound::TooLarge(_)) {
            keep_alive = false;
        }
        let req = request.map(|()| body);
        let response = {
            let handled = service.respond(req, admitted);
            tokio::pin!(handled);
            tokio::select! {
                biased;
                res = &mut handled => res,
                () = conn.hung_up(Ahead::Drop) => return,
            }
        };
        if *stop.borrow() || conn.overflowed {
            keep_alive = false;
        }
        match conn
            .write_response(response, head_request, version, keep_alive)
            .await
        {
            Ok(true) if keep_alive => {}
            _ => {
                conn.linger_close().await;
                return;
            }
        }
    }
}

/// The request headers the proxy reads (the key, and what it passes on
/// to Ollama); it ignores the others.
const PROXY_READS: [HeaderName; 4] = [
    header::AUTHORIZATION,
    HeaderName::from_static("x-api-key"),
    header::CONTENT_TYPE,
    header::ACCEPT,
];

fn header_value(value: &[u8]) -> Result<HeaderValue, Bad> {
    HeaderValue::from_bytes(value).map_err(|_| Bad(400, "bad header value"))
}

/// The gateway's own routes, served by axum.
fn is_own(path: &str) -> bool {
    matches!(path, "/" | "/healthz" | "/metrics")
}

impl Conn {
    /// Reads into the buffer: `Ok(0)` when the client closed.
    async fn fill(&mut self) -> std::io::Result<usize> {
        if self.buf.capacity() - self.buf.len() < 1024 {
            self.buf.reserve(8 * 1024);
        }
        self.stream.read_buf(&mut self.buf).await
    }

    /// The next request's head; `None` when the client closed between
    /// requests, or `stop` came while none had started.
    async fn read_head(
        &mut self,
        stop: &mut watch::Receiver<bool>,
        mut timer: Pin<&mut tokio::time::Sleep>,
    ) -> Result<Option<Head>, Bad> {
        // Idle, a connection waits up to IDLE_TIMEOUT for a request; once
        // a head has begun, it has HEAD_TIMEOUT to come whole. (A later
        // deadline only moves the timer's mark; it is not registered anew.)
        timer
            .as_mut()
            .reset(tokio::time::Instant::now() + IDLE_TIMEOUT);
        let mut begun = false;
        loop {
            if !self.buf.is_empty() {
                if let Some(head) = self.parse_head()? {
                    return Ok(Some(head));
                }
                if !begun {
                    begun = true;
                    timer
                        .as_mut()
                        .reset(tokio::time::Instant::now() + HEAD_TIMEOUT);
                }
            } else if *stop.borrow() {
                return Ok(None);
            }
            let idle = self.buf.is_empty();
            tokio::select! {
                biased;
                r = self.fill() => match r {
                    Ok(0) => {
                        return if idle {
                            Ok(None)
                        } else {
                            Err(Bad(400, "the connection closed in the middle of a request head"))
                        };
                    }
                    Ok(_) => {}
                    Err(_) => return Ok(None),
                },
                () = timer.as_mut() => {
                    return if idle {
                        Ok(None)
                    } else {
                        Err(Bad(408, "the request head did not come in time"))
                    };
                }
                // Checked again at the top of the loop: only an idle
                // connection stops here.
                changed = stop.changed(), if idle => {
                    if changed.is_err() {
                        return Ok(None);
                    }
                }
            }
        }
    }

    /// Parses the head at the start of the buffer, if it has all come.
    fn parse_head(&mut self) -> Result<Option<Head>, Bad> {
        // Left uninitialised: httparse writes the ones it returns.
        let mut headers =
            [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut []);
        let len = match req.parse_with_uninit_headers(&self.buf, &mut headers) {
            Ok(httparse::Status::Complete(n)) if n > MAX_HEAD_BYTES => {
                return Err(Bad(431, "the request head is too large"));
            }
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => {
                return if self.buf.len() > MAX_HEAD_BYTES {
                    Err(Bad(431, "the request head is too large"))
                } else {
                    Ok(None)
                };
            }
            Err(httparse::Error::TooManyHeaders) => {
                return Err(Bad(431, "the request has too many headers"));
            }
            Err(_) => return Err(Bad(400, "the request head is not valid HTTP/1.1")),
        };
        let method = Method::from_bytes(req.method.unwrap_or_default().as_bytes())
            .map_err(|_| Bad(400, "bad method"))?;
        let uri: Uri = req
            .path
            .unwrap_or_default()
            .parse()
            .map_err(|_| Bad(400, "bad request target"))?;
        if uri.scheme().is_some() || !uri.path().starts_with('/') {
            return Err(Bad(400, "the request target must be a path"));
        }
        let http11 = req.version == Some(1);
        // The proxy reads four headers and forwards none but two of them;
        // the gateway's own routes get them all.
        let own = is_own(uri.path());
        let mut keep_alive = http11;
        let mut length: Option<u64> = None;
        let mut chunked = false;
        let mut continue_expected = false;
        let mut map = HeaderMap::with_capacity(req.headers.len());
        for h in req.headers.iter() {
            let name = h.name;
            if name.eq_ignore_ascii_case("content-length") {
                let n = content_length(h.value).ok_or(Bad(400, "bad content-length"))?;
                if length.is_some_and(|l| l != n) {
                    return Err(Bad(400, "two different content-lengths"));
                }
                length = Some(n);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                let value = std::str::from_utf8(h.value).unwrap_or("").trim();
                if !value.eq_ignore_ascii_case("chunked") {
                    return Err(Bad(501, "only the chunked transfer-encoding is supported"));
                }
                if chunked {
                    return Err(Bad(400, "transfer-encoding given twice"));
                }
                chunked = true;
            } else if name.eq_ignore_ascii_case("connection") {
                keep_alive = keeps_alive(keep_alive, http11, h.value);
            } else if name.eq_ignore_ascii_case("expect") {
                if !h.value.eq_ignore_ascii_case(b"100-continue") {
                    return Err(Bad(417, "only \"Expect: 100-continue\" is supported"));
                }
                continue_expected = http11;
            } else if own {
                if !name.eq_ignore_ascii_case("keep-alive")
                    && !name.eq_ignore_ascii_case("te")
                    && !name.eq_ignore_ascii_case("upgrade")
                {
                    let name = HeaderName::from_bytes(name.as_bytes())
                        .map_err(|_| Bad(400, "bad header name"))?;
                    map.append(name, header_value(h.value)?);
                }
            } else if let Some(name) = PROXY_READS
                .iter()
                .find(|n| name.eq_ignore_ascii_case(n.as_str()))
            {
                map.append(name.clone(), header_value(h.value)?);
            }
        }
        // Both framings in one request is how requests are smuggled.
        if chunked && length.is_some() {
            return Err(Bad(400, "content-length and transfer-encoding together"));
        }
        if chunked && !http11 {
            return Err(Bad(400, "chunked bodies need HTTP/1.1"));
        }
        let framing = if chunked {
            Framing::Chunked
        } else {
            match length {
                None | Some(0) => Framing::Empty,
                Some(n) => Framing::Length(n),
            }
        };
        self.buf.advance(len);
        let mut request = Request::new(());
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        *request.version_mut() = if http11 {
            Version::HTTP_11
        } else {
            Version::HTTP_10
        };
        *request.headers_mut() = map;
        Ok(Some(Head {
            request,
            own,
            framing,
            keep_alive,
            continue_expected,
        }))
    }

    /// The request's body, whole; one larger than `max` is not read.
    async fn read_body(&mut self, framing: Framing, max: usize) -> Result<Inbound, Bad> {
        if let Framing::Length(n) = framing
            && n > max as u64
        {
            return Ok(Inbound::TooLarge(max));
        }
        let mut decoder = Decoder::new(framing);
        let mut body = BytesMut::new();
        if let Framing::Length(n) = framing
            && self.buf.len() as u64 >= n
        {
            // Come whole with its head: no copy.
            return Ok(Inbound::Full(Some(self.buf.split_to(n as usize).freeze())));
        }
        loop {
            let ended = decoder
                .decode(&mut self.buf, &mut body)
                .map_err(|_| Bad(400, "bad chunked request body"))?;
            if body.len() > max {
                return Ok(Inbound::TooLarge(max));
            }
            if ended {
                return Ok(Inbound::Full((!body.is_empty()).then(|| body.freeze())));
            }
            match self.fill().await {
                Ok(0) | Err(_) => {
                    return Err(Bad(
                        400,
                        "the connection closed in the middle of a request body",
                    ));
                }
                Ok(_) => {}
            }
        }
    }

    /// Resolves when the client has gone (closed, or the connection
    /// failed). Bytes it sends meanwhile are kept up to MAX_AHEAD_BYTES;
    /// past that, `Ahead::Drop` reads on and drops them, `Ahead::Hold`
    /// stops reading.
    async fn hung_up(&mut self, ahead: Ahead) {
        // Only for the rare overflow: not zeroed on every request.
        let mut scratch: Vec<u8> = Vec::new();
        loop {
            let read = if self.buf.len() >= MAX_AHEAD_BYTES {
                if ahead == Ahead::Hold {
                    // This request's own body, sent without waiting for
                    // 100 Continue: left in the socket until it is read.
                    std::future::pending::<()>().await;
                }
                // Past what is held: read on (a hang-up must still be
                // seen), drop it, and close after this request.
                self.overflowed = true;
                scratch.resize(4096, 0);
                self.stream.read(&mut scratch).await
            } else {
                self.fill().await
            };
            match read {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }

    /// Closes after a reply that may have left some of the request unread:
    /// our side is shut first, and what the client still sends is read and
    /// dropped for a moment, so that the reply is not lost to a reset.
    async fn linger_close(&mut self) {
        if self.stream.shutdown().await.is_err() {
            return;
        }
        let mut scratch = [0u8; 8192];
        let mut drained = 0usize;
        let _ = tokio::time::timeout(LINGER, async {
            while drained < LINGER_BYTES {
                match self.stream.read(&mut scratch).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => drained += n,
                }
            }
        })
        .await;
    }

    /// A short plain-text refusal, then the connection closes.
    async fn write_plain(&mut self, status: u16, why: &str) -> std::io::Result<()> {
        self.out.clear();
        status_line(&mut self.out, status);
        self.out
            .extend_from_slice(b"content-type: text/plain; charset=utf-8\r\nconnection: close\r\n");
        date(&mut self.out);
        write_content_length(&mut self.out, why.len() + 1);
        self.out.extend_from_slice(why.as_bytes());
        self.out.push(b'\n');
        self.stream.write_all(&self.out).await
    }

    /// Writes `res`: with a `content-length` when its size is known, else
    /// chunk by chunk as its body gives them, each as soon as it comes.
    /// False when the connection cannot go on (the client went, or the
    /// body failed midway).
    async fn write_response(
        &mut self,
        res: Response<Body>,
        head_request: bool,
        version: Version,
        keep_alive: bool,
    ) -> std::io::Result<bool> {
        let (parts, mut body) = res.into_parts();
        self.out.clear();
        status_line(&mut self.out, parts.status.as_u16());
        for (name, value) in &parts.headers {
            if name == header::CONTENT_LENGTH
                || name == header::TRANSFER_ENCODING
                || name == header::CONNECTION
            {
                continue;
            }
            self.out.extend_from_slice(name.as_str().as_bytes());
            self.out.extend_from_slice(b": ");
            self.out.extend_from_slice(value.as_bytes());
            self.out.extend_from_slice(b"\r\n");
        }
        date(&mut self.out);
        let http11 = version == Version::HTTP_11;
        let exact = body.size_hint().exact();
        let chunked = exact.is_none() && http11 && !head_request;
        if !keep_alive || (exact.is_none() && !http11) {
            self.out.extend_from_slice(b"connection: close\r\n");
        } else if !http11 {
            self.out.extend_from_slice(b"connection: keep-alive\r\n");
        }
        let no_body = head_request || matches!(parts.status.as_u16(), 204 | 304);
        match exact {
            Some(n) if !matches!(parts.status.as_u16(), 204 | 304) => {
                write_content_length(&mut self.out, n as usize);
            }
            _ if chunked && !no_body => self
                .out
                .extend_from_slice(b"transfer-encoding: chunked\r\n\r\n"),
            _ => self.out.extend_from_slice(b"\r\n"),
        }
        if no_body {
            self.stream.write_all(&self.out).await?;
            return Ok(exact.is_some() || head_request);
        }
        // The head waits for the first piece of the body, so that the two
        // leave in one write.
        let mut ended = false;
        loop {
            let frame = {
                let next = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx));
                tokio::select! {
                    biased;
                    f = next => f,
                    () = self.hung_up(Ahead::Drop) => return Ok(false),
                }
            };
            match frame {
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    if data.is_empty() {
                        continue;
                    }
                    if chunked {
                        let _ = write!(self.out, "{:x}\r\n", data.len());
                        self.out.extend_from_slice(&data);
                        self.out.extend_from_slice(b"\r\n");
                    } else {
                        self.out.extend_from_slice(&data);
                    }
                    if body.is_end_stream() {
                        ended = true;
                    }
                }
                Some(Err(e)) => {
                    // The client must not take a cut reply for a whole
                    // one: the connection closes without the last chunk.
                    tracing::debug!(error = %e, "a reply body failed midway");
                    if !self.out.is_empty() {
                        self.stream.write_all(&self.out).await?;
                    }
                    return Ok(false);
                }
                None => ended = true,
            }
            if ended && chunked {
                self.out.extend_from_slice(b"0\r\n\r\n");
            }
            if !self.out.is_empty() {
                self.stream.write_all(&self.out).await?;
                self.out.clear();
            }
            if ended {
                return Ok(exact.is_some() || chunked);
            }
        }
    }
}

fn status_line(out: &mut Vec<u8>, status: u16) {
    let reason = axum::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(itoa::Buffer::new().format(status).as_bytes());
    out.push(b' ');
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn write_content_length(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(b"content-length: ");
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
}

/// `date: …\r\n`, formatted once a second per thread.
fn date(out: &mut Vec<u8>) {
    thread_local! {
        static CACHE: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((0, String::new())) };
    }
    let now = SystemTime::now();
    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    CACHE.with_borrow_mut(|(at, text)| {
        if *at != secs || text.is_empty() {
            *at = secs;
            *text = httpdate::fmt_http_date(now);
        }
        out.extend_from_slice(b"date: ");
        out.extend_from_slice(text.as_bytes());
        out.extend_from_slice(b"\r\n");
    });
}

impl GatewayService {
    /// The reply to one request: the gateway's own routes, or the proxy.
    pub async fn respond(
        &self,
        req: Request<Inbound>,
        admitted: Option<super::proxy::Admitted>,
    ) -> Response<Body> {
        if let Some(admitted) = admitted {
            super::proxy::handle(&self.state, admitted, req).await
        } else {
            use tower::ServiceExt as _;
            let req = req.map(|b| match b {
                Inbound::Full(b) => Body::new(Full::new(b.unwrap_or_default())),
                Inbound::TooLarge(_) => Body::empty(),
            });
            match self.own.clone().oneshot(req).await {
                Ok(res) => res,
                Err(e) => match e {},
            }
        }
    }
}
