// `tidings/publisher`: publishes events to rooms or users through a backend's internal API
// (`POST {url}/internal/emit` with an `x-internal-api-key`, and `POST {url}/internal/v1/emit/batch`
// for several at once; the contract is docs/PUBLISHING.md), from Node, Deno, Bun, Cloudflare
// Workers or any runtime with `fetch`.
//
// Pure TypeScript with no import at all: it never loads the WebAssembly client, so a backend
// service or an edge function pays nothing for it. The behaviour mirrors the Rust
// `tidings::Publisher` (sdk-native/src/publisher.rs):
//
// - a bounded queue sent in order, one request at a time (several in flight could land out of
//   order): one event alone, or what is queued behind it in one batch request (`batchMax`, 100);
//   a server without the batch endpoint (404 or 405) gets single requests from then on;
// - an idempotency key per event (the caller's, or `crypto.randomUUID()`), the same on every
//   retry, so a retry after a lost answer is never published twice;
// - transient failures (network errors, timeouts, 408, 425, 429, 5xx) retried with jittered
//   exponential backoff, `Retry-After` honoured (a batch is retried whole, with its keys); any
//   other answer fails the event (in a batch, that event) at once;
// - `flush()`, `close({ timeoutMs })` and `metrics()`.

/** Where an event goes: one room (`tenant:acme`, `user:42`, `chat:7`), or 1 to 1000 users. */
export type PublishTarget = { readonly room: string } | { readonly users: readonly string[] };

/**
 * Event names and their data, to type `publish` (an interface or a type; by default any name,
 * any JSON data): `new Publisher<{ "task.created": { id: string } }>(...)`.
 */
export type PublishEventMap = object;

/** Per-event options of `publish` / `tryPublish`. */
export interface PublishOptions {
  /** The tenant: needed when publishing to users; otherwise the server takes it from the room. */
  tenantId?: string | undefined;
  /**
   * Kept across retries (1 to 200 characters). Give your own (an outbox row id, an order id) so
   * that a retry by your application, even from another process, is published once too; a fresh
   * `crypto.randomUUID()` otherwise.
   */
  idempotencyKey?: string | undefined;
  /** Carried to the event's envelope metadata (`meta.correlationId`). */
  correlationId?: string | undefined;
}

/** The server's answer for a published event. */
export interface Published {
  /** The event's id (`evt_…`). */
  readonly id: string;
  /** Its offset in the tenant's stream. */
  readonly offset: number;
  /** The server had it already (same idempotency key): this is the first publication's answer. */
  readonly replayed: boolean;
  /** The idempotency key it was published with. */
  readonly idempotencyKey: string;
}

/** What a publisher did so far. */
export interface PublisherMetrics {
  /** Events the server accepted (including replays of an earlier publication). */
  readonly published: number;
  /** Requests that failed transiently and were retried (a batch's retry counts once). */
  readonly retried: number;
  /** Events that failed for good (refused by the server, attempts spent, or closed). */
  readonly failed: number;
  /** Events queued, waiting for room in the queue, or in flight now. */
  readonly queued: number;
  /** Batch requests sent (retries included): each carried several events. */
  readonly batches: number;
}

/** Delay between attempts. */
export interface PublisherBackoff {
  /**
   * `"socket.io"` (default): `minMs * factor^n`, then ± `jitter` of it; `"full-jitter"`: uniform
   * in `[0, min(maxMs, minMs * factor^n)]` (spreads many publishers retrying together better).
   */
  strategy?: "socket.io" | "full-jitter" | undefined;
  /** First delay, in ms (default 200). */
  minMs?: number | undefined;
  /** Largest delay, in ms (default 10000). */
  maxMs?: number | undefined;
  /** Growth per attempt (default 2). */
  factor?: number | undefined;
  /** Jitter of the `"socket.io"` strategy, 0..1 (default 0.5). */
  jitter?: number | undefined;
}

/** The part of a `fetch` response the publisher reads. */
export interface PublisherResponse {
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  text(): Promise<string>;
}

/** The `fetch` the publisher calls (the global one by default). */
export type PublisherFetch = (
  url: string,
  init: { method: "POST"; headers: Record<string, string>; body: string; signal: AbortSignal },
) => Promise<PublisherResponse>;

