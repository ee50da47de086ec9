//! Fan-out of live updates to WebSocket clients, with bounded memory per client.
//!
//! Publishers call [`Hub::publish`], a plain synchronous function: it serialises the message
//! once and appends it to each subscribed client's queue under a short lock. It never awaits,
//! never writes to a socket and never waits for a client, so a slow or stuck browser cannot
//! slow a publisher (and, through it, a printer).
//!
//! Per client there are two queues:
//! - *status topics* ([`Topic::coalesces`]): one slot per `(topic, key)`; a newer value
//!   replaces an unsent older one, so a slow client skips intermediate values but always ends
//!   up with the latest;
//! - *event topics* (terminal lines, notifications): a FIFO capped at `event_cap` messages.
//!   A client that lets it overflow is dropped (removed from the hub at once and closed with
//!   1008 by its connection task), because silently losing events would be worse.
//!
//! The hub also keeps the latest value of every status `(topic, key)`, sent as a snapshot
//! when a client subscribes.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::extract::ws::Utf8Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

/// What an update is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Topic {
    /// Printer connection and state flags (coalesced).
    PrinterStatus,
    /// Temperatures, actual and target (coalesced).
    Temperatures,
    /// Job progress and ETA (coalesced).
    JobProgress,
    /// Slicing progress (coalesced).
    SlicingProgress,
    /// Lines sent to and received from printers (events).
    Terminal,
    /// Queue contents (coalesced).
    Queue,
    /// User-facing notifications (events).
    Notifications,
}

impl Topic {
    /// Every topic.
    pub const ALL: [Topic; 7] = [
        Topic::PrinterStatus,
        Topic::Temperatures,
        Topic::JobProgress,
        Topic::SlicingProgress,
        Topic::Terminal,
        Topic::Queue,
        Topic::Notifications,
    ];

    /// Whether only the latest value matters (status) rather than every message (events).
    pub fn coalesces(self) -> bool {
        !matches!(self, Topic::Terminal | Topic::Notifications)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// Who may receive a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Every authenticated client.
    Everyone,
    /// Only the clients of one user (their jobs, their files).
    User(i64),
    /// The clients of one user and of every administrator (a job: its owner's, and
    /// administrators see everyone's).
    UserAndAdmins(i64),
}

impl Audience {
    fn admits(self, user_id: i64, admin: bool) -> bool {
        match self {
            Audience::Everyone => true,
            Audience::User(id) => id == user_id,
            Audience::UserAndAdmins(id) => admin || id == user_id,
        }
    }
}

/// The JSON envelope of every update.
#[derive(Debug, Serialize)]
struct Envelope<'a, T> {
    topic: Topic,
    key: &'a str,
    data: &'a T,
}

/// Counters for tests and monitoring.
#[derive(Debug, Default)]
pub struct HubStats {
    /// Messages published.
    pub published: AtomicU64,
    /// Clients dropped because their event queue overflowed.
    pub dropped_slow: AtomicU64,
    /// Status values replaced before a client could send them.
    pub coalesced: AtomicU64,
    /// Longest event queue any client reached.
    pub max_event_queue: AtomicUsize,
}

/// The hub. One per server.
#[derive(Debug)]
pub struct Hub {
    inner: Mutex<HubInner>,
    max_clients: usize,
    event_cap: usize,
    /// Counters.
    pub stats: HubStats,
}

#[derive(Debug, Default)]
struct HubInner {
    clients: HashMap<u64, Arc<ClientQueue>>,
    latest: HashMap<(Topic, String), (Audience, Utf8Bytes)>,
    next_id: u64,
}

/// One client's queues, shared between the hub and the client's connection task.
#[derive(Debug)]
pub struct ClientQueue {
    id: u64,
    user_id: i64,
    admin: bool,
    state: Mutex<QueueState>,
    notify: Notify,
}

