//! Long-lived background tasks, supervised. A bare `tokio::spawn` loses a panic silently: the
//! request log would stop being written, or breakers stop being shared, with nothing in the
//! logs. `supervise` names the task, logs how it ended, and restarts it after a panic.

use std::future::Future;
use std::time::Duration;

/// How long a panicked task waits before it starts again (so a task that panics at once does
/// not spin).
const RESTART_DELAY: Duration = Duration::from_secs(1);

/// Runs `start()` on the current runtime and again after each panic; a normal return ends it.
pub fn supervise<F, Fut>(name: &'static str, mut start: F) -> tokio::task::JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            match tokio::spawn(start()).await {
                Ok(()) => {
                    tracing::debug!(task = name, "background task finished");
                    return;
                }
                Err(e) if e.is_panic() => {
                    tracing::error!(task = name, error = %e, "background task panicked; restarting");
                    tokio::time::sleep(RESTART_DELAY).await;
                }
                Err(e) => {
                    tracing::warn!(task = name, error = %e, "background task was cancelled");
                    return;
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn a_panicked_task_is_restarted_and_a_finished_one_is_not() {
        let runs = Arc::new(AtomicU32::new(0));
        let counter = runs.clone();
        let handle = supervise("test", move || {
            let counter = counter.clone();
            async move {
                if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                    panic!("first run fails");
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(5), handle)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }
}
