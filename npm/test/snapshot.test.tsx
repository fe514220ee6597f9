// subscribeWithSnapshot (tidings/snapshot) and useSnapshot (tidings/react) against FakeSocket:
// the snapshot before the live events that waited for it, a new subscribe (and snapshot) per new
// session but not after a recovered one, the ack form, the timeout, and the hook's state.

import { act, cleanup, renderHook } from "@testing-library/react";
import { StrictMode, type ReactNode } from "react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { TidingsProvider, useSnapshot } from "../src/react.js";
import { subscribeWithSnapshot } from "../src/snapshot.js";
import { FakeSocket } from "./fake-socket.js";

vi.mock("../src/index.js", () => ({ connect: () => new FakeSocket() }));

afterEach(() => cleanup());

function recorder() {
  const seen: string[] = [];
  return {
    seen,
    handlers: {
      snapshot: (s: unknown) => seen.push(`snapshot ${JSON.stringify(s)}`),
      live: (d: unknown) => seen.push(`live ${JSON.stringify(d)}`),
      error: (e: Error) => seen.push(`error ${e.message}`),
    },
  };
}

describe("subscribeWithSnapshot", () => {
  it("hands on the snapshot before the live events that arrived while it was loading", () => {
    const socket = new FakeSocket();
    socket.open();
    const { seen, handlers } = recorder();
    const stop = subscribeWithSnapshot(socket, { subscribe: "subscribe:dashboard", live: "dashboard:update" }, handlers);
    expect(socket.emitted.map((e) => e.event)).toEqual(["subscribe:dashboard"]);
    socket.receive("dashboard:update", { v: 2 });
    expect(seen).toEqual([]);
    socket.receive("dashboard:initial", { v: 1 });
    socket.receive("dashboard:update", { v: 3 });
    expect(seen).toEqual(['snapshot {"v":1}', 'live {"v":2}', 'live {"v":3}']);
    stop();
    socket.receive("dashboard:update", { v: 4 });
    expect(seen).toHaveLength(3);
    expect(socket.listenerCount("dashboard:update")).toBe(0);
  });

  it("subscribes again after a new session, not after a recovered one", () => {
    const socket = new FakeSocket();
    const { seen, handlers } = recorder();
    subscribeWithSnapshot(socket, { subscribe: "subscribe:t", args: { id: 7 }, live: "t:live" }, handlers);
    expect(socket.emitted).toEqual([]);
    socket.open("sid-1");
    expect(socket.emitted.map((e) => [e.event, e.args])).toEqual([["subscribe:t", [{ id: 7 }]]]);
    socket.receive("t:initial", 1);
    socket.open("sid-1", true);
    expect(socket.emitted).toHaveLength(1);
    socket.open("sid-2", false);
    expect(socket.emitted).toHaveLength(2);
    socket.receive("t:live", "held");
    socket.receive("t:initial", 2);
    expect(seen).toEqual(["snapshot 1", "snapshot 2", 'live "held"']);
  });

  it("takes the snapshot from the ack, and reports a snapshot that never comes", async () => {
    vi.useFakeTimers();
    try {
      const socket = new FakeSocket();
      socket.ackReply = () => [10, 11];
      socket.open();
      const { seen, handlers } = recorder();
      subscribeWithSnapshot(socket, { subscribe: "subscribe:prices", snapshot: "ack", live: "prices:tick" }, handlers);
      socket.receive("prices:tick", 12);
      await vi.advanceTimersByTimeAsync(0);
      expect(seen).toEqual(["snapshot [10,11]", "live 12"]);

      const silent = new FakeSocket();
      silent.open();
      const r = recorder();
      subscribeWithSnapshot(silent, { subscribe: "subscribe:x", live: "x:live", timeoutMs: 500 }, r.handlers);
      silent.receive("x:live", "waited");
      await vi.advanceTimersByTimeAsync(500);
      expect(r.seen).toEqual(["error no snapshot for subscribe:x within 500 ms", 'live "waited"']);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe("useSnapshot", () => {
  it("holds the snapshot and the live events since it, under StrictMode", () => {
    const socket = new FakeSocket();
    socket.open();
    const wrapper = ({ children }: { children: ReactNode }) => (
      <StrictMode>
        <TidingsProvider client={socket}>{children}</TidingsProvider>
      </StrictMode>
    );
    const { result } = renderHook(
      () => useSnapshot<{ v: number }, number>({ subscribe: "subscribe:d", live: "d:live" }, { maxLive: 2 }),
      { wrapper },
    );
    expect(result.current.snapshot).toBeUndefined();
    act(() => socket.receive("d:initial", { v: 1 }));
    act(() => {
      for (const n of [1, 2, 3]) socket.receive("d:live", n);
    });
    expect(result.current).toEqual({ snapshot: { v: 1 }, live: [2, 3], skipped: 1, error: undefined });
    act(() => socket.open("sid-2", false));
    act(() => socket.receive("d:initial", { v: 2 }));
    expect(result.current).toEqual({ snapshot: { v: 2 }, live: [], skipped: 0, error: undefined });
    // One listener left after StrictMode's mount, unmount and remount.
    expect(socket.listenerCount("d:live")).toBe(1);
  });
});
