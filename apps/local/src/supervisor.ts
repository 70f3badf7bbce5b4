import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { SUPERVISOR_PID_VARIABLE } from '@groq-webhooks/config';

/** One process the supervisor runs. */
export interface ChildSpec {
  /** Short name used as the output prefix. */
  name: string;
  /** Script run with this Node binary. */
  entry: string;
  env: Record<string, string | undefined>;
}

/** How child output is shown. */
export type OutputMode = 'pretty' | 'json';

/** Options for {@link Supervisor}. */
export interface SupervisorOptions {
  mode: OutputMode;
  /** Writes one finished line (with its newline). */
  write: (line: string) => void;
  /** Turns one JSON log line into readable text (pretty mode). */
  pretty: (line: string) => string;
  /** Called once when a child exits on its own (not asked to stop). */
  onUnexpectedExit: (name: string, code: number | string) => void;
}

const COLORS = ['\u001b[36m', '\u001b[35m', '\u001b[33m', '\u001b[32m'];
const RESET = '\u001b[0m';
/** How long a child's pipes may stay open after it exited. */
const PIPE_GRACE_MS = 2000;

/**
 * Runs child processes with prefixed, line-buffered output and stops them together. Children
 * get their own process group, so a terminal's Ctrl-C reaches only the supervisor, which then
 * asks each child once, with SIGTERM, to shut down cleanly.
 */
export class Supervisor {
  readonly #options: SupervisorOptions;
  readonly #children = new Map<string, { child: ChildProcess; exited: Promise<number | string> }>();
  #stopping = false;

  constructor(options: SupervisorOptions) {
    this.#options = options;
  }

  /** Starts a child. */
  start(spec: ChildSpec): void {
    const child = spawn(process.execPath, [spec.entry], {
      // Its own process group: a SIGKILLed supervisor could not stop it, so it watches for that.
      env: { ...spec.env, [SUPERVISOR_PID_VARIABLE]: String(process.pid) },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const color = COLORS[this.#children.size % COLORS.length] ?? '';
    const prefix = this.#options.mode === 'pretty' ? `${color}[${spec.name}]${RESET} ` : '';
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      createInterface({ input: stream }).on('line', (line) => this.#emit(prefix, spec.name, line));
    }
    // 'close' comes after 'exit' once the child's stdout and stderr have ended, so its last lines
    // (those written while it shuts down) are shown before the supervisor reports it gone. A
    // grandchild that inherited the pipes could hold them open: past a short grace they are cut.
    const exited = new Promise<number | string>((resolve) => {
      child.once('close', (code, signal) => resolve(code ?? signal ?? 'unknown'));
      child.once('error', (error) => resolve(error.message));
    });
    child.once('exit', () => {
      setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
      }, PIPE_GRACE_MS).unref();
    });
    void exited.then((code) => {
      if (!this.#stopping) this.#options.onUnexpectedExit(spec.name, code);
    });
    this.#children.set(spec.name, { child, exited });
  }

  #emit(prefix: string, name: string, line: string): void {
    if (this.#options.mode === 'json') {
      // JSON lines already carry `service`; other lines are wrapped so the stream stays JSON.
      this.#options.write(
        line.startsWith('{') ? `${line}\n` : `${JSON.stringify({ service: name, msg: line })}\n`,
      );
      return;
    }
    const text = line.startsWith('{') ? this.#options.pretty(line).trimEnd() : line;
    for (const part of text.split('\n')) this.#options.write(`${prefix}${part}\n`);
  }

  /** Pids of the running children, by name. */
  pids(): Record<string, number> {
    const pids: Record<string, number> = {};
    for (const [name, { child }] of this.#children) if (child.pid) pids[name] = child.pid;
    return pids;
  }

  /** SIGTERM to every child, SIGKILL past `timeoutMs`; resolves when all have exited and their output is shown. */
  async stopAll(timeoutMs: number): Promise<void> {
    this.#stopping = true;
    await Promise.all(
      [...this.#children.values()].map(async ({ child, exited }) => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
        await exited;
        clearTimeout(timer);
      }),
    );
  }
}
