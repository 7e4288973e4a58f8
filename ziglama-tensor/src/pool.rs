//! A persistent thread pool with cheap per-operation synchronisation.
//!
//! A model runs hundreds of matrix products per token, so the cost of handing one to the
//! workers matters. Workers stay alive between operations, spin briefly waiting for the next
//! one (so back-to-back operations cost a few atomic operations) and then park on a condition
//! variable (so an idle pool costs no CPU). The calling thread works too: a pool of `n`
//! threads spawns `n - 1` workers.
//!
//! # Protocol
//!
//! An operation is published in three words, each on its own cache line so that the words the
//! workers poll are not invalidated by the words they update:
//!
//! - `cursor`: the operation's generation (high 32 bits) and the number of tasks not yet
//!   claimed (low 32 bits). A task is claimed by a compare-and-swap that decrements the count
//!   only if the generation is the expected one; the task's index is `n_tasks - remaining`.
//! - the announcement line: `latest` (the generation most recently published, polled by idle
//!   workers), `job` and `n_tasks` (the closure and task count of that generation), `sleepers`
//!   (workers parked on the condition variable; the caller only pays for a wake-up system call
//!   when there are any).
//! - `done`: tasks finished. Each thread adds its count once per operation, not once per task.
//!
//! A worker that reads `latest == g` and then `job` may be overtaken by the next operation, so
//! what it read might belong to a later one; but it only ever calls the closure for a task it
//! claimed under generation `g`. Such a claim succeeds only while operation `g` has unclaimed
//! tasks, that is before [`ThreadPool::run`] for `g` has returned (it waits until `done`
//! counts every task, and this worker's count is added after its claims) and hence before the
//! next operation overwrites `job`: the values read are `g`'s. The claim is what makes the
//! closure pointer valid; `run` does not return, nor drop the closure, before every claimed
//! task has finished. (Generations are 32-bit: a worker would have to stall between reading
//! `latest` and its claim for exactly 2^32 operations for a stale claim to match.)

use std::any::Any;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// How many times an idle worker polls for new work before parking (about a millisecond).
const SPIN_LIMIT: u32 = 1 << 16;

type Job = dyn Fn(usize) + Sync;

/// A value alone on its cache line(s) (128 bytes: adjacent-line prefetchers pair lines).
#[repr(align(128))]
struct Padded<T>(T);

/// The words an idle worker polls and reads when an operation starts; written once per
/// operation by the caller.
struct Announce {
    /// The generation most recently published.
    latest: AtomicU32,
    /// Points to a `&Job` on the stack of the `run` call of generation `latest`.
    job: AtomicPtr<()>,
    /// Tasks of generation `latest`.
    n_tasks: AtomicU32,
    /// Workers parked (or about to park) on `wake`.
    sleepers: AtomicUsize,
    /// Set once, when the pool is dropped.
    shutdown: AtomicBool,
}

struct Shared {
    /// Generation (high 32 bits) and unclaimed task count (low 32 bits).
    cursor: Padded<AtomicU64>,
    announce: Padded<Announce>,
    /// Finished tasks of the current operation, added by workers.
    done: Padded<AtomicUsize>,
    /// Guards parking: a worker re-checks `latest` under it before waiting.
    park: Mutex<()>,
    wake: Condvar,
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

impl Shared {
    /// Claims a task of generation `generation` (with `n_tasks` tasks), if any is left.
    #[inline]
    fn claim(&self, generation: u32, n_tasks: u32) -> Option<usize> {
        let cursor = &self.cursor.0;
        let mut cur = cursor.load(Ordering::Acquire);
        loop {
            let (g, remaining) = ((cur >> 32) as u32, cur as u32);
            if g != generation || remaining == 0 {
                return None;
            }
            match cursor.compare_exchange_weak(cur, cur - 1, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Some((n_tasks - remaining) as usize),
                Err(now) => cur = now,
            }
        }
    }

