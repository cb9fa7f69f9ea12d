//! The HTTP/1.1 front: hyper 1.x connections on a tokio runtime, with the
//! limits that keep one client from stopping the others (see the crate docs).

use std::convert::Infallible;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Incoming};
use hyper::header::{HeaderValue, CONNECTION, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::{Collector, Reply, Request};

/// Connection and request limits of the server ([`start_with`]).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Runtime worker threads (connections are tasks, not threads). Decoding
    /// and writing run on at most this many more threads.
    pub workers: usize,
    /// Connections served at once. More wait in the kernel's accept backlog
    /// (1,024 long) until one closes; they are not refused.
    pub max_connections: usize,
    /// A request's line and headers must arrive within this, counted from the
    /// connection's opening or the request's first byte.
    pub header_timeout: Duration,
    /// A request body must arrive whole within this, counted from the end of
    /// the headers; else `408` and the connection is closed.
    pub body_timeout: Duration,
    /// A keep-alive connection with no request in progress is closed after
    /// this; so is one whose client does not read its response.
    pub idle_timeout: Duration,
    /// Request bodies held in memory at once, all connections together
    /// (received, or waiting for their batches to be written). When reached,
    /// reading bodies waits (the body timeout still applies). At least
    /// the collector's `max_body_bytes`.
    pub max_body_memory: usize,
}

/// [`Limits::workers`] by default.
pub const DEFAULT_WORKERS: usize = 4;
/// [`Limits::max_connections`] by default.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// [`Limits::header_timeout`] by default.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// [`Limits::body_timeout`] by default.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// [`Limits::idle_timeout`] by default.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// [`Limits::max_body_memory`] by default (256 MiB).
pub const DEFAULT_MAX_BODY_MEMORY: usize = 256 << 20;

/// The listen backlog: connections over `max_connections` wait here.
const BACKLOG: u32 = 1024;
/// How long, and how much, a closing connection is drained ([`linger`]).
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 4 << 20;
/// hyper's read buffer per connection (request heads larger than this get 431).
const MAX_HEAD_BYTES: usize = 64 << 10;

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            workers: DEFAULT_WORKERS,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_body_memory: DEFAULT_MAX_BODY_MEMORY,
        }
    }
}

/// A collector served on a socket; [`Running::stop`] ends it.
pub struct Running {
    addr: SocketAddr,
    collector: Arc<Collector>,
    runtime: Option<Runtime>,
    stop: watch::Sender<bool>,
    accept: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running").field("addr", &self.addr).finish()
    }
}

impl Running {
    /// The address it listens on (the real port when started on port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The collector behind the server.
    pub fn collector(&self) -> &Arc<Collector> {
        &self.collector
    }

    /// Blocks until the server stops (for the binary: forever). Not from
    /// inside an async runtime.
    pub fn wait(mut self) {
        if let (Some(rt), Some(accept)) = (&self.runtime, self.accept.take()) {
            let _ = rt.block_on(accept);
        }
    }

