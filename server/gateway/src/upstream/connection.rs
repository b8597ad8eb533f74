//! An open connection to an upstream (TCP, or TLS over it), and the
//! reply being read from it. A connection goes back to its pool only once
//! its reply has been read whole; one whose reply was cut short (a client
//! hung up) or was not HTTP as it should be is closed, which is also what
//! stops Ollama generating.

use std::future::Future as _;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::http::HeaderValue;
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::client::Pools;
use super::{Upstream, UpstreamError};
use crate::wire::{Decoder, HeadReader};

/// How long opening a connection (TCP, and TLS) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection to an upstream: TCP, or TLS over it.
pub(super) enum Io {
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
pub(super) struct Wire {
    pub(super) io: Io,
    buf: BytesMut,
}

impl Wire {
    /// Opens a connection to `upstream`, through `tls` for `https://`.
    pub(super) async fn connect(
        upstream: &Upstream,
        tls: &tokio_rustls::TlsConnector,
    ) -> Result<Self, UpstreamError> {
        let open = async {
            let tcp = TcpStream::connect((upstream.host.as_str(), upstream.port))
                .await
                .map_err(|e| UpstreamError::Connect(e.to_string()))?;
            let _ = tcp.set_nodelay(true);
            let io = match &upstream.tls {
                None => Io::Plain(tcp),
                Some(name) => Io::Tls(Box::new(
                    tls.connect(name.clone(), tcp)
                        .await
                        .map_err(|e| UpstreamError::Connect(format!("TLS: {e}")))?,
                )),
            };
            Ok(Self {
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

    /// Reads what has come into `buf`: `Ready(Ok(0))` when Ollama closed.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        if self.buf.capacity() - self.buf.len() < 1024 {
            self.buf.reserve(16 * 1024);
        }
        pin!(self.io.read_buf(&mut self.buf)).poll(cx)
    }

    /// Still open, with nothing unasked-for on it: a read finds nothing
    /// waiting (a close, an error or stray bytes say otherwise).
    pub(super) fn idle_and_open(&mut self) -> bool {
        self.buf.is_empty()
            && self
                .poll_fill(&mut Context::from_waker(Waker::noop()))
                .is_pending()
    }

    /// Reads a reply's head (passing over informational ones); its body
    /// is then read from the [`Reply`].
    pub(super) async fn receive(
        mut self,
        pools: Arc<Pools>,
        index: usize,
        head_request: bool,
    ) -> Result<Reply, UpstreamError> {
        let mut reader = HeadReader::default();
        loop {
            if let Some(head) = reader.read(&mut self.buf, head_request)? {
                return Ok(Reply {
                    status: head.status,
                    content_type: head.content_type,
                    decoder: Decoder::new(head.framing),
                    keep_alive: head.keep_alive,
                    wire: Some(self),
                    pools,
                    index,
                });
            }
            if std::future::poll_fn(|cx| self.poll_fill(cx)).await? == 0 {
                // What came may still say why (it was not HTTP).
                HeadReader::closed(&self.buf)?;
                return Err(UpstreamError::Closed);
            }
        }
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
    /// nothing has. After an error the connection is closed.
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
            match self.decoder.decode(&mut wire.buf, out) {
                Ok(true) => {
                    self.finish();
                    return Poll::Ready(Ok(true));
                }
                Ok(false) => {}
                Err(e) => {
                    self.wire = None;
                    return Poll::Ready(Err(e.into()));
                }
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
    /// carry another request, and nothing unasked-for came after it.
    fn finish(&mut self) {
        if let Some(wire) = self.wire.take()
            && self.keep_alive
            && wire.buf.is_empty()
        {
            self.pools.put_back(self.index, wire);
        }
    }
}
