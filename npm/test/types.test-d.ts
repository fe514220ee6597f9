// Type tests of the public contract: checked by `npm run typecheck` (tsc --noEmit), never run.
// A `@ts-expect-error` line fails the check when its line stops being an error.

import { expectTypeOf } from "vitest";
import { createElement } from "react";
import {
  createTidingsHooks,
  TidingsProvider,
  useConnectionState,
  useEmit,
  useEvent,
  useRoom,
  useTidings,
  type RoomState,
} from "../src/react.js";
import type {
  AckResult,
  ConnectError,
  ConnectionState,
  DisconnectReason,
  EventMeta,
  EventParams,
  Envelope,
  EventsMap,
  FeedStatus,
  InvalidEvent,
  Socket,
  TidingsOptions,
} from "../src/types.js";

// Declared as interfaces, the way socket.io-client users write them.
interface ServerToClient {
  message: (text: string, from: { id: string }) => void;
  tick: () => void;
}
interface ClientToServer {
  say: (text: string) => void;
  add: (a: number, b: number, ack: (sum: number) => void) => void;
  pair: (ack: (ok: boolean, reason: string) => void) => void;
}

declare const socket: Socket<ServerToClient, ClientToServer>;
declare const untyped: Socket;

// --- emit ---
socket.emit("say", "hi");
socket.emit("add", 1, 2, (sum) => expectTypeOf(sum).toEqualTypeOf<number>());
// @ts-expect-error wrong argument type
socket.emit("say", 42);
// @ts-expect-error missing argument
socket.emit("say");
// @ts-expect-error not in the emit map
socket.emit("shout", "hi");
// @ts-expect-error a listen event is not an emit event
socket.emit("message", "hi", { id: "x" });
socket.volatile.emit("say", "hi");
// @ts-expect-error volatile is typed too
socket.volatile.emit("say", 1);

// --- acks ---
expectTypeOf<EventParams<ClientToServer, "add">>().toEqualTypeOf<[a: number, b: number]>();
expectTypeOf(socket.emitWithAck("add", 1, 2)).toEqualTypeOf<Promise<number>>();
expectTypeOf(socket.timeout(1000).emitWithAck("add", 1, 2)).toEqualTypeOf<Promise<number>>();
expectTypeOf<AckResult<ClientToServer, "pair">>().toEqualTypeOf<[ok: boolean, reason: string]>();
expectTypeOf(socket.emitWithAck("say", "hi")).toEqualTypeOf<Promise<unknown>>();
// @ts-expect-error emitWithAck takes the arguments without the callback
void socket.emitWithAck("add", 1, 2, () => {});
// @ts-expect-error not in the emit map
void socket.emitWithAck("nope");

// --- listeners ---
socket.on("message", (text, from) => {
  expectTypeOf(text).toEqualTypeOf<string>();
  expectTypeOf(from).toEqualTypeOf<{ id: string }>();
});
socket.once("tick", () => {});
socket.off("message");
// @ts-expect-error unknown event names are rejected when a map is given
socket.on("mesage", () => {});
// @ts-expect-error listener arguments must match the map
socket.on("message", (text: number) => void text);

// --- reserved events, with and without a map ---
function reserved<Listen extends EventsMap, Emit extends EventsMap>(s: Socket<Listen, Emit>): void {
  s.on("state", (state) => expectTypeOf(state).toEqualTypeOf<ConnectionState>());
  s.on("disconnect", (reason) => expectTypeOf(reason).toEqualTypeOf<DisconnectReason>());
  s.on("connect_error", (error) => {
    expectTypeOf(error).toEqualTypeOf<ConnectError>();
    expectTypeOf(error.willRetry).toEqualTypeOf<boolean>();
  });
  s.on("feed", (status) => expectTypeOf(status).toEqualTypeOf<FeedStatus>());
  s.on("connect", () => {});
}
reserved(socket);
reserved(untyped);
// Not through a generic: with the default map every name is also a user event.
untyped.on("state", (s) => expectTypeOf(s).toEqualTypeOf<ConnectionState>());
untyped.once("disconnect", (reason) => expectTypeOf(reason).toEqualTypeOf<DisconnectReason>());
// @ts-expect-error reserved listeners are typed
socket.on("disconnect", (reason: number) => void reason);

// --- the default map: any name, `unknown` arguments, never `any` ---
untyped.on("whatever", (...args) => {
  expectTypeOf(args).toEqualTypeOf<unknown[]>();
  expectTypeOf(args).not.toBeAny();
});
untyped.emit("whatever", 1, "two", { three: 3 });
expectTypeOf(untyped.emitWithAck("whatever")).toEqualTypeOf<Promise<unknown>>();

// --- state ---
const state = socket.state;
if (state.status === "connected") {
  expectTypeOf(state.recovered).toEqualTypeOf<boolean>();
  expectTypeOf(state.transport).toEqualTypeOf<"websocket" | "polling">();
}
// @ts-expect-error `id` only exists while connected
void state.id;
expectTypeOf(socket.recovered).toEqualTypeOf<boolean>();

// --- event metadata ---
expectTypeOf(socket.lastEventMeta).toEqualTypeOf<EventMeta | undefined>();
socket.on("message", () => {
  const meta = socket.lastEventMeta;
  if (meta !== undefined) {
    expectTypeOf(meta.offset).toEqualTypeOf<string | undefined>();
    expectTypeOf(meta.source).toEqualTypeOf<"socket" | "feed">();
  }
});
// @ts-expect-error read-only: the socket sets it
socket.lastEventMeta = undefined;

