//! The module's allocator (src/alloc.rs) on its own, in the browser's wasm32: a random workload
//! of allocations, frees and reallocations of many sizes and alignments, each block filled with
//! its own byte and checked before it is freed, so an overlap, a block handed out twice or a
//! realloc that loses bytes shows as a wrong byte. The test binary's own allocator (dlmalloc)
//! grows the same memory meanwhile, which `carve` must step over.
#![cfg(target_arch = "wasm32")]
#![allow(unsafe_code, missing_docs, unreachable_pub, clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

#[path = "../src/alloc.rs"]
mod alloc;

use std::alloc::{GlobalAlloc, Layout};

use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// xorshift64*: a fixed seed, so a failure repeats.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

struct Block {
    ptr: *mut u8,
    layout: Layout,
    fill: u8,
}

fn check(b: &Block) {
    // SAFETY: the block is live and `layout.size()` bytes long.
    let bytes = unsafe { std::slice::from_raw_parts(b.ptr, b.layout.size()) };
    assert!(bytes.iter().all(|&x| x == b.fill), "a block of {} bytes was overwritten", b.layout.size());
}

fn fill(b: &Block) {
    // SAFETY: as in `check`.
    unsafe { std::ptr::write_bytes(b.ptr, b.fill, b.layout.size()) };
}

#[wasm_bindgen_test]
fn blocks_never_overlap_and_keep_their_bytes() {
    let heap = alloc::SizeClasses::new();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut live: Vec<Block> = Vec::new();
    let mut keep: Vec<Vec<u8>> = Vec::new();
    for step in 0..20_000u32 {
        let r = rng.next();
        if live.is_empty() || !r.is_multiple_of(3) {
            // Mostly small, sometimes up to 256 KiB; alignments 1..=64 (over 16 is the rare path).
            let size = match r % 10 {
                0 => (rng.next() % 262_144) as usize + 1,
                1..=3 => (rng.next() % 4096) as usize + 1,
                _ => (rng.next() % 128) as usize + 1,
            };
            let align = 1usize << (rng.next() % 7);
            let layout = Layout::from_size_align(size, align).unwrap();
            // SAFETY: a non-zero size.
            let ptr = unsafe { heap.alloc(layout) };
            assert!(!ptr.is_null(), "out of memory at step {step}");
            assert_eq!(ptr as usize % align, 0, "misaligned for {align}");
            let b = Block { ptr, layout, fill: (step % 251) as u8 + 1 };
            fill(&b);
            live.push(b);
        } else {
            let i = (rng.next() % live.len() as u64) as usize;
            let b = live.swap_remove(i);
            check(&b);
            if r.is_multiple_of(2) {
                // SAFETY: a block of this allocator, freed once, with its layout.
                unsafe { heap.dealloc(b.ptr, b.layout) };
            } else {
                let new_size = (rng.next() % 8192) as usize + 1;
                // SAFETY: as `GlobalAlloc::realloc` asks: ours, its layout, a non-zero size.
                let ptr = unsafe { heap.realloc(b.ptr, b.layout, new_size) };
                assert!(!ptr.is_null());
                let kept = b.layout.size().min(new_size);
                // SAFETY: the new block is at least `new_size` long.
                let bytes = unsafe { std::slice::from_raw_parts(ptr, kept) };
                assert!(bytes.iter().all(|&x| x == b.fill), "realloc lost bytes");
                let layout = Layout::from_size_align(new_size, b.layout.align()).unwrap();
                let moved = Block { ptr, layout, fill: b.fill };
                fill(&moved);
                live.push(moved);
            }
        }
        // The test binary's own allocator grows memory too, now and then.
        if step.is_multiple_of(997) {
            keep.push(vec![0u8; 70_000]);
        }
    }
    for b in &live {
        check(b);
    }
    assert!(keep.iter().all(|v| v.iter().all(|&x| x == 0)), "the test binary's own blocks were overwritten");
}
