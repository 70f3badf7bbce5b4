import { afterAll, describe, expect, it } from 'vitest';
import { startRedisCluster, type TestCluster } from './cluster.js';
import { rawCommand } from './redis.js';

describe('startRedisCluster', () => {
  let cluster: TestCluster | undefined;
  afterAll(async () => cluster?.cleanup());

  it('starts three masters that share all 16384 slots, and restarts one with its data', async () => {
    cluster = await startRedisCluster(3);
    const info = await rawCommand(cluster.nodes[0]!.port, ['CLUSTER', 'INFO']);
    expect(info).toContain('cluster_slots_assigned:16384');
    expect(info).toContain('cluster_known_nodes:3');
    expect(cluster.nodesEnv.split(',')).toHaveLength(3);
    await cluster.restartNode(1);
    expect(await rawCommand(cluster.nodes[1]!.port, ['CLUSTER', 'INFO'])).toContain(
      'cluster_state:ok',
    );
  }, 60_000);
});
