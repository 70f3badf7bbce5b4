/**
 * Set by `pnpm start`'s runner on the processes it starts: its pid. They stop, as on SIGTERM,
 * when it is gone, also when it was SIGKILLed and could not stop them (they run in process
 * groups of their own, so a terminal's Ctrl-C reaches only the runner).
 */
export const SUPERVISOR_PID_VARIABLE = 'GROQ_WEBHOOKS_SUPERVISOR_PID';

/** The runner's pid named by {@link SUPERVISOR_PID_VARIABLE}, if any. */
export function supervisorPid(
  env: Readonly<Record<string, string | undefined>>,
): number | undefined {
  const value = Number(env[SUPERVISOR_PID_VARIABLE]);
  return Number.isSafeInteger(value) && value > 1 ? value : undefined;
}

/**
 * Calls `gone` once when this process's parent is no longer `parent` (it ended, however it
 * ended: this process was handed to another). Checks every `intervalMs`; never keeps the
 * process alive.
 */
export function whenParentGone(parent: number, gone: () => void, intervalMs = 500): void {
  const watch = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(watch);
    gone();
  }, intervalMs);
  watch.unref();
}

/**
 * Calls `gone` once when the `pnpm start` runner that started this process
 * ({@link SUPERVISOR_PID_VARIABLE}) has ended, however it ended; nothing when no runner did.
 */
export function whenSupervisorGone(
  env: Readonly<Record<string, string | undefined>>,
  gone: () => void,
): void {
  const supervisor = supervisorPid(env);
  if (supervisor !== undefined) whenParentGone(supervisor, gone);
}
