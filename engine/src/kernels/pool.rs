//! A small fork-join pool for the kernels. A decode step runs ~150 short parallel sections
//! (tens of microseconds each); waking sleeping threads for each, as general-purpose pools do,
//! costs more than the work. Here the calling thread takes part, and workers spin briefly on an
//! epoch counter before parking, so back-to-back sections start in well under a microsecond.
//!
//! Which thread runs which task is dynamic; callers make every task's output independent of that
//! (tasks write disjoint outputs, each computed in a fixed order), so results never depend on it.

use std::cell::UnsafeCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// Spin iterations a worker waits for the next section before parking.
const SPIN_LIMIT: u32 = 1 << 16;

type Task = dyn Fn(usize) + Sync;

struct Shared {
    /// Bumped once per section; workers start a section when they see it change.
    epoch: AtomicU64,
    /// The current section's task function (valid while `active > 0`).
    job: UnsafeCell<*const Task>,
    n_tasks: AtomicUsize,
    next: AtomicUsize,
    /// Workers that have not finished the current section.
    active: AtomicUsize,
    panicked: AtomicBool,
    shutdown: AtomicBool,
}

// SAFETY: `job` is written only by the thread in `run` while no worker reads it (all workers are
// done with the previous section, `active == 0`), and published by the Release bump of `epoch`.
unsafe impl Sync for Shared {}
unsafe impl Send for Shared {}

/// A fixed set of worker threads plus the caller.
pub struct Pool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    /// One section at a time: callers on several threads (a shared engine) take turns.
    turn: Mutex<()>,
}

impl Pool {
    /// A pool running sections on `threads` threads in all (the caller and `threads - 1` workers),
    /// or on as many as the platform can start where it has no threads (see [`Pool::threads`]).
    pub fn new(threads: usize) -> std::io::Result<Pool> {
        let noop: &Task = &|_| {};
        let shared = Arc::new(Shared {
            epoch: AtomicU64::new(0),
            job: UnsafeCell::new(noop as *const Task),
            n_tasks: AtomicUsize::new(0),
            next: AtomicUsize::new(0),
            active: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
        });
        let mut workers = Vec::new();
        for i in 1..threads.max(1) {
            let s = shared.clone();
            match thread::Builder::new()
                .name(format!("sworn-kernel-{i}"))
                .spawn(move || worker(&s))
            {
                Ok(h) => workers.push(h),
                // WebAssembly without threads (and other targets without them): run on the
                // threads there are. Results never depend on the thread count.
                Err(e) if e.kind() == std::io::ErrorKind::Unsupported => {
                    tracing::warn!(
                        "threads are unavailable here ({e}); running on {} of {threads}",
                        workers.len() + 1
                    );
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Pool {
            shared,
            workers,
            turn: Mutex::new(()),
        })
    }

    /// Threads in all, the caller included.
    pub fn threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// Runs `f(i)` for every `i in 0..n` and returns when all are done.
    pub fn run(&self, n: usize, f: &(dyn Fn(usize) + Sync)) {
        if self.workers.is_empty() || n <= 1 {
            (0..n).for_each(f);
            return;
        }
        // A panic in an earlier section poisons nothing we rely on: the state is reset below.
        let _turn = self.turn.lock().unwrap_or_else(|p| p.into_inner());
        let s = &*self.shared;
        // SAFETY: no worker reads `job` now (the previous section ended with `active == 0`), and
        // it is only read until this call returns, while `f` is alive. The lifetime is erased
        // for storage only.
        unsafe {
            let f: &'static Task = std::mem::transmute::<&(dyn Fn(usize) + Sync), &'static Task>(f);
            *s.job.get() = f as *const Task;
        }
        s.n_tasks.store(n, Ordering::Relaxed);
        s.next.store(0, Ordering::Relaxed);
        s.active.store(self.workers.len(), Ordering::Relaxed);
        s.epoch.fetch_add(1, Ordering::Release);
        for w in &self.workers {
            w.thread().unpark();
        }
        let mine = catch_unwind(AssertUnwindSafe(|| take_tasks(s, f)));
        let mut spins = 0u32;
        while s.active.load(Ordering::Acquire) != 0 {
            // Spin, but yield once the wait grows: on a busy machine the worker we wait for
            // may need this core.
            spins += 1;
            if spins < 1 << 12 {
                std::hint::spin_loop();
            } else {
                thread::yield_now();
            }
        }
        if let Err(p) = mine {
            std::panic::resume_unwind(p);
        }
        if s.panicked.swap(false, Ordering::Relaxed) {
            panic!("a kernel task panicked on a worker thread");
        }
    }
}

fn take_tasks(s: &Shared, f: &(dyn Fn(usize) + Sync)) {
    let n = s.n_tasks.load(Ordering::Relaxed);
    loop {
        let i = s.next.fetch_add(1, Ordering::Relaxed);
        if i >= n {
            break;
        }
        f(i);
    }
}

fn worker(s: &Shared) {
    let mut seen = 0u64;
    loop {
        let mut spins = 0u32;
        let epoch = loop {
            let e = s.epoch.load(Ordering::Acquire);
            if e != seen {
                break e;
            }
            if s.shutdown.load(Ordering::Relaxed) {
                return;
            }
            if spins < SPIN_LIMIT {
                spins += 1;
                if spins.is_multiple_of(256) {
                    thread::yield_now();
                } else {
                    std::hint::spin_loop();
                }
            } else {
                thread::park_timeout(Duration::from_millis(10));
            }
        };
        seen = epoch;
        // SAFETY: published by the Release bump of `epoch` observed above; `run` keeps the
        // function alive until this worker decrements `active`.
        let f: &Task = unsafe { &**s.job.get() };
        if catch_unwind(AssertUnwindSafe(|| take_tasks(s, f))).is_err() {
            s.panicked.store(true, Ordering::Relaxed);
        }
        s.active.fetch_sub(1, Ordering::Release);
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::Relaxed);
        for w in self.workers.drain(..) {
            w.thread().unpark();
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_every_task_once_across_many_sections() {
        for threads in [1, 2, 3, 5] {
            let pool = Pool::new(threads).unwrap();
            for n in [0, 1, 2, 7, 100] {
                for _ in 0..50 {
                    let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
                    pool.run(n, &|i| {
                        hits[i].fetch_add(1, Ordering::Relaxed);
                    });
                    assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
                }
            }
        }
    }

    #[test]
    fn concurrent_callers_take_turns() {
        let pool = Pool::new(2).unwrap();
        std::thread::scope(|sc| {
            for _ in 0..4 {
                sc.spawn(|| {
                    for n in [3, 50, 200] {
                        for _ in 0..100 {
                            let hits: Vec<AtomicUsize> =
                                (0..n).map(|_| AtomicUsize::new(0)).collect();
                            pool.run(n, &|i| {
                                hits[i].fetch_add(1, Ordering::Relaxed);
                            });
                            assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
                        }
                    }
                });
            }
        });
    }

    #[test]
    fn a_panicking_task_is_reported_and_the_pool_survives() {
        let pool = Pool::new(2).unwrap();
        let r = catch_unwind(AssertUnwindSafe(|| pool.run(64, &|i| assert!(i != 40))));
        assert!(r.is_err());
        let count = AtomicUsize::new(0);
        pool.run(64, &|_| {
            count.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(count.load(Ordering::Relaxed), 64);
    }
}
