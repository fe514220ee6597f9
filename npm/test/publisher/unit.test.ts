// @vitest-environment node
// `tidings/publisher` against a scripted `fetch`: the requests it sends (one event, or a batch),
// which answers are retried and which fail at once, the batch's bounds and fallbacks, the queue's
// bound, flush and close. The real reference server (restarts, 503s, lost answers) is in
// e2e.test.ts.

import { inspect } from "node:util";
import { describe, expect, it } from "vitest";
import {
  type Publication,
  type PublishError,
  Publisher,
  PublisherClosedError,
  PublisherCloseTimeoutError,
  type PublisherFetch,
  type PublisherOptions,
  PublishGaveUpError,
  PublishQueueFullError,
  PublishRejectedError,
} from "../../src/publisher.js";

interface EventBody {
  to: { room?: string; users?: string[] };
  event: string;
  data: unknown;
  idempotencyKey: string;
  tenantId?: string;
  correlationId?: string;
}

interface Sent {
  url: string;
  headers: Record<string, string>;
  /** The body as sent: one event, or `{ events }` for a batch. */
  raw: string;
  body: EventBody;
  /** The events it carried (one, or a batch's). */
  events: EventBody[];
}

const SINGLE = "http://server.test/internal/emit";
const BATCH = "http://server.test/internal/v1/emit/batch";

/** What the scripted server does with one request. */
type Step = number | "network-error" | "hang" | { status: number; body?: string; headers?: Record<string, string> };

/**
 * A `fetch` that answers each request by the next step of `script` (then 200s), numbering the
 * events: a 200 without a body is `{id, offset}`, or a batch's `{results}`.
 */
function scripted(script: Step[] = []) {
  const sent: Sent[] = [];
  let offset = 0;
  const fetch: PublisherFetch = async (url, init) => {
    const body = JSON.parse(init.body) as EventBody & { events?: EventBody[] };
    sent.push({ url, headers: init.headers, raw: init.body, body, events: body.events ?? [body] });
    const step = script.shift() ?? 200;
    if (step === "network-error") throw new TypeError("fetch failed", { cause: new Error("ECONNREFUSED") });
    if (step === "hang") {
      return new Promise((_, reject) => init.signal.addEventListener("abort", () => reject(new Error("aborted"))));
    }
    const s = typeof step === "number" ? { status: step } : step;
    const landed = (): { id: string; offset: number } => ({ id: `evt_${++offset}`, offset });
    const ok = body.events ? { results: body.events.map(() => ({ ...landed(), replayed: false })) } : landed();
    const answer = s.body ?? (s.status === 200 ? JSON.stringify(ok) : "");
    return new Response(answer, { status: s.status, headers: s.headers ?? {} });
  };
  return { sent, fetch };
}

/** The data of every event sent, request after request. */
const sentData = (sent: Sent[]): unknown[] => sent.flatMap((s) => s.events.map((e) => e.data));

const fast = { minMs: 1, maxMs: 5, jitter: 0 } as const;

function publisher(fetch: PublisherFetch, extra: Partial<PublisherOptions> = {}): Publisher {
  return new Publisher({ url: "http://server.test/", apiKey: "secret-key", fetch, backoff: fast, ...extra });
}

