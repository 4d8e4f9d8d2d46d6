//! A global allocator that records the largest single allocation made on threads that ask for
//! it: how the tests show that garbage input never makes the decoder ask for gigabytes.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Tracking;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static TRACKED: Cell<bool> = const { Cell::new(false) };
}

fn note(size: usize) {
    if TRACKED.with(Cell::get) {
        LARGEST.fetch_max(size, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded to the system allocator unchanged.
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller's guarantees, passed on to the system allocator unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller's guarantees, passed on to the system allocator unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's guarantees, passed on to the system allocator unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: the caller's guarantees, passed on to the system allocator unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Tracking = Tracking;

/// Runs `f` with this thread's allocations tracked.
pub fn track<R>(f: impl FnOnce() -> R) -> R {
    TRACKED.with(|t| t.set(true));
    let result = f();
    TRACKED.with(|t| t.set(false));
    result
}

/// The largest single allocation seen on a tracked thread.
pub fn largest() -> usize {
    LARGEST.load(Ordering::Relaxed)
}
