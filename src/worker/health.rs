//! What a worker has done and holds, for its health line (every minute by default).

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;
use serde_json::{Value, json};

#[derive(Debug, Default, Clone, Serialize)]
pub struct Counts {
    pub received: u64,
    /// Done: their runs are durable (and sealed), or there was nothing to do.
    pub deleted: u64,
    /// Left to come back: a run failed or the message is malformed (the redrive policy moves it
    /// to the dead-letter queue in the end).
    pub failed: u64,
    /// Made visible again at shutdown, for another worker.
    pub released: u64,
    pub malformed: u64,
}

/// Counters and the messages in flight (id → sent at, seconds since the epoch).
#[derive(Default)]
pub struct Health {
    counts: Mutex<Counts>,
    in_flight: Mutex<BTreeMap<String, Option<u64>>>,
}

impl Health {
    pub fn count(&self, update: impl FnOnce(&mut Counts)) {
        if let Ok(mut counts) = self.counts.lock() {
            update(&mut counts);
        }
    }

    pub fn started(&self, id: &str, sent_at: Option<u64>) {
        if let Ok(mut flying) = self.in_flight.lock() {
            flying.insert(id.to_owned(), sent_at);
        }
    }

    pub fn ended(&self, id: &str) {
        if let Ok(mut flying) = self.in_flight.lock() {
            flying.remove(id);
        }
    }

    pub fn counts(&self) -> Counts {
        self.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// The health line: counts, runs in flight, the oldest message's age in seconds.
    pub fn line(&self) -> Value {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let (in_flight, oldest) = self
            .in_flight
            .lock()
            .map(|f| {
                let oldest = f
                    .values()
                    .flatten()
                    .min()
                    .map(|sent| now.saturating_sub(*sent));
                (f.len(), oldest)
            })
            .unwrap_or_default();
        json!({
            "log": "health",
            "messages": self.counts(),
            "in_flight": in_flight,
            // Runs' leases in the shared table (none without --journal dynamodb://…).
            "leases_held": crate::table::lease::held(),
            "oldest_message_age_s": oldest,
        })
    }
}