/** Configures a `Publisher`. */
export interface PublisherOptions {
  /** The server's origin, e.g. `https://api.example.com` (`/internal/emit` is appended). */
  url: string;
  /** The internal API key (header `x-internal-api-key`). Kept private: never in errors or logs. */
  apiKey: string;
  /**
   * Most events waiting to be sent (default 10000). When full, `publish` keeps the event in line
   * behind the queue (`await publisher.whenRoom()` first to apply backpressure) and `tryPublish`
   * throws `PublishQueueFullError`.
   */
  queue?: number | undefined;
  /** Delay between attempts (default: 200 ms doubling to 10 s, ±50 %). */
  backoff?: PublisherBackoff | undefined;
  /** Give up on an event after this many attempts (default: never while open; `close` bounds the wait). */
  maxAttempts?: number | undefined;
  /** Time allowed for one request, answer included, in ms (default 10000); a request that takes longer is retried. */
  requestTimeoutMs?: number | undefined;
  /**
   * Most events sent in one batch request when several are queued (default and most: 100, the
   * contract's bound; `1` sends one request per event). A batch also stays under 1 MiB.
   */
  batchMax?: number | undefined;
  /** The `fetch` to use (default `globalThis.fetch`). */
  fetch?: PublisherFetch | undefined;
  /**
   * Called when an event fails for good, whether or not its promise is awaited: the hook for
   * fire-and-forget callers to log or dead-letter it.
   */
  onError?: ((error: PublishError, publication: Publication) => void) | undefined;
}

/** An event as given to `publish`, with the idempotency key it is sent with. */
export interface Publication {
  readonly to: PublishTarget;
  readonly event: string;
  /** The data as given (it is sent as it was serialized then). */
  readonly data: unknown;
  readonly idempotencyKey: string;
  readonly tenantId: string | undefined;
  readonly correlationId: string | undefined;
}

/** Why an event was not published. `kind` tells the subclasses apart. */
export abstract class PublishError extends Error {
  abstract readonly kind: "rejected" | "gave-up" | "closed" | "queue-full";
}

/** The server refused the event (`400` bad event name or target, `401`/`403` key, …); not retried. */
export class PublishRejectedError extends PublishError {
  readonly kind = "rejected";
  override readonly name = "PublishRejectedError";
  /** The HTTP status. */
  readonly status: number;
  /** The server's stable error code (`invalid_event`, `invalid_api_key`, …), when it sent one. */
  readonly code: string | undefined;
  constructor(status: number, code: string | undefined, message: string) {
    super(`the server refused the event (HTTP ${status}${code === undefined ? "" : ` ${code}`}): ${message}`);
    this.status = status;
    this.code = code;
  }
}

/** `maxAttempts` attempts failed transiently. */
export class PublishGaveUpError extends PublishError {
  readonly kind = "gave-up";
  override readonly name = "PublishGaveUpError";
  /** Attempts made. */
  readonly attempts: number;
  /** What the last attempt came to (`HTTP 503`, a network error, `timed out`). */
  readonly last: string;
  constructor(attempts: number, last: string) {
    super(`gave up after ${attempts} attempt${attempts === 1 ? "" : "s"}; the last: ${last}`);
    this.attempts = attempts;
    this.last = last;
  }
}

/** The publisher was closed: before the event was given, or before it could be published. */
export class PublisherClosedError extends PublishError {
  readonly kind = "closed";
  override readonly name = "PublisherClosedError";
  constructor(message = "the publisher is closed") {
    super(message);
  }
}

/** `tryPublish` found the queue full. */
export class PublishQueueFullError extends PublishError {
  readonly kind = "queue-full";
  override readonly name = "PublishQueueFullError";
  /** The queue's capacity. */
  readonly capacity: number;
  constructor(capacity: number) {
    super(`the publisher's queue is full (${capacity} events)`);
    this.capacity = capacity;
  }
}

/** `close` did not drain the queue in time; what was left failed with `PublisherClosedError`. */
export class PublisherCloseTimeoutError extends Error {
  override readonly name = "PublisherCloseTimeoutError";
  /** Events that were still unpublished (counted as failed). */
  readonly unpublished: number;
  constructor(unpublished: number, timeoutMs: number) {
    super(`${unpublished} event${unpublished === 1 ? " was" : "s were"} still unpublished after ${timeoutMs} ms`);
    this.unpublished = unpublished;
  }
}

