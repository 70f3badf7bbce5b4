import cliProgress from 'cli-progress';
import { CliError, type CliIo, EXIT } from './io.js';

/** A progress bar on stderr when it is a terminal; otherwise it does nothing. */
export interface ProgressBar {
  /** Shows `done` of `total` (the first call starts the bar). */
  update: (done: number, total: number) => void;
  stop: () => void;
}

/** A progress bar labelled `label`, drawn only on a terminal. */
export function progressBar(io: CliIo, label: string): ProgressBar {
  if (io.stderr.isTTY !== true) return { update: () => {}, stop: () => {} };
  const bar = new cliProgress.SingleBar(
    {
      stream: io.stderr as unknown as NodeJS.WritableStream,
      format: `${label} {bar} {value}/{total}`,
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(done, total) {
      if (!started) {
        bar.start(total, done);
        started = true;
      } else bar.update(done);
    },
    stop() {
      if (started) bar.stop();
      started = false;
    },
  };
}

/**
 * Asks before a bulk change unless `yes`. Without a terminal to ask on it refuses (a script must
 * say `--yes`); a "no" cancels. `action` completes "refusing to …", `question` is asked.
 */
export async function confirmOrRefuse(
  io: CliIo,
  yes: boolean,
  action: string,
  question: string,
): Promise<void> {
  if (yes) return;
  if (!io.stdinIsTTY) {
    throw new CliError(
      `refusing to ${action} without --yes (no terminal to confirm on)`,
      EXIT.usage,
    );
  }
  if (!(await io.confirm(`${question} [y/N] `))) throw new CliError('cancelled: nothing done');
}
