//! Response body: either one buffer (sent with content-length) or a lazily generated
//! sequence of SSE events (sent chunked), optionally paced and optionally aborted.

use std::future::Future;
use std::iter::Peekable;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Bytes, Frame, SizeHint};
use tokio::time::{sleep, Sleep};

/// One element of a streamed body.
pub enum Ev {
    /// Bytes to send (one SSE event).
    Data(Bytes),
    /// Fail the body here: hyper closes the connection without finishing the chunked body.
    Abort,
}

pub type Events = Box<dyn Iterator<Item = Ev> + Send>;

pub struct StreamState {
    events: Peekable<Events>,
    delay: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
    /// Set once we returned `Pending` before an abort so hyper flushes what was sent so far.
    abort_armed: bool,
}

pub enum RespBody {
    Full(Option<Bytes>),
    Stream(StreamState),
}

impl RespBody {
    pub fn full(b: impl Into<Bytes>) -> Self {
        let b: Bytes = b.into();
        if b.is_empty() {
            RespBody::Full(None)
        } else {
            RespBody::Full(Some(b))
        }
    }

    /// A streamed body; `delay` is waited between consecutive events.
    pub fn stream(events: Events, delay: Duration) -> Self {
        RespBody::Stream(StreamState {
            events: events.peekable(),
            delay,
            sleep: None,
            abort_armed: false,
        })
    }
}

impl Body for RespBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            RespBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            RespBody::Stream(s) => {
                if let Some(sl) = s.sleep.as_mut() {
                    ready!(sl.as_mut().poll(cx));
                    s.sleep = None;
                }
                if matches!(s.events.peek(), Some(Ev::Abort)) && !s.abort_armed {
                    // hyper flushes its write buffer when the body is pending; do that before
                    // failing the body, or the already produced events would be discarded.
                    s.abort_armed = true;
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                match s.events.next() {
                    None => Poll::Ready(None),
                    Some(Ev::Abort) => Poll::Ready(Some(Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionAborted,
                        "mock-provider: scripted stream abort",
                    )))),
                    Some(Ev::Data(b)) => {
                        if !s.delay.is_zero() && s.events.peek().is_some() {
                            s.sleep = Some(Box::pin(sleep(s.delay)));
                        }
                        Poll::Ready(Some(Ok(Frame::data(b))))
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, RespBody::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RespBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            RespBody::Full(None) => SizeHint::with_exact(0),
            RespBody::Stream(_) => SizeHint::default(),
        }
    }
}
