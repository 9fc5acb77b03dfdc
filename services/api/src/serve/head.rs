//! Each request's head, read and checked before hyper sees it.
//!
//! hyper answers a head it cannot take (too large, a malformed request
//! line, a bad `Content-Length`) by itself, with an empty body, and a
//! slow head with nothing or a bare 408. [`CheckedStream`] sits between
//! the socket and hyper: it gathers each head, checks it with the parser
//! and the limits hyper uses, and hands hyper only heads hyper will
//! accept. A head that fails (or does not arrive in time) is replaced by
//! a small well-formed request asking to close the connection, and the
//! failure is left in the connection's [`ConnState`], where the
//! connection's service finds it and answers in the JSON shape of the
//! service the path belongs to.
//!
//! To find where the next head starts, the stream follows each request's
//! body framing (`Content-Length` or chunked) as the bytes pass; a body
//! whose framing it cannot follow ends the checks for that connection
//! (hyper refuses the body itself, as a body error, and closes).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::http::StatusCode;
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// hyper's default bound on the number of header lines.
const MAX_HEADERS: usize = 100;
/// hyper's bound on a request target (`MAX_URI_LEN`).
const MAX_URI_LEN: usize = (u16::MAX - 1) as usize;
/// What the stream hands hyper in place of a head that failed.
const STAND_IN: &[u8] = b"GET / HTTP/1.1\r\nhost: novalog\r\nconnection: close\r\n\r\n";

/// A head that was refused, to be answered by the connection's service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadError {
    pub status: StatusCode,
    pub message: String,
    /// The request's path, when its request line could be read: it
    /// decides the shape of the answer.
    pub path: Option<String>,
}

impl HeadError {
    fn new(status: StatusCode, message: impl Into<String>, head: &[u8]) -> Self {
        HeadError {
            status,
            message: message.into(),
            path: request_path(head),
        }
    }
}

/// What one connection's stream and service share.
#[derive(Debug)]
pub struct ConnState {
    inner: Mutex<Shared>,
}

#[derive(Debug)]
struct Shared {
    error: Option<HeadError>,
    /// Requests whose answers are not yet written whole.
    in_flight: usize,
    /// When the last answer was written (or the connection accepted).
    idle_since: Instant,
}

impl Default for ConnState {
    fn default() -> Self {
        ConnState {
            inner: Mutex::new(Shared {
                error: None,
                in_flight: 0,
                idle_since: Instant::now(),
            }),
        }
    }
}

impl ConnState {
    /// The failed head this request stands in for, if it is the stand-in.
    pub fn take_error(&self) -> Option<HeadError> {
        self.inner.lock().error.take()
    }

    /// Marks a request as being answered until the guard is dropped (with
    /// the answer's body, once written): the next head's time starts then.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.inner.lock().in_flight += 1;
        InFlight(self.clone())
    }
}

/// See [`ConnState::begin`].
#[derive(Debug)]
pub struct InFlight(Arc<ConnState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut shared = self.0.inner.lock();
        shared.in_flight = shared.in_flight.saturating_sub(1);
        shared.idle_since = Instant::now();
    }
}

/// The limits a head is checked against.
#[derive(Debug, Clone, Copy)]
pub struct HeadLimits {
    /// Largest head, bytes.
    pub max_size: usize,
    /// Longest wait for a head once the connection is idle (`None`:
    /// forever).
    pub timeout: Option<Duration>,
}

/// How the bytes after a head are delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// No body: the next head follows.
    Empty,
    Length(u64),
    Chunked(Chunk),
    /// Bytes this stream does not follow (CONNECT, a chunked body it
    /// cannot parse): passed through unchecked to the end.
    Opaque,
}

/// Where a chunked body is, between two bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    Size {
        value: u64,
        digits: u8,
    },
    Extension {
        value: u64,
    },
    SizeLf {
        value: u64,
    },
    Data(u64),
    DataCr,
    DataLf,
    /// At the start of a trailer line, or of the final empty line.
    TrailerStart,
    TrailerLine,
    EndLf,
}

