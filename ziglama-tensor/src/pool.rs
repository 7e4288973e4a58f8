//! A persistent thread pool with cheap per-operation synchronisation.
//!
//! A model runs hundreds of matrix products per token, so the cost of handing one to the
//! workers matters. Workers stay alive between operations, spin briefly waiting for the next
//! one (so back-to-back operations cost a few atomic operations) and then park on a condition
//! variable (so an idle pool costs no CPU). The calling thread works too: a pool of `n`
//! threads spawns `n - 1` workers.
//!
//! Tasks are claimed with a compare-and-swap on one word holding the operation's generation
//! and the next task index, so a worker that wakes late can never run a task of an operation
//! that has finished: the closure is only called for a task claimed under the generation it
//! belongs to, and [`ThreadPool::run`] returns only when every task has finished.

use std::any::Any;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// How many times an idle worker polls for new work before parking.
const SPIN_LIMIT: u32 = 1 << 16;

type Job = dyn Fn(usize) + Sync;

/// The current operation, as the workers see it.
#[derive(Clone, Copy)]
struct Slot {
    generation: u32,
    n_tasks: u32,
    job: *const Job,
}

// SAFETY: `job` points to a `Sync` closure, so sharing the pointer across threads is sound;
// when it may be dereferenced is governed by the generation protocol in `claim`.
unsafe impl Send for Slot {}

struct Shared {
    /// Generation (high 32 bits) and next unclaimed task index (low 32 bits).
    cursor: AtomicU64,
    /// The generation most recently published, for workers to poll without the lock.
    latest: AtomicU64,
    slot: Mutex<Slot>,
    wake: Condvar,
    done: AtomicUsize,
    panic: Mutex<Option<Box<dyn Any + Send>>>,
    shutdown: AtomicBool,
}

impl Shared {
    /// Claims the next task of `slot`'s operation, if that operation is still current and has
    /// tasks left.
    fn claim(&self, slot: &Slot) -> Option<usize> {
        let mut cur = self.cursor.load(Ordering::Acquire);
        loop {
            let (generation, index) = ((cur >> 32) as u32, cur as u32);
            if generation != slot.generation || index >= slot.n_tasks {
                return None;
            }
            match self.cursor.compare_exchange_weak(
                cur,
                cur + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(index as usize),
                Err(now) => cur = now,
            }
        }
    }

    /// Runs tasks of `slot`'s operation until none are left to claim.
    fn work(&self, slot: &Slot) {
        while let Some(i) = self.claim(slot) {
            // SAFETY: task `i` was claimed under `slot.generation`, so that operation has not
            // finished: `ThreadPool::run` is still waiting for this task's `done` increment and
            // keeps the closure behind `slot.job` alive until then.
            let job = unsafe { &*slot.job };
            if let Err(p) = catch_unwind(AssertUnwindSafe(|| job(i))) {
                let mut first = self.panic.lock().unwrap_or_else(|e| e.into_inner());
                first.get_or_insert(p);
            }
            self.done.fetch_add(1, Ordering::AcqRel);
        }
    }
}

/// A fixed set of threads that run data-parallel operations together with the caller.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use ziglama_tensor::ThreadPool;
/// let pool = ThreadPool::new(2);
/// let sum = AtomicUsize::new(0);
/// pool.run(100, |i| {
///     sum.fetch_add(i, Ordering::Relaxed);
/// });
/// assert_eq!(sum.into_inner(), 4950);
/// ```
pub struct ThreadPool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    /// Serialises operations from different callers sharing one pool.
    run_lock: Mutex<u32>,
}

