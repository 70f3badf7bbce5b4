import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Every file here starts real processes and redis-servers, several of them timing-sensitive
    // (deadlines, recovery times): running files side by side on a small machine skews them.
    fileParallelism: false,
  },
});
