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
//! when a client subscribes, and the recent history of every key of the topics that keep one
//! ([`Topic::keeps_history`]: the terminal), sent as one `{"history": [data, ...]}` message per
//! key. The snapshot is queued under the same lock publishers take, so a subscriber sees each
//! line exactly once: in the history, or live after it. A page that (re)connects after a
//! command was echoed still shows the echo, as OctoPrint's terminal does.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::extract::ws::Utf8Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
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

    /// Whether a new subscriber gets the recent messages of each key (the terminal's last
    /// [`HISTORY_LINES`] lines). Notifications have none: they are announcements of the moment.
    pub fn keeps_history(self) -> bool {
        matches!(self, Topic::Terminal)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// Messages kept per key of a topic that [keeps history](Topic::keeps_history).
pub const HISTORY_LINES: usize = 300;
/// Bytes of `data` JSON kept per key at most: a printer that prints very long lines keeps
/// fewer of them, never more memory.
pub const HISTORY_BYTES: usize = 64 * 1024;

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
    history: HashMap<(Topic, String), History>,
    next_id: u64,
}

/// The recent messages of one key: each one's audience and `data` JSON, oldest first.
#[derive(Debug, Default)]
struct History {
    entries: VecDeque<(Audience, Box<RawValue>)>,
    bytes: usize,
}

/// The `data` of a history snapshot.
#[derive(Serialize)]
struct HistoryData<'a> {
    history: Vec<&'a RawValue>,
}

impl History {
    fn push(&mut self, audience: Audience, data: Box<RawValue>) {
        self.bytes += data.get().len();
        self.entries.push_back((audience, data));
        while self.entries.len() > HISTORY_LINES || self.bytes > HISTORY_BYTES {
            let Some((_, old)) = self.entries.pop_front() else {
                break;
            };
            self.bytes -= old.get().len();
        }
    }

    /// `{"topic", "key", "data": {"history": [...]}}` with the entries `admits` lets through,
    /// or `None` when there are none.
    fn message(
        &self,
        topic: Topic,
        key: &str,
        admits: impl Fn(Audience) -> bool,
    ) -> Option<Utf8Bytes> {
        let history: Vec<&RawValue> = self
            .entries
            .iter()
            .filter(|(audience, _)| admits(*audience))
            .map(|(_, data)| &**data)
            .collect();
        if history.is_empty() {
            return None;
        }
        let data = HistoryData { history };
        let text = serde_json::to_string(&Envelope {
            topic,
            key,
            data: &data,
        });
        // Only already-serialised JSON goes in: this cannot fail.
        text.ok().map(Utf8Bytes::from)
    }
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

