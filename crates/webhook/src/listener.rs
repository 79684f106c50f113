//! The HTTPS listener: TLS (reloadable), HTTP/1.1 and HTTP/2 tuned for the API server, and
//! the router inside a per-request deadline and the `Connection: close` of a draining
//! replica.

use crate::mutate::{bare_router, text, webhook_router};
use crate::{AppState, Config};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::Response;
use axum_server::accept::NoDelayAcceptor;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use rustls::ServerConfig;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The HTTPS listener, serving.
pub(crate) struct Listener {
    pub address: SocketAddr,
    /// The TLS configuration in force; a reload swaps it for new connections.
    pub tls: RustlsConfig,
    handle: axum_server::Handle<SocketAddr>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Listener {
    /// Binds `config.listen` and serves reviews (or the bare ceiling) over `tls`.
    pub async fn start(
        config: &Config,
        state: &Arc<AppState>,
        tls: Arc<ServerConfig>,
    ) -> Result<Listener, String> {
        let tls = RustlsConfig::from_config(tls);
        let handle: axum_server::Handle<SocketAddr> = axum_server::Handle::new();
        let server = server(config, &tls, handle.clone());
        let app = app(config, state);
        let task = tokio::spawn(async move { server.serve(app.into_make_service()).await });
        let Some(address) = handle.listening().await else {
            let err = match task.await {
                Ok(Err(e)) => e.to_string(),
                _ => "unknown error".into(),
            };
            return Err(format!(
                "cannot listen on {} (--listen): {err}",
                config.listen
            ));
        };
        Ok(Listener {
            address,
            tls,
            handle,
            task,
        })
    }

    /// Stops accepting connections and waits for in-flight requests, at most `timeout`.
    pub async fn shut_down(self, timeout: Duration) {
        self.handle.graceful_shutdown(Some(timeout));
        let _ = self.task.await;
    }
}

/// The server on `config.listen`: TLS handshakes and request heads within the request
/// timeout; HTTP/2 windows sized for many reviews on one connection; `TCP_NODELAY` on every
/// connection, so that an answer's last TLS record is not held back by Nagle's algorithm until
/// the client's delayed ACK (40 ms on Linux: the p99.9 of the HTTP/2 ceiling).
fn server(
    config: &Config,
    tls: &RustlsConfig,
    handle: axum_server::Handle<SocketAddr>,
) -> axum_server::Server<SocketAddr, RustlsAcceptor<NoDelayAcceptor>> {
    let acceptor = RustlsAcceptor::new(tls.clone())
        .handshake_timeout(config.request_timeout)
        .acceptor(NoDelayAcceptor::new());
    let mut server = axum_server::bind(config.listen)
        .acceptor(acceptor)
        .handle(handle);
    server
        .http_builder()
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(config.request_timeout);
    server
        .http_builder()
        .http2()
        .timer(hyper_util::rt::TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)))
        // The API server multiplexes many reviews over one connection: windows large enough
        // that responses never wait for a WINDOW_UPDATE round trip.
        .initial_stream_window_size(1 << 20)
        .initial_connection_window_size(8 << 20)
        .max_concurrent_streams(1000);
    server
}

/// The router served: reviews (or the bare ceiling) inside the request deadline, with
/// `Connection: close` once draining.
fn app(config: &Config, state: &Arc<AppState>) -> axum::Router {
    let app = if config.bare_allow {
        bare_router()
    } else {
        webhook_router(state.clone())
    };
    app.layer(axum::middleware::from_fn_with_state(
        config.request_timeout,
        request_deadline,
    ))
    .layer(axum::middleware::from_fn_with_state(
        state.clone(),
        close_when_draining,
    ))
}

/// Once shutting down, every HTTP/1.x answer carries `Connection: close`, so the connection
/// ends right after it. The API server calls webhooks over HTTP/1.1 with a pool of keep-alive
/// connections per Service; a pooled connection that this replica closed while idle can be
/// written to at that very moment, and the API server does not retry that failure (EPIPE):
/// with failurePolicy Ignore the pod would be admitted without its sidecar, with Fail refused.
/// Closed by us after an answer instead, each connection used during the shutdown delay
/// leaves the pool cleanly and the next review dials a current endpoint.
async fn close_when_draining(
    State(state): State<Arc<AppState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let http1 = req.version() < axum::http::Version::HTTP_2;
    let mut resp = next.run(req).await;
    if http1 && state.health.shutting_down.load(Ordering::SeqCst) {
        resp.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
    }
    resp
}

/// Bounds the time to read and answer one request, so slow clients cannot hold a worker.
async fn request_deadline(
    State(limit): State<Duration>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    // (the deadline in a task-local, for the answers that must go out before it: see
    // `mutate::too_large`; no per-request allocation, unlike the request's extensions)
    let deadline = tokio::time::Instant::now() + limit;
    let run = crate::mutate::DEADLINE.scope(deadline, next.run(req));
    match tokio::time::timeout_at(deadline, run).await {
        Ok(r) => r,
        Err(_) => text(
            StatusCode::REQUEST_TIMEOUT,
            "request not completed in time\n".into(),
        ),
    }
}
