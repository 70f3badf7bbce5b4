import { defineConfig } from 'vitest/config';

// The tests run Lua scripts and BullMQ against real redis-servers; the heaviest (16,000 markers
// swept in steps) take about 2 s alone and more on a loaded CI machine, where turbo runs the
// packages' suites side by side: vitest's default 5 s is too tight for them.
export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
