//! SQL for users, sessions and API keys. Plain functions over a connection, run through
//! [`crate::db::Db::call`].

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::secrets::{random_token, token_hash};
use crate::db::unix_now;
use crate::error::ApiError;

/// A stored account, without its password hash.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct User {
    /// Database id.
    pub id: i64,
    /// Login name.
    pub name: String,
    /// Administrator role.
    pub admin: bool,
}

/// Reads a [`User`] from columns 0-2 and one more value from column 3.
fn user_and<T: rusqlite::types::FromSql>(r: &rusqlite::Row<'_>) -> rusqlite::Result<(User, T)> {
    Ok((
        User {
            id: r.get(0)?,
            name: r.get(1)?,
            admin: r.get(2)?,
        },
        r.get(3)?,
    ))
}

/// Checks a login name: 1–64 ASCII letters, digits, `.`, `_` or `-`.
pub fn validate_user_name(name: &str) -> Result<(), ApiError> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(ApiError::bad_request(
            "invalid_user_name",
            "user name must be 1-64 ASCII letters, digits, '.', '_' or '-'",
        ));
    }
    Ok(())
}

/// Checks a new password: 8–1024 bytes (the cap bounds argon2's work on hostile input).
pub fn validate_new_password(password: &str) -> Result<(), ApiError> {
    if password.chars().count() < 8 || password.len() > 1024 {
        return Err(ApiError::bad_request(
            "invalid_password",
            "password must be 8 to 1024 bytes long",
        ));
    }
    Ok(())
}

/// Number of accounts.
pub fn user_count(conn: &Connection) -> Result<i64, ApiError> {
    Ok(conn.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?)
}

/// Inserts an account; 409 `user_exists` when the name (case-insensitively) is taken.
pub fn insert_user(
    conn: &Connection,
    name: &str,
    password_hash: &str,
    admin: bool,
) -> Result<User, ApiError> {
    let inserted = conn.execute(
        "INSERT INTO users (name, password_hash, admin, created_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (name) DO NOTHING",
        params![name, password_hash, admin, unix_now()],
    )?;
    if inserted == 0 {
        return Err(ApiError::conflict(
            "user_exists",
            format!("user {name:?} already exists"),
        ));
    }
    Ok(User {
        id: conn.last_insert_rowid(),
        name: name.to_owned(),
        admin,
    })
}

/// Looks an account up by name, with its password hash.
pub fn find_user_with_hash(
    conn: &Connection,
    name: &str,
) -> Result<Option<(User, String)>, ApiError> {
    Ok(conn
        .query_row(
            "SELECT id, name, admin, password_hash FROM users WHERE name = ?1",
            [name],
            user_and,
        )
        .optional()?)
}

/// Replaces a password and ends every session of that account (CVE-2022-2888: a stolen cookie
/// must not outlive a password change).
pub fn set_password(conn: &mut Connection, user_id: i64, new_hash: &str) -> Result<(), ApiError> {
    let tx = conn.transaction()?;
    tx.execute(
        "UPDATE users SET password_hash = ?1 WHERE id = ?2",
        params![new_hash, user_id],
    )?;
    tx.execute("DELETE FROM sessions WHERE user_id = ?1", [user_id])?;
    tx.commit()?;
    Ok(())
}

