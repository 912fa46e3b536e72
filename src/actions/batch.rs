//! Concurrent reads of one kind coalesced into one call. In an outbreak forty items ask
//! "describe instance i-…" within the same few milliseconds; the first opens a batch, the
//! others join it for [`WINDOW`] (or until it holds [`FULL`] keys), then one call answers them
//! all and each gets its own part back. The call is journaled once, by the item that opened
//! the batch, with every key it covered as targets. Answers are not kept: a later read makes a
//! new call, because every reader in a containment run reads state the run itself changes.

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

use super::ActionError;

/// How long a batch of a fanned-out step waits for more keys after its first. Items drift
/// apart after their first call (an emulator answers one request at a time, AWS at its own
/// pace), so a short window catches few of them: measured on 48 instances with the fleet
/// runbook, 5 ms left 27 calls per instance, 25 ms 20, 50 ms 17 (and the run took 38 s
/// instead of 62). A step that does not fan out does not wait at all.
pub const WINDOW: Duration = Duration::from_millis(50);

/// A batch this full goes at once (EC2 takes at most 200 values in one filter; a fetch with
/// more keys splits them itself).
pub const FULL: usize = 200;

type Answer<V> = Result<Option<V>, ActionError>;

/// The run's open batches, one per family (an operation and whatever narrows it, such as the
/// group in "interfaces of these instances in group G").
#[derive(Default)]
pub struct Batches {
    families: Mutex<HashMap<String, Arc<dyn Any + Send + Sync>>>,
}

struct Family<V> {
    open: Mutex<Option<Open<V>>>,
    opened: std::sync::atomic::AtomicU64,
}

struct Open<V> {
    id: u64,
    keys: Vec<String>,
    waiters: Vec<(String, oneshot::Sender<Answer<V>>)>,
    /// Hands the batch to the task that opened it when it fills before its window ends.
    full: Option<oneshot::Sender<Open<V>>>,
}

