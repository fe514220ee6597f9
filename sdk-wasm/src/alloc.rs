//! The module's allocator: power-of-two size classes, each with a free list, carved from the
//! end of linear memory. It replaces the standard library's dlmalloc, which costs about 7 KB of
//! code (3 KB gzip, a tenth of what the core's own state machine weighs); this one costs a few
//! hundred bytes (sdk-wasm/README.md, "Size").
//!
//! - `alloc` and `dealloc` are O(1): a block of class `k` holds `2^k` bytes (16 at least); a freed
//!   block goes on its class's list and is the next one of that class handed out.
//! - Blocks are never split or merged, so the memory held is, per class, the most blocks of that
//!   class alive at once, rounded up to a power of two: at most twice what the module ever held
//!   at its peak in each class. Linear memory never shrinks anyway (WebAssembly cannot give pages
//!   back), and the core bounds every buffer it keeps (docs/RELIABILITY.md, "Bounds").
//! - Every block is 16-aligned. The rare allocation aligned to more (none in this crate or the
//!   core) gets a block of its own, aligned to its size, and never reuses a freed one.
//! - One thread: `wasm32-unknown-unknown` without the `atomics` feature has no other.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::UnsafeCell;
use std::ptr::null_mut;

/// The smallest block, and the alignment of every block.
const MIN: usize = 16;
const PAGE: usize = 65536;
const CLASSES: usize = usize::BITS as usize;

struct Heap {
    /// The first free block of each class (a freed block stores the next one in its first word).
    free: [*mut u8; CLASSES],
    /// The untouched memory: `next..end`.
    next: usize,
    end: usize,
}

/// The allocator (one static, `#[global_allocator]` in lib.rs).
pub(crate) struct SizeClasses(UnsafeCell<Heap>);

// SAFETY: the module runs on one thread (see the module docs), so the heap is never shared.
unsafe impl Sync for SizeClasses {}

impl SizeClasses {
    pub(crate) const fn new() -> Self {
        SizeClasses(UnsafeCell::new(Heap { free: [null_mut(); CLASSES], next: 0, end: 0 }))
    }
}

/// The class of a layout: log2 of its block size (`None` past the address space).
fn class(l: &Layout) -> Option<usize> {
    Some(l.size().max(l.align()).max(MIN).checked_next_power_of_two()?.trailing_zeros() as usize)
}

impl Heap {
    /// A fresh block of `size` bytes aligned to `align` (both powers of two), from the end of
    /// memory, growing it as needed.
    fn carve(&mut self, size: usize, align: usize) -> *mut u8 {
        loop {
            let Some(start) = self.next.checked_add(align - 1).map(|n| n & !(align - 1)) else { return null_mut() };
            let Some(stop) = start.checked_add(size) else { return null_mut() };
            if stop <= self.end {
                self.next = stop;
                return start as *mut u8;
            }
            let pages = (stop - self.end).div_ceil(PAGE);
            let before = core::arch::wasm32::memory_grow(0, pages);
            if before == usize::MAX {
                return null_mut();
            }
            if before * PAGE != self.end {
                // The first call (nothing carved yet), or memory grown by someone else: carve
                // from where memory ended.
                self.next = before * PAGE;
            }
            self.end = (before + pages) * PAGE;
        }
    }
}

// SAFETY: blocks never overlap (each is carved once from untouched memory, and a freed block is
// handed out again only after `dealloc` gave it back); every block is at least as large and as
// aligned as its layout asks (`class`, `carve`); `dealloc` and `realloc` get back a pointer this
// allocator gave for the same layout, as `GlobalAlloc` guarantees.
#[allow(clippy::indexing_slicing)] // `class` < usize::BITS = CLASSES
unsafe impl GlobalAlloc for SizeClasses {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: one thread, and no call into the allocator can happen while this one runs.
        let heap = unsafe { &mut *self.0.get() };
        let Some(c) = class(&l) else { return null_mut() };
        let size = 1usize << c;
        if l.align() > MIN {
            return heap.carve(size, size);
        }
        let head = heap.free[c];
        if head.is_null() {
            return heap.carve(size, MIN);
        }
        // SAFETY: `head` is a freed block of this class, which holds the next one's address.
        heap.free[c] = unsafe { head.cast::<*mut u8>().read() };
        head
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: as in `alloc`.
        let heap = unsafe { &mut *self.0.get() };
        let Some(c) = class(&l) else { return };
        // SAFETY: the block is ours again, 16-aligned and at least 16 bytes: room for the link.
        unsafe { p.cast::<*mut u8>().write(heap.free[c]) };
        heap.free[c] = p;
    }

    unsafe fn realloc(&self, p: *mut u8, l: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `GlobalAlloc::realloc`'s contract: `new_size` with `l.align()` is a valid layout.
        let new = unsafe { Layout::from_size_align_unchecked(new_size, l.align()) };
        if class(&l) == class(&new) {
            // The block already has room (a `Vec` or `String` growing within its class).
            return p;
        }
        // SAFETY: as `GlobalAlloc::realloc`'s default: a new block, the bytes copied, the old freed.
        unsafe {
            let q = self.alloc(new);
            if !q.is_null() {
                std::ptr::copy_nonoverlapping(p, q, l.size().min(new_size));
                self.dealloc(p, l);
            }
            q
        }
    }
}
