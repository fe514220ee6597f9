// Where the app connects and a few knobs, read once from the page URL.
//   ?server=http://127.0.0.1:3000   another server (it must allow this origin: --cors-origin)
//   ?reconnectionDelay=3000         TEST ONLY: a fixed reconnection delay (no jitter), so an
//                                   end-to-end test has a window before the app reconnects
//   ?feedAfter=5000                 how long the socket is down before the REST feed polls (ms)
const params = new URLSearchParams(window.location.search);

function numberParam(name: string): number | undefined {
  const raw = params.get(name);
  if (raw === null || raw === "") return undefined;
  const n = Number(raw);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

export const serverUrl: string = (params.get("server") ?? window.location.origin).replace(/\/+$/, "");
export const testReconnectionDelay: number | undefined = numberParam("reconnectionDelay");
export const feedAfter: number = numberParam("feedAfter") ?? 5000;
/** The chat room the app joins, `chat:<tenantId>:<chatId>`. */
export const chatId = "general";