describe("Publisher", () => {
  it("sends the contract's request, with a generated idempotency key", async () => {
    const { sent, fetch } = scripted();
    const p = publisher(fetch);
    const a = await p.publish({ room: "tenant:acme" }, "task.created", { id: "t1" }, { correlationId: "req-1" });
    const b = await p.publish({ users: ["alice", "bob"] }, "task.assigned", null, { tenantId: "acme", idempotencyKey: "order-42" });
    expect(a).toMatchObject({ id: "evt_1", offset: 1, replayed: false });
    expect(a.idempotencyKey).toMatch(/^[0-9a-f-]{36}$/);
    expect(b).toEqual({ id: "evt_2", offset: 2, replayed: false, idempotencyKey: "order-42" });
    expect(sent[0]?.url).toBe("http://server.test/internal/emit");
    expect(sent[0]?.headers).toEqual({ "content-type": "application/json", "x-internal-api-key": "secret-key" });
    expect(sent[0]?.body).toEqual({
      to: { room: "tenant:acme" },
      event: "task.created",
      data: { id: "t1" },
      idempotencyKey: a.idempotencyKey,
      correlationId: "req-1",
    });
    expect(sent[1]?.body).toEqual({
      to: { users: ["alice", "bob"] },
      event: "task.assigned",
      data: null,
      idempotencyKey: "order-42",
      tenantId: "acme",
    });
    expect(p.metrics()).toEqual({ published: 2, retried: 0, failed: 0, queued: 0, batches: 0 });
  });

  it("retries 5xx, 429, network errors and timeouts with the same key; Retry-After wins over the backoff", async () => {
    const { sent, fetch } = scripted([
      503,
      "network-error",
      "hang",
      { status: 429, headers: { "retry-after": "0" } },
      { status: 200, body: '{"id":"evt_9","offset":9}', headers: { "idempotent-replayed": "true" } },
    ]);
    // A 429 would otherwise wait 10 s (the backoff's first delay); its Retry-After: 0 says at once.
    const p = publisher(fetch, { requestTimeoutMs: 50, backoff: { minMs: 1, maxMs: 5, jitter: 0 } });
    const started = Date.now();
    const done = await p.publish({ room: "tenant:acme" }, "task.created", { n: 1 });
    expect(done.replayed).toBe(true);
    expect(new Set(sent.map((s) => s.body.idempotencyKey))).toEqual(new Set([done.idempotencyKey]));
    expect(sent).toHaveLength(5);
    expect(p.metrics()).toEqual({ published: 1, retried: 4, failed: 0, queued: 0, batches: 0 });
    expect(Date.now() - started).toBeLessThan(2_000);
    // The server's Retry-After overrides a long backoff.
    const slow = scripted([{ status: 503, headers: { "retry-after": "0" } }]);
    const q = publisher(slow.fetch, { backoff: { minMs: 60_000, maxMs: 60_000 } });
    await q.publish({ room: "tenant:acme" }, "task.created", {});
    expect(q.metrics().retried).toBe(1);
  });

  it("fails a refusal at once with the server's code, and reports it to onError", async () => {
    const refusal = { status: 400, body: '{"error":"event names are 1-100 characters","code":"invalid_event"}' };
    const { sent, fetch } = scripted([refusal, 403]);
    const failures: [PublishError, Publication][] = [];
    const p = publisher(fetch, { onError: (e, publication) => failures.push([e, publication]) });
    const error = await p.publish({ room: "tenant:acme" }, "bad name!", {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PublishRejectedError);
    expect(error).toMatchObject({ kind: "rejected", status: 400, code: "invalid_event" });
    // Fire and forget: an ignored promise that fails is no unhandled rejection (vitest would fail).
    void p.publish({ room: "tenant:acme" }, "task.created", { n: 2 });
    await p.flush();
    expect(sent).toHaveLength(2);
    expect(p.metrics()).toEqual({ published: 0, retried: 0, failed: 2, queued: 0, batches: 0 });
    expect(failures.map(([e, pub]) => [e.kind, pub.event, pub.data])).toEqual([
      ["rejected", "bad name!", {}],
      ["rejected", "task.created", { n: 2 }],
    ]);
  });

  it("sends what is queued behind an event in one batch request, each with its own key and answer", async () => {
    const { sent, fetch } = scripted();
    const p = publisher(fetch);
    const answers = [0, 1, 2, 3, 4].map((i) =>
      p.publish({ room: "tenant:acme" }, "e", i, i === 2 ? { idempotencyKey: "order-2", correlationId: "req-2" } : {}),
    );
    const published = await Promise.all(answers);
    // The first goes alone (nothing was queued behind it yet), the four given meanwhile together.
    expect(sent.map((s) => [s.url, s.events.length])).toEqual([
      [SINGLE, 1],
      [BATCH, 4],
    ]);
    expect(sent[1]?.headers).toEqual({ "content-type": "application/json", "x-internal-api-key": "secret-key" });
    expect(sent[1]?.events[1]).toEqual({
      to: { room: "tenant:acme" },
      event: "e",
      data: 2,
      idempotencyKey: "order-2",
      correlationId: "req-2",
    });
    expect(published.map((x) => x.offset)).toEqual([1, 2, 3, 4, 5]);
    expect(published.map((x) => x.idempotencyKey)).toEqual(sent.flatMap((s) => s.events.map((e) => e.idempotencyKey)));
    expect(new Set(published.map((x) => x.idempotencyKey)).size).toBe(5);
    expect(p.metrics()).toEqual({ published: 5, retried: 0, failed: 0, queued: 0, batches: 1 });
  });

  it("bounds a batch by batchMax (at most 100; 1 sends one request per event) and by 1 MiB", async () => {
    const sizes = async (extra: Partial<PublisherOptions>, count: number, data: (i: number) => unknown = (i) => i) => {
      const { sent, fetch } = scripted();
      const p = publisher(fetch, extra);
      await Promise.all(Array.from({ length: count }, (_, i) => p.publish({ room: "tenant:acme" }, "e", data(i))));
      expect(sentData(sent)).toEqual(Array.from({ length: count }, (_, i) => data(i)));
      expect(Math.max(...sent.map((s) => new TextEncoder().encode(s.raw).length))).toBeLessThanOrEqual(1 << 20);
      return sent.map((s) => (s.url === BATCH ? s.events.length : -1));
    };
    expect(await sizes({ batchMax: 2 }, 5)).toEqual([-1, 2, 2]);
    expect(await sizes({ batchMax: 1 }, 3)).toEqual([-1, -1, -1]);
    expect(await sizes({ batchMax: 1000 }, 150)).toEqual([-1, 100, 49]);
    // 60,000 characters of two UTF-8 bytes each: 120 KB an event, 8 of them in a MiB.
    expect(await sizes({}, 11, (i) => `${i}${"é".repeat(60_000)}`)).toEqual([-1, 8, 2]);
  });

  it("retries a batch whole with the same keys; a refusal in it fails that event only", async () => {
    const refused = { status: 400, code: "invalid_event", message: "event names are 1-100 characters" };
    const results = JSON.stringify({
      results: [{ id: "evt_2", offset: 2, replayed: true }, { error: refused }, { id: "evt_3", offset: 3, replayed: false }],
    });
    const { sent, fetch } = scripted([200, 503, { status: 429, headers: { "retry-after": "0" } }, { status: 200, body: results }]);
    const failures: PublishError[] = [];
    const p = publisher(fetch, { onError: (e) => failures.push(e) });
    const answers = [0, 1, 2, 3].map((i) => p.publish({ room: "tenant:acme" }, i === 2 ? "bad name!" : "e", i).catch((e: unknown) => e));
    const [first, a, b, c] = await Promise.all(answers);
    expect(sent.map((s) => s.url)).toEqual([SINGLE, BATCH, BATCH, BATCH]);
    expect(new Set(sent.slice(1).map((s) => s.raw)).size).toBe(1); // the same batch, keys and all
    expect(first).toMatchObject({ offset: 1 });
    expect(a).toMatchObject({ id: "evt_2", offset: 2, replayed: true });
    expect(b).toBeInstanceOf(PublishRejectedError);
    expect(b).toMatchObject({ status: 400, code: "invalid_event" });
    expect(String(b)).toContain("event names are 1-100 characters");
    expect(c).toMatchObject({ id: "evt_3", offset: 3, replayed: false });
    expect(failures).toEqual([b]);
    expect(p.metrics()).toEqual({ published: 3, retried: 2, failed: 1, queued: 0, batches: 3 });
  });

  it("fails the events of a refused batch, and gives up on a batch after maxAttempts", async () => {
    const { fetch } = scripted([200, { status: 403, body: '{"error":"invalid x-internal-api-key","code":"invalid_api_key"}' }]);
    const p = publisher(fetch);
    const answers = await Promise.all([0, 1, 2].map((i) => p.publish({ room: "tenant:acme" }, "e", i).catch((e: unknown) => e)));
    expect(answers.slice(1)).toEqual([expect.any(PublishRejectedError), expect.any(PublishRejectedError)]);
    expect(answers[1]).toMatchObject({ status: 403, code: "invalid_api_key" });
    const gave = scripted([200, 503, 502]);
    const q = publisher(gave.fetch, { maxAttempts: 2 });
    const failed = await Promise.all([0, 1, 2].map((i) => q.publish({ room: "tenant:acme" }, "e", i).catch((e: unknown) => e)));
    expect(failed.slice(1)).toEqual([expect.any(PublishGaveUpError), expect.any(PublishGaveUpError)]);
    expect(failed[2]).toMatchObject({ attempts: 2, last: "HTTP 502" });
    expect(q.metrics()).toEqual({ published: 1, retried: 1, failed: 2, queued: 0, batches: 2 });
  });

  it("falls back to one request per event for good after a 404 or 405 on the batch path; a 413 sends that batch one by one", async () => {
    for (const status of [404, 405]) {
      const { sent, fetch } = scripted([200, status]);
      const p = publisher(fetch);
      await Promise.all([0, 1, 2].map((i) => p.publish({ room: "tenant:acme" }, "e", i)));
      await Promise.all([3, 4, 5].map((i) => p.publish({ room: "tenant:acme" }, "e", i)));
      expect(sent.map((s) => s.url)).toEqual([SINGLE, BATCH, SINGLE, SINGLE, SINGLE, SINGLE, SINGLE]);
      expect(sentData(sent)).toEqual([0, 1, 2, 1, 2, 3, 4, 5]);
      expect(p.metrics()).toMatchObject({ published: 6, failed: 0, batches: 1 });
    }
    const { sent, fetch } = scripted([200, 413]);
    const p = publisher(fetch);
    await Promise.all([0, 1, 2].map((i) => p.publish({ room: "tenant:acme" }, "e", i)));
    await Promise.all([3, 4, 5].map((i) => p.publish({ room: "tenant:acme" }, "e", i)));
    expect(sent.map((s) => s.url)).toEqual([SINGLE, BATCH, SINGLE, SINGLE, SINGLE, BATCH]);
    expect(p.metrics()).toMatchObject({ published: 6, failed: 0, batches: 2 });
  });

  it("gives up after maxAttempts", async () => {
    const { sent, fetch } = scripted([503, 502, 500]);
    const p = publisher(fetch, { maxAttempts: 3 });
    const error = await p.publish({ room: "tenant:acme" }, "task.created", {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PublishGaveUpError);
    expect(error).toMatchObject({ kind: "gave-up", attempts: 3, last: "HTTP 500" });
    expect(sent).toHaveLength(3);
    expect(p.metrics()).toEqual({ published: 0, retried: 2, failed: 1, queued: 0, batches: 0 });
  });

  it("keeps a bounded queue in order: tryPublish throws when full, publish waits in line", async () => {
    const { sent, fetch } = scripted(["hang"]);
    const p = publisher(fetch, { queue: 2, requestTimeoutMs: 100 });
    const results: Promise<unknown>[] = [];
    results.push(p.tryPublish({ room: "tenant:acme" }, "e", 0)); // in flight (hangs once)
    results.push(p.tryPublish({ room: "tenant:acme" }, "e", 1));
    results.push(p.tryPublish({ room: "tenant:acme" }, "e", 2));
    expect(() => p.tryPublish({ room: "tenant:acme" }, "e", 3)).toThrow(PublishQueueFullError);
    results.push(p.publish({ room: "tenant:acme" }, "e", 3)); // waits for room
    expect(() => p.tryPublish({ room: "tenant:acme" }, "e", 4)).toThrow(PublishQueueFullError);
    expect(p.metrics().queued).toBe(4);
    let room = false;
    const roomed = p.whenRoom().then(() => (room = true));
    expect(room).toBe(false);
    await roomed;
    await Promise.all(results);
    expect(sentData(sent)).toEqual([0, 0, 1, 2, 3]);
    expect(sent.map((s) => s.url)).toEqual([SINGLE, SINGLE, BATCH, SINGLE]); // 1 and 2 together
    expect(p.metrics()).toEqual({ published: 4, retried: 1, failed: 0, queued: 0, batches: 1 });
  });

  it("serializes the data when given and refuses data that is not JSON", async () => {
    const { sent, fetch } = scripted();
    const p = publisher(fetch);
    const data = { n: 1 };
    const done = p.publish({ room: "tenant:acme" }, "e", data);
    data.n = 2;
    await done;
    expect(sent[0]?.body.data).toEqual({ n: 1 });
    expect(() => p.tryPublish({ room: "tenant:acme" }, "e", { big: 1n })).toThrow(TypeError);
    await expect(p.publish({ room: "tenant:acme" }, "e", {}, { idempotencyKey: "" })).rejects.toThrow(TypeError);
  });

  it("flush waits for what was queued; close drains, then refuses", async () => {
    const { sent, fetch } = scripted([503, 503]);
    const p = publisher(fetch, { backoff: { minMs: 20, maxMs: 20, jitter: 0 } });
    for (let i = 0; i < 5; i++) void p.publish({ room: "tenant:acme" }, "e", i);
    await p.flush();
    expect(p.metrics()).toEqual({ published: 5, retried: 2, failed: 0, queued: 0, batches: 1 });
    for (let i = 5; i < 8; i++) void p.publish({ room: "tenant:acme" }, "e", i);
    await p.close({ timeoutMs: 5_000 });
    expect(p.metrics()).toMatchObject({ published: 8, queued: 0 });
    expect(sentData(sent)).toEqual([0, 0, 0, 1, 2, 3, 4, 5, 6, 7]);
    await expect(p.publish({ room: "tenant:acme" }, "e", 9)).rejects.toBeInstanceOf(PublisherClosedError);
    expect(() => p.tryPublish({ room: "tenant:acme" }, "e", 9)).toThrow(PublisherClosedError);
    await p.close(); // again: nothing left
  });

  it("close gives up after its timeout: the rest fails as closed", async () => {
    const { fetch } = scripted(Array.from({ length: 100 }, () => 503));
    const p = publisher(fetch, { backoff: { minMs: 10, maxMs: 10, jitter: 0 } });
    const pending = [0, 1, 2].map((i) => p.publish({ room: "tenant:acme" }, "e", i).catch((e: unknown) => e));
    const error = await p.close({ timeoutMs: 100 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PublisherCloseTimeoutError);
    expect(error).toMatchObject({ unpublished: 3 });
    for (const e of await Promise.all(pending)) expect(e).toBeInstanceOf(PublisherClosedError);
    expect(p.metrics()).toMatchObject({ published: 0, failed: 3, queued: 0 });
  });

  it("checks its options and keeps the API key out of sight", () => {
    const { fetch } = scripted();
    expect(() => new Publisher({ url: "ftp://x", apiKey: "k", fetch })).toThrow(TypeError);
    expect(() => new Publisher({ url: "http://x", apiKey: "", fetch })).toThrow(TypeError);
    expect(() => new Publisher({ url: "http://x", apiKey: "k", fetch, backoff: { jitter: 2 } })).toThrow(TypeError);
    expect(() => new Publisher({ url: "http://x", apiKey: "k", fetch, queue: 0 })).toThrow(TypeError);
    expect(() => new Publisher({ url: "http://x", apiKey: "k", fetch, batchMax: 0 })).toThrow(TypeError);
    const p = publisher(fetch);
    expect(inspect(p, { showHidden: true, depth: 5 })).not.toContain("secret-key");
    expect(JSON.stringify(p)).not.toContain("secret-key");
  });

  it("types publish by an event map", () => {
    const { fetch } = scripted();
    const p = new Publisher<{ "task.created": { id: string } }>({ url: "http://x", apiKey: "k", fetch });
    void p.publish({ room: "tenant:acme" }, "task.created", { id: "t1" });
    // @ts-expect-error: not an event of the map
    void p.publish({ room: "tenant:acme" }, "task.deleted", { id: "t1" });
    // @ts-expect-error: the data does not fit
    void p.publish({ room: "tenant:acme" }, "task.created", { id: 1 });
  });
});
