//! The worker's loop: receive as many messages as there are free run slots, hand each to
//! `dispatch`'s code in its own task, keep it invisible while its runs live, and delete it only
//! once they are durable (and sealed). On stop (SIGTERM): no new messages, runs in flight stop
//! at their next step boundary (an interface between its two isolation moves gets its second
//! first), their messages are made visible again for another worker, and the loop returns.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::handle::{Disposition, Incoming, handle, send_resumes};
use super::health::{Counts, Health};
use super::log::Sink;
use super::queue::{MAX_INVISIBLE, Queue, Received};
use crate::check::LoadedRunbook;
use crate::engine::{Mode, Settings};

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Runs at once (one message each).
    pub concurrency: usize,
    /// How long a received message stays invisible; renewed at half of it while its runs live.
    pub visibility: Duration,
    /// Long-poll wait (at most 20 s).
    pub wait: Duration,
    pub health_every: Duration,
    /// How long one message is held before its runs are stopped at their next step boundary
    /// and carried on by resume requests (SQS keeps a message invisible 12 hours at most).
    pub hold: Duration,
    /// How long a resume request waits in the queue before a worker takes it (SQS: ≤ 15 min).
    pub resume_delay: Duration,
}

/// Serves until `stop` turns true; returns what it did.
pub async fn serve(
    queue: Queue,
    config: ServeConfig,
    runbooks: Arc<Vec<LoadedRunbook>>,
    settings: Settings,
    mode: Mode,
    mut stop: watch::Receiver<bool>,
    log: Sink,
) -> Counts {
    let health = Arc::new(Health::default());
    let slots = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    log(json!({"log": "serving", "queue_url": queue.url, "concurrency": config.concurrency}));
    // The health line keeps its own time. Were it a branch of the select below, each tick
    // would cancel a receive in flight: SQS may have answered it already, and the messages
    // it handed out would come back only after their visibility timeout, a receive spent
    // (two such losses sent a finding to the dead-letter queue).
    let health_lines = tokio::spawn({
        let (health, log, every) = (health.clone(), log.clone(), config.health_every);
        async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                log(health.line());
            }
        }
    });
    while !*stop.borrow() {
        let free = slots.available_permits();
        if free == 0 {
            tokio::select! {
                _ = tasks.join_next() => {}
                _ = stop.changed() => {}
            }
            continue;
        }
        tokio::select! {
            received = queue.receive(free, config.wait, config.visibility) => match received {
                Ok(messages) => {
                    for received in messages {
                        health.count(|c| c.received += 1);
                        let slot = slots.clone().acquire_owned().await.expect("never closed");
                        let job = Job {
                            queue: queue.clone(),
                            config: config.clone(),
                            runbooks: runbooks.clone(),
                            settings: settings.clone(),
                            mode,
                            health: health.clone(),
                            log: log.clone(),
                            stop: stop.clone(),
                        };
                        tasks.spawn(async move {
                            job.handle(received).await;
                            drop(slot);
                        });
                    }
                }
                Err(error) => {
                    log(json!({"log": "receive_failed", "error": error}));
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = stop.changed() => {}
                    }
                }
            },
            _ = stop.changed() => {}
        }
        while tasks.try_join_next().is_some() {}
    }
    health_lines.abort();
    // Runs in flight stop at their next step boundary; their messages are released.
    settings.interrupted.store(true, Ordering::SeqCst);
    log(json!({"log": "stopping", "in_flight": tasks.len()}));
    while tasks.join_next().await.is_some() {}
    log(health.line());
    health.counts()
}

/// One message's handling, with what it needs.
struct Job {
    queue: Queue,
    config: ServeConfig,
    runbooks: Arc<Vec<LoadedRunbook>>,
    settings: Settings,
    mode: Mode,
    health: Arc<Health>,
    log: Sink,
    stop: watch::Receiver<bool>,
}