    /// Stops accepting, closes every connection and ends the threads.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let _ = self.stop.send(true);
        if let Some(rt) = self.runtime.take() {
            if tokio::runtime::Handle::try_current().is_ok() {
                // Dropped inside someone's runtime: cannot block here.
                rt.shutdown_background();
            } else {
                // Appends in progress finish (or are cut off uncommitted).
                rt.shutdown_timeout(Duration::from_secs(5));
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Listens on `listen` (e.g. `127.0.0.1:8080`, or port 0 for any free port)
/// and serves `collector` with `workers` threads and the default [`Limits`].
pub fn start(listen: &str, collector: Arc<Collector>, workers: usize) -> Result<Running, String> {
    start_with(listen, collector, &Limits { workers, ..Limits::default() })
}

/// [`start`] with explicit limits.
pub fn start_with(listen: &str, collector: Arc<Collector>, limits: &Limits) -> Result<Running, String> {
    let workers = limits.workers.max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        // `workers` for decoding and appending (see `decode_slots`), the rest
        // for `GET /config`, which must not wait behind them.
        .max_blocking_threads(2 * workers)
        .thread_name("turnout-collector")
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let listener = {
        let _guard = runtime.enter();
        bind(listen)?
    };
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let limits = Limits {
        workers,
        max_connections: limits.max_connections.max(1),
        max_body_memory: limits.max_body_memory.max(collector.options().max_body_bytes).min(Semaphore::MAX_PERMITS),
        ..limits.clone()
    };
    let shared = Arc::new(Shared {
        decode_slots: Arc::new(Semaphore::new(workers)),
        body_memory: Arc::new(Semaphore::new(limits.max_body_memory)),
        collector: Arc::clone(&collector),
        limits,
    });
    let (stop, stopped) = watch::channel(false);
    let accept = runtime.spawn(accept_loop(listener, shared, stopped));
    Ok(Running { addr, collector, runtime: Some(runtime), stop, accept: Some(accept) })
}

fn bind(listen: &str) -> Result<TcpListener, String> {
    let fail = |e: io::Error| format!("cannot listen on {listen}: {e}");
    let mut last = None;
    for addr in listen.to_socket_addrs().map_err(fail)? {
        let attempt = (|| {
            let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
            #[cfg(unix)]
            socket.set_reuseaddr(true)?;
            socket.bind(addr)?;
            socket.listen(BACKLOG)
        })();
        match attempt {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(fail(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))))
}

struct Shared {
    collector: Arc<Collector>,
    limits: Limits,
    /// Request bodies held in memory (bytes).
    body_memory: Arc<Semaphore>,
    /// Bodies being decoded and appended at once.
    decode_slots: Arc<Semaphore>,
}

impl Shared {
    fn log(&self, line: impl FnOnce() -> String) {
        if self.collector.options().log {
            eprintln!("{}", line());
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(shared.limits.max_connections));
    loop {
        // A free slot first: over the limit, connections wait in the backlog.
        let permit = tokio::select! {
            p = Arc::clone(&slots).acquire_owned() => match p { Ok(p) => p, Err(_) => return },
            _ = stop.changed() => return,
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                tokio::spawn(serve_connection(stream, peer, permit, Arc::clone(&shared)));
            }
            Err(e) => {
                // Out of file descriptors and the like: wait instead of spinning.
                shared.log(|| format!("accept: {e}"));
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    _ = stop.changed() => return,
                }
            }
        }
    }
}

/// Where a connection is, for its deadlines.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Waiting for a request head (since the connection opened or the
    /// request's first byte arrived): the header timeout.
    Head(Instant),
    /// A request is being served (its body read under the body timeout).
    Busy,
    /// Answered; waiting for the next request: the idle timeout.
    Idle(Instant),
}

struct Activity {
    phase: Mutex<Phase>,
    changed: Notify,
}

impl Activity {
    fn set(&self, phase: Phase) {
        *self.phase.lock().unwrap_or_else(|p| p.into_inner()) = phase;
        self.changed.notify_one();
    }

    fn bytes_arrived(&self) {
        let mut phase = self.phase.lock().unwrap_or_else(|p| p.into_inner());
        if let Phase::Idle(_) = *phase {
            *phase = Phase::Head(Instant::now());
            drop(phase);
            self.changed.notify_one();
        }
    }

