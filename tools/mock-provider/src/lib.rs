//! Mock OpenAI-compatible provider: a small, fast HTTP/1.1 server for end-to-end tests,
//! demos and benchmarks of the AI gateway filter. See README.md for the full contract.

mod b64;
mod body;
pub mod cli;
mod control;
mod handler;
mod openai;
mod record;

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::http::HeaderValue;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

pub use cli::Config;

/// State shared by all connections.
pub(crate) struct State {
    pub name: String,
    pub name_header: HeaderValue,
    pub latency: Duration,
    pub fail_status: Option<u16>,
    pub models: Vec<String>,
    pub recorder: Mutex<record::Recorder>,
    pub fail_counts: Mutex<HashMap<String, u64>>,
    pub control: Mutex<Arc<control::Control>>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Per-connection switch used by `x-mock-reset` to tear the connection down.
pub(crate) struct ConnCtl {
    reset: AtomicBool,
    notify: Notify,
}

impl ConnCtl {
    /// Marks the connection for an abortive close (RST) and wakes its task, which drops it.
    pub fn reset(&self) {
        self.reset.store(true, Ordering::SeqCst);
        self.notify.notify_one();
    }
}

/// The TCP stream, closed with SO_LINGER=0 (so the peer sees a RST) when reset was requested.
struct ConnIo {
    inner: TcpStream,
    ctl: Arc<ConnCtl>,
}

impl Drop for ConnIo {
    fn drop(&mut self) {
        if self.ctl.reset.load(Ordering::SeqCst) {
            let _ = self.inner.set_zero_linger();
        }
    }
}

impl AsyncRead for ConnIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for ConnIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A bound, not yet running server.
pub struct Server {
    listener: TcpListener,
    state: Arc<State>,
}

impl Server {
    /// Binds `config.listen` (must be run inside a tokio runtime).
    pub async fn bind(config: &Config) -> io::Result<Server> {
        let listener = TcpListener::bind(config.listen).await?;
        let name_header = HeaderValue::from_str(&config.name)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        Ok(Server {
            listener,
            state: Arc::new(State {
                name: config.name.clone(),
                name_header,
                latency: Duration::from_millis(config.latency_ms),
                fail_status: config.fail_status,
                models: config.models.clone(),
                recorder: Mutex::new(record::Recorder::default()),
                fail_counts: Mutex::new(HashMap::new()),
                control: Mutex::new(Arc::new(control::Control::default())),
            }),
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts connections until `shutdown` completes.
    pub async fn run<F: Future<Output = ()>>(self, shutdown: F) {
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        tokio::spawn(serve_connection(self.state.clone(), stream));
                    }
                    Err(e) => {
                        // e.g. EMFILE: back off instead of spinning.
                        eprintln!("mock-provider: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                },
            }
        }
    }
}

async fn serve_connection(state: Arc<State>, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let ctl = Arc::new(ConnCtl {
        reset: AtomicBool::new(false),
        notify: Notify::new(),
    });
    let io = TokioIo::new(ConnIo {
        inner: stream,
        ctl: ctl.clone(),
    });
    let svc_ctl = ctl.clone();
    let svc = service_fn(move |req| handler::handle(state.clone(), svc_ctl.clone(), req));
    let conn = http1::Builder::new()
        .keep_alive(true)
        // A real provider accepts more than hyper's default of 100 request headers; the
        // gateway adds its own (cluster, timeouts, retries, attempt count) to the client's.
        .max_headers(256)
        .serve_connection(io, svc);
    tokio::select! {
        _ = conn => {}
        _ = ctl.notify.notified() => {
            // Dropping `conn` drops the ConnIo, which closes the socket with a RST.
        }
    }
}
