//! The core's clock: monotonic milliseconds that also count time the machine spent asleep.
//!
//! `performance.now()` is monotonic, but on some platforms it stops while the device sleeps, so a
//! ping deadline that passed during a laptop's sleep would look as if it had not. `Date.now()`
//! keeps counting through sleep but may jump backwards when the wall clock is set. Each reading
//! advances by the monotonic delta, or by the wall-clock delta when that is clearly larger
//! (the device slept); it never goes backwards.

use tidings_core::Instant;

/// Wall-clock advance beyond the monotonic one that counts as a sleep, in ms.
const SLEEP_SLACK_MS: f64 = 1000.0;

pub(crate) struct Clock {
    perf: Option<web_sys::Performance>,
    perf_last: f64,
    date_last: f64,
    elapsed: f64,
}

fn performance() -> Option<web_sys::Performance> {
    // `performance` exists in windows and workers; fall back to Date.now() elsewhere.
    js_sys::Reflect::get(&js_sys::global(), &wasm_bindgen::JsValue::from_str("performance"))
        .ok()
        .and_then(|p| wasm_bindgen::JsCast::dyn_into::<web_sys::Performance>(p).ok())
}

fn perf_now(perf: Option<&web_sys::Performance>) -> f64 {
    perf.map_or_else(js_sys::Date::now, web_sys::Performance::now)
}

impl Clock {
    pub(crate) fn new() -> Self {
        let perf = performance();
        Self { perf_last: perf_now(perf.as_ref()), perf, date_last: js_sys::Date::now(), elapsed: 0.0 }
    }

    /// The current instant (milliseconds since the client was created).
    pub(crate) fn now(&mut self) -> Instant {
        let perf = perf_now(self.perf.as_ref());
        let date = js_sys::Date::now();
        let dp = (perf - self.perf_last).max(0.0);
        let dd = date - self.date_last;
        self.perf_last = perf;
        self.date_last = date;
        self.elapsed += if dd > dp + SLEEP_SLACK_MS { dd } else { dp };
        // `as` saturates; elapsed is finite and non-negative.
        Instant::from_millis(self.elapsed as u64)
    }
}
