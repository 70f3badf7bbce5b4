import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Every file here starts real processes and redis-servers, several of them timing-sensitive
    // (deadlines, recovery times): running files side by side on a small machine skews them.
    fileParallelism: false,
    projects: [
      // Processes choose their queue path as in production (QUEUE_FAST_PATH=auto).
      { extends: true, test: { name: 'default' } },
      // The exactly-once scenarios again on BullMQ's stock path.
      {
        extends: true,
        test: {
          name: 'stock',
          env: { QUEUE_FAST_PATH: 'off' },
          include: [
            'faults/duplicate-storm.e2e.test.ts',
            'faults/worker-sigkill.e2e.test.ts',
            'faults/worker-sigterm.e2e.test.ts',
            'ordering.e2e.test.ts',
          ],
        },
      },
    ],
  },
});
