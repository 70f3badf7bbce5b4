import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** What the benchmarks run: the shipped apps, the baselines and the trivial handler module. */
export const ENTRY = {
  ingest: join(ROOT, 'apps/ingest/dist/main.js'),
  worker: join(ROOT, 'apps/worker/dist/main.js'),
  baseline: join(ROOT, 'bench/dist/baseline-server.js'),
  bareWorker: join(ROOT, 'bench/dist/bare-worker.js'),
  traceSink: join(ROOT, 'bench/dist/trace-sink.js'),
  trivialHandlers: join(ROOT, 'bench/fixtures/trivial-handlers.mjs'),
  unorderedHandlers: join(ROOT, 'bench/fixtures/unordered-handlers.mjs'),
  oneAtATimeHandlers: join(ROOT, 'bench/fixtures/one-at-a-time-handlers.mjs'),
};

/** The signing secret of benchmark traffic. */
export const SECRET = 'whsec_bench_secret_not_for_production';

/** Starts a Node script with its output discarded (the harness must not pay for it). */
export function spawnNode(
  entry: string,
  env: Record<string, string | undefined>,
  nodeArgs: readonly string[] = [],
): ChildProcess {
  return spawn(process.execPath, [...nodeArgs, entry], {
    env: { ...process.env, ...env },
    stdio: 'ignore',
  });
}

/** SIGTERM, SIGKILL after 15 s; resolves once the process has exited. */
export async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

/** The machine a report's figures come from. */
export function machine() {
  const cpu = cpus();
  let redis = 'unknown';
  try {
    redis = execFileSync('redis-server', ['--version'], { encoding: 'utf8' }).trim();
  } catch {}
  return {
    cpu: `${cpu.length} × ${cpu[0]?.model ?? 'unknown'}`,
    cores: cpu.length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    redis,
  };
}
