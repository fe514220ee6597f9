// @vitest-environment node
// `tidings/publisher` against the REAL reference server (the `tidings-example-server` binary,
// built by `cargo build -p tidings-example-server`; the tests fail, saying so, when it is not),
// through an HTTP fault proxy: 503s, answers lost after the server handled the request, and a
// server restart publish each event exactly once, in order (read back from the server's feed).

import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { Publisher, PublishRejectedError, type Published } from "../../src/publisher.js";
import { FaultProxy, feed, KEY, killAll, ReferenceServer, removeDir, serverBinary, tempDir } from "./harness.js";

const T = 60_000;
const fast = { minMs: 50, maxMs: 400, factor: 2, jitter: 0.5 } as const;
const cleanup: (() => Promise<void> | void)[] = [];

beforeAll(() => {
  serverBinary(); // throws with how to build it when it is missing
});

afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
  killAll();
});

async function setup(name: string): Promise<{ dir: string; server: ReferenceServer; proxy: FaultProxy }> {
  const dir = tempDir(name);
  cleanup.push(() => removeDir(dir));
  const server = await ReferenceServer.start(dir);
  const proxy = await FaultProxy.start(server.addr);
  cleanup.push(() => proxy.stop());
  return { dir, server, proxy };
}

const seqs = (events: { data: { data: unknown } }[]): unknown[] =>
  events.map((e) => (e.data.data as { seq?: unknown }).seq);

describe("Publisher against the reference server", () => {
  it(
    "publishes each event once and in order through 503s, lost answers and a restart",
    async () => {
      const { dir, server, proxy } = await setup("retries");
      const publisher = new Publisher<{ "task.created": { seq: number } }>({
        url: proxy.origin,
        apiKey: KEY,
        backoff: fast,
      });
      const answers: Promise<Published>[] = [];
      const publish = (from: number, to: number): void => {
        for (let seq = from; seq < to; seq++) {
          answers.push(publisher.publish({ room: "tenant:acme" }, "task.created", { seq }, { correlationId: `req-${seq}` }));
        }
      };
      publish(0, 2);
      await publisher.flush();
      // Request 3 is handled but its answer lost, the next two get a 503 (then the retry of 3 is
      // answered from its idempotency key), and the server restarts in the middle of the stream.
      proxy.plan.push("lose-answer", "unavailable", "unavailable");
      publish(2, 10);
      await publisher.flush();
      expect(proxy.injected).toBe(3);
      await server.stop();
      publish(10, 20);
      // Nothing can land while the server is down: flush waits.
      const flushed = publisher.flush().then(() => "flushed");
      const waited = await Promise.race([flushed, new Promise((ok) => setTimeout(() => ok("waiting"), 500))]);
      expect(waited).toBe("waiting");
      expect(publisher.metrics().queued).toBe(10);
      const again = await ReferenceServer.start(dir, server.port);
      cleanup.push(() => again.stop());
      expect(await flushed).toBe("flushed");

      const published = await Promise.all(answers);
      expect(published.filter((p) => p.replayed)).toHaveLength(1); // the retry after the lost answer
      expect(new Set(published.map((p) => p.idempotencyKey)).size).toBe(20);
      expect(published.map((p) => p.offset)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      const m = publisher.metrics();
      expect([m.published, m.failed, m.queued]).toEqual([20, 0, 0]);
      expect(m.retried).toBeGreaterThanOrEqual(4); // 3 faults, at least one attempt during the restart
      const events = await feed(again.origin);
      expect(seqs(events)).toEqual(Array.from({ length: 20 }, (_, i) => i));
      expect(events.map((e) => e.id)).toEqual(published.map((p) => p.id));
      expect(events.map((e) => e.data.metadata.correlationId)).toEqual(Array.from({ length: 20 }, (_, i) => `req-${i}`));
      await publisher.close({ timeoutMs: 10_000 });
    },
    T,
  );

  it(
    "fails a refused event at once (400 bad event name, 403 wrong key) and counts it",
    async () => {
      const { server } = await setup("refused");
      const publisher = new Publisher({ url: server.origin, apiKey: KEY, backoff: fast });
      const bad = await publisher.publish({ room: "tenant:acme" }, "not an event name!", {}).catch((e: unknown) => e);
      expect(bad).toBeInstanceOf(PublishRejectedError);
      expect(bad).toMatchObject({ status: 400, code: "invalid_event" });
      const noTenant = await publisher.publish({ users: ["alice"] }, "task.created", {}).catch((e: unknown) => e);
      expect(noTenant).toMatchObject({ status: 400, code: "missing_tenant" });
      expect(publisher.metrics()).toEqual({ published: 0, retried: 0, failed: 2, queued: 0 });
      const wrong = new Publisher({ url: server.origin, apiKey: "not-the-key", backoff: fast });
      const refused = await wrong.publish({ room: "tenant:acme" }, "task.created", {}).catch((e: unknown) => e);
      expect(refused).toMatchObject({ status: 403, code: "invalid_api_key" });
      expect(String(refused)).not.toContain("not-the-key");
      expect(await feed(server.origin)).toEqual([]);
    },
    T,
  );

  it(
    "publishes to users with a tenant, once per idempotency key given",
    async () => {
      const { server } = await setup("users");
      const publisher = new Publisher({ url: server.origin, apiKey: KEY });
      const opts = { tenantId: "acme", idempotencyKey: "order-42" };
      const first = await publisher.publish({ users: ["alice"] }, "order.paid", { order: 42 }, opts);
      const second = await publisher.publish({ users: ["alice"] }, "order.paid", { order: 42 }, opts);
      expect(second).toEqual({ ...first, replayed: true });
      expect(first.replayed).toBe(false);
      const alice = await feed(server.origin, "alice");
      expect(alice.map((e) => [e.id, e.event])).toEqual([[first.id, "order.paid"]]);
      expect(await feed(server.origin, "bob")).toEqual([]); // for alice only
    },
    T,
  );

  it(
    "close drains what is queued, waiting for a server that comes back",
    async () => {
      const { dir, server, proxy } = await setup("close");
      const publisher = new Publisher<{ "task.created": { seq: number } }>({ url: proxy.origin, apiKey: KEY, backoff: fast });
      await server.stop();
      for (let seq = 0; seq < 5; seq++) void publisher.publish({ room: "tenant:acme" }, "task.created", { seq });
      const closed = publisher.close({ timeoutMs: 30_000 });
      await new Promise((ok) => setTimeout(ok, 300));
      const again = await ReferenceServer.start(dir, server.port);
      cleanup.push(() => again.stop());
      await closed;
      expect(publisher.metrics()).toMatchObject({ published: 5, failed: 0, queued: 0 });
      expect(seqs(await feed(again.origin))).toEqual([0, 1, 2, 3, 4]);
    },
    T,
  );
});
