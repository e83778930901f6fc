//! The line between a generator's callers and its worker threads, with affinity.
//!
//! Each worker owns one llama.cpp context, and a context keeps the evaluation of the prompt it
//! served last. A conversation's next request shares its earlier turns with that prompt, so it
//! should go to that worker: a job goes to the idle worker whose remembered last job scores
//! highest against it (the generator scores the leading chat turns it would reuse there, less
//! the ones it would throw away), and among equals to the one idle longest, which leaves the
//! contexts used most recently as they are. With no worker idle, jobs wait in arrival order and
//! the next worker to finish takes the oldest.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};

pub(super) struct Pool<J, M> {
    state: Mutex<State<J, M>>,
    wake: Condvar,
}

struct State<J, M> {
    waiting: VecDeque<J>,
    workers: Vec<Worker<J, M>>,
    /// Workers whose thread is still running.
    live: usize,
    closed: bool,
    /// Counts finished jobs, to order idle workers by how long they have been idle.
    finished: u64,
}

struct Worker<J, M> {
    /// The job handed to this worker, not yet taken.
    job: Option<J>,
    /// `Some(n)`: idle since the n-th finished job.
    idle_since: Option<u64>,
    /// What this worker's context holds, as its last job described it.
    memory: M,
}

impl<J, M: Default> Pool<J, M> {
    pub fn new(workers: usize) -> Self {
        let workers = (0..workers)
            .map(|_| Worker {
                job: None,
                idle_since: Some(0),
                memory: M::default(),
            })
            .collect::<Vec<_>>();
        Self {
            state: Mutex::new(State {
                live: workers.len(),
                waiting: VecDeque::new(),
                workers,
                closed: false,
                finished: 0,
            }),
            wake: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<J, M>> {
        // Workers never panic while holding the lock; if one did, the state is still whole.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Hands `job` to the idle worker whose memory scores highest for it (ties: the one idle
    /// longest) or queues it; gives it back when no worker runs.
    pub fn submit<K: Ord>(&self, job: J, score: impl Fn(&J, &M) -> K) -> Result<(), J> {
        let mut state = self.lock();
        if state.closed || state.live == 0 {
            return Err(job);
        }
        let best = state
            .workers
            .iter()
            .enumerate()
            .filter_map(|(index, worker)| worker.idle_since.map(|since| (index, since, worker)))
            .max_by_key(|&(index, since, worker)| {
                use std::cmp::Reverse;
                (score(&job, &worker.memory), Reverse(since), Reverse(index))
            })
            .map(|(index, _, _)| index);
        match best.and_then(|index| state.workers.get_mut(index)) {
            Some(worker) => {
                worker.job = Some(job);
                worker.idle_since = None;
                self.wake.notify_all();
            }
            None => state.waiting.push_back(job),
        }
        Ok(())
    }

    /// The next job for worker `index`, waiting for one; `None` once the pool is closed.
    pub fn next(&self, index: usize) -> Option<J> {
        let mut state = self.lock();
        loop {
            if let Some(job) = state.workers.get_mut(index).and_then(|w| w.job.take()) {
                return Some(job);
            }
            if state.closed {
                return None;
            }
            state = self
                .wake
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    /// Worker `index` finished a job and its context now holds what `memory` describes; it
    /// takes the oldest waiting job, if any.
    pub fn finished(&self, index: usize, memory: M) {
        let mut state = self.lock();
        state.finished += 1;
        let (finished, next) = (state.finished, state.waiting.pop_front());
        if let Some(worker) = state.workers.get_mut(index) {
            worker.memory = memory;
            match next {
                Some(job) => worker.job = Some(job),
                None => worker.idle_since = Some(finished),
            }
        }
    }

    /// Worker `index`'s thread ends (closed pool, failed start, or a panic): it takes no more
    /// jobs, and once none runs, waiting jobs are dropped, which ends their callers' streams.
    pub fn leave(&self, index: usize) {
        let mut state = self.lock();
        state.live = state.live.saturating_sub(1);
        let orphan = state.workers.get_mut(index).and_then(|worker| {
            worker.idle_since = None;
            worker.job.take()
        });
        if let Some(job) = orphan {
            // Handed over but never taken: to another idle worker, or first in line.
            match state.workers.iter_mut().find(|w| w.idle_since.is_some()) {
                Some(worker) => {
                    worker.job = Some(job);
                    worker.idle_since = None;
                    self.wake.notify_all();
                }
                None => state.waiting.push_front(job),
            }
        }
        if state.live == 0 {
            state.waiting.clear();
        }
    }

    /// No more jobs: workers stop once the jobs already waiting are served.
    pub fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::Pool;

    #[test]
    fn a_job_goes_to_the_idle_worker_that_served_its_beginning() {
        // Jobs and memories are strings; a worker scores the length of the shared prefix.
        let shared = |job: &&str, memory: &String| {
            memory
                .chars()
                .zip(job.chars())
                .take_while(|(a, b)| a == b)
                .count()
        };
        let pool: Pool<&str, String> = Pool::new(2);
        pool.submit("conversation: hi", shared).unwrap();
        // Both idle and unscored: the one idle longest, worker 0 (ties go to the lowest index).
        assert_eq!(pool.next(0), Some("conversation: hi"));
        pool.finished(0, "conversation: hi".into());
        // Unrelated work goes to the worker idle longest, not the conversation's.
        pool.submit("other", shared).unwrap();
        assert_eq!(pool.next(1), Some("other"));
        pool.finished(1, "other".into());
        // The conversation goes back to the worker that holds its beginning.
        let next = "conversation: hi / and then?";
        pool.submit(next, shared).unwrap();
        assert_eq!(pool.next(0), Some(next));
    }

    #[test]
    fn with_every_worker_busy_jobs_wait_in_order() {
        let pool: Pool<u32, String> = Pool::new(1);
        for job in [1, 2, 3] {
            pool.submit(job, |_, _| 0).unwrap();
        }
        assert_eq!(pool.next(0), Some(1));
        pool.finished(0, String::new());
        assert_eq!(pool.next(0), Some(2));
        pool.finished(0, String::new());
        assert_eq!(pool.next(0), Some(3));
        pool.close();
        pool.finished(0, String::new());
        assert_eq!(pool.next(0), None, "closed");
    }

    #[test]
    fn without_a_running_worker_a_job_is_given_back() {
        let pool: Pool<u32, String> = Pool::new(1);
        pool.leave(0);
        assert_eq!(pool.submit(7, |_, _| 0), Err(7));
        let closed: Pool<u32, String> = Pool::new(1);
        closed.close();
        assert_eq!(closed.submit(7, |_, _| 0), Err(7));
    }
}