// --- React: typed hooks bound once ---
const hooks = createTidingsHooks<ServerToClient, ClientToServer>();

export function TypedComponent(): null {
  hooks.useEvent("message", (text, from) => {
    expectTypeOf(text).toEqualTypeOf<string>();
    expectTypeOf(from.id).toEqualTypeOf<string>();
  });
  hooks.useEvent("state", (s) => expectTypeOf(s).toEqualTypeOf<ConnectionState>());
  // @ts-expect-error unknown event name
  hooks.useEvent("mesage", () => {});
  // @ts-expect-error wrong listener arguments
  hooks.useEvent("message", (text: number) => void text);

  const { emit, emitWithAck } = hooks.useEmit();
  emit("say", "hi");
  // @ts-expect-error wrong argument type
  emit("say", 1);
  expectTypeOf(emitWithAck("add", 1, 2)).toEqualTypeOf<Promise<number>>();
  expectTypeOf(hooks.useTidings()).toEqualTypeOf<Socket<ServerToClient, ClientToServer>>();
  return null;
}

// --- React: plain hooks ---
export function PlainComponent(): null {
  useEvent("anything", (...args) => expectTypeOf(args).toEqualTypeOf<unknown[]>());
  useEvent("connect_error", (error) => expectTypeOf(error).toEqualTypeOf<ConnectError>());
  useEvent<ServerToClient, "message">("message", (text) => expectTypeOf(text).toEqualTypeOf<string>());
  // @ts-expect-error unknown event name for an explicit map
  useEvent<ServerToClient, "mesage">("mesage", () => {});
  expectTypeOf(useEmit<ClientToServer>().emitWithAck("add", 1, 2)).toEqualTypeOf<Promise<number>>();
  expectTypeOf(useTidings()).toEqualTypeOf<Socket>();
  expectTypeOf(useConnectionState()).toEqualTypeOf<ConnectionState>();

  const room = useRoom("chat:1");
  expectTypeOf(room).toEqualTypeOf<RoomState>();
  if (room.status === "failed") expectTypeOf(room.error).toEqualTypeOf<Error>();
  if (room.joined) expectTypeOf(room.status).toEqualTypeOf<"joined">();
  return null;
}

// --- React: provider props ---
createElement(TidingsProvider, { client: socket });
createElement(TidingsProvider, { url: "https://example.test", options: { auth: async () => ({ token: "t" }) } });
// @ts-expect-error a client or a url, not both
createElement(TidingsProvider, { client: socket, url: "https://example.test" });
// @ts-expect-error options only go with a url
createElement(TidingsProvider, { client: socket, options: {} });
// @ts-expect-error auth must return an object
createElement(TidingsProvider, { url: "https://example.test", options: { auth: () => "token" } });

// --- Patterns, idempotent emits, envelopes, validation (parity with the Rust SDK) ---
interface Tasks {
  "task.created": (e: Envelope<{ title: string }, "task.created">) => void;
  "task.done": (e: Envelope<{ title: string }, "task.done">) => void;
  "crm:customer:updated": (e: Envelope) => void;
  other: () => void;
}
declare const tasks: Socket<Tasks, ClientToServer>;
tasks.on("task.*", (event, ...args) => {
  expectTypeOf(event).toEqualTypeOf<"task.created" | "task.done">();
  expectTypeOf(args).toEqualTypeOf<unknown[]>();
});
tasks.on("crm:*", (event) => expectTypeOf(event).toEqualTypeOf<"crm:customer:updated">());
tasks.on("*", (event) => expectTypeOf(event).toEqualTypeOf<"task.created" | "task.done" | "crm:customer:updated" | "other">());
tasks.on("task.created", (e) => expectTypeOf(e.data.title).toEqualTypeOf<string>());
untyped.on("task.*", (event) => expectTypeOf(event).toEqualTypeOf<string>());
// @ts-expect-error an event name the map does not have
tasks.on("task", () => {});
tasks.idempotent.emit("say", "hi");
expectTypeOf(tasks.idempotent.emitWithAck("add", 1, 2)).toEqualTypeOf<Promise<number>>();
// @ts-expect-error idempotent emits are typed by the map too
tasks.idempotent.emit("say", 1);
expectTypeOf<EventMeta["id"]>().toEqualTypeOf<string | undefined>();
tasks.on("invalid", (r: InvalidEvent) => expectTypeOf(r.problems).toEqualTypeOf<readonly unknown[]>());
const validated: TidingsOptions = { validate: (event, args, meta) => (event === "x" && meta.source === "feed" ? [args] : []) };
void validated;
const queried: TidingsOptions = { query: { token: "t" } };
void queried;
const transport: TidingsOptions = {
  extraHeaders: { "x-tenant": "acme" },
  withCredentials: true,
  debug: (line) => expectTypeOf(line).toEqualTypeOf<string>(),
};
const loud: TidingsOptions = { debug: true };
void transport;
void loud;
// @ts-expect-error header values are strings
const badHeaders: TidingsOptions = { extraHeaders: { "x-n": 1 } };
void badHeaders;
// @ts-expect-error withCredentials is a boolean
const badCredentials: TidingsOptions = { withCredentials: "include" };
void badCredentials;
