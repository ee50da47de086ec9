//! Each user's current printer for OctoPrint's single-printer API (the one they chose with
//! `/api/connection` `connect`), kept in the database so a restart does not make their
//! slicer's next print ambiguous. The registry holds the choices the requests read; this
//! module writes each choice through to SQLite and loads them back at start-up.

use rusqlite::{params, Connection};

use crate::db::{unix_now, Db};
use crate::error::ApiError;
use crate::printers::PrinterRegistry;
use crate::state::AppState;

/// Makes `printer` the current printer of `user_id`, durably first: a choice the database
/// refused is not half made.
pub async fn choose(state: &AppState, user_id: i64, printer: &str) -> Result<(), ApiError> {
    let id = printer.to_owned();
    state.db.call(move |conn| save(conn, user_id, &id)).await?;
    state.printers.choose(user_id, printer);
    Ok(())
}

/// Gives the registry every user's saved choice; returns how many there were. A choice of a
/// printer that no longer exists is kept: it counts again if the printer comes back, and
/// until then the user's requests fall back as if they had not chosen.
pub fn restore(db: &Db, printers: &PrinterRegistry) -> Result<usize, ApiError> {
    let choices = db.call_blocking(|conn| load(conn))?;
    for (user_id, printer) in &choices {
        printers.choose(*user_id, printer);
    }
    Ok(choices.len())
}

fn save(conn: &Connection, user_id: i64, printer: &str) -> Result<(), ApiError> {
    conn.execute(
        "INSERT INTO current_printers (user_id, printer, chosen_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (user_id) DO UPDATE SET printer = ?2, chosen_at = ?3",
        params![user_id, printer, unix_now()],
    )?;
    Ok(())
}

fn load(conn: &Connection) -> Result<Vec<(i64, String)>, ApiError> {
    let mut statement = conn.prepare("SELECT user_id, printer FROM current_printers")?;
    let rows = statement
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}
