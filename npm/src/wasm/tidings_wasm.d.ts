// Hand-kept types of the wasm-bindgen glue that scripts/build-wasm.sh generates into
// npm/dist/wasm/tidings_wasm.js (its own .d.ts types everything as `any`). Must match
// sdk-wasm/src/client.rs; the build script checks that every member below exists in the glue.

import type { ConnectError, ConnectionState, EventSource, FeedStatus } from "../types.js";

/** What `init()` accepts: the .wasm's URL, its bytes, a Response or a compiled module. */
export type InitInput = RequestInfo | URL | Response | BufferSource | WebAssembly.Module;

/** Loads and instantiates the module (once). */
export default function init(input?: { module_or_path?: InitInput | Promise<InitInput> }): Promise<unknown>;

/** Emit flags of `WasmClient.emit`. */
export interface WasmEmitOptions {
  ack?: boolean;
  timeout?: number | undefined;
  volatile?: boolean;
  idempotent?: boolean;
}

/** The low-level client (sdk-wasm/src/client.rs). */
export class WasmClient {
  constructor(url: string, options: unknown);
  /** Opens another namespace over the same connection (connects it at once). */
  of(namespace: string, options: { auth?: unknown }): WasmClient;
  readonly namespace: string;
  free(): void;
  connect(): void;
  disconnect(): void;
  close(): void;
  emit(event: string, args: unknown[], opts: WasmEmitOptions): Promise<unknown[]> | undefined;
  ack(ackId: number, args: unknown[]): void;
  join(room: string): Promise<unknown[]>;
  leave(room: string): Promise<unknown[]>;
  readonly state: ConnectionState;
  readonly id: string | undefined;
  readonly connected: boolean;
  readonly recovered: boolean;
  /** The position of the last event delivered (`Client::cursor`). */
  readonly cursor: string | undefined;
  readonly rooms: string[];
  /**
   * `args`: every argument as sent (the recovery offset last, when there is one; `offset` repeats
   * it). The event counts as received when `f` returns or throws; an exception is reported with
   * `reportError` and the next events are still delivered.
   */
  onEvent(
    f:
      | ((name: string, args: unknown[], offset: string | undefined, source: EventSource, ackId: number | undefined) => void)
      | undefined,
  ): void;
  onState(f: ((state: ConnectionState) => void) | undefined): void;
  onConnectError(f: ((error: ConnectError) => void) | undefined): void;
  onFeed(f: ((status: FeedStatus) => void) | undefined): void;
}
