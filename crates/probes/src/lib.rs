//! The plain-HTTP probe server of sidecar-kit's long-running commands (`serve` and
//! `label-nodes`): `/healthz` and `/readyz` for the kubelet, `/metrics` for Prometheus, and
//! a watch on the listener itself. A listener that stops serving before it was asked to
//! makes liveness fail, so that the kubelet restarts a process it can no longer probe.
//!
//! A command implements [`Probed`] once; [`router`] and [`Server`] do the rest.

// Functions longer than clippy.toml allows say why, next to them.
#![warn(clippy::too_many_lines)]

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The content type of `/metrics` (prometheus-client writes OpenMetrics text).
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What a command tells its probes.
pub trait Probed: Send + Sync + 'static {
    /// `Err(why)`: `/healthz` answers 503 with `why`.
    fn live(&self) -> Result<(), String>;
    /// Whether the command is ready, and the JSON document `/readyz` shows either way.
    fn readiness(&self) -> (bool, String);
    /// The exposition `/metrics` serves.
    fn metrics(&self) -> String;
    /// The probe listener stopped serving unasked; `detail` says where and why. From now
    /// on [`Probed::live`] should fail with it.
    fn listener_stopped(&self, detail: String);
}

/// `/healthz`, `/readyz` and `/metrics` over `probed`.
pub fn router<P: Probed>(probed: Arc<P>) -> Router {
    Router::new()
        .route("/healthz", get(healthz::<P>))
        .route("/readyz", get(readyz::<P>))
        .route("/metrics", get(metrics::<P>))
        .with_state(probed)
}

async fn healthz<P: Probed>(State(p): State<Arc<P>>) -> Response {
    let (code, body) = match p.live() {
        Ok(()) => (StatusCode::OK, "ok\n".to_string()),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
    };
    (
        code,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn readyz<P: Probed>(State(p): State<Arc<P>>) -> Response {
    let (ready, report) = p.readiness();
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        format!("{report}\n"),
    )
        .into_response()
}

async fn metrics<P: Probed>(State(p): State<Arc<P>>) -> Response {
    ([(header::CONTENT_TYPE, OPENMETRICS)], p.metrics()).into_response()
}

/// A running probe listener: serves until [`Server::stop`], and reports to
/// [`Probed::listener_stopped`] if it ends before that.
pub struct Server {
    address: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Server {
    /// Starts serving `probed` on `listener` (on the current runtime).
    pub fn start<P: Probed>(listener: TcpListener, probed: Arc<P>) -> std::io::Result<Server> {
        let address = listener.local_addr()?;
        let (stop, stopping) = watch::channel(false);
        let mut rx = stopping.clone();
        let app = router(probed.clone());
        let serving = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.wait_for(|v| *v).await;
                })
                .await
        });
        let task = tokio::spawn(async move {
            supervise(serving, probed.as_ref(), address, stopping).await;
        });
        tracing::info!(address = %address, "probe listener bound (/healthz, /readyz, /metrics)");
        Ok(Server {
            address,
            stop,
            task,
        })
    }

    /// Where it listens (the bound port, when asked for port 0).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stops serving (open connections finish their requests) and waits for it.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Waits for the listener's task; if it ends before `stopping` says so (an error, a panic,
/// or an unasked return), logs why and tells `probed`.
pub async fn supervise<P: Probed + ?Sized>(
    serving: JoinHandle<std::io::Result<()>>,
    probed: &P,
    address: SocketAddr,
    stopping: watch::Receiver<bool>,
) {
    let ended = serving.await;
    if *stopping.borrow() {
        return;
    }
    let why = match ended {
        Ok(Ok(())) => "it stopped without an error".to_string(),
        Ok(Err(e)) => e.to_string(),
        Err(e) if e.is_panic() => {
            format!("it panicked: {}", panic_message(e.into_panic().as_ref()))
        }
        Err(e) => e.to_string(),
    };
    tracing::error!(address = %address, error = %why, "probe listener stopped; liveness fails from now on");
    probed.listener_stopped(format!(
        "the probe listener on {address} (--probe-listen) stopped serving /healthz, /readyz and /metrics: {why}"
    ));
}

/// The text a panic carried (`panic!` gives a `&str` or a `String`).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(the panic carried no message)".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sidecar_kit_testkit::http_get;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Fake {
        ready: Mutex<bool>,
        stopped: Mutex<Option<String>>,
    }

    impl Probed for Fake {
        fn live(&self) -> Result<(), String> {
            self.stopped.lock().unwrap().clone().map_or(Ok(()), Err)
        }
        fn readiness(&self) -> (bool, String) {
            let ready = *self.ready.lock().unwrap();
            (ready, format!("{{\"ready\":{ready}}}"))
        }
        fn metrics(&self) -> String {
            "up 1\n# EOF\n".into()
        }
        fn listener_stopped(&self, detail: String) {
            *self.stopped.lock().unwrap() = Some(detail);
        }
    }

    #[tokio::test]
    async fn the_three_paths_answer_from_the_command() {
        let fake = Arc::new(Fake::default());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = Server::start(listener, fake.clone()).unwrap();
        let addr = server.address();

        assert_eq!(http_get(addr, "/healthz").await, (200, "ok\n".into()));
        assert_eq!(
            http_get(addr, "/readyz").await,
            (503, "{\"ready\":false}\n".into())
        );
        *fake.ready.lock().unwrap() = true;
        assert_eq!(
            http_get(addr, "/readyz").await,
            (200, "{\"ready\":true}\n".into())
        );
        assert_eq!(
            http_get(addr, "/metrics").await,
            (200, "up 1\n# EOF\n".into())
        );
        assert_eq!(http_get(addr, "/nope").await.0, 404);

        // Asked to stop: nothing is reported, and the port is closed.
        server.stop().await;
        assert_eq!(fake.live(), Ok(()));
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }

    #[tokio::test]
    async fn a_listener_that_ends_unasked_fails_liveness_with_why() {
        let addr: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let cases: [(JoinHandle<std::io::Result<()>>, &str); 3] = [
            (
                tokio::spawn(async { Err(std::io::Error::other("accept: too many open files")) }),
                "accept: too many open files",
            ),
            (
                tokio::spawn(async { Ok(()) }),
                "it stopped without an error",
            ),
            (tokio::spawn(async { panic!("boom") }), "it panicked: boom"),
        ];
        for (serving, why) in cases {
            let fake = Fake::default();
            let (_tx, stopping) = watch::channel(false);
            supervise(serving, &fake, addr, stopping).await;
            let failure = fake.live().unwrap_err();
            assert!(failure.contains(why), "{failure}");
            assert!(
                failure.contains("127.0.0.1:8080 (--probe-listen)"),
                "{failure}"
            );
        }

        // Ended after stop was asked: not a failure.
        let fake = Fake::default();
        let (_tx, stopping) = watch::channel(true);
        supervise(tokio::spawn(async { Ok(()) }), &fake, addr, stopping).await;
        assert_eq!(fake.live(), Ok(()));
    }
}
