import type { CliIo } from '../io.js';

/** An io that records what the CLI writes (no terminal, every question answered no). */
export interface Captured {
  io: CliIo;
  out: () => string;
  err: () => string;
}

export function capture(
  env: Record<string, string | undefined> = {},
  cwd = process.cwd(),
): Captured {
  let out = '';
  let err = '';
  return {
    io: {
      env,
      cwd,
      stdout: {
        write: (chunk: string) => {
          out += chunk;
          return true;
        },
      },
      stderr: {
        write: (chunk: string) => {
          err += chunk;
          return true;
        },
      },
      stdinIsTTY: false,
      confirm: async () => false,
    },
    out: () => out,
    err: () => err,
  };
}
