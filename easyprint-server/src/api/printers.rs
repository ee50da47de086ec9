//! `/api/v1/printers`: the configured printers and their connection state.

use axum::extract::State;
use axum::routing::get;
use axum::Router;

use crate::auth::Principal;
use crate::printers::PrinterSlot;
use crate::state::AppState;

/// `/api/v1/printers`.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/printers", get(list))
}

async fn list(State(state): State<AppState>, _: Principal) -> axum::Json<Vec<PrinterSlot>> {
    axum::Json(state.printers.list().to_vec())
}
