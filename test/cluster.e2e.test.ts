import { fileURLToPath } from 'node:url';
import {
  freePort,
  type RunningProcess,
  rawCommand,
  SignedSender,
  startProcess,
  startRedisCluster,
  stopAllProcesses,
  type TestCluster,
  type TestEnvelope,
  testEnvelope,
  traffic,
  waitFor,
} from '@groq-webhooks/testing';
import { Cluster } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ENTRY, ROOT } from './support/paths.js';

const SECRET = 'whsec_cluster-suite-secret-0123456789';
const ADMIN_TOKEN = 'cluster-suite-admin-token-0123456789';
const HANDLERS = fileURLToPath(new URL('./fixtures/cluster-handlers.mjs', import.meta.url));
const EVENTS = 1000;

/** Counts of the CLI's `stats --json`. */
interface Stats {
  counts: Record<'waiting' | 'active' | 'delayed' | 'completed' | 'failed', number>;
  shards: { name: string; counts: Record<string, number> }[];
}

/** Ingest, workers, and where their effects go. */
interface Stack {
  url: string;
  effectsKey: string;
  env: Record<string, string | undefined>;
}

describe('on a real 3-master Redis Cluster, with real ingest and worker processes', () => {
  let cluster: TestCluster;
  let client: Cluster;
  const processes: RunningProcess[] = [];

  beforeAll(async () => {
    // fsync on every write: a SIGKILLed master then keeps everything it acknowledged.
    cluster = await startRedisCluster(3, { args: ['--appendfsync', 'always'] });
    client = new Cluster(
      cluster.nodes.map((node) => ({ host: '127.0.0.1', port: node.port })),
      { redisOptions: { maxRetriesPerRequest: null } },
    );
    client.on('error', () => {});
  }, 60_000);
  afterEach(async () => {
    await Promise.all(processes.splice(0).map((child) => child.stop('SIGTERM', 10_000)));
  });
  afterAll(async () => {
    await stopAllProcesses();
    client?.disconnect();
    await cluster?.cleanup();
  });

  /** Environment shared by every process of a stack. REDIS_URL points nowhere on purpose. */
  function baseEnv(queue: string, shards: number): Record<string, string | undefined> {
    return {
      REDIS_CLUSTER_NODES: cluster.nodesEnv,
      REDIS_URL: 'redis://127.0.0.1:1',
      QUEUE_NAME: queue,
      QUEUE_SHARDS: String(shards),
      GROQ_WEBHOOK_SECRET: SECRET,
      HANDLERS_MODULE: undefined,
    };
  }

  function track(child: RunningProcess): RunningProcess {
    processes.push(child);
    return child;
  }

  /** One ingest and two workers on `queue`, effects recorded under `effectsKey`. */
  async function startStack(
    queue: string,
    shards: number,
    effectsKey = `{effects}:${queue}`,
  ): Promise<Stack> {
    const env = baseEnv(queue, shards);
    const port = await freePort();
    track(
      startProcess(process.execPath, [ENTRY.ingest], {
        cwd: ROOT,
        env: { ...env, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'warn' },
      }),
    );
    const workers = [0, 1].map(() =>
      track(
        startProcess(process.execPath, [ENTRY.worker], {
          cwd: ROOT,
          env: {
            ...env,
            HANDLERS_MODULE: HANDLERS,
            EFFECTS_KEY: effectsKey,
            WORKER_CONCURRENCY: '20',
            WORKER_METRICS_PORT: '0',
            LOCK_DURATION_MS: '5000',
            STALLED_INTERVAL_MS: '5000',
          },
        }),
      ),
    );
    const url = `http://127.0.0.1:${port}`;
    await waitFor(async () => (await fetch(`${url}/readyz`)).ok, {
      timeoutMs: 20_000,
      description: 'ingest ready on the cluster',
    });
    await Promise.all(workers.map((worker) => worker.waitForOutput('Worker ready', 20_000)));
    return { url: `${url}/webhooks/groq`, effectsKey, env };
  }

  async function cliStats(env: Record<string, string | undefined>): Promise<Stats> {
    const cli = track(startProcess(process.execPath, [ENTRY.cli, 'stats', '--json'], { env }));
    const code = await cli.exited;
    expect(code, cli.output()).toBe(0);
    return JSON.parse(cli.output()) as Stats;
  }

  /**
   * Waits until every acknowledged event has an effect and the queue is idle, then compares:
   * every 2xx has exactly one effect, and no event has an effect it should not have.
   */
  async function reconcile(stack: Stack, sender: SignedSender) {
    const acked = sender.deliveries.filter((d) => d.acked).map((d) => d.id);
    const sent = new Set(sender.deliveries.map((d) => d.id));
    await waitFor(async () => (await client.hlen(stack.effectsKey)) >= acked.length, {
      timeoutMs: 60_000,
      description: `${acked.length} effects in ${stack.effectsKey}`,
    });
    const stats = await waitFor(
      async () => {
        const stats = await cliStats(stack.env);
        const { waiting, active, delayed } = stats.counts;
        return waiting + active + delayed === 0 ? stats : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 250, description: 'queue idle' },
    );
    const effects = await client.hgetall(stack.effectsKey);
    return {
      stats,
      acked: acked.length,
      lost: acked.filter((id) => effects[id] === undefined),
      duplicated: Object.entries(effects).filter(([, count]) => count !== '1'),
      unexpected: Object.keys(effects).filter((id) => !sent.has(id)),
    };
  }

  const events = (prefix: string): TestEnvelope[] =>
    Array.from({ length: EVENTS }, (_, i) => clusterEvent(`evt_${prefix}_${i}`));

  /** Sends `events` signed, each until acknowledged; returns the sender's record. */
  async function send(
    stack: Stack,
    events: readonly TestEnvelope[],
    options: { concurrency?: number; sender?: SignedSender } = {},
  ): Promise<SignedSender> {
    const sender =
      options.sender ??
      new SignedSender({ url: stack.url, secret: SECRET, concurrency: options.concurrency ?? 16 });
    await sender.sendAll(events);
    sender.close();
    return sender;
  }

  it('one queue: 1,000 signed events, every 2xx has exactly one effect', async () => {
    const stack = await startStack('cl-one', 1);
    const result = await reconcile(stack, await send(stack, events('one')));
    expect(result.acked).toBe(EVENTS);
    expect(result.lost).toEqual([]);
    expect(result.duplicated).toEqual([]);
    expect(result.unexpected).toEqual([]);
    expect(result.stats.counts.completed).toBe(EVENTS);
  }, 60_000);

  it('QUEUE_SHARDS=3: shards on 3 masters, exactly-once effects, CLI and dashboard see all shards', async () => {
    const stack = await startStack('cl-sharded', 3);
    const sender = await send(stack, events('sharded'));
    const failing = clusterEvent('evt_sharded_fails', { fail: true });
    expect((await send(stack, [failing])).acked()).toBe(1);

    const result = await reconcile(stack, sender);
    expect(result.acked).toBe(EVENTS);
    expect(result.lost).toEqual([]);
    expect(result.duplicated).toEqual([]);
    expect(result.unexpected).toEqual([]);

    // The CLI sums the shards; every shard carried part of the load.
    expect(result.stats.counts.completed).toBe(EVENTS);
    expect(result.stats.counts.failed).toBe(1);
    expect(result.stats.shards.map((shard) => shard.name)).toEqual([
      'cl-sharded-0',
      'cl-sharded-1',
      'cl-sharded-2',
    ]);
    for (const shard of result.stats.shards) expect(shard.counts.completed).toBeGreaterThan(200);

    // Each shard's keys live on its own master.
    const owners = new Set<number>();
    for (const shard of result.stats.shards) {
      for (const node of cluster.nodes) {
        const reply = await rawCommand(node.port, ['KEYS', `*:${shard.name}:meta`]);
        if (reply.includes(`:${shard.name}:meta`)) owners.add(node.port);
      }
    }
    expect(owners.size).toBe(3);

    const dashboardPort = await freePort();
    const dashboard = track(
      startProcess(process.execPath, [ENTRY.dashboard], {
        cwd: ROOT,
        env: {
          ...stack.env,
          ADMIN_TOKEN,
          DASHBOARD_PORT: String(dashboardPort),
          DASHBOARD_HOST: '127.0.0.1',
        },
      }),
    );
    await dashboard.waitForOutput('dashboard listening', 20_000);
    const api = `http://127.0.0.1:${dashboardPort}/api`;
    const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
    const stats = (await (await fetch(`${api}/stats`, { headers: auth })).json()) as Stats;
    expect(stats.counts.completed).toBe(EVENTS);
    expect(stats.counts.failed).toBe(1);
    const list = (await (await fetch(`${api}/failed`, { headers: auth })).json()) as {
      events: { eventId: string }[];
    };
    expect(list.events.map((event) => event.eventId)).toEqual([failing.id]);
  }, 90_000);

  it.each([
    { how: 'SIGTERM', crash: false },
    { how: 'SIGKILL', crash: true },
  ])(
    'a master restarted with AOF ($how) under load loses nothing acknowledged',
    async ({ how, crash }) => {
      const queue = `cl-restart-${how.toLowerCase()}`;
      // The master holding the queue (hash tag {groq}) is restarted; the effects live elsewhere so
      // that the count of effects is not itself disturbed by the restart.
      const victim = await ownerOf('{groq}probe');
      let tag = 0;
      while ((await ownerOf(`{effects-${tag}}probe`)) === victim) tag++;
      const stack = await startStack(queue, 1, `{effects-${tag}}:${queue}`);

      const sender = new SignedSender({ url: stack.url, secret: SECRET, concurrency: 8 });
      let sent = false;
      const sending = send(stack, events(`restart_${how}`), { sender }).finally(() => {
        sent = true;
      });
      await waitFor(() => sender.deliveries.length >= EVENTS / 4, {
        timeoutMs: 30_000,
        description: 'a quarter of the events under way',
      });
      await cluster.restartNode(victim, { crash });
      const restartedWhileSending = !sent;
      await sending;

      const result = await reconcile(stack, sender);
      expect(restartedWhileSending).toBe(true);
      // The restart was seen: the ingest answered 503 while the queue's master was away.
      expect(traffic(sender).non2xx).toBeGreaterThan(0);
      expect(result.acked).toBe(EVENTS);
      expect(result.lost).toEqual([]);
      expect(result.duplicated).toEqual([]);
      expect(result.unexpected).toEqual([]);
      expect(result.stats.counts.failed).toBe(0);
    },
    90_000,
  );

  /** Index of the master that serves `key`: the others answer MOVED. */
  async function ownerOf(key: string): Promise<number> {
    for (const [index, node] of cluster.nodes.entries()) {
      if (!(await rawCommand(node.port, ['EXISTS', key])).startsWith('-MOVED')) return index;
    }
    throw new Error(`no master serves ${key}`);
  }
});

/** A `resource.created` event; `attributes` reach the cluster suite's handler module. */
function clusterEvent(id: string, attributes: Record<string, unknown> = {}): TestEnvelope {
  return testEnvelope({ id, data: { id: `res_${id}`, object: 'test', attributes } });
}
