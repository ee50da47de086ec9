//! Uploaded files: strict form parsing, durable storage under random names, per-user records.
//!
//! The HTTP layers (native and OctoPrint-compatible) call [`receive_upload`],
//! [`remove_file`] and [`download`]; every lookup is scoped to the requesting user, so another
//! user's file is indistinguishable from a missing one (404).

pub mod folders;
pub mod form_data;
pub mod multipart;
pub mod names;
pub mod store;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;
use store::FileRecord;

/// What an upload form did: store a file, or create a folder (`foldername`).
#[derive(Debug)]
pub enum Received {
    /// A file was stored.
    File(Upload),
    /// A folder was created (or existed already).
    Folder(folders::FolderPath),
}

/// A completed upload and the flags that came with it.
#[derive(Debug)]
pub struct Upload {
    /// The new record.
    pub record: FileRecord,
    /// The client asked to select the file.
    pub select: bool,
    /// The client asked to print the file.
    pub print: bool,
}

/// Receives an upload form, stores the file durably and records it for `principal` (in the
/// form's `path` folder, created with its parents if needed), or creates the folder the form
/// names.
pub async fn receive_upload(
    state: &AppState,
    principal: &Principal,
    headers: &HeaderMap,
    query: Option<&str>,
    body: Body,
) -> Result<Received, ApiError> {
    let _permit = state
        .uploads
        .try_acquire()
        .map_err(|_| ApiError::Unavailable("too many uploads in progress, try again later"))?;
    let limits = &state.config.limits;
    let owner = principal.user.id;
    let (cap, exceeded) = upload_cap(state, owner).await?;
    let form = multipart::read_upload_form(
        headers,
        query,
        body,
        &state.files,
        multipart::UploadLimits {
            max_file_bytes: cap,
            idle_timeout: std::time::Duration::from_secs(limits.upload_idle_timeout_secs),
        },
    )
    .await
    .map_err(|e| match e {
        ApiError::PayloadTooLarge => exceeded,
        other => other,
    })?;
    let Some(file) = form.file else {
        let name = form.foldername.as_deref().unwrap_or_default();
        return create_folder(state, principal, form.path.child(name)?)
            .await
            .map(Received::Folder);
    };
    let display_name = form.path.join(&file.display_name);
    let stored = file.temp.finish(&state.files, file.kind).await?;
    let quota = limits.user_quota_bytes;
    let stored_name = stored.stored_name.clone();
    let (folder, kind, userdata, no_overwrite) =
        (form.path, file.kind, form.userdata, form.no_overwrite);
    let result = state
        .db
        .call(move |conn| {
            // Checked again where it is exact: uploads of one user may run side by side.
            let used = store::bytes_used(conn, owner)?;
            if used.saturating_add(stored.size) > quota {
                return Err(ApiError::QuotaExceeded { quota, used });
            }
            folders::ensure(conn, owner, &folder)?;
            store::record_upload(
                conn,
                owner,
                &display_name,
                kind,
                &stored,
                userdata.as_deref(),
                no_overwrite,
            )
        })
        .await;
    let recorded = match result {
        Ok(recorded) => recorded,
        Err(err) => {
            let _ = tokio::fs::remove_file(state.files.path_of(&stored_name)).await;
            return Err(err);
        }
    };
    if let Some(old) = &recorded.replaced {
        if let Err(err) = tokio::fs::remove_file(state.files.path_of(old)).await {
            tracing::warn!(file = %old, error = %err, "could not remove replaced upload");
        }
    }
    Ok(Received::File(Upload {
        record: recorded.record,
        select: form.select || form.print,
        print: form.print,
    }))
}

/// Creates `folder` (and its parents) for `principal`; an existing folder is fine, a file of
/// that name is a 409.
pub async fn create_folder(
    state: &AppState,
    principal: &Principal,
    folder: folders::FolderPath,
) -> Result<folders::FolderPath, ApiError> {
    let owner = principal.user.id;
    state
        .db
        .call(move |conn| {
            let tx = conn.transaction()?;
            if store::file_by_name(&tx, owner, folder.as_str())?.is_some() {
                return Err(ApiError::conflict(
                    "file_exists",
                    format!("a file is called {:?}", folder.as_str()),
                ));
            }
            folders::ensure(&tx, owner, &folder)?;
            tx.commit()?;
            Ok(folder)
        })
        .await
}