    /// Runs tasks of generation `generation` until none are left to claim; returns how many
    /// this thread ran.
    ///
    /// # Safety
    /// `job` must be the closure pointer published for `generation` (or any pointer, if it
    /// was read after observing `latest == generation`: see the module docs), and `n_tasks`
    /// its task count read likewise.
    unsafe fn work(&self, generation: u32, job: *const (), n_tasks: u32) -> usize {
        let mut ran = 0;
        while let Some(i) = self.claim(generation, n_tasks) {
            // SAFETY: task `i` was claimed under `generation`, so that operation has not
            // finished: `ThreadPool::run` is still waiting for this task to be counted in
            // `done`, and keeps the `&Job` that `job` points to (and the closure) alive until
            // then. By the module docs' argument `job` is that generation's pointer.
            let f: &Job = unsafe { *job.cast::<&Job>() };
            if let Err(p) = catch_unwind(AssertUnwindSafe(|| f(i))) {
                let mut first = self.panic.lock().unwrap_or_else(|e| e.into_inner());
                first.get_or_insert(p);
            }
            ran += 1;
        }
        ran
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
    /// Serialises operations from different callers sharing one pool; holds the generation.
    run_lock: Mutex<u32>,
}

impl ThreadPool {
    /// A pool of `n_threads` threads in all (the caller of [`ThreadPool::run`] is one of them;
    /// `n_threads - 1` workers are spawned). `0` is treated as 1.
    pub fn new(n_threads: usize) -> ThreadPool {
        let shared = Arc::new(Shared {
            cursor: Padded(AtomicU64::new(0)),
            announce: Padded(Announce {
                latest: AtomicU32::new(0),
                job: AtomicPtr::new(std::ptr::null_mut()),
                n_tasks: AtomicU32::new(0),
                sleepers: AtomicUsize::new(0),
                shutdown: AtomicBool::new(false),
            }),
            done: Padded(AtomicUsize::new(0)),
            park: Mutex::new(()),
            wake: Condvar::new(),
            panic: Mutex::new(None),
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
        let n = u32::try_from(n_tasks).expect("at most 2^32 - 1 tasks per operation");
        let mut generation = self.run_lock.lock().unwrap_or_else(|e| e.into_inner());
        *generation = generation.wrapping_add(1);
        let g = *generation;
        let job: &(dyn Fn(usize) + Sync + '_) = &task;
        // Workers read the closure through this thin pointer to the fat reference `job`; both
        // live until this function returns, which is after every claimed task has finished.
        let job_ptr = std::ptr::from_ref(&job).cast::<()>().cast_mut();
        let sh = &*self.shared;
        let an = &sh.announce.0;
        sh.done.0.store(0, Ordering::Relaxed);
        an.job.store(job_ptr, Ordering::Relaxed);
        an.n_tasks.store(n, Ordering::Relaxed);
        // Release: a worker that claims under `g` (acquiring `cursor`) sees `job` and `done`.
        sh.cursor
            .0
            .store(((g as u64) << 32) | n as u64, Ordering::Release);
        // SeqCst with the `sleepers` load below, against the worker's increment and re-check
        // in `worker`: either we see its increment and wake it, or it sees `latest == g`.
        an.latest.store(g, Ordering::SeqCst);
        if an.sleepers.load(Ordering::SeqCst) > 0 {
            let _g = sh.park.lock().unwrap_or_else(|e| e.into_inner());
            sh.wake.notify_all();
        }
        // SAFETY: `job_ptr` is the pointer just published for generation `g`.
        let mine = unsafe { sh.work(g, job_ptr, n) };
        let mut spins = 0u32;
        while sh.done.0.load(Ordering::Acquire) + mine < n_tasks {
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
    let an = &sh.announce.0;
    let mut seen = 0u32;
    loop {
        let mut spins = 0u32;
        while an.latest.load(Ordering::Acquire) == seen {
            if an.shutdown.load(Ordering::Acquire) {
                return;
            }
            spins += 1;
            if spins < SPIN_LIMIT {
                std::hint::spin_loop();
                continue;
            }
            let guard = sh.park.lock().unwrap_or_else(|e| e.into_inner());
            an.sleepers.fetch_add(1, Ordering::SeqCst);
            let _guard = sh
                .wake
                .wait_while(guard, |_| {
                    an.latest.load(Ordering::SeqCst) == seen && !an.shutdown.load(Ordering::SeqCst)
                })
                .unwrap_or_else(|e| e.into_inner());
            an.sleepers.fetch_sub(1, Ordering::SeqCst);
            spins = 0;
        }
        seen = an.latest.load(Ordering::Acquire);
        let job = an.job.load(Ordering::Acquire);
        let n = an.n_tasks.load(Ordering::Acquire);
        // SAFETY: `job` and `n` were read after observing `latest == seen` (see module docs).
        let ran = unsafe { sh.work(seen, job, n) };
        if ran > 0 {
            sh.done.0.fetch_add(ran, Ordering::Release);
        }
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        let an = &self.shared.announce.0;
        an.shutdown.store(true, Ordering::SeqCst);
        {
            let _g = self.shared.park.lock().unwrap_or_else(|e| e.into_inner());
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
    fn back_to_back_operations_never_mix_tasks() {
        // Many short operations of different sizes: a worker overtaken by the next operation
        // must never run a task of the old one with the new closure, or vice versa.
        let pool = ThreadPool::new(4);
        for round in 0..20_000usize {
            let n = 2 + round % 13;
            let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
            pool.run(n, |i| {
                hits[i].fetch_add(round, Ordering::Relaxed);
            });
            assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == round));
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
        // After the spin limit (about a millisecond) the worker parks.
        let sleepers = &pool.shared.announce.0.sleepers;
        let t = std::time::Instant::now();
        while sleepers.load(Ordering::SeqCst) == 0 && t.elapsed().as_secs() < 10 {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(sleepers.load(Ordering::SeqCst), 1, "the idle worker parked");
        // The first task to start waits until a task starts on another thread, which only
        // the woken worker can do (this thread is busy in the first task).
        let started = AtomicUsize::new(0);
        let threads = Mutex::new(std::collections::HashSet::new());
        pool.run(2, |_| {
            threads.lock().unwrap().insert(std::thread::current().id());
            if started.fetch_add(1, Ordering::SeqCst) == 0 {
                let t = std::time::Instant::now();
                while started.load(Ordering::SeqCst) < 2 && t.elapsed().as_secs() < 10 {
                    std::thread::yield_now();
                }
            }
        });
        assert_eq!(started.into_inner(), 2);
        assert_eq!(
            threads.into_inner().unwrap().len(),
            2,
            "the parked worker woke"
        );
    }
}
