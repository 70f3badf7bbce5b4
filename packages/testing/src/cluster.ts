import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts } from './ports.js';
import { onFreePorts } from './process.js';
import { rawCommand, startRedis, type TestRedis } from './redis.js';
import { waitFor } from './wait.js';

/** A throwaway Redis Cluster of masters on loopback, owned by a test. */
export interface TestCluster {
  readonly nodes: readonly TestRedis[];
  /** `host:port,host:port,…`, the form of `REDIS_CLUSTER_NODES`. */
  readonly nodesEnv: string;
  /**
   * Restarts node `index` on the same port and data directory (AOF keeps its data): SIGTERM by
   * default, which flushes the AOF; with `crash`, SIGKILL, which keeps only what was fsynced.
   */
  restartNode(index: number, options?: { crash?: boolean }): Promise<TestRedis>;
  /** Stops every node and removes their directories. */
  cleanup(): Promise<void>;
}

function clusterArgs(busPort: number): string[] {
  // The bus port must be explicit: port + 10000 can overflow past 65535.
  return [
    '--cluster-enabled',
    'yes',
    '--cluster-config-file',
    'nodes.conf',
    '--cluster-port',
    String(busPort),
    '--cluster-node-timeout',
    '5000',
  ];
}

/**
 * One cluster-enabled node on two distinct free ports (client and bus), in a new directory;
 * when another process takes either port before the node binds it, again on two others.
 */
async function startNode(
  extraArgs: readonly string[],
): Promise<{ node: TestRedis; args: string[] }> {
  return onFreePorts(async () => {
    const [port, busPort] = await freePorts(2);
    if (port === undefined || busPort === undefined) throw new Error('no two free ports');
    const args = [...clusterArgs(busPort), ...extraArgs];
    const dir = mkdtempSync(join(tmpdir(), 'groq-cluster-'));
    try {
      return { node: await startRedis({ port, dir, appendOnly: true, args }), args };
    } catch (error) {
      rmSync(dir, { recursive: true, force: true });
      throw error;
    }
  });
}

/** Options for {@link startRedisCluster}. */
export interface StartRedisClusterOptions {
  /** Extra `redis-server` arguments for every node, e.g. `['--appendfsync', 'always']`. */
  args?: readonly string[];
}

/** Starts `masters` cluster-enabled redis-servers (AOF on) and joins them with `redis-cli --cluster create`. */
export async function startRedisCluster(
  masters = 3,
  options: StartRedisClusterOptions = {},
): Promise<TestCluster> {
  const nodes: TestRedis[] = [];
  const args: string[][] = [];
  const dirs: string[] = [];
  try {
    for (let i = 0; i < masters; i++) {
      const started = await startNode(options.args ?? []);
      nodes.push(started.node);
      dirs.push(started.node.dir);
      args.push(started.args);
    }
    await new Promise<void>((resolve, reject) => {
      const create = spawn(
        'redis-cli',
        [
          '--cluster',
          'create',
          ...nodes.map((node) => `127.0.0.1:${node.port}`),
          '--cluster-replicas',
          '0',
          '--cluster-yes',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let output = '';
      create.stdout.on('data', (chunk) => {
        output += chunk;
      });
      create.stderr.on('data', (chunk) => {
        output += chunk;
      });
      create.once('exit', (code) =>
        code === 0 ? resolve() : reject(new Error(`redis-cli --cluster create failed:\n${output}`)),
      );
    });
    for (const node of nodes) {
      await waitFor(
        async () => (await rawCommand(node.port, ['CLUSTER', 'INFO'])).includes('cluster_state:ok'),
        {
          timeoutMs: 20_000,
          description: `cluster_state:ok on ${node.port}`,
        },
      );
    }
  } catch (error) {
    for (const node of nodes) await node.kill();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const cluster: TestCluster = {
    nodes,
    nodesEnv: nodes.map((node) => `127.0.0.1:${node.port}`).join(','),
    async restartNode(index, restart = {}) {
      const node = nodes[index];
      const nodeArgs = args[index];
      if (!node || !nodeArgs) throw new Error(`no cluster node ${index}`);
      if (restart.crash) await node.kill();
      else await node.stop();
      const restarted = await startRedis({
        port: node.port,
        dir: node.dir,
        appendOnly: true,
        args: nodeArgs,
      });
      nodes[index] = restarted;
      await waitFor(
        async () =>
          (await rawCommand(restarted.port, ['CLUSTER', 'INFO'])).includes('cluster_state:ok'),
        {
          timeoutMs: 20_000,
          description: `cluster_state:ok on ${restarted.port} after restart`,
        },
      );
      return restarted;
    },
    async cleanup() {
      for (const node of nodes) await node.kill();
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    },
  };
  return cluster;
}
