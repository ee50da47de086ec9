//! Credentials that stop being valid while connections opened with them are still open.
//!
//! HTTP requests are authenticated one by one, but a WebSocket is authenticated once, at the
//! handshake. Logout, a password change, a deleted account or a revoked API key therefore
//! announce themselves here, and every WebSocket opened with an affected credential closes.
//! A session that simply expires ends the same way, at its expiry time.

use tokio::sync::broadcast;

use super::key_cache::ApiKeyCache;
use super::{AuthMethod, Principal};

/// A credential (or all of a user's) that just ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    /// One session, by token hash (logout).
    Session([u8; 32]),
    /// Every session of a user (password change); API keys stay valid.
    SessionsOf(i64),
    /// One API key, by id.
    ApiKey(i64),
    /// Everything of a user (account deleted).
    User(i64),
}

impl Revoked {
    /// Whether a connection authenticated as `principal` must end.
    pub fn ends(&self, principal: &Principal) -> bool {
        match (*self, &principal.method) {
            (Revoked::User(id), _) => principal.user.id == id,
            (Revoked::Session(hash), AuthMethod::Session { token_hash, .. }) => hash == *token_hash,
            (Revoked::SessionsOf(id), AuthMethod::Session { .. }) => principal.user.id == id,
            (Revoked::ApiKey(id), AuthMethod::ApiKey { key_id }) => id == *key_id,
            _ => false,
        }
    }
}

/// The announcement channel, and the cache of verified API keys that every announcement
/// empties.
#[derive(Debug)]
pub struct Revocations {
    sender: broadcast::Sender<Revoked>,
    api_keys: ApiKeyCache,
}

impl Default for Revocations {
    fn default() -> Self {
        // Revocations are rare; a listener that lags behind this many closes to be safe.
        Revocations {
            sender: broadcast::channel(64).0,
            api_keys: ApiKeyCache::default(),
        }
    }
}

impl Revocations {
    /// Announces a revocation (nobody listening is fine). Call it after the database change:
    /// it also forgets every verified API key, so the next request with one asks the database.
    pub fn revoke(&self, revoked: Revoked) {
        self.api_keys.clear();
        let _ = self.sender.send(revoked);
    }

    /// API keys verified recently (emptied by every [`revoke`](Self::revoke)).
    pub fn api_keys(&self) -> &ApiKeyCache {
        &self.api_keys
    }

    /// Listens for revocations from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Revoked> {
        self.sender.subscribe()
    }
}

/// Waits until `principal`'s credential is revoked or its session expires (or revocations
/// were missed, which counts as revoked: the connection must not outlive a logout it did not
/// see).
pub async fn revoked(receiver: &mut broadcast::Receiver<Revoked>, principal: &Principal) {
    let expiry = async {
        match expires_in(principal, crate::pipeline::now().0) {
            Some(left) => tokio::time::sleep(left).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = expiry => {}
        () = announced(receiver, principal) => {}
    }
}

/// How long `principal`'s credential has left at `now_ms` (Unix milliseconds); `None` for
/// credentials without an expiry (API keys).
pub fn expires_in(principal: &Principal, now_ms: i64) -> Option<std::time::Duration> {
    match principal.method {
        AuthMethod::Session { expires_at, .. } => {
            let left = expires_at.saturating_mul(1000).saturating_sub(now_ms);
            Some(std::time::Duration::from_millis(
                u64::try_from(left).unwrap_or(0),
            ))
        }
        AuthMethod::ApiKey { .. } => None,
    }
}

async fn announced(receiver: &mut broadcast::Receiver<Revoked>, principal: &Principal) {
    loop {
        match receiver.recv().await {
            Ok(r) if r.ends(principal) => return,
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(_)) => return,
            Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::store::User;

    fn principal(id: i64, method: AuthMethod) -> Principal {
        Principal {
            user: User {
                id,
                name: format!("u{id}"),
                admin: false,
            },
            method,
        }
    }

    #[test]
    fn sessions_expire_keys_do_not() {
        let session = principal(
            1,
            AuthMethod::Session {
                token_hash: [7; 32],
                expires_at: 100,
            },
        );
        assert_eq!(
            expires_in(&session, 99_250),
            Some(std::time::Duration::from_millis(750))
        );
        assert_eq!(
            expires_in(&session, 200_000),
            Some(std::time::Duration::ZERO)
        );
        let key = principal(1, AuthMethod::ApiKey { key_id: 3 });
        assert_eq!(expires_in(&key, 0), None);
    }

    #[test]
    fn each_revocation_ends_only_its_credentials() {
        let session = principal(
            1,
            AuthMethod::Session {
                token_hash: [7; 32],
                expires_at: i64::MAX,
            },
        );
        let key = principal(1, AuthMethod::ApiKey { key_id: 3 });
        let other = principal(
            2,
            AuthMethod::Session {
                token_hash: [8; 32],
                expires_at: i64::MAX,
            },
        );
        assert!(Revoked::Session([7; 32]).ends(&session));
        assert!(!Revoked::Session([7; 32]).ends(&other));
        assert!(Revoked::SessionsOf(1).ends(&session));
        assert!(
            !Revoked::SessionsOf(1).ends(&key),
            "a password change keeps keys"
        );
        assert!(Revoked::ApiKey(3).ends(&key));
        assert!(!Revoked::ApiKey(3).ends(&session));
        assert!(Revoked::User(1).ends(&key) && Revoked::User(1).ends(&session));
        assert!(!Revoked::User(1).ends(&other));
    }
}