/// The folders of `principal`.
pub async fn list_folders(
    state: &AppState,
    principal: &Principal,
) -> Result<Vec<String>, ApiError> {
    let owner = principal.user.id;
    state.db.call(move |conn| folders::list(conn, owner)).await
}

/// Whether `principal` has `folder`.
pub async fn folder_exists(
    state: &AppState,
    principal: &Principal,
    folder: folders::FolderPath,
) -> Result<bool, ApiError> {
    let owner = principal.user.id;
    state
        .db
        .call(move |conn| folders::exists(conn, owner, &folder))
        .await
}

/// Where a move goes: into `destination` if it is an existing folder (keeping the name), else
/// to `destination` as the new path, whose parent must exist (OctoPrint's rule). `name` is the
/// moved entry's own name; `kind` keeps a file's type (its extension cannot change).
async fn move_target(
    state: &AppState,
    principal: &Principal,
    destination: &str,
    name: &str,
    kind: Option<names::FileKind>,
) -> Result<String, ApiError> {
    let as_folder = folders::FolderPath::parse(destination)?;
    if folder_exists(state, principal, as_folder.clone()).await? {
        return Ok(as_folder.join(name));
    }
    let (parent, new_name) = folders::split_display_path(as_folder.as_str());
    let parent = folders::FolderPath::parse(parent)?;
    if !folder_exists(state, principal, parent.clone()).await? {
        return Err(ApiError::conflict(
            "no_such_folder",
            format!("destination folder {:?} does not exist", parent.as_str()),
        ));
    }
    let new_name = match kind {
        Some(kind) => {
            let clean = names::sanitize_display_name(new_name)?;
            if names::FileKind::from_name(&clean) != Some(kind) {
                return Err(ApiError::bad_request(
                    "invalid_file_name",
                    format!("{clean:?} would change the file's type"),
                ));
            }
            clean
        }
        None => as_folder.name().to_owned(),
    };
    Ok(parent.join(&new_name))
}

/// Moves (renames) a file of `principal` to `destination`: into it if it is an existing folder
/// (keeping the name), else to it as the new path, whose parent must exist (OctoPrint's rule);
/// returns its new display path. The stored bytes stay where they are.
pub async fn move_file(
    state: &AppState,
    principal: &Principal,
    record: &FileRecord,
    destination: &str,
) -> Result<String, ApiError> {
    let (_, name) = folders::split_display_path(&record.display_name);
    let to = move_target(state, principal, destination, name, Some(record.kind)).await?;
    let (owner, from, new) = (principal.user.id, record.display_name.clone(), to.clone());
    state
        .db
        .call(move |conn| folders::rename(conn, owner, &from, &new, false))
        .await?;
    Ok(to)
}

/// What a move or copy request does with a file or folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relocation {
    /// The entry changes place or name.
    Move,
    /// A new entry with the same content appears; the original stays.
    Copy,
}

impl Relocation {
    fn verb(self) -> &'static str {
        match self {
            Relocation::Move => "move",
            Relocation::Copy => "copy",
        }
    }
}

/// Where `folder` goes when moved or copied to `destination` ([`move_target`]); a folder
/// cannot go into itself (409 `invalid_move` / `invalid_copy`).
async fn folder_target(
    state: &AppState,
    principal: &Principal,
    folder: &folders::FolderPath,
    destination: &str,
    relocation: Relocation,
) -> Result<folders::FolderPath, ApiError> {
    let to = move_target(state, principal, destination, folder.name(), None).await?;
    let to = folders::FolderPath::parse(&to)?;
    if to == *folder || folders::contains(folder, to.as_str()) {
        let code = match relocation {
            Relocation::Move => "invalid_move",
            Relocation::Copy => "invalid_copy",
        };
        let verb = relocation.verb();
        return Err(ApiError::conflict(
            code,
            format!("cannot {verb} {:?} into itself", folder.as_str()),
        ));
    }
    Ok(to)
}

/// Moves a folder of `principal` with everything in it to `destination`; returns its new path.
/// A folder cannot move into itself.
pub async fn move_folder(
    state: &AppState,
    principal: &Principal,
    folder: &folders::FolderPath,
    destination: &str,
) -> Result<folders::FolderPath, ApiError> {
    let to = folder_target(state, principal, folder, destination, Relocation::Move).await?;
    let (owner, from, new) = (principal.user.id, folder.as_str().to_owned(), to.clone());
    state
        .db
        .call(move |conn| folders::rename(conn, owner, &from, new.as_str(), true))
        .await?;
    Ok(to)
}

