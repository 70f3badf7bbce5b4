import { defineConfig } from 'vitest/config';

// Tests start real redis-servers and worker processes; the stall-recovery ones take seconds.
// Files run one after another so the timing-sensitive ones do not compete for the CPU.
// The suites that depend on the queue path run twice: on the fast path (required: a silent
// fallback would test the stock path twice) and on BullMQ's stock path.
export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 30_000,
    fileParallelism: false,
    projects: [
      { extends: true, test: { name: 'fast', env: { QUEUE_FAST_PATH: 'on' } } },
      {
        extends: true,
        test: {
          name: 'stock',
          env: { QUEUE_FAST_PATH: 'off' },
          include: ['src/worker.test.ts', 'src/main.test.ts'],
        },
      },
    ],
  },
});
