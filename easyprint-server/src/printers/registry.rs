//! The set of printers, which administrators can change while the server runs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use super::PrinterHandle;
use crate::config::PrinterConfig;
use crate::error::ApiError;

/// All printers of this server: the configuration file's, merged with those added or changed
/// at runtime (see [`super::store`]), in that order.
#[derive(Debug, Default)]
pub struct PrinterRegistry {
    printers: RwLock<Vec<Arc<PrinterHandle>>>,
    /// Serialises administrators' changes (add, replace, remove).
    pub changes: tokio::sync::Mutex<()>,
    /// The printer each user chose through OctoPrint's `/api/connection` (user id → printer
    /// id), in memory: after a restart the configured default applies again.
    chosen: Mutex<HashMap<i64, String>>,
}

impl PrinterRegistry {
    /// One closed printer per configured printer.
    pub fn from_config(printers: &[PrinterConfig]) -> PrinterRegistry {
        PrinterRegistry {
            printers: RwLock::new(
                printers
                    .iter()
                    .map(|p| Arc::new(PrinterHandle::new(p.clone())))
                    .collect(),
            ),
            changes: Default::default(),
            chosen: Default::default(),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Arc<PrinterHandle>>> {
        self.printers.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Vec<Arc<PrinterHandle>>> {
        self.printers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Every printer's handle.
    pub fn handles(&self) -> Vec<Arc<PrinterHandle>> {
        self.read().clone()
    }

    /// Every printer, as a snapshot.
    pub fn list(&self) -> Vec<super::PrinterSlot> {
        self.read().iter().map(|p| p.slot()).collect()
    }

    /// A printer by id.
    pub fn get(&self, id: &str) -> Result<Arc<PrinterHandle>, ApiError> {
        self.read()
            .iter()
            .find(|p| p.id() == id)
            .cloned()
            .ok_or(ApiError::NotFound("printer"))
    }

    /// The printer OctoPrint's single-printer API talks about: the first operational one, else
    /// the first configured.
    pub fn current(&self) -> Option<Arc<PrinterHandle>> {
        let printers = self.read();
        printers
            .iter()
            .find(|p| p.state().is_operational())
            .or(printers.first())
            .cloned()
    }

    /// Remembers `printer` as the one user `user_id` talks to through OctoPrint's
    /// single-printer API.
    pub fn choose(&self, user_id: i64, printer: &str) {
        self.chosen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(user_id, printer.to_owned());
    }

    /// The printer OctoPrint's single-printer API acts on for user `user_id` (select, print,
    /// job start): the one the user chose through `/api/connection` if it still exists, else
    /// `default` (the configured `default_printer`) if it exists, else the only printer.
    /// Several printers and no choice is a 409 `printer_ambiguous` naming them, never a guess.
    pub fn target_for(
        &self,
        user_id: i64,
        default: Option<&str>,
    ) -> Result<Arc<PrinterHandle>, ApiError> {
        let chosen = self
            .chosen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&user_id)
            .cloned();
        let printers = self.read();
        let by_id = |id: Option<&str>| id.and_then(|id| printers.iter().find(|p| p.id() == id));
        if let Some(found) = by_id(chosen.as_deref()).or_else(|| by_id(default)) {
            return Ok(found.clone());
        }
        match printers.as_slice() {
            [] => Err(ApiError::PrinterNotOperational),
            [only] => Ok(only.clone()),
            several => {
                let ids: Vec<&str> = several.iter().map(|p| p.id()).collect();
                Err(ApiError::conflict(
                    "printer_ambiguous",
                    format!(
                        "{} printers ({}) and none chosen: connect to one with POST \
                         /api/connection {{\"command\": \"connect\", \"port\": <printer id>}} \
                         or set default_printer in the configuration",
                        ids.len(),
                        ids.join(", ")
                    ),
                ))
            }
        }
    }

    /// Wakes every printer's job runner (the queue changed).
    pub fn wake_all(&self) {
        for p in self.read().iter() {
            p.wake.notify_one();
        }
    }

    /// Adds `handle`, or replaces the printer with its id (in place); returns the replaced one.
    pub fn put(&self, handle: Arc<PrinterHandle>) -> Option<Arc<PrinterHandle>> {
        let mut printers = self.write();
        match printers.iter_mut().find(|p| p.id() == handle.id()) {
            Some(slot) => Some(std::mem::replace(slot, handle)),
            None => {
                printers.push(handle);
                None
            }
        }
    }

    /// Removes the printer `id`; returns it.
    pub fn remove(&self, id: &str) -> Option<Arc<PrinterHandle>> {
        let mut printers = self.write();
        let index = printers.iter().position(|p| p.id() == id)?;
        Some(printers.remove(index))
    }

    /// Closes every connection (server shutdown).
    pub async fn shutdown(&self) {
        for p in self.handles() {
            p.disconnect().await;
        }
    }
}
