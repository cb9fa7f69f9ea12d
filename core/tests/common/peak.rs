//! A global allocator that tracks, per thread, the bytes live and their peak,
//! so that a test can measure the peak memory of one call (docs/spec.md section 17: every
//! input of n bytes is processed in at most 50 n bytes of memory).
//!
//! Per thread (const-initialised thread-local `Cell`s, which never allocate),
//! so the harness's other threads cannot disturb a measurement. Memory freed
//! on another thread than it was allocated on is counted where it is freed;
//! the engine's loading, evaluation and decoding run on the calling thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant};

pub struct Peak;

thread_local! {
    static LIVE: Cell<i64> = const { Cell::new(0) };
    static PEAK: Cell<i64> = const { Cell::new(0) };
}

fn add(n: i64) {
    let _ = LIVE.try_with(|l| {
        let v = l.get() + n;
        l.set(v);
        let _ = PEAK.try_with(|p| {
            if v > p.get() {
                p.set(v)
            }
        });
    });
}

unsafe impl GlobalAlloc for Peak {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as i64);
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as i64);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add(new_size as i64 - layout.size() as i64);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(-(layout.size() as i64));
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// What one call cost: the peak of bytes allocated above the level at its
/// start (including what it returns), and its wall time.
#[derive(Debug, Clone, Copy)]
pub struct Cost {
    pub peak_bytes: u64,
    pub time: Duration,
}

/// The bytes live on this thread now (allocated and not yet freed since it started).
#[allow(dead_code)] // used by some of the test crates that include this file
pub fn live() -> i64 {
    LIVE.with(Cell::get)
}

/// Runs `f` and measures it.
pub fn measure<R>(f: impl FnOnce() -> R) -> (Cost, R) {
    let start = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(start));
    let t = Instant::now();
    let r = std::hint::black_box(f());
    let time = t.elapsed();
    let peak = PEAK.with(Cell::get);
    (Cost { peak_bytes: (peak - start).max(0) as u64, time }, r)
}

/// The memory budget (docs/spec.md section 17) for an input of `n` bytes: 50 n bytes of memory
/// plus a fixed allowance for the engine's own tables (1 MiB).
pub fn memory_budget(n: usize) -> u64 {
    50 * n as u64 + (1 << 20)
}

/// The time budget (1 s per MB, docs/spec.md section 17) plus 0.25 s for a small input;
/// unoptimised test builds get 10 times as long (the bound is about the
/// shape of the cost, linear, not about this machine's speed).
pub fn time_budget(n: usize) -> Duration {
    let factor = if cfg!(debug_assertions) { 10.0 } else { 1.0 };
    Duration::from_secs_f64((n as f64 / 1e6 + 0.25) * factor)
}

/// Asserts `cost` is within both budgets for an input of `n` bytes, and
/// prints it (`-- --nocapture` shows the measured worst cases recorded in
/// docs/benchmarks.md, "Hostile input").
#[track_caller]
pub fn assert_within(what: &str, n: usize, cost: Cost) {
    if what.len() < 60 {
        println!(
            "cost: {what}: {n} bytes in, peak {} bytes ({:.1}x), {:.1} ms ({:.2} s/MB)",
            cost.peak_bytes,
            cost.peak_bytes as f64 / n.max(1) as f64,
            cost.time.as_secs_f64() * 1e3,
            cost.time.as_secs_f64() / (n.max(1) as f64 / 1e6)
        );
    }
    assert!(
        cost.peak_bytes <= memory_budget(n),
        "{what}: peak {} bytes for {n} input bytes (budget {})",
        cost.peak_bytes,
        memory_budget(n)
    );
    assert!(cost.time <= time_budget(n), "{what}: {:?} for {n} input bytes (budget {:?})", cost.time, time_budget(n));
}
