//! JS resources with a Rust owner: WebSockets, fetches and the timer. Each one's `Drop` removes
//! its handlers and closes, aborts or clears it. They know nothing of their owner: each reports
//! through the callback it is given (core inputs for a socket's events and a fetch's answer, a
//! plain call for the timer); the driver's callbacks hold a `Weak` to the client, so a dropped
//! client just stops hearing about them.

use js_sys::{ArrayBuffer, Function, Promise, Uint8Array};
use tidings_core::engineio::Frame;
use tidings_core::{ConnId, HttpError, HttpRequest, Input, Method};
use wasm_bindgen::prelude::*;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    AbortController, BinaryType, CloseEvent, Headers, MessageEvent, Request, RequestInit, Response, WebSocket,
};

#[wasm_bindgen]
extern "C" {
    // The global functions, so the driver works in windows and in workers alike.
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(callback: &Function, ms: f64) -> JsValue;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(handle: &JsValue);
    #[wasm_bindgen(js_name = fetch)]
    fn fetch_request(request: &Request) -> Promise;
}

fn describe(e: &JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| "unknown error".to_string())
}

/// An open (or opening) WebSocket and its four handlers.
pub(crate) struct Ws {
    ws: WebSocket,
    _onopen: Closure<dyn FnMut()>,
    _onmessage: Closure<dyn FnMut(MessageEvent)>,
    _onerror: Closure<dyn FnMut()>,
    _onclose: Closure<dyn FnMut(CloseEvent)>,
}

impl Ws {
    /// Opens `url`; every event becomes an input for `conn`, handed to `on_input`. A failure or a
    /// close is `Input::WsClosed`; its receiver is expected to drop this socket.
    pub(crate) fn open(conn: ConnId, url: &str, on_input: impl Fn(Input) + Clone + 'static) -> Result<Self, String> {
        let ws = WebSocket::new(url).map_err(|e| describe(&e))?;
        ws.set_binary_type(BinaryType::Arraybuffer);
        // Browsers fire `error` and then `close`; Node 20's WebSocket fires only `error` when the
        // connection is refused. So `error` reports the failure at once (and its owner drops this
        // socket, which removes the handlers, so a later `close` is not reported twice).
        let f = on_input.clone();
        let onopen = Closure::<dyn FnMut()>::new(move || f(Input::WsOpened(conn)));
        let f = on_input.clone();
        let onmessage = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
            let data = ev.data();
            let input = match data.as_string() {
                Some(text) => Input::WsText(conn, text),
                None => match data.dyn_ref::<ArrayBuffer>() {
                    Some(buf) => Input::WsBinary(conn, Uint8Array::new(buf).to_vec()),
                    None => return,
                },
            };
            f(input);
        });
        let f = on_input.clone();
        let onerror = Closure::<dyn FnMut()>::new(move || {
            f(Input::WsClosed { conn, code: None, error: Some("websocket error".to_string()) })
        });
        let onclose = Closure::<dyn FnMut(CloseEvent)>::new(move |ev: CloseEvent| {
            on_input(Input::WsClosed { conn, code: Some(ev.code()), error: None })
        });
        ws.set_onopen(Some(onopen.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(onmessage.as_ref().unchecked_ref()));
        ws.set_onerror(Some(onerror.as_ref().unchecked_ref()));
        ws.set_onclose(Some(onclose.as_ref().unchecked_ref()));
        Ok(Self { ws, _onopen: onopen, _onmessage: onmessage, _onerror: onerror, _onclose: onclose })
    }

    /// Sends one frame; a socket that is no longer open reports its close by itself.
    pub(crate) fn send(&self, frame: &Frame) {
        let _ = match frame {
            Frame::Text(t) => self.ws.send_with_str(t),
            Frame::Binary(b) => self.ws.send_with_u8_array(b),
        };
    }
}

impl Drop for Ws {
    fn drop(&mut self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onerror(None);
        self.ws.set_onclose(None);
        // Queued frames are still sent before the close frame.
        let _ = self.ws.close();
    }
}

