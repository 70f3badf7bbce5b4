import { randomBytes } from 'node:crypto';
import type { Envelope } from '@groq-webhooks/core';
import { sign } from '@groq-webhooks/signature';
import cliProgress from 'cli-progress';
import type { CliIo } from './io.js';

/** What `trigger` sends. */
export interface TriggerOptions {
  /** Event type (known or not: senders add types). */
  type: string;
  /** Ingest endpoint. */
  url: string;
  /** Signing secret, used whole. */
  secret: string;
  /** The envelope's `data`. */
  data: Record<string, unknown>;
  /** Event id; with `count` > 1 each event gets `<id>-<n>`. Default: `evt_` + random. */
  id: string | undefined;
  /** Events to send. */
  count: number;
  /** Requests in flight at once. */
  concurrency: number;
  /** Print a summary line at the end. */
  summary: boolean;
  /** Per-request timeout in milliseconds. Default 10 000. */
  timeoutMs?: number;
}

/** Tally of a `trigger` run. */
export interface TriggerSummary {
  sent: number;
  ok: number;
  clientErrors: number;
  serverErrors: number;
  /** Answers outside 2xx/4xx/5xx. */
  other: number;
  /** Requests that got no answer (refused, reset, timed out). */
  errors: number;
  seconds: number;
}

/** Ids of the events a run sends. */
export function eventIds(id: string | undefined, count: number): string[] {
  return Array.from({ length: count }, (_, i) => {
    if (id === undefined) return `evt_${randomBytes(12).toString('hex')}`;
    return count > 1 ? `${id}-${i + 1}` : id;
  });
}

/** The envelope `trigger` sends (SPEC §3). */
export function buildEnvelope(
  type: string,
  id: string,
  data: Record<string, unknown>,
  created: Date,
): Envelope {
  return { id, type, data, created: created.toISOString() };
}

/** True when the run had only 2xx answers. */
export function allDelivered(summary: TriggerSummary): boolean {
  return summary.ok === summary.sent;
}

/** Formats the summary line. */
export function summaryLine(summary: TriggerSummary): string {
  const rate = summary.seconds > 0 ? summary.sent / summary.seconds : summary.sent;
  const other = summary.other > 0 ? `, other ${summary.other}` : '';
  return (
    `sent ${summary.sent}, 2xx ${summary.ok}, 4xx ${summary.clientErrors}, ` +
    `5xx ${summary.serverErrors}${other}, errors ${summary.errors}, ${rate.toFixed(1)} req/s`
  );
}

/** Most non-2xx lines printed after a progress bar; the summary counts the rest. */
const MAX_PROBLEM_LINES = 20;

/**
 * Signs and posts the events, printing one line per request (on a terminal with several events,
 * a progress bar instead, then the problems). Resolves with the tally; never throws for HTTP or
 * network failures, which are counted.
 */
export async function runTrigger(options: TriggerOptions, io: CliIo): Promise<TriggerSummary> {
  const doFetch = io.fetch ?? fetch;
  const ids = eventIds(options.id, options.count);
  const useBar = options.count > 1 && io.stderr.isTTY === true;
  const bar = useBar
    ? new cliProgress.SingleBar(
        {
          // cli-progress writes to a NodeJS stream; ours is the same object typed narrowly.
          stream: io.stderr as unknown as NodeJS.WritableStream,
          format: 'sending {bar} {value}/{total} | {rate} req/s | eta {eta}s',
          hideCursor: true,
        },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  const problems: string[] = [];
  const summary: TriggerSummary = {
    sent: 0,
    ok: 0,
    clientErrors: 0,
    serverErrors: 0,
    other: 0,
    errors: 0,
    seconds: 0,
  };
  const started = performance.now();
  bar?.start(ids.length, 0, { rate: '0.0' });

  const sendOne = async (id: string): Promise<void> => {
    const body = JSON.stringify(buildEnvelope(options.type, id, options.data, new Date()));
    const headers = {
      'content-type': 'application/json',
      ...sign({ secret: options.secret, body }),
    };
    let line: string;
    let problem = false;
    try {
      const response = await doFetch(options.url, {
        method: 'POST',
        headers,
        body,
        signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
      });
      const text = (await response.text()).trim();
      const status = response.status;
      if (status >= 200 && status < 300) summary.ok += 1;
      else if (status >= 400 && status < 500) summary.clientErrors += 1;
      else if (status >= 500 && status < 600) summary.serverErrors += 1;
      else summary.other += 1;
      problem = status < 200 || status >= 300;
      line = `${id}  ${status} ${oneLine(text)}`;
    } catch (error) {
      summary.errors += 1;
      problem = true;
      line = `${id}  error: could not reach ${options.url}: ${networkReason(error)}`;
    }
    summary.sent += 1;
    if (bar === undefined) {
      if (line.includes('  error: ')) io.stderr.write(`${line}\n`);
      else io.stdout.write(`${line}\n`);
    } else {
      if (problem) problems.push(line);
      const elapsed = (performance.now() - started) / 1000;
      bar.increment(1, { rate: (summary.sent / Math.max(elapsed, 0.001)).toFixed(1) });
    }
  };

  let next = 0;
  const runner = async (): Promise<void> => {
    for (;;) {
      const id = ids[next];
      next += 1;
      if (id === undefined) return;
      await sendOne(id);
    }
  };
  const lanes = Math.max(1, Math.min(options.concurrency, ids.length));
  await Promise.all(Array.from({ length: lanes }, runner));
  bar?.stop();
  summary.seconds = (performance.now() - started) / 1000;

  for (const line of problems.slice(0, MAX_PROBLEM_LINES)) io.stderr.write(`${line}\n`);
  if (problems.length > MAX_PROBLEM_LINES) {
    io.stderr.write(`… and ${problems.length - MAX_PROBLEM_LINES} more non-2xx answers\n`);
  }
  if (options.summary) io.stdout.write(`${summaryLine(summary)}\n`);
  return summary;
}

function oneLine(text: string): string {
  const flat = text.replace(/\s+/g, ' ');
  return flat.length > 500 ? `${flat.slice(0, 500)}…` : flat;
}

/** fetch wraps the useful reason (ECONNREFUSED, timeout) in `cause`. */
function networkReason(error: unknown): string {
  if (error instanceof Error) {
    if (error.name === 'TimeoutError') return 'timed out';
    const cause = error.cause;
    if (cause instanceof Error) {
      const code = (cause as NodeJS.ErrnoException).code;
      return code === undefined
        ? cause.message
        : `${code} ${cause.message.replace(code, '').trim()}`.trim();
    }
    return error.message;
  }
  return String(error);
}
