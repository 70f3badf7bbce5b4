export { type StartRedisClusterOptions, startRedisCluster, type TestCluster } from './cluster.js';
export { freePort, freePorts, outsideAddress } from './ports.js';
export {
  postgresBinDir,
  type StartPostgresOptions,
  startPostgres,
  type TestPostgres,
} from './postgres.js';
export {
  type RunningProcess,
  type StartProcessOptions,
  startProcess,
  stopAllProcesses,
} from './process.js';
export { rawCommand, type StartRedisOptions, startRedis, type TestRedis } from './redis.js';
export { type WaitOptions, waitFor } from './wait.js';
