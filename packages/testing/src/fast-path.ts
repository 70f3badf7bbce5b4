/** What a test process runs the queue on: `QUEUE_FAST_PATH` as the test project sets it. */
export type TestQueuePath = 'auto' | 'on' | 'off';

/**
 * `QUEUE_FAST_PATH` of this test run. The suites that depend on it run twice (vitest projects
 * `fast` and `stock`, which set it to `on` and `off`); processes a test starts inherit it.
 */
export function testQueuePath(env: NodeJS.ProcessEnv = process.env): TestQueuePath {
  const mode = env.QUEUE_FAST_PATH;
  return mode === 'on' || mode === 'off' ? mode : 'auto';
}
