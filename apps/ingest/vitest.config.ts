import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Tests start redis-servers and processes: give them time on a small shared machine, and
    // run the files one after another.
    testTimeout: 30_000,
    hookTimeout: 30_000,
    fileParallelism: false,
  },
});