impl ThreadPool {
    /// A pool of `n_threads` threads in all (the caller of [`ThreadPool::run`] is one of them;
    /// `n_threads - 1` workers are spawned). `0` is treated as 1.
    pub fn new(n_threads: usize) -> ThreadPool {
        let shared = Arc::new(Shared {
            cursor: AtomicU64::new(0),
            latest: AtomicU64::new(0),
            slot: Mutex::new(Slot {
                generation: 0,
                n_tasks: 0,
                job: std::ptr::null::<fn(usize)>() as *const Job,
            }),
            wake: Condvar::new(),
            done: AtomicUsize::new(0),
            panic: Mutex::new(None),
            shutdown: AtomicBool::new(false),
        });
        let workers = (1..n_threads.max(1))
            .map(|k| {
                let shared = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("ziglama-worker-{k}"))
                    .spawn(move || worker(&shared))
                    .expect("spawning a worker thread")
            })
            .collect();
        ThreadPool {
            shared,
            workers,
            run_lock: Mutex::new(0),
        }
    }

    /// A pool with one thread per available core.
    pub fn with_available_parallelism() -> ThreadPool {
        ThreadPool::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// Threads that run an operation (workers plus the caller).
    pub fn n_threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// Calls `task(i)` for every `i` in `0..n_tasks`, spread over the pool's threads, and
    /// returns when all have finished. A panic in a task is re-raised here after the others
    /// finish.
    pub fn run<F: Fn(usize) + Sync>(&self, n_tasks: usize, task: F) {
        if n_tasks == 0 {
            return;
        }
        if self.workers.is_empty() || n_tasks == 1 {
            (0..n_tasks).for_each(task);
            return;
        }
        let n_tasks = u32::try_from(n_tasks).expect("at most 2^32 - 1 tasks per operation");
        let mut generation = self.run_lock.lock().unwrap_or_else(|e| e.into_inner());
        *generation = generation.wrapping_add(1);
        let job: &(dyn Fn(usize) + Sync + '_) = &task;
        // SAFETY: erases the closure's lifetime so workers can hold a pointer to it. Workers
        // dereference it only for a task claimed under this generation, and this function does
        // not return (nor drop `task`) until `done` counts all `n_tasks` tasks.
        let job: *const Job =
            unsafe { std::mem::transmute::<&(dyn Fn(usize) + Sync + '_), &'static Job>(job) };
        let slot = Slot {
            generation: *generation,
            n_tasks,
            job,
        };
        let sh = &*self.shared;
        sh.done.store(0, Ordering::Release);
        *sh.slot.lock().unwrap_or_else(|e| e.into_inner()) = slot;
        sh.cursor
            .store((slot.generation as u64) << 32, Ordering::Release);
        sh.latest.store(slot.generation as u64, Ordering::Release);
        {
            let _g = sh.slot.lock().unwrap_or_else(|e| e.into_inner());
            sh.wake.notify_all();
        }
        sh.work(&slot);
        let mut spins = 0u32;
        while sh.done.load(Ordering::Acquire) < n_tasks as usize {
            spins += 1;
            if spins < SPIN_LIMIT {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        if let Some(p) = sh.panic.lock().unwrap_or_else(|e| e.into_inner()).take() {
            drop(generation);
            resume_unwind(p);
        }
    }
}

fn worker(sh: &Shared) {
    let mut seen = 0u64;
    loop {
        let mut spins = 0u32;
        while sh.latest.load(Ordering::Acquire) == seen && !sh.shutdown.load(Ordering::Acquire) {
            spins += 1;
            if spins < SPIN_LIMIT {
                std::hint::spin_loop();
                continue;
            }
            let guard = sh.slot.lock().unwrap_or_else(|e| e.into_inner());
            let _guard = sh
                .wake
                .wait_while(guard, |_| {
                    sh.latest.load(Ordering::Acquire) == seen
                        && !sh.shutdown.load(Ordering::Acquire)
                })
                .unwrap_or_else(|e| e.into_inner());
        }
        if sh.shutdown.load(Ordering::Acquire) {
            return;
        }
        let slot = *sh.slot.lock().unwrap_or_else(|e| e.into_inner());
        seen = slot.generation as u64;
        sh.work(&slot);
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::Release);
        {
            let _g = self.shared.slot.lock().unwrap_or_else(|e| e.into_inner());
            self.shared.wake.notify_all();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

impl std::fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadPool")
            .field("n_threads", &self.n_threads())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_runs_exactly_once_over_many_operations() {
        let pool = ThreadPool::new(3);
        for n in [1usize, 2, 3, 7, 64, 1000] {
            let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
            for _ in 0..50 {
                pool.run(n, |i| {
                    hits[i].fetch_add(1, Ordering::Relaxed);
                });
            }
            assert!(
                hits.iter().all(|h| h.load(Ordering::Relaxed) == 50),
                "n={n}"
            );
        }
    }

    #[test]
    fn a_panicking_task_is_reraised_and_the_pool_survives() {
        let pool = ThreadPool::new(2);
        let r = catch_unwind(AssertUnwindSafe(|| {
            pool.run(8, |i| assert_ne!(i, 5, "task five fails"));
        }));
        assert!(r.is_err());
        let count = AtomicUsize::new(0);
        pool.run(8, |_| {
            count.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(count.into_inner(), 8);
    }

    #[test]
    fn idle_workers_park_and_wake() {
        let pool = ThreadPool::new(2);
        pool.run(4, |_| {});
        std::thread::sleep(std::time::Duration::from_millis(50));
        let count = AtomicUsize::new(0);
        pool.run(4, |_| {
            count.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(count.into_inner(), 4);
    }
}