/// Copies a file of `principal` to `destination` (into an existing folder, or to a new path
/// whose folder exists, as for a move); returns the copy, a new file with its own id. A name
/// that is taken is a 409 `already_exists`.
pub async fn copy_file(
    state: &AppState,
    principal: &Principal,
    record: &FileRecord,
    destination: &str,
) -> Result<FileRecord, ApiError> {
    let (_, name) = folders::split_display_path(&record.display_name);
    let to = move_target(state, principal, destination, name, Some(record.kind)).await?;
    let mut copies = copy_entries(state, principal, vec![(record.clone(), to)], Vec::new()).await?;
    Ok(copies.remove(0))
}

/// Copies a folder of `principal` with everything in it (files and empty folders) to
/// `destination`, as for a move; returns the copy's path. A folder cannot be copied into
/// itself (409 `invalid_copy`).
pub async fn copy_folder(
    state: &AppState,
    principal: &Principal,
    folder: &folders::FolderPath,
    destination: &str,
) -> Result<folders::FolderPath, ApiError> {
    let to = folder_target(state, principal, folder, destination, Relocation::Copy).await?;
    // `a/b/c` in `a` copied to `x` is `x/b/c`: the folder's own path swapped for the new one.
    let renamed = |path: &str| format!("{}{}", to.as_str(), &path[folder.as_str().len()..]);
    let files = list(state, principal)
        .await?
        .into_iter()
        .filter(|r| folders::contains(folder, &r.display_name))
        .map(|r| {
            let new = renamed(&r.display_name);
            (r, new)
        })
        .collect();
    let mut new_folders = vec![to.clone()];
    for path in list_folders(state, principal).await? {
        if folders::contains(folder, &path) {
            new_folders.push(folders::FolderPath::parse(&renamed(&path))?);
        }
    }
    copy_entries(state, principal, files, new_folders).await?;
    Ok(to)
}

/// Copies `files` (each to its new display path) and creates `new_folders`, all or nothing:
/// the bytes first ([`store::FileStore::duplicate`]), then every record in one transaction
/// that checks the names are free and the copies fit the owner's quota. On any error the new
/// bytes go again and nothing is recorded.
async fn copy_entries(
    state: &AppState,
    principal: &Principal,
    files: Vec<(FileRecord, String)>,
    new_folders: Vec<folders::FolderPath>,
) -> Result<Vec<FileRecord>, ApiError> {
    let limits = &state.config.limits;
    let bytes: u64 = files.iter().map(|(r, _)| r.size).sum();
    // Hard links take no space, but a file system without them gets real copies.
    if let Some((free, _)) = state.files.disk_space() {
        if free.saturating_sub(bytes) < limits.min_free_bytes {
            return Err(ApiError::InsufficientStorage {
                floor: limits.min_free_bytes,
            });
        }
    }
    let mut stored = Vec::with_capacity(files.len());
    for (record, _) in &files {
        match state
            .files
            .duplicate(&record.stored_name, record.kind)
            .await
        {
            Ok(name) => stored.push(name),
            Err(err) => {
                forget_stored(state, &stored).await;
                return Err(err.into());
            }
        }
    }
    let (owner, quota) = (principal.user.id, limits.user_quota_bytes);
    let names = stored.clone();
    let result = state
        .db
        .call(move |conn| {
            let tx = conn.transaction()?;
            let used = store::bytes_used(&tx, owner)?;
            if used.saturating_add(bytes) > quota {
                return Err(ApiError::QuotaExceeded { quota, used });
            }
            let new_paths = new_folders.iter().map(|f| f.as_str());
            for path in new_paths.chain(files.iter().map(|(_, to)| to.as_str())) {
                if folders::is_taken(&tx, owner, path)? {
                    return Err(ApiError::conflict(
                        "already_exists",
                        format!("{path:?} already exists, nothing was copied"),
                    ));
                }
            }
            for folder in &new_folders {
                folders::ensure(&tx, owner, folder)?;
            }
            let mut copies = Vec::with_capacity(files.len());
            for ((record, to), stored_name) in files.iter().zip(&names) {
                copies.push(store::record_copy(&tx, record, to, stored_name)?);
            }
            tx.commit()?;
            Ok(copies)
        })
        .await;
    if result.is_err() {
        forget_stored(state, &stored).await;
    }
    result
}

