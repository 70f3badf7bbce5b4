import { type ChildProcess, fork } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { ArchiverSnapshot, ArchiverStats } from '@groq-webhooks/archive';
import type { LogLevel } from '@groq-webhooks/config';
import type { QueueSettings, RedisSettings } from '@groq-webhooks/queue';
import { type Logger, TurnBufferedStdout } from '@groq-webhooks/telemetry';

/**
 * How much lower the archiver's CPU priority is than the worker's (nice value, 0–19). At 10,
 * Linux gives it about a tenth of the CPU the worker gets while both want more than there is,
 * and all it wants when a core is idle.
 */
export const ARCHIVER_NICENESS = 10;

/** What the archiver process is started with (its first message). */
export interface ArchiverStart {
  type: 'start';
  redis: RedisSettings;
  queue: QueueSettings;
  databaseUrl: string;
  retentionDays: number;
  /** Its consumer name in the archivers' group: unique per process. */
  consumer: string;
  logLevel: LogLevel;
  niceness: number;
}

/** The worker's messages to its archiver process. */
export type ArchiverRequest = ArchiverStart | { type: 'snapshot'; id: number } | { type: 'stop' };

/** The archiver process's answers. */
export type ArchiverReply = {
  type: 'snapshot';
  id: number;
  snapshot: ArchiverSnapshot | undefined;
};

/** Options of {@link ArchiverProcess}. */
export interface ArchiverProcessOptions {
  start: Omit<ArchiverStart, 'type' | 'niceness'>;
  logger: Logger;
  /** Default {@link ARCHIVER_NICENESS}. */
  niceness?: number;
  /** A snapshot not answered within this is left out (default 1 s). */
  snapshotTimeoutMs?: number;
  /** The archiver stopping longer than this after `close()` is killed (default 15 s). */
  stopTimeoutMs?: number;
}

const STAT_KEYS = ['archived', 'malformed', 'failures', 'deferrals'] as const;
const noStats = (): ArchiverStats => ({ archived: 0, malformed: 0, failures: 0, deferrals: 0 });

const FIRST_RESTART_MS = 1000;
const LAST_RESTART_MS = 30_000;

/**
 * The worker's archiver, run as a child process (`archiver-main`): off the worker's event loop,
 * at a lower CPU priority. Restarted with backoff when it exits on its own; its log lines are
 * passed on whole to the worker's stdout; its counters survive its restarts.
 */
export class ArchiverProcess {
  readonly #options: ArchiverProcessOptions;
  readonly #relay = new TurnBufferedStdout(1);
  readonly #waiting = new Map<number, (snapshot: ArchiverSnapshot | undefined) => void>();
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #closing = false;
  #restartMs = FIRST_RESTART_MS;
  #restartTimer: NodeJS.Timeout | undefined;
  #nextId = 0;
  /** Counters of the archiver processes that ended, added to the running one's. */
  readonly #carried: ArchiverStats = noStats();
  #lastStats: ArchiverStats = noStats();

  constructor(options: ArchiverProcessOptions) {
    this.#options = options;
  }

  /** Starts the archiver process. */
  start(): void {
    if (this.#child !== undefined || this.#closing) return;
    const { entry, execArgv } = archiverEntry();
    const child = fork(entry, [], {
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
      execArgv,
      serialization: 'json',
    });
    this.#child = child;
    const startedAt = Date.now();
    // Its lines, whole, through this process's own stdout writer (two writers on one pipe
    // could cut each other's lines).
    if (child.stdout) {
      createInterface({ input: child.stdout }).on('line', (line) => this.#relay.write(`${line}\n`));
    }
    child.on('message', (reply: ArchiverReply) => {
      if (reply.type !== 'snapshot') return;
      if (reply.snapshot !== undefined) this.#lastStats = { ...reply.snapshot.stats };
      this.#waiting.get(reply.id)?.(reply.snapshot);
    });
    this.#exited = new Promise((resolve) => {
      let ended = false;
      const onEnd = (code: number | null, signal: NodeJS.Signals | null) => {
        if (ended) return;
        ended = true;
        this.#child = undefined;
        for (const answer of this.#waiting.values()) answer(undefined);
        this.#waiting.clear();
        for (const key of STAT_KEYS) this.#carried[key] += this.#lastStats[key];
        this.#lastStats = noStats();
        resolve();
        if (this.#closing) return;
        // It ran a while: a new failure starts the backoff over.
        if (Date.now() - startedAt > 60_000) this.#restartMs = FIRST_RESTART_MS;
        this.#options.logger.warn(
          { code, signal, restartInMs: this.#restartMs },
          'History archiver process exited; starting it again (records wait in Redis)',
        );
        this.#restartTimer = setTimeout(() => this.start(), this.#restartMs);
        this.#restartTimer.unref();
        this.#restartMs = Math.min(this.#restartMs * 2, LAST_RESTART_MS);
      };
      child.once('exit', onEnd);
      // A process that could not be started reports only 'error'.
      child.on('error', () => {
        if (child.pid === undefined) onEnd(null, null);
      });
    });
    child.send({
      type: 'start',
      ...this.#options.start,
      niceness: this.#options.niceness ?? ARCHIVER_NICENESS,
    } satisfies ArchiverStart);
  }

  /** The archiver's counters (over its restarts) and backlog; undefined if it does not answer. */
  snapshot(): Promise<ArchiverSnapshot | undefined> {
    const child = this.#child;
    if (child === undefined || !child.connected) return Promise.resolve(undefined);
    const id = this.#nextId++;
    return new Promise<ArchiverSnapshot | undefined>((resolve) => {
      const timer = setTimeout(() => answer(undefined), this.#options.snapshotTimeoutMs ?? 1000);
      const answer = (snapshot: ArchiverSnapshot | undefined) => {
        clearTimeout(timer);
        this.#waiting.delete(id);
        resolve(snapshot);
      };
      this.#waiting.set(id, answer);
      child.send({ type: 'snapshot', id } satisfies ArchiverRequest);
    }).then((snapshot) =>
      snapshot === undefined
        ? undefined
        : {
            backlog: snapshot.backlog,
            stats: Object.fromEntries(
              STAT_KEYS.map((key) => [key, this.#carried[key] + snapshot.stats[key]]),
            ) as unknown as ArchiverStats,
          },
    );
  }

  /** Stops it after the batch in hand (killed past `stopTimeoutMs`); no restart after this. */
  async close(): Promise<void> {
    this.#closing = true;
    clearTimeout(this.#restartTimer);
    const child = this.#child;
    if (child !== undefined) {
      if (child.connected) child.send({ type: 'stop' } satisfies ArchiverRequest);
      else child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), this.#options.stopTimeoutMs ?? 15_000);
      await this.#exited;
      clearTimeout(killer);
    }
    this.#relay.flushSync();
  }
}

/**
 * The archiver's entry beside this module: compiled JavaScript in a build, TypeScript (through
 * tsx, as for `.ts` handler modules) when this module runs from its sources.
 */
function archiverEntry(): { entry: string; execArgv: string[] } {
  const here = import.meta.url;
  if (here.endsWith('.ts')) {
    return {
      entry: fileURLToPath(new URL('./archiver-main.ts', here)),
      execArgv: ['--import', 'tsx'],
    };
  }
  return { entry: fileURLToPath(new URL('./archiver-main.js', here)), execArgv: [] };
}
