//! The event bus behind `/v2/events`: Marathon event types as server-sent events.

use std::sync::Arc;

use serde_json::{Map, Value};
use tokio::sync::broadcast;

/// One event: its `eventType` and its JSON (which carries `eventType` and `timestamp`).
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub kind: String,
    pub data: String,
}

/// Buffered events per subscriber; a slower consumer is disconnected (as Marathon's
/// `--event_stream_max_outstanding_messages`, default 1024).
pub const EVENT_BUFFER: usize = 1024;

#[derive(Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Arc<Event>>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus::new()
    }
}

impl EventBus {
    pub fn new() -> EventBus {
        let (tx, _) = broadcast::channel(EVENT_BUFFER);
        EventBus { tx }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    pub fn has_subscribers(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    /// Publishes `kind` with the fields `build` returns (only built when someone listens).
    pub fn publish(&self, kind: &str, build: impl FnOnce() -> Value) {
        if let Some(ev) = self.event(kind, build) {
            self.send(ev);
        }
    }

    /// Sends an event built by [`EventBus::event`].
    pub fn send(&self, ev: Arc<Event>) {
        let _ = self.tx.send(ev);
    }

    /// Builds `kind` with the fields `build` returns, to be sent later (once the change it
    /// reports is stored); `None` when nobody listens.
    pub fn event(&self, kind: &str, build: impl FnOnce() -> Value) -> Option<Arc<Event>> {
        if !self.has_subscribers() {
            return None;
        }
        let mut obj = match build() {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        obj.insert("eventType".into(), Value::String(kind.to_string()));
        if !obj.contains_key("timestamp") {
            obj.insert(
                "timestamp".into(),
                Value::String(crate::model::iso(dcos_types::now_secs())),
            );
        }
        let data = Value::Object(obj).to_string();
        Some(Arc::new(Event {
            kind: kind.to_string(),
            data,
        }))
    }
}
