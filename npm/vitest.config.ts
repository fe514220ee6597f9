import { defineConfig } from "vitest/config";

// Hook unit tests in jsdom. test/browser/ (real browser, Playwright) and test/package/ (the built
// package, `npm run test:package`) run separately.
export default defineConfig({
  test: {
    environment: "jsdom",
    include: ["test/**/*.test.{ts,tsx}"],
    exclude: ["test/browser/**", "test/package/**", "node_modules/**", "dist/**"],
    // Two cores: one worker is enough for a few hundred milliseconds of tests.
    maxWorkers: 1,
    restoreMocks: true,
  },
});