/// All accounts, by name.
pub fn list_users(conn: &Connection) -> Result<Vec<User>, ApiError> {
    let mut stmt = conn.prepare("SELECT id, name, admin FROM users ORDER BY name")?;
    let users = stmt
        .query_map([], |r| {
            Ok(User {
                id: r.get(0)?,
                name: r.get(1)?,
                admin: r.get(2)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(users)
}

/// Deletes an account with its sessions, keys and file records.
pub fn delete_user(conn: &Connection, user_id: i64) -> Result<bool, ApiError> {
    Ok(conn.execute("DELETE FROM users WHERE id = ?1", [user_id])? > 0)
}

/// A freshly created session: the secrets go to the client once, only hashes are stored.
#[derive(Debug)]
pub struct NewSession {
    /// Value of the session cookie.
    pub token: String,
    /// Value of the `csrf_token` cookie, echoed by the UI in `X-CSRF-Token`.
    pub csrf: String,
}

/// Creates a session for `user_id` valid for `ttl_secs`, and purges expired ones.
pub fn create_session(
    conn: &Connection,
    user_id: i64,
    ttl_secs: u64,
) -> Result<NewSession, ApiError> {
    let now = unix_now();
    conn.execute("DELETE FROM sessions WHERE expires_at <= ?1", [now])?;
    let session = NewSession {
        token: random_token(),
        csrf: random_token(),
    };
    conn.execute(
        "INSERT INTO sessions (token_hash, user_id, csrf_hash, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            token_hash(&session.token),
            user_id,
            token_hash(&session.csrf),
            now,
            now.saturating_add(i64::try_from(ttl_secs).unwrap_or(i64::MAX)),
        ],
    )?;
    Ok(session)
}

/// The user of an unexpired session, that session's CSRF-token hash and its expiry (Unix
/// seconds).
pub fn session_user(
    conn: &Connection,
    token_hash: &[u8; 32],
) -> Result<Option<(User, [u8; 32], i64)>, ApiError> {
    Ok(conn
        .query_row(
            "SELECT u.id, u.name, u.admin, s.csrf_hash, s.expires_at FROM sessions s
             JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = ?1 AND s.expires_at > ?2",
            params![token_hash, unix_now()],
            |r| {
                let (user, csrf) = user_and(r)?;
                Ok((user, csrf, r.get(4)?))
            },
        )
        .optional()?)
}

/// Ends one session.
pub fn delete_session(conn: &Connection, token_hash: &[u8; 32]) -> Result<(), ApiError> {
    conn.execute("DELETE FROM sessions WHERE token_hash = ?1", [token_hash])?;
    Ok(())
}

/// An API key as listed to its owner (never the key itself).
#[derive(Debug, Clone, Serialize)]
pub struct ApiKeyInfo {
    /// Database id, for deletion.
    pub id: i64,
    /// Owner-chosen label.
    pub label: String,
    /// Creation time, seconds since the Unix epoch.
    pub created_at: i64,
}

/// Creates an API key for `user_id` and returns it; it is never retrievable again.
pub fn create_api_key(conn: &Connection, user_id: i64, label: &str) -> Result<String, ApiError> {
    let key = random_token();
    conn.execute(
        "INSERT INTO api_keys (key_hash, user_id, label, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![token_hash(&key), user_id, label, unix_now()],
    )?;
    Ok(key)
}

/// The owner of an API key and the key's id.
pub fn api_key_user(conn: &Connection, key: &str) -> Result<Option<(User, i64)>, ApiError> {
    Ok(conn
        .query_row(
            "SELECT u.id, u.name, u.admin, k.id FROM api_keys k JOIN users u ON u.id = k.user_id
             WHERE k.key_hash = ?1",
            [token_hash(key)],
            user_and,
        )
        .optional()?)
}

/// The API keys of `user_id`.
pub fn list_api_keys(conn: &Connection, user_id: i64) -> Result<Vec<ApiKeyInfo>, ApiError> {
    let mut stmt =
        conn.prepare("SELECT id, label, created_at FROM api_keys WHERE user_id = ?1 ORDER BY id")?;
    let keys = stmt
        .query_map([user_id], |r| {
            Ok(ApiKeyInfo {
                id: r.get(0)?,
                label: r.get(1)?,
                created_at: r.get(2)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(keys)
}

/// Revokes key `key_id` if it belongs to `user_id`.
pub fn delete_api_key(conn: &Connection, user_id: i64, key_id: i64) -> Result<bool, ApiError> {
    Ok(conn.execute(
        "DELETE FROM api_keys WHERE id = ?1 AND user_id = ?2",
        params![key_id, user_id],
    )? > 0)
}