interface Job {
  readonly publication: Publication;
  readonly body: string;
  /** The body's size in UTF-8 bytes. */
  readonly bytes: number;
  readonly resolve: (p: Published) => void;
  readonly reject: (e: PublishError) => void;
  /** Published or failed already (`close` may fail it while its request is in flight). */
  settled: boolean;
}

/** What one attempt came to. */
type Attempt<T> =
  | { readonly kind: "done"; readonly value: T }
  | { readonly kind: "retry"; readonly afterMs: number | undefined; readonly why: string }
  | { readonly kind: "fail"; readonly error: PublishError };

interface ResolvedBackoff {
  readonly strategy: "socket.io" | "full-jitter";
  readonly minMs: number;
  readonly maxMs: number;
  readonly factor: number;
  readonly jitter: number;
}

const MAX_RETRY_AFTER_MS = 300_000;
/** Most events in one batch request (the contract's bound), and most bytes of its body. */
const MAX_BATCH_EVENTS = 100;
const MAX_BATCH_BYTES = 1 << 20;

/**
 * Publishes events through the server's internal API, in order, each exactly once.
 *
 * ```ts
 * import { Publisher } from "tidings/publisher";
 * const publisher = new Publisher({ url: "http://127.0.0.1:3000", apiKey: process.env.KEY! });
 * void publisher.publish({ room: "tenant:acme" }, "task.created", { id: "t1" }); // fire and forget
 * const { id, offset } = await publisher.publish({ users: ["alice"] }, "task.assigned", { id: "t1" }, { tenantId: "acme" });
 * await publisher.close({ timeoutMs: 10_000 });
 * ```
 */
export class Publisher<Events extends PublishEventMap = Record<string, unknown>> {
  readonly #endpoint: string;
  readonly #batchEndpoint: string;
  /** Most events per request; 1 once the server turned out to have no batch endpoint. */
  #batchMax: number;
  readonly #apiKey: string;
  readonly #capacity: number;
  readonly #backoff: ResolvedBackoff;
  readonly #maxAttempts: number;
  readonly #requestTimeoutMs: number;
  readonly #fetch: PublisherFetch;
  readonly #onError: ((error: PublishError, publication: Publication) => void) | undefined;

  /** Events queued, in order; the worker takes from the front. */
  readonly #queue: Job[] = [];
  /** Events given to `publish` while the queue was full, in order, behind the queue. */
  readonly #waiting: Job[] = [];
  /** The events of the request in flight. */
  #inFlight: Job[] = [];
  #running = false;
  #closed = false;
  /** Aborts the request in flight and the backoff sleep when `close` gives up. */
  readonly #stop = new AbortController();

  #published = 0;
  #retried = 0;
  #failed = 0;
  #batches = 0;
  /** Events accepted so far, and finished (published or failed) so far. */
  #accepted = 0;
  #done = 0;
  #flushes: { target: number; resolve: () => void }[] = [];
  #roomWaiters: (() => void)[] = [];
  #drained: (() => void)[] = [];

  constructor(options: PublisherOptions) {
    const url = options.url.replace(/\/+$/, "");
    if (!/^https?:\/\/[^/]/i.test(url)) {
      throw new TypeError(`Publisher: url must be an http:// or https:// origin, not ${JSON.stringify(options.url)}`);
    }
    if (typeof options.apiKey !== "string" || options.apiKey === "") {
      throw new TypeError("Publisher: apiKey is required");
    }
    this.#endpoint = `${url}/internal/emit`;
    this.#batchEndpoint = `${url}/internal/v1/emit/batch`;
    const batchMax = Math.floor(positive(options.batchMax, MAX_BATCH_EVENTS, "batchMax"));
    this.#batchMax = Math.min(MAX_BATCH_EVENTS, Math.max(1, batchMax));
    this.#apiKey = options.apiKey;
    this.#capacity = Math.max(1, Math.floor(positive(options.queue, 10_000, "queue")));
    this.#backoff = resolveBackoff(options.backoff ?? {});
    this.#maxAttempts = Math.max(1, Math.floor(positive(options.maxAttempts, Infinity, "maxAttempts")));
    this.#requestTimeoutMs = positive(options.requestTimeoutMs, 10_000, "requestTimeoutMs");
    if (typeof (options.fetch ?? (globalThis.fetch as PublisherFetch | undefined)) !== "function") {
      throw new TypeError("Publisher: this runtime has no global fetch; pass options.fetch");
    }
    // A detached `fetch` can lose its `this` (Workers, some polyfills): call it bound.
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.#onError = options.onError;
  }

