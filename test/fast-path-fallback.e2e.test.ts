import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { freePort, startProcess } from '@groq-webhooks/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reconcile } from './faults/support/reconcile.js';
import { faultEvent, faultSender } from './faults/support/sender.js';
import { SECRET, Stack } from './faults/support/stack.js';
import { ENTRY, ROOT } from './support/paths.js';

// A BullMQ upgrade (a security fix, say) that changes one of the scripts the fast path was
// reviewed against must leave every process working on BullMQ's stock path. This test makes
// such a BullMQ: a temporary copy of the installed one with one comment line of its
// addStandardJob script changed, which the processes load instead of the real one through a
// module resolution hook (nothing in the checkout is touched).

/** The installed BullMQ the queue package resolves, and the directory of its dependencies. */
function installedBullmq(): { dir: string; siblings: string } {
  const require = createRequire(join(ROOT, 'packages/queue/package.json'));
  const dir = dirname(realpathSync(require.resolve('bullmq/package.json')));
  return { dir, siblings: dirname(dir) };
}

/** A copy of BullMQ with `addStandardJob`'s text changed, and the hook that makes it load. */
function changedBullmq(root: string): string {
  const { dir, siblings } = installedBullmq();
  const modules = join(root, 'node_modules');
  cpSync(dir, join(modules, 'bullmq'), { recursive: true });
  // BullMQ's own dependencies, next to the copy as they are next to the original.
  for (const name of readdirSync(siblings)) {
    if (name === 'bullmq' || name.startsWith('.')) continue;
    if (name.startsWith('@')) {
      mkdirSync(join(modules, name), { recursive: true });
      for (const scoped of readdirSync(join(siblings, name))) {
        symlinkSync(join(siblings, name, scoped), join(modules, name, scoped));
      }
      continue;
    }
    symlinkSync(join(siblings, name), join(modules, name));
  }
  for (const flavour of ['cjs', 'esm']) {
    const script = join(modules, 'bullmq/dist', flavour, 'scripts/addStandardJob-9.js');
    const text = readFileSync(script, 'utf8');
    const changed = text.replace('--[[', '--[[ (patched in a later BullMQ)');
    expect(changed).not.toBe(text);
    writeFileSync(script, changed);
  }
  const hooks = join(root, 'hooks.mjs');
  writeFileSync(
    hooks,
    `const from = ${JSON.stringify(pathToFileURL(join(modules, 'resolve-from.js')).href)};
export async function resolve(specifier, context, next) {
  if (specifier === 'bullmq' || specifier.startsWith('bullmq/')) {
    return next(specifier, { ...context, parentURL: from });
  }
  return next(specifier, context);
}
`,
  );
  const register = join(root, 'register.mjs');
  writeFileSync(
    register,
    `import { register } from 'node:module';
register(${JSON.stringify(pathToFileURL(hooks).href)});
`,
  );
  return register;
}

describe('a BullMQ whose scripts differ from the reviewed ones', () => {
  const stack = new Stack();
  let root: string;
  let nodeOptions: string;

  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'groq-changed-bullmq-'));
    nodeOptions = `--import=${changedBullmq(root)}`;
  });
  afterAll(async () => {
    await stack?.cleanup();
    rmSync(root, { recursive: true, force: true });
  });

  it('runs every process on the stock path with one warning, and delivers exactly once', async () => {
    const redis = await stack.redis();
    const effectsRedis = await stack.redis();
    const env = { NODE_OPTIONS: nodeOptions, QUEUE_FAST_PATH: 'auto', LOG_LEVEL: 'info' };
    const ingest = await stack.ingest(redis.url, env);
    const worker = await stack.readyWorker(redis.url, effectsRedis.url, env);
    for (const process of [ingest.process, worker]) {
      const warnings = process
        .logLines()
        .filter((line) => String(line.msg).startsWith('Running without the queue fast path'));
      expect(warnings.map((line) => line.msg)).toEqual([
        "Running without the queue fast path: BullMQ 6.7.0's addStandardJob script differs from the one the fast path was reviewed against (BullMQ 6.7.0); using BullMQ's stock path",
      ]);
    }
    expect(
      ingest.process.logLines().find((line) => line.msg === 'ingest listening')?.queuePath,
    ).toBe('stock');
    expect(worker.logLines().find((line) => line.msg === 'Worker ready')?.queuePath).toBe('stock');

    // 200 events, each sent three times, concurrently: one effect each.
    const events = Array.from({ length: 200 }, (_, i) => faultEvent(`evt_changed_${i}`, 5));
    const sender = faultSender({ url: () => ingest.url, concurrency: 20 });
    await sender.sendAll([...events, ...events, ...events]);
    sender.close();
    const result = await reconcile({
      scenario: 'changed-bullmq-script',
      senders: [sender],
      effects: stack.client(effectsRedis.url),
      queue: stack.client(redis.url),
      maxRecoverySeconds: 0,
    });
    console.log(result.line);
    expect(result.acked).toBe(600);
    expect(result.effects).toBe(200);
    expect(result.lost).toEqual([]);
    expect(result.duplicated).toEqual([]);
    expect(result.unexpected).toEqual([]);

    // The operator's CLI works as ever (it never depends on the fast path).
    const cli = startProcess(process.execPath, [ENTRY.cli, 'stats', '--json'], {
      cwd: ROOT,
      env: { REDIS_URL: redis.url, NODE_OPTIONS: nodeOptions },
    });
    expect(await cli.exited).toBe(0);
    expect(JSON.parse(cli.output()).counts.completed).toBe(200);
  }, 120_000);

  it('refuses to start with QUEUE_FAST_PATH=on, in one line', async () => {
    const redis = await stack.redis();
    for (const entry of [ENTRY.ingest, ENTRY.worker]) {
      const child = startProcess(process.execPath, [entry], {
        cwd: ROOT,
        env: {
          NODE_OPTIONS: nodeOptions,
          QUEUE_FAST_PATH: 'on',
          REDIS_URL: redis.url,
          GROQ_WEBHOOK_SECRET: SECRET,
          PORT: String(await freePort()),
          WORKER_METRICS_PORT: '0',
        },
      });
      expect(await child.exited).toBe(1);
      expect(child.output().trim().split('\n')).toEqual([
        "QUEUE_FAST_PATH=on, but BullMQ 6.7.0's addStandardJob script differs from the one the fast path was reviewed against (BullMQ 6.7.0)",
      ]);
    }
  }, 60_000);
});