/// Removes stored files no record refers to (best effort: the start-up sweep removes the rest).
async fn forget_stored(state: &AppState, stored: &[String]) {
    for name in stored {
        let _ = tokio::fs::remove_file(state.files.path_of(name)).await;
    }
}

/// Deletes `folder` of `principal` with everything in it, as OctoPrint does; stops at the
/// first file that cannot go (nothing is half-deleted: each file goes record first, then
/// bytes).
pub async fn remove_folder(
    state: &AppState,
    principal: &Principal,
    folder: folders::FolderPath,
) -> Result<(), ApiError> {
    for record in list(state, principal).await? {
        if folders::contains(&folder, &record.display_name) {
            remove_file(state, principal, &record).await?;
        }
    }
    let owner = principal.user.id;
    state
        .db
        .call(move |conn| folders::delete_tree(conn, owner, &folder))
        .await
}

/// The largest upload `owner` may send now, and the error naming the limit that sets it:
/// the configured upload size, what is left of their quota, or the free disk space above the
/// configured floor.
async fn upload_cap(state: &AppState, owner: i64) -> Result<(u64, ApiError), ApiError> {
    let limits = &state.config.limits;
    let used = state
        .db
        .call(move |conn| store::bytes_used(conn, owner))
        .await?;
    let quota_left = limits.user_quota_bytes.saturating_sub(used);
    let quota = ApiError::QuotaExceeded {
        quota: limits.user_quota_bytes,
        used,
    };
    let disk = ApiError::InsufficientStorage {
        floor: limits.min_free_bytes,
    };
    let disk_left = state.files.disk_space().map_or(u64::MAX, |(free, _)| {
        free.saturating_sub(limits.min_free_bytes)
    });
    if disk_left == 0 {
        return Err(disk);
    }
    if quota_left == 0 {
        return Err(quota);
    }
    let cap = limits.max_upload_bytes.min(quota_left).min(disk_left);
    let exceeded = if cap == limits.max_upload_bytes {
        ApiError::PayloadTooLarge
    } else if cap == quota_left {
        quota
    } else {
        disk
    };
    Ok((cap, exceeded))
}

/// Deletes a file of `principal` (record first, then the bytes).
pub async fn remove_file(
    state: &AppState,
    principal: &Principal,
    record: &FileRecord,
) -> Result<(), ApiError> {
    let (owner, id) = (principal.user.id, record.id.clone());
    if !state
        .db
        .call(move |conn| store::delete_file(conn, owner, &id))
        .await?
    {
        return Err(ApiError::NotFound("file"));
    }
    tokio::fs::remove_file(state.files.path_of(&record.stored_name)).await?;
    Ok(())
}

/// Streams a file as an attachment that browsers will neither render nor sniff.
pub async fn download(state: &AppState, record: &FileRecord) -> Result<Response, ApiError> {
    let file = tokio::fs::File::open(state.files.path_of(&record.stored_name)).await?;
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    let (_, name) = folders::split_display_path(&record.display_name);
    let disposition =
        HeaderValue::from_str(&names::attachment_disposition(name)).map_err(ApiError::internal)?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (header::CONTENT_LENGTH, HeaderValue::from(record.size)),
        ],
        body,
    )
        .into_response())
}

/// A file of `principal` by display name, or 404.
pub async fn find_by_name(
    state: &AppState,
    principal: &Principal,
    name: String,
) -> Result<FileRecord, ApiError> {
    let owner = principal.user.id;
    state
        .db
        .call(move |conn| store::file_by_name(conn, owner, &name))
        .await?
        .ok_or(ApiError::NotFound("file"))
}

/// A file of `principal` by id, or 404.
pub async fn find_by_id(
    state: &AppState,
    principal: &Principal,
    id: String,
) -> Result<FileRecord, ApiError> {
    let owner = principal.user.id;
    state
        .db
        .call(move |conn| store::file_by_id(conn, owner, &id))
        .await?
        .ok_or(ApiError::NotFound("file"))
}

/// All files of `principal`.
pub async fn list(state: &AppState, principal: &Principal) -> Result<Vec<FileRecord>, ApiError> {
    let owner = principal.user.id;
    state
        .db
        .call(move |conn| store::list_files(conn, owner))
        .await
}