#[derive(Debug, Default)]
struct QueueState {
    subscriptions: u8,
    /// Unsent status values, in first-changed order.
    status_order: Vec<(Topic, String)>,
    status: HashMap<(Topic, String), Utf8Bytes>,
    events: VecDeque<Utf8Bytes>,
    overflowed: bool,
}

/// What a connection task should do after draining its queue.
#[derive(Debug)]
pub enum Drained {
    /// Send these, in order.
    Messages(Vec<Utf8Bytes>),
    /// The client fell too far behind: close it (1008).
    Overflowed,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Hub {
    /// A hub admitting `max_clients` clients, each with an event queue of `event_cap`.
    pub fn new(max_clients: usize, event_cap: usize) -> Hub {
        Hub {
            inner: Mutex::default(),
            max_clients,
            event_cap: event_cap.max(1),
            stats: HubStats::default(),
        }
    }

    /// Registers a client of the non-administrator `user_id`; `None` when the hub is full.
    pub fn register(&self, user_id: i64) -> Option<Arc<ClientQueue>> {
        self.register_user(user_id, false)
    }

    /// Registers a client of `user_id` (an administrator when `admin`: it also receives
    /// [`Audience::UserAndAdmins`] messages of other users); `None` when the hub is full.
    pub fn register_user(&self, user_id: i64, admin: bool) -> Option<Arc<ClientQueue>> {
        let mut inner = lock(&self.inner);
        if inner.clients.len() >= self.max_clients {
            return None;
        }
        inner.next_id += 1;
        let client = Arc::new(ClientQueue {
            id: inner.next_id,
            user_id,
            admin,
            state: Mutex::default(),
            notify: Notify::new(),
        });
        inner.clients.insert(client.id, client.clone());
        Some(client)
    }

    /// Removes a client (its connection ended).
    pub fn unregister(&self, client: &ClientQueue) {
        lock(&self.inner).clients.remove(&client.id);
    }

    /// Number of registered clients.
    pub fn client_count(&self) -> usize {
        lock(&self.inner).clients.len()
    }

    /// Subscribes a client to topics and queues the current value of each status key.
    pub fn subscribe(&self, client: &ClientQueue, topics: &[Topic]) {
        let inner = lock(&self.inner);
        let mut state = lock(&client.state);
        for &topic in topics {
            state.subscriptions |= topic.bit();
        }
        for ((topic, key), (audience, message)) in &inner.latest {
            if topics.contains(topic) && audience.admits(client.user_id, client.admin) {
                state.put_status(*topic, key, message.clone());
            }
        }
        drop(state);
        client.notify.notify_one();
    }

    /// Unsubscribes a client from topics and discards their unsent messages.
    pub fn unsubscribe(&self, client: &ClientQueue, topics: &[Topic]) {
        let mut state = lock(&client.state);
        for &topic in topics {
            state.subscriptions &= !topic.bit();
        }
        state.status_order.retain(|(t, _)| !topics.contains(t));
        state.status.retain(|(t, _), _| !topics.contains(t));
    }

    /// Publishes `data` on `topic` for `key` (a printer id, a job id...). Never blocks on a
    /// client: the cost is one serialisation plus a short lock per subscribed client.
    pub fn publish<T: Serialize>(&self, topic: Topic, key: &str, audience: Audience, data: &T) {
        let text = match serde_json::to_string(&Envelope { topic, key, data }) {
            Ok(text) => text,
            Err(err) => {
                tracing::error!(?topic, %err, "unserialisable update dropped");
                return;
            }
        };
        let message = Utf8Bytes::from(text);
        self.stats.published.fetch_add(1, Ordering::Relaxed);
        let mut inner = lock(&self.inner);
        if topic.coalesces() {
            inner
                .latest
                .insert((topic, key.to_owned()), (audience, message.clone()));
        }
        let mut overflowed = Vec::new();
        for client in inner.clients.values() {
            if !audience.admits(client.user_id, client.admin) {
                continue;
            }
            let mut state = lock(&client.state);
            if state.subscriptions & topic.bit() == 0 || state.overflowed {
                continue;
            }
            if topic.coalesces() {
                if state.put_status(topic, key, message.clone()) {
                    self.stats.coalesced.fetch_add(1, Ordering::Relaxed);
                }
            } else {
                state.events.push_back(message.clone());
                self.stats
                    .max_event_queue
                    .fetch_max(state.events.len(), Ordering::Relaxed);
                if state.events.len() > self.event_cap {
                    state.overflow();
                    overflowed.push(client.id);
                }
            }
            drop(state);
            client.notify.notify_one();
        }
        for id in overflowed {
            inner.clients.remove(&id);
            self.stats.dropped_slow.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Forgets the latest value of a status key (a printer was removed, a job finished).
    pub fn forget(&self, topic: Topic, key: &str) {
        lock(&self.inner).latest.remove(&(topic, key.to_owned()));
    }
}

impl QueueState {
    /// Stores a status value; true when it replaced an unsent one.
    fn put_status(&mut self, topic: Topic, key: &str, message: Utf8Bytes) -> bool {
        let slot = (topic, key.to_owned());
        if self.status.insert(slot.clone(), message).is_some() {
            true
        } else {
            self.status_order.push(slot);
            false
        }
    }

    fn overflow(&mut self) {
        self.overflowed = true;
        self.events = VecDeque::new();
        self.status.clear();
        self.status_order = Vec::new();
    }
}

impl ClientQueue {
    /// Client id (unique per hub).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Waits until something was queued (or the client overflowed).
    pub async fn notified(&self) {
        self.notify.notified().await;
    }

    /// Queues a direct reply to this client (acknowledgements, pongs, errors).
    pub fn reply(&self, message: Utf8Bytes) {
        lock(&self.state).events.push_back(message);
        self.notify.notify_one();
    }

    /// Takes everything queued: events and replies in order, then the status values.
    ///
    /// Events go first so a subscription's acknowledgement precedes its snapshot.
    pub fn drain(&self) -> Drained {
        let mut state = lock(&self.state);
        if state.overflowed {
            return Drained::Overflowed;
        }
        let order = std::mem::take(&mut state.status_order);
        let mut messages: Vec<Utf8Bytes> = state.events.drain(..).collect();
        for slot in order {
            if let Some(message) = state.status.remove(&slot) {
                messages.push(message);
            }
        }
        Drained::Messages(messages)
    }

    /// Topics this client is subscribed to.
    pub fn subscriptions(&self) -> Vec<Topic> {
        let bits = lock(&self.state).subscriptions;
        Topic::ALL
            .into_iter()
            .filter(|t| bits & t.bit() != 0)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn texts(drained: Drained) -> Vec<Value> {
        match drained {
            Drained::Messages(m) => m
                .iter()
                .map(|t| serde_json::from_str(t.as_str()).unwrap())
                .collect(),
            Drained::Overflowed => panic!("overflowed"),
        }
    }

    #[test]
    fn snapshot_on_subscribe_then_updates() {
        let hub = Hub::new(10, 10);
        hub.publish(
            Topic::Temperatures,
            "p1",
            Audience::Everyone,
            &json!({"t": 20}),
        );
        hub.publish(
            Topic::Temperatures,
            "p1",
            Audience::Everyone,
            &json!({"t": 21}),
        );
        hub.publish(Topic::Terminal, "p1", Audience::Everyone, &"ok");
        let client = hub.register(1).unwrap();
        assert!(
            texts(client.drain()).is_empty(),
            "nothing before subscribing"
        );
        hub.subscribe(&client, &[Topic::Temperatures, Topic::Terminal]);
        let got = texts(client.drain());
        assert_eq!(
            got,
            [json!({"topic": "temperatures", "key": "p1", "data": {"t": 21}})]
        );
        hub.publish(Topic::Terminal, "p1", Audience::Everyone, &"echo:busy");
        assert_eq!(texts(client.drain())[0]["data"], "echo:busy");
    }

    #[test]
    fn status_coalesces_to_the_latest_value() {
        let hub = Hub::new(10, 10);
        let client = hub.register(1).unwrap();
        hub.subscribe(&client, &[Topic::JobProgress]);
        for i in 0..1000 {
            hub.publish(Topic::JobProgress, "job", Audience::Everyone, &i);
            hub.publish(Topic::JobProgress, "other", Audience::Everyone, &-i);
        }
        let got = texts(client.drain());
        assert_eq!(got.len(), 2);
        assert_eq!(got[0]["data"], 999);
        assert_eq!(got[1]["data"], -999);
        assert_eq!(hub.stats.coalesced.load(Ordering::Relaxed), 1998);
    }

    #[test]
    fn a_client_that_does_not_read_is_dropped_not_waited_for() {
        let hub = Hub::new(10, 5);
        let slow = hub.register(1).unwrap();
        let fast = hub.register(1).unwrap();
        hub.subscribe(&slow, &[Topic::Terminal]);
        hub.subscribe(&fast, &[Topic::Terminal]);
        for i in 0..100 {
            hub.publish(Topic::Terminal, "p", Audience::Everyone, &i);
            assert!(texts(fast.drain()).len() == 1);
        }
        assert!(matches!(slow.drain(), Drained::Overflowed));
        assert_eq!(hub.client_count(), 1);
        assert_eq!(hub.stats.dropped_slow.load(Ordering::Relaxed), 1);
        assert_eq!(hub.stats.max_event_queue.load(Ordering::Relaxed), 6);
    }

    #[test]
    fn private_messages_reach_only_their_user() {
        let hub = Hub::new(10, 10);
        let alice = hub.register(1).unwrap();
        let bob = hub.register(2).unwrap();
        hub.publish(Topic::Queue, "q", Audience::User(1), &"alice's queue");
        hub.subscribe(&alice, &[Topic::Queue, Topic::Notifications]);
        hub.subscribe(&bob, &[Topic::Queue, Topic::Notifications]);
        hub.publish(Topic::Notifications, "n", Audience::User(1), &"done");
        assert_eq!(texts(alice.drain()).len(), 2);
        assert!(texts(bob.drain()).is_empty());
    }

    #[test]
    fn owner_and_admin_messages_skip_other_users() {
        let hub = Hub::new(10, 10);
        let alice = hub.register(1).unwrap();
        let bob = hub.register(2).unwrap();
        let root = hub.register_user(3, true).unwrap();
        for c in [&alice, &bob, &root] {
            hub.subscribe(c, &[Topic::Queue]);
        }
        hub.publish(Topic::Queue, "7", Audience::UserAndAdmins(1), &"job 7");
        assert_eq!(texts(alice.drain()).len(), 1);
        assert!(texts(bob.drain()).is_empty());
        assert_eq!(texts(root.drain()).len(), 1);
        // And in the snapshot a late subscriber gets.
        let late_admin = hub.register_user(4, true).unwrap();
        let late_bob = hub.register(2).unwrap();
        hub.subscribe(&late_admin, &[Topic::Queue]);
        hub.subscribe(&late_bob, &[Topic::Queue]);
        assert_eq!(texts(late_admin.drain()).len(), 1);
        assert!(texts(late_bob.drain()).is_empty());
    }

    #[test]
    fn capacity_and_unsubscribe() {
        let hub = Hub::new(2, 10);
        let a = hub.register(1).unwrap();
        let _b = hub.register(1).unwrap();
        assert!(hub.register(1).is_none());
        hub.unregister(&a);
        assert!(hub.register(1).is_some());

        let c = Hub::new(1, 10);
        let client = c.register(1).unwrap();
        c.subscribe(&client, &[Topic::Queue, Topic::Terminal]);
        assert_eq!(client.subscriptions(), [Topic::Terminal, Topic::Queue]);
        c.publish(Topic::Queue, "q", Audience::Everyone, &1);
        c.unsubscribe(&client, &[Topic::Queue]);
        c.publish(Topic::Queue, "q", Audience::Everyone, &2);
        assert!(texts(client.drain()).is_empty());
    }
}