impl Job {
    async fn handle(self, received: Received) {
        let id = received.id.clone();
        self.health.started(&id, received.sent_at);
        let keeper = tokio::spawn(keep_invisible(
            self.queue.clone(),
            received.receipt.clone(),
            self.config.visibility,
            self.log.clone(),
            id.clone(),
        ));
        let incoming = Incoming {
            id: &id,
            body: &received.body,
            sender_id: received.sender_id.as_deref(),
        };
        // This message's runs stop at their next step boundary when the worker stops, or when
        // the message has been held as long as SQS lets it stay invisible.
        let interrupted = Arc::new(AtomicBool::new(false));
        let watcher = tokio::spawn(stop_after(
            self.stop.clone(),
            self.config.hold,
            interrupted.clone(),
        ));
        let settings = Settings {
            interrupted,
            ..self.settings.clone()
        };
        let handled = handle(incoming, &self.runbooks, self.mode, &settings, &self.log).await;
        watcher.abort();
        let resume_delay = handled.resume_delay(self.config.resume_delay);
        let (disposition, outcomes) = (handled.disposition, handled.outcomes);
        if matches!(&disposition, Disposition::Keep(why) if why.starts_with("malformed")) {
            self.health.count(|c| c.malformed += 1);
        }
        keeper.abort();
        // Held too long: its runs go on from resume requests, and the message is done.
        let carried_on = !*self.stop.borrow()
            && !handled.carry_on.is_empty()
            && send_resumes(&self.queue, &handled.carry_on, resume_delay, &self.log).await;
        let disposition = if carried_on {
            Disposition::Delete
        } else {
            disposition
        };
        let done = match &disposition {
            Disposition::Delete => match self.queue.delete(&received.receipt).await {
                Ok(()) => {
                    self.health.count(|c| c.deleted += 1);
                    "deleted".to_owned()
                }
                Err(error) => {
                    self.health.count(|c| c.failed += 1);
                    format!("not deleted ({error}); it comes back and is a duplicate then")
                }
            },
            Disposition::Keep(_) if *self.stop.borrow() => {
                match self.queue.release(&received.receipt).await {
                    Ok(()) => self.health.count(|c| c.released += 1),
                    Err(_) => self.health.count(|c| c.failed += 1),
                }
                "released".to_owned()
            }
            Disposition::Keep(_) => {
                self.health.count(|c| c.failed += 1);
                "kept".to_owned()
            }
        };
        let why = match disposition {
            Disposition::Keep(why) => Some(why),
            Disposition::Delete => None,
        };
        (self.log)(json!({
            "log": "message", "message_id": id, "receive_count": received.receive_count,
            "disposition": done, "why": why, "outcomes": outcomes,
        }));
        self.health.ended(&id);
    }
}

/// Raises `interrupted` when the worker stops or after `hold`, whichever comes first.
async fn stop_after(mut stop: watch::Receiver<bool>, hold: Duration, interrupted: Arc<AtomicBool>) {
    let stopped = async {
        while !*stop.borrow() {
            if stop.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = stopped => {}
        () = tokio::time::sleep(hold) => {}
    }
    interrupted.store(true, Ordering::SeqCst);
}

/// Renews a message's invisibility at half its timeout while its runs live, up to SQS's 12
/// hours; past that the message becomes visible again and a later delivery finds the run
/// (live: a duplicate; ended: resumed).
async fn keep_invisible(
    queue: Queue,
    receipt: String,
    visibility: Duration,
    log: Sink,
    id: String,
) {
    let received = Instant::now();
    let every = (visibility / 2).max(Duration::from_secs(1));
    loop {
        tokio::time::sleep(every).await;
        if received.elapsed() + visibility > MAX_INVISIBLE {
            log(json!({"log": "visibility_limit", "message_id": id}));
            return;
        }
        if let Err(error) = queue.keep(&receipt, visibility).await {
            log(json!({"log": "keep_failed", "message_id": id, "error": error}));
        }
    }
}
