import { type ChildProcess, spawn } from 'node:child_process';
import { waitFor } from './wait.js';

/** Options for {@link startProcess}. */
export interface StartProcessOptions {
  /** Environment added to (and overriding) the parent's. */
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Echo the child's output to the test's stderr (for debugging). Default: GROQ_TEST_VERBOSE. */
  echo?: boolean;
  /** Run as this user and group (e.g. a server that refuses to run as root). */
  user?: { uid: number; gid: number };
}

/** A child process whose output is captured line by line. */
export interface RunningProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Output so far (stdout and stderr interleaved). */
  output(): string;
  /** stdout lines that parsed as JSON (pino log lines). */
  logLines(): Record<string, unknown>[];
  /** Resolves with the exit code (or signal name) once the process has exited. */
  readonly exited: Promise<number | string>;
  /** Waits until a line of output matches. */
  waitForOutput(pattern: RegExp | string, timeoutMs?: number): Promise<string>;
  /** Sends a signal (default SIGTERM) and waits for exit; SIGKILLs past `timeoutMs`. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | string>;
  /** SIGKILL, and wait for exit. */
  kill(): Promise<number | string>;
}

const running = new Set<RunningProcess>();

/** Starts `command args…` with captured output. Remember to stop it (or call stopAllProcesses). */
export function startProcess(
  command: string,
  args: readonly string[],
  options: StartProcessOptions = {},
): RunningProcess {
  const child = spawn(command, [...args], {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...options.user,
  });
  const echo = options.echo ?? process.env.GROQ_TEST_VERBOSE === '1';
  let text = '';
  let stdoutBuffer = '';
  const logs: Record<string, unknown>[] = [];
  child.stdout?.setEncoding('utf8');
  child.stderr?.setEncoding('utf8');
  child.stdout?.on('data', (chunk: string) => {
    text += chunk;
    if (echo) process.stderr.write(chunk);
    stdoutBuffer += chunk;
    let newline = stdoutBuffer.indexOf('\n');
    while (newline !== -1) {
      const line = stdoutBuffer.slice(0, newline);
      stdoutBuffer = stdoutBuffer.slice(newline + 1);
      if (line.startsWith('{')) {
        try {
          logs.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          // not a log line
        }
      }
      newline = stdoutBuffer.indexOf('\n');
    }
  });
  child.stderr?.on('data', (chunk: string) => {
    text += chunk;
    if (echo) process.stderr.write(chunk);
  });
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
    child.once('error', (error) => resolve(`error: ${error.message}`));
  });
  let exitedYet = false;
  void exited.then(() => {
    exitedYet = true;
    running.delete(handle);
  });

  const handle: RunningProcess = {
    child,
    pid: child.pid ?? -1,
    output: () => text,
    logLines: () => logs,
    exited,
    async waitForOutput(pattern, timeoutMs = 15_000) {
      return waitFor(
        () => {
          const lines = text.split('\n');
          const found = lines.find((line) =>
            typeof pattern === 'string' ? line.includes(pattern) : pattern.test(line),
          );
          if (found === undefined && exitedYet) {
            throw new Error(
              `process exited before printing ${pattern}; output:\n${text.slice(-4000)}`,
            );
          }
          return found;
        },
        { timeoutMs, description: `output ${pattern} from ${command} ${args.join(' ')}` },
      ).catch((error: Error) => {
        throw new Error(`${error.message}\n--- output ---\n${text.slice(-4000)}`, { cause: error });
      });
    },
    async stop(signal = 'SIGTERM', timeoutMs = 15_000) {
      if (exitedYet) return exited;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
    async kill() {
      if (!exitedYet) child.kill('SIGKILL');
      return exited;
    },
  };
  running.add(handle);
  return handle;
}

/** SIGKILLs every process started by {@link startProcess} that is still running. */
export async function stopAllProcesses(): Promise<void> {
  await Promise.all([...running].map((handle) => handle.kill()));
}

/** Tries at choosing free ports for a server before a clash is reported. */
const PORT_TRIES = 5;

/** Thrown when a server exits at start because its port is taken ("Address already in use"). */
export class PortTakenError extends Error {}

/**
 * Starts a server with `start` and, while it fails with a {@link PortTakenError}, again (the
 * attempt's number tells `start` to choose other ports), {@link PORT_TRIES} times at most. A free
 * port is only free until something binds it. With `retry` false (the caller chose the port) the
 * first clash is the answer.
 */
export async function onFreePorts<T>(
  start: (attempt: number) => Promise<T>,
  retry = true,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start(attempt);
    } catch (error) {
      if (!(error instanceof PortTakenError) || !retry || attempt >= PORT_TRIES) throw error;
    }
  }
}

/**
 * Waits until `ready` says the server `child` answers. When it exits first, fails at once with its
 * output: a {@link PortTakenError} when its port was taken. Past the deadline it kills it and fails
 * with its output.
 */
export async function serverUp(
  child: RunningProcess,
  what: string,
  ready: () => Promise<boolean>,
  options: { timeoutMs: number; intervalMs?: number },
): Promise<void> {
  let exit: number | string | undefined;
  void child.exited.then((code) => {
    exit = code;
  });
  const state = await waitFor(
    async () => {
      if (exit !== undefined) return 'exited';
      return (await ready()) ? 'ready' : undefined;
    },
    { ...options, description: what },
  ).catch(async (error: Error) => {
    await child.kill();
    throw new Error(`${error.message}\n${child.output()}`, { cause: error });
  });
  if (state === 'exited') {
    const message = `${what} exited (${exit}) at start:\n${child.output()}`;
    if (child.output().includes('Address already in use')) throw new PortTakenError(message);
    throw new Error(message);
  }
}