impl Framing {
    /// Advances over `bytes`, the next bytes of the connection; returns
    /// how many of them belong to this body (the rest start the next
    /// head) and the framing after them.
    fn advance(self, bytes: &[u8]) -> (usize, Option<Framing>) {
        match self {
            Framing::Empty => (0, None),
            Framing::Opaque => (bytes.len(), Some(Framing::Opaque)),
            Framing::Length(left) => {
                let n = usize::try_from(left).unwrap_or(usize::MAX).min(bytes.len());
                let left = left - n as u64;
                (n, (left > 0).then_some(Framing::Length(left)))
            }
            Framing::Chunked(mut chunk) => {
                let mut i = 0;
                while i < bytes.len() {
                    if let Chunk::Data(left) = chunk {
                        let n = usize::try_from(left)
                            .unwrap_or(usize::MAX)
                            .min(bytes.len() - i);
                        i += n;
                        let left = left - n as u64;
                        chunk = if left == 0 {
                            Chunk::DataCr
                        } else {
                            Chunk::Data(left)
                        };
                        continue;
                    }
                    let b = bytes[i];
                    i += 1;
                    chunk = match (chunk, b) {
                        (Chunk::Size { value, digits }, _) if b.is_ascii_hexdigit() => {
                            let digit = u64::from((b as char).to_digit(16).unwrap_or(0));
                            match value.checked_mul(16) {
                                Some(v) if digits < 16 => Chunk::Size {
                                    value: v + digit,
                                    digits: digits + 1,
                                },
                                _ => return (bytes.len(), Some(Framing::Opaque)),
                            }
                        }
                        (Chunk::Size { value, digits }, b';' | b' ' | b'\t') if digits > 0 => {
                            Chunk::Extension { value }
                        }
                        (Chunk::Size { value, digits }, b'\r') if digits > 0 => {
                            Chunk::SizeLf { value }
                        }
                        (Chunk::Extension { value }, b'\r') => Chunk::SizeLf { value },
                        (Chunk::Extension { value }, b'\n') | (Chunk::SizeLf { value }, b'\n') => {
                            if value == 0 {
                                Chunk::TrailerStart
                            } else {
                                Chunk::Data(value)
                            }
                        }
                        (Chunk::Extension { value }, _) => Chunk::Extension { value },
                        (Chunk::DataCr, b'\r') => Chunk::DataLf,
                        (Chunk::DataLf, b'\n') => Chunk::Size {
                            value: 0,
                            digits: 0,
                        },
                        (Chunk::TrailerStart, b'\r') => Chunk::EndLf,
                        (Chunk::TrailerStart | Chunk::EndLf, b'\n') => return (i, None),
                        (Chunk::TrailerLine, b'\n') => Chunk::TrailerStart,
                        (Chunk::TrailerStart | Chunk::TrailerLine, _) => Chunk::TrailerLine,
                        _ => return (bytes.len(), Some(Framing::Opaque)),
                    };
                }
                (bytes.len(), Some(Framing::Chunked(chunk)))
            }
        }
    }
}

/// What checking the bytes gathered so far found.
#[derive(Debug, PartialEq, Eq)]
enum Checked {
    /// A whole head of `len` bytes that hyper will accept.
    Head {
        len: usize,
        framing: Framing,
    },
    /// Not yet a whole head, and not too large.
    Partial,
    Refused(HeadError),
}

