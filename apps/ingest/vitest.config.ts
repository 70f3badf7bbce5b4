import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Tests start redis-servers and processes: give them time on a small shared machine, and
    // run the files one after another.
    testTimeout: 30_000,
    hookTimeout: 30_000,
    fileParallelism: false,
    // The suites that depend on the queue path run on the fast path (required) and on BullMQ's
    // stock path.
    projects: [
      { extends: true, test: { name: 'fast', env: { QUEUE_FAST_PATH: 'on' } } },
      {
        extends: true,
        test: {
          name: 'stock',
          env: { QUEUE_FAST_PATH: 'off' },
          include: ['src/app.test.ts', 'src/main.test.ts'],
        },
      },
    ],
  },
});
