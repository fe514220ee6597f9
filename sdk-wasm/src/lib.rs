//! # tidings-wasm
//!
//! The browser driver of [`tidings_core`]: it owns one core [`tidings_core::Client`], turns
//! WebSocket frames, `fetch` answers, timers and `online`/`offline`/`visibilitychange` into core
//! inputs, and turns core outputs into sends, requests and calls of the application's callbacks.
//! No protocol decision is made here.
//!
//! The JavaScript surface is [`WasmClient`] (wasm-bindgen); the npm package `tidings` wraps it in
//! a socket.io-client-like `Socket` (`npm/src/index.ts`).
//!
//! ## Rules the driver keeps
//!
//! - **One owner.** The core lives in one `RefCell` inside an `Rc`; every JS callback (WebSocket
//!   handlers, fetch completions, the timer, page listeners) holds a `Weak` to it, so a closed or
//!   dropped client simply stops reacting.
//! - **No user code under a borrow.** Outputs meant for the application are queued while the core
//!   is borrowed and delivered after the borrow is released; a callback that calls back into the
//!   client (emit from an event handler) never meets a held borrow.
//! - **Every JS resource has a Rust owner.** WebSockets, in-flight requests (`AbortController`),
//!   the `setTimeout` handle and the page listeners are owned by structs whose `Drop` removes the
//!   handlers, closes, aborts or clears them.
//! - **No panic reaches JS.** Errors become thrown `Error`s, rejected promises or `connect_error`.
//!
//! On targets other than `wasm32` the crate is empty.

#![forbid(unsafe_code)]

#[cfg(target_arch = "wasm32")]
mod client;
#[cfg(target_arch = "wasm32")]
mod clock;
#[cfg(target_arch = "wasm32")]
mod convert;
#[cfg(target_arch = "wasm32")]
mod driver;
#[cfg(target_arch = "wasm32")]
mod net;
#[cfg(target_arch = "wasm32")]
mod options;
#[cfg(target_arch = "wasm32")]
mod page;
#[cfg(target_arch = "wasm32")]
mod small_map;

#[cfg(target_arch = "wasm32")]
pub use client::WasmClient;