/// Checks `buf` (the connection's bytes from where a head starts) as
/// hyper would parse it, with `ignore_invalid_headers` (a header line
/// that is not valid HTTP is dropped, as hyper is told to), so that any
/// head hyper would refuse is refused here first.
fn check_head(buf: &[u8], max_size: usize) -> Checked {
    let too_large = || {
        Checked::Refused(HeadError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "Request header fields too large.",
            buf,
        ))
    };
    let malformed = |why: &str| {
        Checked::Refused(HeadError::new(
            StatusCode::BAD_REQUEST,
            format!("Malformed request: {why}."),
            buf,
        ))
    };
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let mut config = httparse::ParserConfig::default();
    config.ignore_invalid_headers_in_requests(true);
    let len = match config.parse_request(&mut req, buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > max_size => return too_large(),
        Ok(httparse::Status::Partial) => return Checked::Partial,
        Err(httparse::Error::TooManyHeaders) => return too_large(),
        Err(httparse::Error::Token) if req.method.is_none() => {
            return malformed("invalid method");
        }
        Err(httparse::Error::Token) => return malformed("invalid request target"),
        Err(e) => return malformed(&e.to_string()),
    };
    if len > max_size {
        return too_large();
    }
    let path = req.path.unwrap_or_default();
    if path.len() > MAX_URI_LEN {
        return Checked::Refused(HeadError::new(
            StatusCode::URI_TOO_LONG,
            "Request URI too long.",
            buf,
        ));
    }
    if axum::http::Uri::try_from(path).is_err() {
        return malformed("invalid request target");
    }
    let http_11 = req.version == Some(1);
    let (mut chunked, mut te, mut length) = (false, false, None);
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if !http_11 {
                return malformed("Transfer-Encoding in HTTP/1.0");
            }
            te = true;
            chunked = h
                .value
                .rsplit(|&b| b == b',')
                .next()
                .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if h.name.eq_ignore_ascii_case("content-length") && !te {
            let Some(n) = digits(h.value) else {
                return malformed("invalid Content-Length");
            };
            if length.is_some_and(|prev| prev != n) {
                return malformed("conflicting Content-Length");
            }
            length = Some(n);
        }
    }
    if te && !chunked {
        return malformed("Transfer-Encoding without chunked");
    }
    let framing = if req.method == Some("CONNECT") {
        Framing::Opaque
    } else if chunked {
        Framing::Chunked(Chunk::Size {
            value: 0,
            digits: 0,
        })
    } else {
        match length {
            None | Some(0) => Framing::Empty,
            Some(n) => Framing::Length(n),
        }
    };
    Checked::Head { len, framing }
}

/// A `Content-Length` value as hyper reads it: decimal digits only, below
/// hyper's bound.
fn digits(value: &[u8]) -> Option<u64> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value)
        .ok()?
        .parse::<u64>()
        .ok()
        .filter(|&n| n < u64::MAX - 1)
}

/// The path of the request line at the start of `head`, if it reads as one.
fn request_path(head: &[u8]) -> Option<String> {
    let start = head.iter().position(|b| !b"\r\n".contains(b))?;
    let line = head[start..].split(|&b| b == b'\n').next()?;
    let target = line.split(|&b| b == b' ').nth(1)?;
    let target = std::str::from_utf8(target).ok()?;
    let path = target.split('?').next()?;
    path.starts_with('/').then(|| path.to_owned())
}

/// Where the stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Gathering a head in `pending`.
    Head,
    /// Handing hyper the first `left` bytes of `pending` (a checked head
    /// or the stand-in), then the bytes framed by `then`.
    Release { left: usize, then: Framing },
    /// Passing a body through.
    Body(Framing),
    /// The stand-in is handed over: nothing more is read.
    Done,
}

/// The socket as hyper reads it: see the module's doc.
pub struct CheckedStream<S> {
    io: S,
    state: Arc<ConnState>,
    limits: HeadLimits,
    phase: Phase,
    /// Bytes read from the socket that hyper has not been handed yet.
    pending: Vec<u8>,
    /// When the wait for the current head began.
    head_since: Instant,
    /// Whether a head has been handed over on this connection.
    served: bool,
    /// Whether the stand-in replaced the rest of the connection.
    refused: bool,
    timer: Option<Pin<Box<Sleep>>>,
}

impl<S> CheckedStream<S> {
    pub fn new(io: S, state: Arc<ConnState>, limits: HeadLimits) -> Self {
        CheckedStream {
            io,
            state,
            limits,
            phase: Phase::Head,
            pending: Vec::new(),
            head_since: Instant::now(),
            served: false,
            refused: false,
            timer: None,
        }
    }

    /// Replaces what is left of the connection by the stand-in request.
    fn refuse(&mut self, error: HeadError) {
        tracing::debug!(status = %error.status, message = %error.message, "request head refused");
        self.state.inner.lock().error = Some(error);
        self.refused = true;
        self.pending = STAND_IN.to_vec();
        self.phase = Phase::Release {
            left: STAND_IN.len(),
            then: Framing::Opaque,
        };
    }

    /// Starts waiting for the next head.
    fn await_head(&mut self) {
        self.head_since = Instant::now();
        self.phase = Phase::Head;
    }

