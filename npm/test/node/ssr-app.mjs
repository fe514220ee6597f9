// The app of the server-render test (ssr.mjs), without JSX so that Node runs it as is: a
// <TidingsProvider url> and a child that shows the connection state, the server's `auth` event
// and an ack. Rendered to a string on Node, then bundled and hydrated in Chromium.
import { createElement as h, useEffect, useState } from "react";
import { TidingsProvider, useConnectionState, useEmit, useEvent } from "tidings/react";

function Status() {
  const state = useConnectionState();
  const [auth, setAuth] = useState("");
  const [echo, setEcho] = useState("");
  const { emitWithAck } = useEmit();
  useEvent("auth", (a) => setAuth(a.token));
  const connected = state.status === "connected";
  useEffect(() => {
    if (connected) emitWithAck("echo", "hydrated").then(setEcho, (e) => setEcho(`error: ${e.message}`));
  }, [connected, emitWithAck]);
  // One text node: status|auth token|ack|socket id.
  return h("p", { id: "status" }, `${state.status}|${auth}|${echo}|${connected ? state.id : ""}`);
}

export function App({ url }) {
  return h(TidingsProvider, { url, options: { auth: { token: "ssr" } } }, h(Status));
}
