//! The browser driver's WebAssembly half: `tidings-core` behind a plain `extern "C"` interface
//! (`abi.rs`). The JavaScript half (`npm/src/wasm/tidings_wasm.ts`) owns the platform: it opens
//! WebSockets, makes `fetch` requests, arms the timer, listens to the page, and feeds the core
//! what happens; every decision is the core's. See sdk-wasm/README.md.
//!
//! On targets other than `wasm32` the crate is empty, so the workspace's native `cargo test` and
//! `cargo clippy` cover it without a browser.

#![deny(unsafe_code)]

// `#[unsafe(no_mangle)]` on the exports is the only unsafe code: it names them for JavaScript.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
pub mod abi;

// Power-of-two size classes instead of the standard library's dlmalloc: O(1), a few hundred bytes
// of code instead of 7 KB (`alloc.rs`). Its `unsafe` is the allocator's contract.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod alloc;

#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: alloc::SizeClasses = alloc::SizeClasses::new();
