// Stands in for the wasm-bindgen glue (built into dist/, absent from src/) in unit tests, so that
// src/index.ts resolves; tests that need its behaviour replace it with vi.mock.
export default function init(): Promise<void> {
  return Promise.reject(new Error("the wasm glue is not available in unit tests"));
}
export class WasmClient {}
