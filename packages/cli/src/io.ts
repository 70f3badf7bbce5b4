/** A stream the CLI writes to; `isTTY` decides between progress bars and plain lines. */
export interface OutputStream {
  write(chunk: string): boolean;
  isTTY?: boolean;
  columns?: number;
}

/** Everything the CLI takes from its surroundings, so the program itself has no side effects. */
export interface CliIo {
  /** Environment variables (only read, never changed). */
  env: Readonly<Record<string, string | undefined>>;
  /** Working directory: the repo root (and its `.local/dev-secret`) is found from here. */
  cwd: string;
  stdout: OutputStream;
  stderr: OutputStream;
  /** True when answers can be read from a terminal. */
  stdinIsTTY: boolean;
  /** Asks a yes/no question on the terminal. */
  confirm(question: string): Promise<boolean>;
  /** HTTP client. Default: the global fetch. */
  fetch?: typeof fetch;
}

/** Exit codes scripts can rely on. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/**
 * An expected failure: printed as one line on stderr, never with a stack, and mapped to its exit
 * code (1: the operation failed, 2: the command was used wrongly or the configuration is bad).
 */
export class CliError extends Error {
  override name = 'CliError';
  readonly exitCode: number;

  constructor(message: string, exitCode: number = EXIT.failed, options?: ErrorOptions) {
    super(message, options);
    this.exitCode = exitCode;
  }
}