    fn deadline(&self, limits: &Limits) -> Option<(Instant, &'static str, Duration)> {
        match *self.phase.lock().unwrap_or_else(|p| p.into_inner()) {
            Phase::Head(t) => Some((t + limits.header_timeout, "request head", limits.header_timeout)),
            Phase::Idle(t) => Some((t + limits.idle_timeout, "next request", limits.idle_timeout)),
            Phase::Busy => None,
        }
    }
}

/// The socket, noting when bytes arrive (an idle connection starts a request).
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_arrived();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Counts an open connection for `GET /stats` while it lives.
struct OpenConnection(Arc<Shared>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.collector.open_connections.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn serve_connection(stream: TcpStream, peer: SocketAddr, _slot: OwnedSemaphorePermit, shared: Arc<Shared>) {
    shared.collector.open_connections.fetch_add(1, Ordering::Relaxed);
    let _open = OpenConnection(Arc::clone(&shared));
    let _ = stream.set_nodelay(true);
    let activity = Arc::new(Activity { phase: Mutex::new(Phase::Head(Instant::now())), changed: Notify::new() });
    let io = TokioIo::new(Watched { stream, activity: Arc::clone(&activity) });
    let service = {
        let (shared, activity) = (Arc::clone(&shared), Arc::clone(&activity));
        service_fn(move |req| {
            let (shared, activity) = (Arc::clone(&shared), Arc::clone(&activity));
            async move {
                activity.set(Phase::Busy);
                let response = respond(&shared, req).await;
                activity.set(Phase::Idle(Instant::now()));
                Ok::<_, Infallible>(response)
            }
        })
    };
    let connection = http1::Builder::new()
        .keep_alive(true)
        // A client may shut its sending side down while it waits for the answer.
        .half_close(true)
        // Our own deadlines (below) cover the head; hyper's would also cut idle keep-alive.
        .header_read_timeout(None)
        .max_buf_size(MAX_HEAD_BYTES)
        .max_headers(100)
        .serve_connection(io, service)
        .without_shutdown();
    tokio::pin!(connection);
    loop {
        let deadline = activity.deadline(&shared.limits);
        let sleep_until = deadline.map_or_else(|| Instant::now() + Duration::from_secs(86_400), |d| d.0);
        tokio::select! {
            done = connection.as_mut() => {
                if let Ok(parts) = done {
                    linger(parts.io.into_inner().stream).await;
                }
                return;
            }
            _ = activity.changed.notified() => {}
            _ = tokio::time::sleep_until(sleep_until) => {
                if let Some((at, what, limit)) = activity.deadline(&shared.limits) {
                    if Instant::now() >= at {
                        // Dropping the connection closes the socket.
                        shared.collector.count_timeout();
                        shared.log(|| format!("{peer}: closed, no {what} within {:.1} s", limit.as_secs_f64()));
                        return;
                    }
                }
            }
        }
    }
}

/// Closes a connection hyper is done with: our side first, then what the
/// client still sends (the rest of a body refused with `413`) is read and
/// dropped for a moment, so that closing with unread bytes does not reset the
/// connection before the client has read the answer.
async fn linger(mut stream: TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    if stream.shutdown().await.is_err() {
        return;
    }
    let deadline = Instant::now() + LINGER;
    let mut buf = vec![0u8; 16 << 10];
    let mut drained = 0;
    while drained < LINGER_BYTES {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => drained += n,
            _ => return,
        }
    }
}

type Answer = hyper::Response<Full<Bytes>>;

async fn respond(shared: &Arc<Shared>, req: hyper::Request<Incoming>) -> Answer {
    let t0 = std::time::Instant::now();
    let method = req.method().as_str().to_owned();
    let target = req.uri().path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (content_type, if_none_match) = (header("content-type"), header("if-none-match"));
    let path = target.split('?').next().unwrap_or("");
    let collector = &shared.collector;
    let request = |body: &'_ [u8]| -> Reply {
        collector.handle(&Request {
            method: &method,
            path: &target,
            content_type: content_type.as_deref(),
            if_none_match: if_none_match.as_deref(),
            body,
        })
    };
    let (reply, close) = match (method.as_str(), path) {
        ("POST", "/events") => match collector.refuse_content_type(content_type.as_deref()) {
            // The unread body makes hyper close the connection after the answer.
            Some(refused) => (refused, false),
            None => post_events(shared, &method, &target, content_type, req.into_body()).await,
        },
        ("GET" | "HEAD", "/config") => {
            // Reads a file: off the runtime's threads.
            let c = Arc::clone(collector);
            let (m, t, inm) = (method.clone(), target.clone(), if_none_match.clone());
            let job = tokio::task::spawn_blocking(move || {
                c.handle(&Request {
                    method: &m,
                    path: &t,
                    content_type: None,
                    if_none_match: inm.as_deref(),
                    body: b"",
                })
            });
            (job.await.unwrap_or_else(|e| Reply::error(500, format!("internal error: {e}"))), false)
        }
        // Answered from memory; a body, if any, is not read (hyper then closes the connection).
        _ => (request(b""), false),
    };
    if collector.options().log {
        eprintln!(
            "{method} {target} {} {}{}({:.1} ms)",
            reply.status,
            reply.summary,
            if reply.summary.is_empty() { "" } else { " " },
            t0.elapsed().as_secs_f64() * 1e3
        );
    }
    to_response(reply, close)
}

enum BodyError {
    TooLarge,
    Timeout,
    Broken(String),
}

