//! The native REST API under `/api/v1` (JSON, errors with stable codes).

pub mod appkeys;
pub mod files;
pub mod jobs;
pub mod printers;
pub mod resume;
pub mod session;
pub mod slicing;
pub mod timestamps;
pub mod users;

use axum::Router;

use crate::state::AppState;

/// Native routes that require a logged-in user.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(session::router())
        .merge(users::router())
        .merge(files::router())
        .merge(appkeys::router())
        .merge(printers::router())
        .merge(jobs::router())
        .merge(slicing::router())
        .merge(resume::router())
}

/// Native routes open to anyone (login and first-run setup).
pub fn public_router() -> Router<AppState> {
    session::public_router()
}
