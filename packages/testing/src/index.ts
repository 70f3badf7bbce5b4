export { type StartRedisClusterOptions, startRedisCluster, type TestCluster } from './cluster.js';
export { captureLines, type TestEnvelope, testEnvelope, testJobData } from './envelopes.js';
export { type TestQueuePath, testQueuePath } from './fast-path.js';
export {
  type CollectedSpan,
  type OtlpReceiver,
  type SpanAttributeValue,
  startOtlpReceiver,
} from './otlp-receiver.js';
export { freePort, freePorts, outsideAddress } from './ports.js';
export {
  postgresBinDir,
  type StartPostgresOptions,
  startPostgres,
  type TestPostgres,
} from './postgres.js';
export {
  PortTakenError,
  type RunningProcess,
  type StartProcessOptions,
  startProcess,
  stopAllProcesses,
} from './process.js';
export { rawCommand, type StartRedisOptions, startRedis, type TestRedis } from './redis.js';
export { type DumpClient, type DumpedValue, dumpKeys } from './redis-dump.js';
export {
  type Attempt,
  type Delivery,
  SignedSender,
  type SignedSenderOptions,
  traffic,
} from './signed-sender.js';
export { type WaitOptions, waitFor } from './wait.js';