  /**
   * Queues `event` with `data` for `to`; resolves with the server's answer once it took the
   * event, rejects with a `PublishError` when it refused it, attempts ran out, or the publisher
   * was closed first (a `TypeError` for data that is not JSON or a bad idempotency key). When
   * the queue is full the event waits in line behind it (never dropped).
   *
   * The promise may be ignored (fire and forget): a failure then never becomes an unhandled
   * rejection; it is counted in `metrics().failed` and passed to `options.onError`.
   */
  publish<E extends keyof Events & string>(
    to: PublishTarget,
    event: E,
    data: Events[E],
    options: PublishOptions = {},
  ): Promise<Published> {
    try {
      return this.#enqueue(to, event, data, options, false);
    } catch (e) {
      return handled(Promise.reject(e));
    }
  }

  /**
   * Like `publish`, but only if the queue has room now: throws `PublishQueueFullError` if not,
   * `PublisherClosedError` after `close`, a `TypeError` for bad arguments (data that is not JSON).
   */
  tryPublish<E extends keyof Events & string>(
    to: PublishTarget,
    event: E,
    data: Events[E],
    options: PublishOptions = {},
  ): Promise<Published> {
    return this.#enqueue(to, event, data, options, true);
  }

  /**
   * Resolves when the queue has room for one more event (at once if it has, or once the publisher
   * is closed: `publish` then rejects with `PublisherClosedError`).
   */
  whenRoom(): Promise<void> {
    if (this.#closed || (this.#waiting.length === 0 && this.#queue.length < this.#capacity)) return Promise.resolve();
    return new Promise((resolve) => this.#roomWaiters.push(resolve));
  }

  /** Resolves when every event given before this call is published or has failed. */
  flush(): Promise<void> {
    const target = this.#accepted;
    if (this.#done >= target) return Promise.resolve();
    return new Promise((resolve) => this.#flushes.push({ target, resolve }));
  }

  /**
   * Stops taking events and waits at most `timeoutMs` (default 10000) for the queued ones. Then
   * rejects with `PublisherCloseTimeoutError` if some were left: the request in flight is
   * aborted and they fail with `PublisherClosedError` (counted as failed).
   */
  async close(options: { timeoutMs?: number | undefined } = {}): Promise<void> {
    const timeoutMs = positive(options.timeoutMs, 10_000, "timeoutMs");
    this.#closed = true;
    for (const w of this.#roomWaiters.splice(0)) w();
    if (!this.#running && this.#queue.length === 0 && this.#waiting.length === 0) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const drained = new Promise<boolean>((resolve) => this.#drained.push(() => resolve(true)));
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    const ok = await Promise.race([drained, timedOut]);
    clearTimeout(timer);
    if (ok) return;
    const inFlight = this.#inFlight.splice(0).filter((job) => !job.settled);
    const left = [...inFlight, ...this.#queue.splice(0), ...this.#waiting.splice(0)];
    this.#stop.abort();
    for (const job of left) {
      this.#finish(job, new PublisherClosedError("the publisher was closed before the event was published"));
    }
    throw new PublisherCloseTimeoutError(left.length, timeoutMs);
  }

  /** What the publisher did so far. */
  metrics(): PublisherMetrics {
    return {
      published: this.#published,
      retried: this.#retried,
      failed: this.#failed,
      queued: this.#accepted - this.#done,
      batches: this.#batches,
    };
  }

  #enqueue(to: PublishTarget, event: string, data: unknown, options: PublishOptions, now: boolean): Promise<Published> {
    if (this.#closed) throw new PublisherClosedError();
    const full = this.#waiting.length > 0 || this.#queue.length >= this.#capacity;
    if (now && full) throw new PublishQueueFullError(this.#capacity);
    const key = options.idempotencyKey ?? randomKey();
    if (typeof key !== "string" || key.length === 0 || key.length > 200) {
      throw new TypeError("publish: idempotencyKey must be 1 to 200 characters");
    }
    const publication: Publication = {
      to,
      event,
      data,
      idempotencyKey: key,
      tenantId: options.tenantId,
      correlationId: options.correlationId,
    };
    // Serialized now: the event is what it was when given, and data that is not JSON fails here.
    const body = requestBody(publication, data);
    let resolve!: (p: Published) => void;
    let reject!: (e: PublishError) => void;
    const promise = handled(
      new Promise<Published>((res, rej) => {
        resolve = res;
        reject = rej;
      }),
    );
    const job: Job = { publication, body, bytes: utf8Length(body), resolve, reject, settled: false };
    this.#accepted += 1;
    (full ? this.#waiting : this.#queue).push(job);
    if (!this.#running) void this.#run();
    return promise;
  }

  async #run(): Promise<void> {
    this.#running = true;
    try {
      // One request at a time keeps the order in which the events were given.
      for (;;) {
        const group = this.#next();
        if (group.length === 0) break;
        this.#admit();
        this.#inFlight = group;
        await this.#deliver(group);
        this.#inFlight = [];
      }
    } finally {
      this.#running = false;
      if (this.#closed) for (const d of this.#drained.splice(0)) d();
    }
  }

  /** The next events to send: the first queued, and what is queued behind it within a batch's bounds. */
  #next(): Job[] {
    const group: Job[] = [];
    let bytes = 16;
    while (group.length < this.#batchMax) {
      const job = this.#queue[0];
      if (job === undefined || (group.length > 0 && bytes + job.bytes + 1 > MAX_BATCH_BYTES)) break;
      bytes += job.bytes + 1;
      group.push(job);
      this.#queue.shift();
    }
    return group;
  }

  /** Moves waiting events into the queue while it has room. */
  #admit(): void {
    while (this.#waiting.length > 0 && this.#queue.length < this.#capacity) {
      this.#queue.push(this.#waiting.shift() as Job);
    }
    if (this.#waiting.length === 0 && this.#queue.length < this.#capacity) {
      for (const w of this.#roomWaiters.splice(0)) w();
    }
  }

  #finish(job: Job, result: Published | PublishError): void {
    if (job.settled) return; // `close` gave up on it and failed it already
    job.settled = true;
    if (result instanceof PublishError) {
      this.#failed += 1;
      job.reject(result);
      try {
        this.#onError?.(result, job.publication);
      } catch {
        // The application's hook must not stop the queue.
      }
    } else {
      this.#published += 1;
      job.resolve(result);
    }
    this.#done += 1;
    const done = this.#done;
    const pending = this.#flushes;
    this.#flushes = pending.filter((f) => f.target > done);
    for (const f of pending) if (f.target <= done) f.resolve();
  }

  /** Publishes `group` (in one batch request if it has several events) and settles each. */
  async #deliver(group: Job[]): Promise<void> {
    if (group.length > 1) {
      const body = `{"events":[${group.map((j) => j.body).join(",")}]}`;
      const results = await this.#send(true, body, (status, text) => batchAnswer(status, text, group));
      if (!(results instanceof PublishError)) {
        group.forEach((job, i) => this.#finish(job, results[i] as Published | PublishError));
        return;
      }
      const status = results instanceof PublishRejectedError ? results.status : 0;
      if (status === 404 || status === 405) {
        // A server without the batch endpoint: one request per event from now on.
        this.#batchMax = 1;
      } else if (status !== 413) {
        for (const job of group) this.#finish(job, results);
        return;
      } // 413: larger than this server takes at once; these go one by one.
    }
    for (const job of group) {
      const key = job.publication.idempotencyKey;
      this.#finish(job, await this.#send(false, job.body, (status, text, res) => singleAnswer(status, text, res, key)));
    }
  }

  /** Sends `body` until `read` takes the answer or fails, retrying transient failures with the backoff. */
  async #send<T>(
    batch: boolean,
    body: string,
    read: (status: number, text: string, res: PublisherResponse) => Attempt<T>,
  ): Promise<T | PublishError> {
    for (let attempt = 1; ; attempt++) {
      if (this.#stop.signal.aborted) return new PublisherClosedError();
      if (batch) this.#batches += 1;
      const a = await this.#attempt(batch ? this.#batchEndpoint : this.#endpoint, body, read);
      if (a.kind === "done") return a.value;
      if (a.kind === "fail") return a.error;
      if (attempt >= this.#maxAttempts) return new PublishGaveUpError(attempt, a.why);
      if (this.#stop.signal.aborted) return new PublisherClosedError();
      this.#retried += 1;
      await sleep(a.afterMs ?? backoffDelay(this.#backoff, attempt - 1), this.#stop.signal);
    }
  }

  async #attempt<T>(
    url: string,
    body: string,
    read: (status: number, text: string, res: PublisherResponse) => Attempt<T>,
  ): Promise<Attempt<T>> {
    const abort = new AbortController();
    const onStop = (): void => abort.abort();
    this.#stop.signal.addEventListener("abort", onStop);
    const timer = setTimeout(() => abort.abort(), this.#requestTimeoutMs);
    try {
      const res = await this.#fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", "x-internal-api-key": this.#apiKey },
        body,
        signal: abort.signal,
      });
      // The answer's body is read within the same time limit.
      const text = await res.text();
      if (transient(res.status)) {
        return { kind: "retry", afterMs: retryAfterMs(res.headers.get("retry-after")), why: `HTTP ${res.status}` };
      }
      return read(res.status, text, res);
    } catch (e) {
      const why = abort.signal.aborted ? `no answer within ${this.#requestTimeoutMs} ms` : describe(e);
      return { kind: "retry", afterMs: undefined, why };
    } finally {
      clearTimeout(timer);
      this.#stop.signal.removeEventListener("abort", onStop);
    }
  }
}

/** Whether an answer with this status is worth retrying as it is. */
function transient(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || status >= 500;
}

/** A refusal: the reference server answers `{"error": "<what>", "code": "<stable code>"}`. */
function refusal(status: number, text: string): PublishRejectedError {
  const v = parseJson(text);
  const code = field(v, "code");
  const message = field(v, "error");
  return new PublishRejectedError(
    status,
    typeof code === "string" ? code : undefined,
    typeof message === "string" ? message : text.slice(0, 500),
  );
}

/** Where an event landed, from `{"id", "offset"}` (and `replayed` in a batch's results). */
function landed(v: unknown, replayed: boolean, key: string): Published | undefined {
  const id = field(v, "id");
  const offset = field(v, "offset");
  if (typeof id !== "string" || typeof offset !== "number") return undefined;
  return { id, offset, replayed: replayed || field(v, "replayed") === true, idempotencyKey: key };
}

/** The answer to `POST /internal/emit`. */
function singleAnswer(status: number, text: string, res: PublisherResponse, key: string): Attempt<Published> {
  if (status < 200 || status >= 300) return { kind: "fail", error: refusal(status, text) };
  const published = landed(parseJson(text), res.headers.get("idempotent-replayed") === "true", key);
  if (published !== undefined) return { kind: "done", value: published };
  const error = new PublishRejectedError(status, undefined, `the answer has no id and offset: ${text.slice(0, 200)}`);
  return { kind: "fail", error };
}

/** The answer to `POST /internal/v1/emit/batch`: one result per event of `group`, in order. */
function batchAnswer(status: number, text: string, group: readonly Job[]): Attempt<(Published | PublishError)[]> {
  if (status < 200 || status >= 300) return { kind: "fail", error: refusal(status, text) };
  const results = field(parseJson(text), "results");
  if (!Array.isArray(results) || results.length !== group.length) {
    const message = `the answer has no result for each of the ${group.length} events: ${text.slice(0, 200)}`;
    return { kind: "fail", error: new PublishRejectedError(status, undefined, message) };
  }
  const out: (Published | PublishError)[] = [];
  for (const [i, r] of results.entries()) {
    const key = (group[i] as Job).publication.idempotencyKey;
    const e = field(r, "error");
    if (e === undefined) {
      const published = landed(r, false, key);
      const malformed = `a result has no id and offset: ${JSON.stringify(r).slice(0, 200)}`;
      out.push(published ?? new PublishRejectedError(status, undefined, malformed));
      continue;
    }
    const s = field(e, "status");
    const eventStatus = typeof s === "number" ? s : 400;
    // Not in the contract (such a failure fails the whole request): the whole batch is sent
    // again with its keys, which keeps the order.
    if (transient(eventStatus)) return { kind: "retry", afterMs: undefined, why: `HTTP ${eventStatus} for an event of the batch` };
    const code = field(e, "code");
    const message = field(e, "message");
    out.push(new PublishRejectedError(eventStatus, typeof code === "string" ? code : undefined, typeof message === "string" ? message : ""));
  }
  return { kind: "done", value: out };
}

/** The length of `s` in UTF-8 bytes. */
function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      n += 4; // a surrogate pair
      i += 1;
    } else n += 3;
  }
  return n;
}

function requestBody(p: Publication, data: unknown): string {
  const to = "room" in p.to ? { room: p.to.room } : { users: [...p.to.users] };
  const body: Record<string, unknown> = { to, event: p.event, data: data ?? null, idempotencyKey: p.idempotencyKey };
  if (p.tenantId !== undefined) body["tenantId"] = p.tenantId;
  if (p.correlationId !== undefined) body["correlationId"] = p.correlationId;
  try {
    return JSON.stringify(body);
  } catch (e) {
    throw new TypeError(`publish: the data of ${JSON.stringify(p.event)} is not JSON: ${describe(e)}`);
  }
}

/** `Retry-After` in seconds or as an HTTP date, capped at 5 minutes. */
function retryAfterMs(value: string | null): number | undefined {
  if (value === null) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Math.min(Number(v) * 1000, MAX_RETRY_AFTER_MS);
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.min(Math.max(0, at - Date.now()), MAX_RETRY_AFTER_MS);
}

/** The delay before retry number `n` (from 0), as the Rust core's `BackoffStrategy::delay_ms`. */
function backoffDelay(b: ResolvedBackoff, n: number, random: () => number = Math.random): number {
  const grown = Math.min(b.minMs * Math.pow(Math.max(1, b.factor), n), b.maxMs * 10);
  if (b.strategy === "full-jitter") return Math.floor(random() * (Math.min(grown, b.maxMs) + 1));
  let ms = grown;
  if (b.jitter > 0) {
    const r = random();
    const dev = Math.floor(r * b.jitter * ms);
    ms = Math.floor(r * 10) % 2 === 0 ? ms - dev : ms + dev;
  }
  return Math.max(0, Math.floor(Math.min(ms, b.maxMs)));
}

function resolveBackoff(b: PublisherBackoff): ResolvedBackoff {
  const r: ResolvedBackoff = {
    strategy: b.strategy ?? "socket.io",
    minMs: b.minMs ?? 200,
    maxMs: b.maxMs ?? 10_000,
    factor: b.factor ?? 2,
    jitter: b.jitter ?? 0.5,
  };
  if (r.strategy !== "socket.io" && r.strategy !== "full-jitter") {
    throw new TypeError(`Publisher: unknown backoff strategy ${JSON.stringify(r.strategy)}`);
  }
  if (!(r.minMs >= 0) || !(r.maxMs > 0) || !Number.isFinite(r.maxMs)) {
    throw new TypeError("Publisher: backoff minMs must be 0 or more and maxMs a finite number above 0");
  }
  if (!Number.isFinite(r.factor) || r.factor < 1) throw new TypeError("Publisher: backoff factor must be a finite number, 1 or more");
  if (!(r.jitter >= 0 && r.jitter <= 1)) throw new TypeError("Publisher: backoff jitter must be between 0 and 1");
  return r;
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!(typeof value === "number" && value > 0)) throw new TypeError(`Publisher: ${name} must be a number above 0`);
  return value;
}

function randomKey(): string {
  const c = globalThis.crypto;
  if (typeof c?.randomUUID === "function") return c.randomUUID();
  if (typeof c?.getRandomValues === "function") {
    const bytes = c.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }
  throw new TypeError("publish: this runtime has no crypto.randomUUID; pass options.idempotencyKey");
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}

/** Marks `p` as handled so that ignoring it never raises an unhandled rejection; returns it. */
function handled<T>(p: Promise<T>): Promise<T> {
  p.catch(() => undefined);
  return p;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function field(v: unknown, name: string): unknown {
  return typeof v === "object" && v !== null ? (v as Record<string, unknown>)[name] : undefined;
}

function describe(e: unknown): string {
  if (e instanceof Error) {
    // Node's fetch says "fetch failed" and puts the reason (ECONNREFUSED, "other side closed") in `cause`.
    const cause = e.cause instanceof Error ? `: ${e.cause.message}` : "";
    return `${e.message}${cause}`;
  }
  return String(e);
}