    /// Whether the wait for the head has lasted too long: the wait starts
    /// when the previous answer is written (and not while one is being
    /// worked on), or when the head's first bytes are awaited.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(timeout) = self.limits.timeout else {
            return false;
        };
        loop {
            let deadline = {
                let shared = self.state.inner.lock();
                if shared.in_flight > 0 {
                    Instant::now() + timeout
                } else {
                    self.head_since.max(shared.idle_since) + timeout
                }
            };
            if deadline <= Instant::now() {
                return true;
            }
            let timer = self
                .timer
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
            if timer.deadline() != deadline {
                timer.as_mut().reset(deadline);
            }
            if timer.as_mut().poll(cx).is_pending() {
                return false;
            }
        }
    }
}

impl<S: AsyncRead + Unpin> CheckedStream<S> {
    /// Reads more of the socket into `pending`; `Ok(false)` at its end.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        let mut chunk = [0u8; 8192];
        let mut read = ReadBuf::new(&mut chunk);
        ready!(Pin::new(&mut self.io).poll_read(cx, &mut read))?;
        self.pending.extend_from_slice(read.filled());
        Poll::Ready(Ok(!read.filled().is_empty()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for CheckedStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            match this.phase {
                Phase::Done => return Poll::Pending,
                Phase::Head => match check_head(&this.pending, this.limits.max_size) {
                    Checked::Head { len, framing } => {
                        this.phase = Phase::Release {
                            left: len,
                            then: framing,
                        };
                    }
                    Checked::Refused(error) => this.refuse(error),
                    Checked::Partial => match this.poll_fill(cx) {
                        Poll::Ready(Ok(true)) => {}
                        // The client is gone; there is no one to answer.
                        Poll::Ready(Ok(false)) => return Poll::Ready(Ok(())),
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                        Poll::Pending => {
                            if !this.poll_expired(cx) {
                                return Poll::Pending;
                            }
                            if this.pending.iter().all(|b| b"\r\n".contains(b)) && this.served {
                                // An idle kept-alive connection ends
                                // quietly: an answer here could be read as
                                // the answer to a request crossing it.
                                return Poll::Ready(Ok(()));
                            }
                            this.refuse(HeadError::new(
                                StatusCode::REQUEST_TIMEOUT,
                                "The request head did not arrive in time.",
                                &this.pending,
                            ));
                        }
                    },
                },
                Phase::Release { left, then } => {
                    let n = left.min(buf.remaining());
                    buf.put_slice(&this.pending[..n]);
                    this.pending.drain(..n);
                    this.phase = if n < left {
                        Phase::Release {
                            left: left - n,
                            then,
                        }
                    } else if this.refused {
                        Phase::Done
                    } else {
                        this.served = true;
                        Phase::Body(then)
                    };
                    return Poll::Ready(Ok(()));
                }
                Phase::Body(framing) => {
                    if !this.pending.is_empty() {
                        let room = this.pending.len().min(buf.remaining());
                        let (n, next) = framing.advance(&this.pending[..room]);
                        buf.put_slice(&this.pending[..n]);
                        this.pending.drain(..n);
                        match next {
                            Some(framing) => this.phase = Phase::Body(framing),
                            None => this.await_head(),
                        }
                        if n > 0 {
                            return Poll::Ready(Ok(()));
                        }
                        continue;
                    }
                    if framing == Framing::Empty {
                        this.await_head();
                        continue;
                    }
                    // Straight into hyper's buffer; what follows the body
                    // is taken back into `pending`.
                    let before = buf.filled().len();
                    ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
                    let read = &buf.filled()[before..];
                    if read.is_empty() {
                        return Poll::Ready(Ok(()));
                    }
                    let (n, next) = framing.advance(read);
                    this.pending.extend_from_slice(&read[n..]);
                    buf.set_filled(before + n);
                    match next {
                        Some(framing) => this.phase = Phase::Body(framing),
                        None => this.await_head(),
                    }
                    if n > 0 {
                        return Poll::Ready(Ok(()));
                    }
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for CheckedStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(buf: &[u8]) -> Checked {
        check_head(buf, 1024)
    }

    fn refused(buf: &[u8]) -> HeadError {
        match head(buf) {
            Checked::Refused(e) => e,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_good_head_is_handed_over_with_its_framing() {
        let get = b"GET /v2.1 HTTP/1.1\r\nHost: a\r\n\r\nnext";
        assert_eq!(
            head(get),
            Checked::Head {
                len: get.len() - 4,
                framing: Framing::Empty
            }
        );
        let put = b"PUT /x HTTP/1.1\r\nContent-Length: 12\r\n\r\n";
        assert!(matches!(
            head(put),
            Checked::Head {
                framing: Framing::Length(12),
                ..
            }
        ));
        let chunked =
            b"PUT /x HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
        assert!(matches!(
            head(chunked),
            Checked::Head {
                framing: Framing::Chunked(_),
                ..
            }
        ));
        assert_eq!(head(b"GET /v2.1 HTTP/1.1\r\nHost:"), Checked::Partial);
        // A header line hyper is told to drop is not a refusal.
        assert!(matches!(
            head(b"GET / HTTP/1.1\r\nX-Note: a\x7fb\r\n\r\n"),
            Checked::Head { .. }
        ));
    }

    #[test]
    fn heads_hyper_would_refuse_are_refused_with_their_path() {
        let big = refused(
            &[
                b"GET /image/v2/images HTTP/1.1\r\nX: ".as_slice(),
                &[b'a'; 2000],
            ]
            .concat(),
        );
        assert_eq!(big.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        assert_eq!(big.path.as_deref(), Some("/image/v2/images"));
        let many: Vec<u8> = [b"GET / HTTP/1.1\r\n".as_slice()]
            .into_iter()
            .chain(std::iter::repeat_n(b"a: b\r\n".as_slice(), 101))
            .chain([b"\r\n".as_slice()])
            .collect::<Vec<_>>()
            .concat();
        assert_eq!(
            check_head(&many, 1 << 20).is_refused(),
            Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        );
        for bad in [
            b"GET /v2.1/ser\x7fvers HTTP/1.1\r\n\r\n".as_slice(),
            b"G(T / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/3.0\r\n\r\n",
            b"PUT / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            b"PUT / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"PUT / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"PUT / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            assert_eq!(
                head(bad).is_refused(),
                Some(StatusCode::BAD_REQUEST),
                "{bad:?}"
            );
        }
        assert_eq!(
            refused(b"GET /identity/v3/x\x7f HTTP/1.1\r\n\r\n")
                .path
                .as_deref(),
            Some("/identity/v3/x\x7f")
        );
    }

    impl Checked {
        fn is_refused(&self) -> Option<StatusCode> {
            match self {
                Checked::Refused(e) => Some(e.status),
                _ => None,
            }
        }
    }

    #[test]
    fn chunked_framing_finds_the_next_head() {
        let start = Framing::Chunked(Chunk::Size {
            value: 0,
            digits: 0,
        });
        let body = b"4;ext=1\r\nabcd\r\na\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\nGET / HTTP/1.1";
        let end = body.len() - b"GET / HTTP/1.1".len();
        assert_eq!(start.advance(body), (end, None));
        // Byte by byte, the same end.
        let mut framing = start;
        for (i, b) in body.iter().enumerate() {
            match framing.advance(std::slice::from_ref(b)) {
                (1, Some(next)) => framing = next,
                (1, None) => {
                    assert_eq!(i + 1, end);
                    break;
                }
                other => panic!("{other:?} at {i}"),
            }
        }
        assert_eq!(start.advance(b"0\r\n\r\nX"), (5, None));
        // Framing it cannot follow is passed through to hyper.
        assert_eq!(start.advance(b"zz\r\n"), (4, Some(Framing::Opaque)));
        assert_eq!(Framing::Length(3).advance(b"abcdef"), (3, None));
        assert_eq!(
            Framing::Length(10).advance(b"abc"),
            (3, Some(Framing::Length(7)))
        );
    }

    #[test]
    fn the_path_is_read_from_the_request_line_alone() {
        assert_eq!(
            request_path(b"\r\nGET /image/v2?x=1 HTT").as_deref(),
            Some("/image/v2")
        );
        assert_eq!(request_path(b"GET"), None);
        assert_eq!(request_path(b"GET http://x/ HTTP/1.1"), None);
    }
}
