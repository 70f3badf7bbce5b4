import { defineConfig } from 'vitest/config';

// Tests start real redis-servers and worker processes; the stall-recovery ones take seconds.
// Files run one after another so the timing-sensitive ones do not compete for the CPU.
export default defineConfig({
  test: { testTimeout: 60_000, hookTimeout: 30_000, fileParallelism: false },
});
