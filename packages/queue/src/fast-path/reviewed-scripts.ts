import { createHash } from 'node:crypto';

/** One of BullMQ's built Lua scripts, as its `dist/cjs/scripts/*.js` modules export it. */
export interface BullmqScript {
  readonly name: string;
  readonly content: string;
  readonly keys: number;
}

/** BullMQ's scripts the fast path writes like (enqueue) or wraps (finish). */
export interface ReviewedScripts {
  readonly addStandardJob: BullmqScript;
  readonly moveToFinished: BullmqScript;
}

/**
 * The SHA-256 of each BullMQ script the fast path was reviewed against (BullMQ 6.7.0). The
 * batch enqueue script writes what `addStandardJob` writes, and the fused finish runs
 * `moveToFinished` itself: another text may write jobs or take arguments differently, so any
 * difference (a comment included) means the stock path until someone reviews the new text.
 */
export const REVIEWED_SHA256 = {
  addStandardJob: '2eee45c9ffc54d24681b737f926016a7f7464f0d32a5f87f623bffa2fc55413c',
  moveToFinished: '8e744ec5d65dbe9e7ffb6e39a96c0268bba65e4f0b1d04e2d2a42ccb71b45a6d',
} as const;

/** Why the fast path cannot be used, or the reviewed scripts when it can. */
export type ScriptCheck =
  | { readonly ok: true; readonly scripts: ReviewedScripts }
  | { readonly ok: false; readonly reason: string };

/**
 * Loads BullMQ's built scripts and compares them with the reviewed ones. Never throws: a
 * missing module (BullMQ renamed its files) or a changed text is a reason, not a crash, so a
 * BullMQ upgrade leaves every process working on the stock path.
 */
export async function checkReviewedScripts(): Promise<ScriptCheck> {
  let addStandardJob: BullmqScript;
  let moveToFinished: BullmqScript;
  let version: string;
  try {
    // BullMQ has no `exports` map: its built scripts are importable, and are what it runs.
    ({ addStandardJob } = await import('bullmq/dist/cjs/scripts/addStandardJob-9.js'));
    ({ moveToFinished } = await import('bullmq/dist/cjs/scripts/moveToFinished-14.js'));
    ({ version } = await import('bullmq/dist/cjs/version.js'));
  } catch (error) {
    const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
    return { ok: false, reason: `BullMQ's scripts could not be loaded (${message})` };
  }
  for (const [name, script] of [
    ['addStandardJob', addStandardJob],
    ['moveToFinished', moveToFinished],
  ] as const) {
    if (typeof script?.content !== 'string' || sha256(script.content) !== REVIEWED_SHA256[name]) {
      return {
        ok: false,
        reason: `BullMQ ${version}'s ${name} script differs from the one the fast path was reviewed against (BullMQ 6.7.0)`,
      };
    }
  }
  return { ok: true, scripts: { addStandardJob, moveToFinished } };
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