async fn post_events(
    shared: &Arc<Shared>,
    method: &str,
    target: &str,
    content_type: Option<String>,
    body: Incoming,
) -> (Reply, bool) {
    let collector = &shared.collector;
    let limit = collector.options().max_body_bytes;
    // Declared too large: answered before reading a byte (no `100 Continue`), then closed.
    if body.size_hint().exact().is_some_and(|n| n > limit as u64) {
        return (collector.reject(413, format!("body larger than {limit} bytes")), true);
    }
    let deadline = Instant::now() + shared.limits.body_timeout;
    let (bytes, permit) = match read_body(body, limit, deadline, &shared.body_memory).await {
        Ok(read) => read,
        Err(BodyError::TooLarge) => return (collector.reject(413, format!("body larger than {limit} bytes")), true),
        Err(BodyError::Timeout) => {
            collector.count_timeout();
            let secs = shared.limits.body_timeout.as_secs_f64();
            return (collector.reject(408, format!("request body not received within {secs:.1} s")), true);
        }
        Err(BodyError::Broken(e)) => return (collector.reject(400, format!("cannot read the body: {e}")), true),
    };
    // Decoding and the durable append: on the blocking pool, at most `workers`
    // at once, holding the body's share of the memory budget until done.
    let Ok(slot) = Arc::clone(&shared.decode_slots).acquire_owned().await else {
        return (Reply::error(503, "shutting down"), true);
    };
    let c = Arc::clone(collector);
    let (m, t) = (method.to_owned(), target.to_owned());
    let job = tokio::task::spawn_blocking(move || {
        let reply = c.handle(&Request {
            method: &m,
            path: &t,
            content_type: content_type.as_deref(),
            if_none_match: None,
            body: &bytes,
        });
        drop((permit, slot));
        reply
    });
    (job.await.unwrap_or_else(|e| Reply::error(500, format!("internal error: {e}"))), false)
}

async fn read_body(
    mut body: Incoming,
    limit: usize,
    deadline: Instant,
    memory: &Arc<Semaphore>,
) -> Result<(Vec<u8>, Option<OwnedSemaphorePermit>), BodyError> {
    let declared = body.size_hint().exact().unwrap_or(0) as usize;
    let mut bytes = Vec::with_capacity(declared.min(1 << 20));
    let mut permit: Option<OwnedSemaphorePermit> = None;
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return Err(BodyError::Timeout),
            Ok(None) => break,
            Ok(Some(Err(e))) => return Err(BodyError::Broken(e.to_string())),
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else { continue };
        if bytes.len() + data.len() > limit {
            return Err(BodyError::TooLarge);
        }
        if data.is_empty() {
            continue;
        }
        // `data.len()` is at most `limit`, which is at most the budget.
        let n = u32::try_from(data.len()).map_err(|_| BodyError::TooLarge)?;
        let share = match tokio::time::timeout_at(deadline, Arc::clone(memory).acquire_many_owned(n)).await {
            Err(_) => return Err(BodyError::Timeout),
            Ok(Err(_)) => return Err(BodyError::Broken("shutting down".into())),
            Ok(Ok(p)) => p,
        };
        match &mut permit {
            Some(p) => p.merge(share),
            None => permit = Some(share),
        }
        bytes.extend_from_slice(&data);
    }
    Ok((bytes, permit))
}

fn to_response(reply: Reply, close: bool) -> Answer {
    let mut response = hyper::Response::new(Full::new(Bytes::from(reply.body)));
    *response.status_mut() =
        hyper::StatusCode::from_u16(reply.status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    let mut add = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.append(name, v);
        }
    };
    add(CONTENT_TYPE.as_str(), reply.content_type);
    // Local development tool: any origin may read it (browser examples on another port).
    add("access-control-allow-origin", "*");
    add("access-control-expose-headers", "ETag");
    if reply.status == 204 {
        add("access-control-allow-methods", "GET, HEAD, POST, OPTIONS");
        add("access-control-allow-headers", "Content-Type, If-None-Match");
        add("access-control-max-age", "600");
    }
    if let Some(etag) = &reply.etag {
        add("etag", etag);
        add("cache-control", "no-cache");
    }
    if let Some(allow) = reply.allow {
        add("allow", allow);
    }
    if close {
        add(CONNECTION.as_str(), "close");
    }
    response
}
