//! `online`/`offline` (window or worker global) and `visibilitychange` (document) listeners,
//! reported as `Input::Online`/`Offline`/`Visible`/`Hidden` to the callback they are given.
//! Removed on drop.

use tidings_core::Input;
use wasm_bindgen::prelude::*;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{Document, EventTarget, VisibilityState};

pub(crate) struct PageListeners {
    global: Option<EventTarget>,
    document: Option<Document>,
    online: Closure<dyn FnMut()>,
    offline: Closure<dyn FnMut()>,
    visibility: Closure<dyn FnMut()>,
}

impl PageListeners {
    /// Adds the listeners; each event goes to `on_input`.
    pub(crate) fn install(on_input: impl Fn(Input) + Clone + 'static) -> Self {
        let global = js_sys::global().dyn_into::<EventTarget>().ok();
        let document = js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("document"))
            .ok()
            .and_then(|d| d.dyn_into::<Document>().ok());
        let f = on_input.clone();
        let online = Closure::<dyn FnMut()>::new(move || f(Input::Online));
        let f = on_input.clone();
        let offline = Closure::<dyn FnMut()>::new(move || f(Input::Offline));
        let doc = document.clone();
        let visibility = Closure::<dyn FnMut()>::new(move || {
            let visible = doc.as_ref().is_none_or(|d| d.visibility_state() == VisibilityState::Visible);
            on_input(if visible { Input::Visible } else { Input::Hidden });
        });
        if let Some(g) = &global {
            let _ = g.add_event_listener_with_callback("online", online.as_ref().unchecked_ref());
            let _ = g.add_event_listener_with_callback("offline", offline.as_ref().unchecked_ref());
        }
        if let Some(d) = &document {
            let _ = d.add_event_listener_with_callback("visibilitychange", visibility.as_ref().unchecked_ref());
        }
        Self { global, document, online, offline, visibility }
    }
}

impl Drop for PageListeners {
    fn drop(&mut self) {
        if let Some(g) = &self.global {
            let _ = g.remove_event_listener_with_callback("online", self.online.as_ref().unchecked_ref());
            let _ = g.remove_event_listener_with_callback("offline", self.offline.as_ref().unchecked_ref());
        }
        if let Some(d) = &self.document {
            let _ = d.remove_event_listener_with_callback("visibilitychange", self.visibility.as_ref().unchecked_ref());
        }
    }
}
