//! The Admin Router's HTTP/1.1 listener, with a header read timeout and a connection limit.
//!
//! `axum::serve` reads headers for as long as a client cares to send them and accepts every
//! connection, so a few thousand connections that never finish their headers hold sockets and
//! file descriptors forever. [`serve_with_shutdown`] uses hyper's HTTP/1 server directly:
//!
//! * **header read timeout**: a connection that has not sent a complete request head within
//!   [`ServeLimits::header_read_timeout`] of the moment the server starts reading one (its
//!   first request, or the next request on a kept-alive connection) is closed. This also closes
//!   idle keep-alive connections after that delay;
//! * **connection limit**: at most [`ServeLimits::max_connections`] connections are served at
//!   once. Excess connections **wait**: the server stops calling `accept` until a connection
//!   ends, so they queue in the kernel's listen backlog (and, once that is full, the kernel
//!   refuses them). Nothing already accepted is dropped;
//! * every request carries `ConnectInfo<SocketAddr>` (the client address), as with
//!   `into_make_service_with_connect_info`;
//! * graceful shutdown: when the shutdown future resolves, the listener is closed, every
//!   connection finishes its in-flight request and closes, and the call returns when they are
//!   all gone (callers bound the wait if long streams may be open).
//!
//! HTTP/2 is not served (the DC/OS Admin Router speaks HTTP/1.1 to clients).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tower::Service;

/// Limits of the Admin Router's listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeLimits {
    /// Time a client has to send a complete request head (request line and headers).
    pub header_read_timeout: Duration,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
}

impl Default for ServeLimits {
    /// 15 s to send the headers (nginx allows 60 s; a real client sends them at once), 1,024
    /// connections (each proxied request also uses an upstream socket: keep twice this under
    /// the process's file descriptor limit).
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(15),
            max_connections: 1024,
        }
    }
}

/// Serves `router` on `listener` with `limits` until the process ends.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: ServeLimits,
) -> std::io::Result<()> {
    serve_with_shutdown(listener, router, limits, std::future::pending()).await
}

fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// Serves `router` on `listener` with `limits` until `shutdown` resolves, then stops accepting,
/// lets open connections finish their current request and returns once they are closed.
pub async fn serve_with_shutdown<F>(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: ServeLimits,
    shutdown: F,
) -> std::io::Result<()>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    tokio::pin!(shutdown);
    loop {
        // Wait for a free slot before accepting: excess connections stay in the backlog.
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, addr) = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // Typically EMFILE: back off instead of spinning.
                    tracing::error!(error = %e, "Admin Router accept failed");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(addr));
            let mut router = router.clone();
            async move {
                let resp = router.call(req.map(Body::new)).await;
                Ok::<_, Infallible>(match resp {
                    Ok(r) => r,
                    Err(never) => match never {},
                })
            }
        });
        let conn = builder.serve_connection(TokioIo::new(stream), svc);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%addr, error = %e, "Admin Router connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
