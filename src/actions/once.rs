//! Values a run finds or makes once and shares between its steps and concurrent items (a
//! VPC's isolation group): the first item to ask does the work, the others wait for its
//! answer, so forty items in one VPC never race to create the same group. A failed attempt
//! is not remembered: the next item tries again. A value may be of any type (a VPC's group
//! id, the snapshots a case held when a step began); its key says which.

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use super::ActionError;

#[derive(Default)]
pub struct OnceValues {
    cells: Mutex<HashMap<String, Arc<dyn Any + Send + Sync>>>,
}

impl OnceValues {
    /// The value for `key`, from `init` the first time it succeeds.
    pub async fn get_or_try_init<V, F, Fut>(&self, key: &str, init: F) -> Result<V, ActionError>
    where
        V: Clone + Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, ActionError>>,
    {
        let cell = self
            .cells
            .lock()
            .expect("once values")
            .entry(key.to_owned())
            .or_insert_with(|| Arc::new(OnceCell::<V>::new()))
            .clone();
        let cell = cell.downcast::<OnceCell<V>>().map_err(|_| {
            ActionError::Failed(format!(
                "internal: the run's value `{key}` was asked for as two different types"
            ))
        })?;
        cell.get_or_try_init(init).await.cloned()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn concurrent_askers_share_one_successful_init_and_a_failure_is_retried() {
        let values = Arc::new(OnceValues::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let failed: Result<String, _> = values
            .get_or_try_init("vpc-1/isolation", || async {
                Err(ActionError::Failed("throttled".into()))
            })
            .await;
        assert!(failed.is_err());
        let askers: Vec<_> = (0..40)
            .map(|_| {
                let values = values.clone();
                let calls = calls.clone();
                tokio::spawn(async move {
                    values
                        .get_or_try_init("vpc-1/isolation", || async move {
                            calls.fetch_add(1, Ordering::SeqCst);
                            tokio::task::yield_now().await;
                            Ok("sg-1".to_owned())
                        })
                        .await
                        .unwrap()
                })
            })
            .collect();
        for asker in askers {
            assert_eq!(asker.await.unwrap(), "sg-1");
        }
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "made once, after the failure"
        );
        let other = values
            .get_or_try_init("vpc-2/isolation", || async { Ok("sg-2".to_owned()) })
            .await
            .unwrap();
        assert_eq!(other, "sg-2", "keys are separate");
    }
}
