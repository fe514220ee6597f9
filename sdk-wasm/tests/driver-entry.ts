// The driver as tests/browser.rs imports it (scripts/test-wasm.sh bundles this file, with the
// .wasm of scripts/build-wasm.sh inlined, into tests/generated/driver.js): loaded before any test.
import init, { WasmClient } from "../../npm/src/wasm/tidings_wasm.js";
import module from "../../npm/dist/wasm/tidings_wasm_bg.wasm";

await init({ module_or_path: module });

export { WasmClient };