    /// Subscribes a client to topics and queues the current value of each status key and the
    /// history of each key of the topics that keep one.
    pub fn subscribe(&self, client: &ClientQueue, topics: &[Topic]) {
        let inner = lock(&self.inner);
        let mut state = lock(&client.state);
        for &topic in topics {
            state.subscriptions |= topic.bit();
        }
        let admits = |audience: Audience| audience.admits(client.user_id, client.admin);
        for ((topic, key), (audience, message)) in &inner.latest {
            if topics.contains(topic) && admits(*audience) {
                state.put_status(*topic, key, message.clone());
            }
        }
        for ((topic, key), history) in &inner.history {
            if topics.contains(topic) {
                if let Some(message) = history.message(*topic, key, admits) {
                    state.events.push_back(message);
                }
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
    /// client: the cost is one serialisation (two for a topic that keeps history) plus a short
    /// lock per subscribed client.
    pub fn publish<T: Serialize>(&self, topic: Topic, key: &str, audience: Audience, data: &T) {
        let serialised = serde_json::to_string(&Envelope { topic, key, data }).and_then(|text| {
            let kept = topic
                .keeps_history()
                .then(|| serde_json::value::to_raw_value(data))
                .transpose()?;
            Ok((text, kept))
        });
        let (text, kept) = match serialised {
            Ok(texts) => texts,
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
        if let Some(data) = kept {
            inner
                .history
                .entry((topic, key.to_owned()))
                .or_default()
                .push(audience, data);
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

    /// Forgets the latest value of a status key, or the history of a key (a printer was
    /// removed, a job finished).
    pub fn forget(&self, topic: Topic, key: &str) {
        let mut inner = lock(&self.inner);
        let slot = (topic, key.to_owned());
        inner.latest.remove(&slot);
        inner.history.remove(&slot);
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
        hub.publish(Topic::Notifications, "n", Audience::Everyone, &"done");
        let client = hub.register(1).unwrap();
        assert!(
            texts(client.drain()).is_empty(),
            "nothing before subscribing"
        );
        hub.subscribe(&client, &[Topic::Temperatures, Topic::Notifications]);
        let got = texts(client.drain());
        assert_eq!(
            got,
            [json!({"topic": "temperatures", "key": "p1", "data": {"t": 21}})],
            "the latest status, no past event"
        );
        hub.subscribe(&client, &[Topic::Terminal]);
        hub.publish(Topic::Terminal, "p1", Audience::Everyone, &"echo:busy");
        assert_eq!(texts(client.drain())[0]["data"], "echo:busy");
    }

    #[test]
    fn terminal_history_then_live_lines_each_exactly_once() {
        let hub = Hub::new(10, 10);
        let line = |text: &str| json!({ "line": text });
        hub.publish(Topic::Terminal, "p1", Audience::Everyone, &line("> M105"));
        hub.publish(Topic::Terminal, "p1", Audience::Everyone, &line("ok T:20"));
        hub.publish(Topic::Terminal, "p2", Audience::Everyone, &line("start"));
        hub.publish(Topic::Notifications, "n", Audience::Everyone, &"done");
        let client = hub.register(1).unwrap();
        hub.subscribe(&client, &[Topic::Terminal, Topic::Notifications]);
        hub.publish(Topic::Terminal, "p1", Audience::Everyone, &line("> G28"));
        let mut got = texts(client.drain());
        // One history message per key (in no particular order), then the live line.
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(
            got.pop().unwrap(),
            json!({"topic": "terminal", "key": "p1", "data": line("> G28")})
        );
        got.sort_by_key(|m| m["key"].as_str().unwrap().to_owned());
        assert_eq!(
            got,
            [
                json!({"topic": "terminal", "key": "p1", "data": {"history": [line("> M105"), line("ok T:20")]}}),
                json!({"topic": "terminal", "key": "p2", "data": {"history": [line("start")]}}),
            ]
        );
        // A removed printer's lines are forgotten.
        hub.forget(Topic::Terminal, "p1");
        let late = hub.register(1).unwrap();
        hub.subscribe(&late, &[Topic::Terminal]);
        assert_eq!(texts(late.drain()).len(), 1, "only p2's history");
    }

    #[test]
    fn terminal_history_is_bounded_by_lines_and_bytes() {
        let hub = Hub::new(10, 10);
        for i in 0..HISTORY_LINES + 50 {
            hub.publish(Topic::Terminal, "p", Audience::Everyone, &i);
        }
        let client = hub.register(1).unwrap();
        hub.subscribe(&client, &[Topic::Terminal]);
        let got = texts(client.drain());
        let history = got[0]["data"]["history"].as_array().unwrap();
        assert_eq!(history.len(), HISTORY_LINES);
        assert_eq!(history[0], 50, "the oldest lines went first");
        assert_eq!(history[HISTORY_LINES - 1], HISTORY_LINES + 49);

        let long = "x".repeat(HISTORY_BYTES / 4);
        for _ in 0..10 {
            hub.publish(Topic::Terminal, "long", Audience::Everyone, &long);
        }
        let late = hub.register(1).unwrap();
        hub.subscribe(&late, &[Topic::Terminal]);
        let got = texts(late.drain());
        let long_history = got.iter().find(|m| m["key"] == "long").unwrap();
        let kept = long_history["data"]["history"].as_array().unwrap().len();
        assert_eq!(kept, 3, "four quoted quarters exceed the byte budget");
    }

    #[test]
    fn terminal_history_respects_the_audience() {
        let hub = Hub::new(10, 10);
        hub.publish(Topic::Terminal, "p", Audience::User(1), &"alice's line");
        hub.publish(Topic::Terminal, "p", Audience::Everyone, &"everyone's line");
        let bob = hub.register(2).unwrap();
        hub.subscribe(&bob, &[Topic::Terminal]);
        let got = texts(bob.drain());
        assert_eq!(got[0]["data"]["history"], json!(["everyone's line"]));
        let carol = hub.register(3).unwrap();
        hub.publish(Topic::Terminal, "q", Audience::User(1), &"private");
        hub.subscribe(&carol, &[Topic::Terminal]);
        assert_eq!(
            texts(carol.drain()).len(),
            1,
            "no message for a key with nothing visible"
        );
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