impl Batches {
    /// The value for `key` in `family`, from one `fetch` of every key asked for meanwhile
    /// (`None`: the answer did not include it). `fetch` gets at most [`FULL`] keys and runs as
    /// its own task, so an asker dropped by its step's timeout does not take the others'
    /// answers with it.
    pub async fn get<V, F, Fut>(
        &self,
        family: &str,
        key: &str,
        window: Duration,
        fetch: F,
    ) -> Answer<V>
    where
        V: Clone + Send + Sync + 'static,
        F: FnOnce(Vec<String>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<HashMap<String, V>, ActionError>> + Send + 'static,
    {
        let family = self.family::<V>(family);
        let (sender, answer) = oneshot::channel();
        let opened = {
            let mut open = family.open.lock().expect("batch");
            match open.as_mut() {
                Some(batch) => {
                    if !batch.keys.iter().any(|k| k == key) {
                        batch.keys.push(key.to_owned());
                    }
                    batch.waiters.push((key.to_owned(), sender));
                    if batch.keys.len() >= FULL {
                        let mut full = open.take().expect("the open batch");
                        if let Some(handoff) = full.full.take() {
                            let _ = handoff.send(full);
                        }
                    }
                    None
                }
                None => {
                    let id = family
                        .opened
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let (handoff, handed) = oneshot::channel();
                    *open = Some(Open {
                        id,
                        keys: vec![key.to_owned()],
                        waiters: vec![(key.to_owned(), sender)],
                        full: Some(handoff),
                    });
                    Some((id, handed))
                }
            }
        };
        if let Some((id, mut handed)) = opened {
            let family = family.clone();
            tokio::spawn(async move {
                let batch = tokio::select! {
                    _ = tokio::time::sleep(window) => {
                        let mine = {
                            let mut open = family.open.lock().expect("batch");
                            match open.as_ref() {
                                Some(batch) if batch.id == id => open.take(),
                                _ => None,
                            }
                        };
                        match mine {
                            Some(batch) => batch,
                            // It filled meanwhile and is on its way.
                            None => match handed.await {
                                Ok(batch) => batch,
                                Err(_) => return,
                            },
                        }
                    }
                    full = &mut handed => match full {
                        Ok(batch) => batch,
                        Err(_) => return,
                    },
                };
                let result = fetch(batch.keys).await;
                for (key, waiter) in batch.waiters {
                    let answer = match &result {
                        Ok(values) => Ok(values.get(&key).cloned()),
                        Err(error) => Err(error.copy_for_another_asker()),
                    };
                    let _ = waiter.send(answer);
                }
            });
        }
        answer
            .await
            .unwrap_or_else(|_| Err(ActionError::Failed("a batched read was abandoned".into())))
    }

    fn family<V: Send + Sync + 'static>(&self, name: &str) -> Arc<Family<V>> {
        let any = self
            .families
            .lock()
            .expect("batches")
            .entry(name.to_owned())
            .or_insert_with(|| {
                Arc::new(Family::<V> {
                    open: Mutex::new(None),
                    opened: Default::default(),
                })
            })
            .clone();
        any.downcast::<Family<V>>()
            .expect("one value type per batch family")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Counts calls in `calls` and the largest batch a fetch got in `calls[1]`.
    async fn ask(
        batches: Arc<Batches>,
        calls: Arc<[AtomicUsize; 2]>,
        key: String,
    ) -> Answer<usize> {
        batches
            .get("len", &key, WINDOW, move |keys: Vec<String>| async move {
                calls[0].fetch_add(1, Ordering::SeqCst);
                calls[1].fetch_max(keys.len(), Ordering::SeqCst);
                Ok(keys
                    .into_iter()
                    .filter(|k| k != "absent")
                    .map(|k| (k.clone(), k.len()))
                    .collect())
            })
            .await
    }

    #[tokio::test]
    async fn concurrent_askers_share_one_call_and_each_gets_its_own_answer() {
        let batches = Arc::new(Batches::default());
        let calls: Arc<[AtomicUsize; 2]> = Arc::default();
        let keys = ["a", "bb", "ccc", "bb", "absent"];
        let askers: Vec<_> = keys
            .iter()
            .map(|k| tokio::spawn(ask(batches.clone(), calls.clone(), (*k).to_owned())))
            .collect();
        let mut answers = Vec::new();
        for asker in askers {
            answers.push(asker.await.unwrap().unwrap());
        }
        assert_eq!(answers, vec![Some(1), Some(2), Some(3), Some(2), None]);
        assert_eq!(
            calls[0].load(Ordering::SeqCst),
            1,
            "one call for five askers"
        );
        // A later ask is a new call: nothing is cached.
        ask(batches.clone(), calls.clone(), "a".into())
            .await
            .unwrap();
        assert_eq!(calls[0].load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_full_batch_goes_at_once_and_the_next_opens_another() {
        let batches = Arc::new(Batches::default());
        let calls: Arc<[AtomicUsize; 2]> = Arc::default();
        let askers: Vec<_> = (0..FULL + 10)
            .map(|i| tokio::spawn(ask(batches.clone(), calls.clone(), format!("k{i}"))))
            .collect();
        for asker in askers {
            assert!(asker.await.unwrap().unwrap().is_some());
        }
        assert_eq!(
            calls[0].load(Ordering::SeqCst),
            2,
            "one full batch, then the rest"
        );
        assert_eq!(
            calls[1].load(Ordering::SeqCst),
            FULL,
            "no fetch gets more than FULL keys"
        );
    }

    #[tokio::test]
    async fn a_failed_call_fails_every_asker_with_its_class() {
        let batches = Arc::new(Batches::default());
        let askers: Vec<_> = (0..3)
            .map(|i| {
                let batches = batches.clone();
                tokio::spawn(async move {
                    batches
                        .get("fails", &format!("k{i}"), WINDOW, |_keys| async {
                            Err::<HashMap<String, usize>, _>(ActionError::from(
                                crate::aws::AwsError {
                                    service: "ec2",
                                    operation: "DescribeInstances",
                                    class: crate::aws::ErrorClass::Throttling,
                                    code: Some("RequestLimitExceeded".into()),
                                    message: "slow down".into(),
                                    request_id: None,
                                    source: None,
                                },
                            ))
                        })
                        .await
                })
            })
            .collect();
        for asker in askers {
            let error = asker.await.unwrap().unwrap_err();
            assert!(error.is_retryable(), "{error}");
        }
    }
}