/// An HTTP request in flight; dropping it aborts it (unless detached).
pub(crate) struct Req {
    abort: Option<AbortController>,
}

impl Req {
    /// Starts `req`; its answer (`Input::HttpResponse` or `HttpFailed`) goes to `done`, unless
    /// the request was aborted by dropping this owner first.
    pub(crate) fn start(req: HttpRequest, done: impl FnOnce(Input) + 'static) -> Result<Self, String> {
        let abort = AbortController::new().map_err(|e| describe(&e))?;
        let init = RequestInit::new();
        init.set_method(match req.method {
            Method::Get => "GET",
            Method::Post => "POST",
        });
        let headers = Headers::new().map_err(|e| describe(&e))?;
        if let Some(ct) = req.content_type {
            headers.set("content-type", ct).map_err(|e| describe(&e))?;
        }
        if let Some(a) = &req.authorization {
            headers.set("authorization", a).map_err(|e| describe(&e))?;
        }
        init.set_headers(&headers);
        if let Some(body) = &req.body {
            init.set_body(&JsValue::from_str(body));
        }
        init.set_signal(Some(&abort.signal()));
        let request = Request::new_with_str_and_init(&req.url, &init).map_err(|e| describe(&e))?;
        let promise = fetch_request(&request);
        let (id, max_body) = (req.id, req.max_body);
        wasm_bindgen_futures::spawn_local(async move {
            let input = match perform(promise, max_body).await {
                Ok((status, body)) => Input::HttpResponse { id, status, body },
                Err(error) => Input::HttpFailed { id, error },
            };
            done(input);
        });
        Ok(Self { abort: Some(abort) })
    }

    /// Lets the request finish even when this owner is dropped (the last POST of a close).
    pub(crate) fn detach(mut self) {
        self.abort = None;
    }
}

async fn perform(promise: Promise, max_body: usize) -> Result<(u16, Vec<u8>), HttpError> {
    let net = HttpError::Network;
    let resp: Response = JsFuture::from(promise)
        .await
        .map_err(|e| net(format!("fetch failed: {}", describe(&e))))?
        .dyn_into()
        .map_err(|_| net("fetch did not return a Response".to_string()))?;
    let too_large = HttpError::TooLarge { max_body };
    if let Ok(Some(len)) = resp.headers().get("content-length")
        && len.trim().parse::<usize>().is_ok_and(|n| n > max_body)
    {
        return Err(too_large);
    }
    let buf = resp.array_buffer().map_err(|e| net(describe(&e)))?;
    let buf = JsFuture::from(buf).await.map_err(|e| net(format!("reading the response failed: {}", describe(&e))))?;
    let bytes = Uint8Array::new(&buf);
    if bytes.length() as usize > max_body {
        return Err(too_large);
    }
    Ok((resp.status(), bytes.to_vec()))
}

impl Drop for Req {
    fn drop(&mut self) {
        if let Some(a) = &self.abort {
            a.abort();
        }
    }
}

/// The one `setTimeout` of a client, re-armed after every drain.
pub(crate) struct Timer {
    callback: Closure<dyn FnMut()>,
    handle: Option<JsValue>,
}

impl Timer {
    /// A timer that calls `on_fire` each time it fires; its owner then calls [`Timer::fired`].
    pub(crate) fn new(on_fire: impl Fn() + 'static) -> Self {
        Self { callback: Closure::<dyn FnMut()>::new(on_fire), handle: None }
    }

    /// Fires in `ms` milliseconds, replacing any earlier arming.
    pub(crate) fn arm(&mut self, ms: u64) {
        self.clear();
        // setTimeout takes a signed 32-bit delay; longer ones would fire at once.
        let ms = ms.min(i32::MAX as u64) as f64;
        self.handle = Some(set_timeout(self.callback.as_ref().unchecked_ref(), ms));
    }

    /// The timer fired: its handle is spent.
    pub(crate) fn fired(&mut self) {
        self.handle = None;
    }

    pub(crate) fn clear(&mut self) {
        if let Some(h) = self.handle.take() {
            clear_timeout(&h);
        }
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.clear();
    }
}
