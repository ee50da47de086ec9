//! The HTTP/1.1 accept loop and the slow-client limits that need it.
//!
//! `axum::serve` sets no timer, so hyper's header read timeout never fires and a client that
//! dribbles a header byte every few seconds holds its connection (and a task) forever
//! (slow-loris). This loop serves the same router with hyper's HTTP/1 connection builder, a
//! Tokio timer and [`header_read_timeout`](hyper::server::conn::http1::Builder::header_read_timeout);
//! [`body_deadline`] bounds the time to receive a non-upload body (uploads have their own
//! idle timeout and size cap in `files/`).

use std::future::Future;
use std::pin::pin;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_service::Service;

use crate::error::ApiError;
use crate::state::AppState;

/// Serves `router` on `listener` until `shutdown` completes, then lets requests in flight
/// finish. Request headers must arrive within `header_timeout`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    header_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true);
    // Each connection holds a receiver; shutdown drops the sender and waits for them all.
    let (stop_tx, stop_rx) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            let mut router = router.clone();
            async move { router.call(request.map(Body::new)).await }
        });
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let mut connection = pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                    return;
                }
                _ = stop.changed() => {}
            }
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        });
    }
    drop(listener);
    drop(stop_rx);
    stop_tx.send_replace(());
    stop_tx.closed().await;
    Ok(())
}

/// Whether a request streams an upload (it has its own idle timeout and size cap).
fn is_upload(request: &Request) -> bool {
    request.method() == Method::POST
        && matches!(request.uri().path(), "/api/v1/files" | "/api/files/local")
}

/// Reads every non-upload request body within `limits.body_timeout_secs` (408 otherwise)
/// before the handler runs. Such bodies are small (`max_body_bytes`, 413 above), so a client
/// sending one byte at a time cannot hold a request open for long.
pub async fn body_deadline(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if is_upload(&request) {
        return next.run(request).await;
    }
    let limits = &state.config.limits;
    let (parts, body) = request.into_parts();
    let deadline = Duration::from_secs(limits.body_timeout_secs);
    let read = tokio::time::timeout(deadline, axum::body::to_bytes(body, limits.max_body_bytes));
    match read.await {
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Ok(Err(_)) => ApiError::PayloadTooLarge.into_response(),
        Err(_) => ApiError::RequestTimeout.into_response(),
    }
}
