//! The streamed reply ([`Metered`]): passed on whole lines at a time, read
//! for Ollama's counts on the way, the unasked `/v1` usage cut from it.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use hyper::body::Frame;

use super::outcome::{Counts, Outcome};
use crate::upstream::Reply;

pub(super) struct InFlight(pub(super) prometheus::IntGauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The reply stream, passed through whole lines at a time as they arrive,
/// read for Ollama's counts on the way.
pub(super) struct Metered {
    pub(super) inner: Reply,
    pub(super) buf: BytesMut,
    /// `buf` holds the first piece, not yet passed on.
    pub(super) primed: bool,
    pub(super) sse: bool,
    pub(super) strip_usage: bool,
    pub(super) skip_blank: bool,
    pub(super) done: bool,
    /// An upstream error, passed on after the lines that came before it.
    pub(super) failed: Option<std::io::Error>,
    pub(super) outcome: Outcome,
    pub(super) _in_flight: InFlight,
}

impl Metered {
    /// Takes the complete lines from the buffer, reads them, and returns
    /// what the client gets.
    fn take_lines(&mut self, all: bool) -> Bytes {
        let end = if all {
            self.buf.len()
        } else {
            match self.buf.iter().rposition(|&b| b == b'\n') {
                Some(i) => i + 1,
                None => return Bytes::new(),
            }
        };
        let chunk = self.buf.split_to(end).freeze();
        // Only when a line is dropped or rewritten is the chunk copied.
        let mut edited: Option<Vec<u8>> = None;
        let mut start = 0;
        while start < chunk.len() {
            let stop = chunk[start..]
                .iter()
                .position(|&b| b == b'\n')
                .map(|i| start + i + 1)
                .unwrap_or(chunk.len());
            let line = &chunk[start..stop];
            match self.read_line(line) {
                Line::Keep => {
                    if let Some(e) = edited.as_mut() {
                        e.extend_from_slice(line);
                    }
                }
                change => {
                    let e = edited.get_or_insert_with(|| chunk[..start].to_vec());
                    if let Line::Replace(new) = change {
                        e.extend_from_slice(&new);
                    }
                }
            }
            start = stop;
        }
        match edited {
            Some(e) => Bytes::from(e),
            None => chunk,
        }
    }

    /// Reads one line and says what the client gets of it.
    fn read_line(&mut self, line: &[u8]) -> Line {
        let text = trim_eol(line);
        if self.sse {
            if text.is_empty() {
                return if std::mem::take(&mut self.skip_blank) {
                    Line::Drop
                } else {
                    Line::Keep
                };
            }
            let Some(data) = text.strip_prefix(b"data:") else {
                return Line::Keep;
            };
            let data = data.strip_prefix(b" ").unwrap_or(data);
            if data == b"[DONE]" {
                return Line::Keep;
            }
            if !contains(data, b"\"usage\"") {
                self.outcome.chunks += 1;
                return Line::Keep;
            }
            let Ok(c) = serde_json::from_slice::<Counts>(data) else {
                return Line::Keep;
            };
            let usage_only = c.choices.as_ref().is_some_and(|c| c.is_empty());
            // The empty usage `/v1/completions` puts on every chunk is not a
            // count: a stream cut before the real one is estimated instead.
            if usage_only
                || c.usage
                    .as_ref()
                    .is_some_and(|u| u.prompt_tokens > 0 || u.completion_tokens > 0)
            {
                self.outcome.take_counts(&c);
            }
            if usage_only {
                if self.strip_usage {
                    self.skip_blank = true;
                    return Line::Drop;
                }
                return Line::Keep;
            }
            self.outcome.chunks += 1;
            // `/v1/completions` puts an empty usage on every chunk once usage
            // is asked for; a client that did not ask never sees it.
            match (self.strip_usage, without_usage(data)) {
                (true, Some(stripped)) => {
                    let mut out = Vec::with_capacity(stripped.len() + 8);
                    out.extend_from_slice(b"data: ");
                    out.extend_from_slice(&stripped);
                    out.extend_from_slice(&line[text.len()..]);
                    Line::Replace(out)
                }
                _ => Line::Keep,
            }
        } else {
            if text.is_empty() {
                return Line::Keep;
            }
            if contains(text, b"\"done\":true") {
                if let Ok(c) = serde_json::from_slice::<Counts>(text) {
                    self.outcome.take_counts(&c);
                }
            } else {
                self.outcome.chunks += 1;
            }
            Line::Keep
        }
    }
}

/// What the client gets of one line of the reply.
enum Line {
    Keep,
    Drop,
    Replace(Vec<u8>),
}

/// A JSON object without its `"usage"` member, if it has one that is an
/// object of numbers (as Ollama writes it); `None` otherwise.
pub(super) fn without_usage(data: &[u8]) -> Option<Vec<u8>> {
    const KEY: &[u8] = b"\"usage\":{";
    // A member of the object itself: after `{` or `,`, not inside a string.
    let at = data.windows(KEY.len()).enumerate().position(|(i, w)| {
        w == KEY
            && data[..i]
                .iter()
                .rposition(|b| !b.is_ascii_whitespace())
                .is_some_and(|j| matches!(data[j], b'{' | b','))
    })?;
    let close = at + data[at..].iter().position(|&b| b == b'}')? + 1;
    // With the comma before it, or after it when it comes first.
    let (from, to) = match data[..at].iter().rposition(|b| !b.is_ascii_whitespace()) {
        Some(i) if data[i] == b',' => (i, close),
        _ if data.get(close) == Some(&b',') => (at, close + 1),
        _ => (at, close),
    };
    let mut out = Vec::with_capacity(data.len() - (to - from));
    out.extend_from_slice(&data[..from]);
    out.extend_from_slice(&data[to..]);
    serde_json::from_slice::<serde::de::IgnoredAny>(&out)
        .is_ok()
        .then_some(out)
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Everything Ollama has sent so far leaves in one piece (a token, or the
/// last lines and the end of the reply together), as soon as it has come.
impl hyper::body::Body for Metered {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(e) = self.failed.take() {
            return Poll::Ready(Some(Err(e)));
        }
        if self.done {
            return Poll::Ready(None);
        }
        let mut arrived = std::mem::take(&mut self.primed);
        loop {
            let this = &mut *self;
            match this.inner.poll_data(cx, &mut this.buf) {
                Poll::Ready(Ok(false)) => {
                    if this.outcome.ttft.is_none() {
                        this.outcome.ttft = Some(this.outcome.t0.elapsed());
                    }
                    arrived = true;
                }
                Poll::Ready(Err(e)) => {
                    self.done = true;
                    self.outcome.status = 502;
                    self.outcome.finished = true;
                    // The whole lines that came before it go out first,
                    // and are counted before the event is recorded.
                    let out = self.take_lines(false);
                    self.outcome.record();
                    let e = std::io::Error::other(e);
                    if out.is_empty() {
                        return Poll::Ready(Some(Err(e)));
                    }
                    self.failed = Some(e);
                    return Poll::Ready(Some(Ok(Frame::data(out))));
                }
                Poll::Ready(Ok(true)) => {
                    // `done` before the last piece leaves: the end goes with
                    // it. The connection is back in its pool already.
                    self.done = true;
                    let rest = self.take_lines(true);
                    if !self.outcome.finished {
                        self.outcome.finished = true;
                        self.outcome.record();
                    }
                    return Poll::Ready((!rest.is_empty()).then(|| Ok(Frame::data(rest))));
                }
                Poll::Pending => {
                    if arrived {
                        let out = self.take_lines(false);
                        if !out.is_empty() {
                            return Poll::Ready(Some(Ok(Frame::data(out))));
                        }
                    }
                    return Poll::Pending;
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.failed.is_none()
    }
}
