// `tidings/snapshot`: subscribe with a snapshot (the dashboards' pattern: emit
// `subscribe:dashboard`, get `dashboard:initial`, then `dashboard:update`s to the room it joined).
// The snapshot is handed on before the live events that arrived while the server was loading it,
// and the subscription is sent again after a reconnect that did not recover the session (the
// server forgot it), which brings a new snapshot first. The same rules as the Rust client's
// `Tidings::subscribe_with_snapshot`. No wasm in here: it only uses the socket's public API.

import type { Socket } from "./types.js";

/** What to subscribe to. */
export interface SnapshotRequest {
  /** The subscribe emit, e.g. `subscribe:dashboard`. */
  subscribe: string;
  /** Its argument, if any. */
  args?: unknown;
  /**
   * Where the snapshot comes from: an event (default `<topic>:initial` for `subscribe:<topic>`),
   * or `"ack"`: the subscribe emit's ack.
   */
  snapshot?: { event: string } | "ack";
  /** The live events' name, e.g. `dashboard:update`. */
  live: string;
  /** How long a snapshot may take, ms (default 10000); past it `error` is called and the live events that waited follow. */
  timeoutMs?: number;
}

export interface SnapshotHandlers<S, T> {
  /** The subscription's state: first, and again after each new session (replace what you have). */
  snapshot(state: S): void;
  /** A live event, after the snapshot it follows. */
  live(data: T): void;
  error?(error: Error): void;
}

// `any`: a socket of any event map (the subscription names its events by string).
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnySocket = Socket<any, any>;

/** Subscribes; returns the function that stops it (the server keeps the room until the session ends). */
export function subscribeWithSnapshot<S = unknown, T = unknown>(
  socket: AnySocket,
  request: SnapshotRequest,
  handlers: SnapshotHandlers<S, T>,
): () => void {
  const topic = request.subscribe.startsWith("subscribe:") ? request.subscribe.slice(10) : undefined;
  const source = request.snapshot ?? (topic === undefined ? "ack" : { event: `${topic}:initial` });
  const timeoutMs = request.timeoutMs ?? 10_000;
  const args = request.args === undefined ? [] : [request.args];
  /** Live events waiting for the snapshot of the subscribe in flight, or undefined once it came. */
  let waiting: T[] | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  /** Bumped on each subscribe: a late answer to an older one is ignored. */
  let round = 0;
  let stopped = false;

  const settle = (r: number, state: { value: S } | { error: Error }): void => {
    if (stopped || r !== round) return;
    clearTimeout(timer);
    if ("value" in state) handlers.snapshot(state.value);
    else handlers.error?.(state.error);
    const held = waiting ?? [];
    waiting = undefined;
    for (const data of held) handlers.live(data);
  };
  const subscribe = (): void => {
    const r = ++round;
    waiting = waiting ?? [];
    clearTimeout(timer);
    timer = setTimeout(() => settle(r, { error: new Error(`no snapshot for ${request.subscribe} within ${timeoutMs} ms`) }), timeoutMs);
    if (source === "ack") {
      socket
        .timeout(timeoutMs)
        .emitWithAck(request.subscribe, ...args)
        .then(
          (state: unknown) => settle(r, { value: state as S }),
          (e: unknown) => settle(r, { error: e instanceof Error ? e : new Error(String(e)) }),
        );
    } else {
      socket.emit(request.subscribe, ...args);
    }
  };
  const onLive = (data: T): void => {
    if (waiting) waiting.push(data);
    else handlers.live(data);
  };
  const onSnapshot = (state: S): void => settle(round, { value: state });
  // A new session forgot the subscription; a recovered one kept it.
  const onConnect = (): void => {
    if (!socket.recovered) subscribe();
  };
  socket.on(request.live, onLive);
  if (source !== "ack") socket.on(source.event, onSnapshot);
  socket.on("connect", onConnect);
  if (socket.connected) subscribe();
  return () => {
    stopped = true;
    clearTimeout(timer);
    socket.off(request.live, onLive);
    if (source !== "ack") socket.off(source.event, onSnapshot);
    socket.off("connect", onConnect);
  };
}
