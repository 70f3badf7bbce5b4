import { Agent, request } from 'node:http';
import { sign } from '@groq-webhooks/signature';

/** One HTTP attempt: its status (or the transport error) and how long the answer took. */
export interface Attempt {
  status: number | undefined;
  error: string | undefined;
  ms: number;
  /** Epoch ms when the answer (or error) came. */
  at: number;
  duplicate: boolean;
}

/** Everything that happened to one delivery of an event (an event may be delivered many times). */
export interface Delivery {
  id: string;
  attempts: Attempt[];
  /** It got a 2xx: the receiver took responsibility for it. */
  acked: boolean;
}

/** Options of {@link SignedSender}. */
export interface SignedSenderOptions {
  /** Where to send; a function picks per attempt (e.g. one of several ingests). */
  url: string | (() => string);
  /** The receiver secret every request is signed with. */
  secret: string;
  /** Attempts per event before counting it rejected. Default 60. */
  maxAttempts?: number;
  /** Give up on an event after this long. Default 60 s. */
  giveUpAfterMs?: number;
  /** An answer slower than this is a hang: the attempt is aborted and counted. Default 10 s. */
  requestTimeoutMs?: number;
  /** Parallel requests. Default 16. */
  concurrency?: number;
}

/** A request that took longer than `requestTimeoutMs`. */
const HANG = 'hang';

/**
 * Sends signed events like Groq does: every non-2xx (and every transport error) is retried with
 * a short capped backoff, bounded in count and time. Keeps every attempt for reconciliation.
 */
export class SignedSender {
  /** One entry per {@link SignedSender.send} call, in call order. */
  readonly deliveries: Delivery[] = [];
  readonly #options: Required<Omit<SignedSenderOptions, 'url'>> & { url: () => string };
  readonly #agent: Agent;

  constructor(options: SignedSenderOptions) {
    const url = options.url;
    this.#options = {
      url: typeof url === 'string' ? () => url : url,
      secret: options.secret,
      maxAttempts: options.maxAttempts ?? 60,
      giveUpAfterMs: options.giveUpAfterMs ?? 60_000,
      requestTimeoutMs: options.requestTimeoutMs ?? 10_000,
      concurrency: options.concurrency ?? 16,
    };
    this.#agent = new Agent({ keepAlive: true, maxSockets: this.#options.concurrency });
  }

  /** Sends every event, `concurrency` at a time, each until acknowledged or given up. */
  async sendAll(events: readonly { id: string }[]): Promise<void> {
    let next = 0;
    const lanes = Array.from({ length: this.#options.concurrency }, async () => {
      while (next < events.length) {
        const event = events[next++];
        if (event !== undefined) await this.send(event);
      }
    });
    await Promise.all(lanes);
  }

  /** Deliveries that got a 2xx so far. */
  acked(): number {
    return this.deliveries.filter((delivery) => delivery.acked).length;
  }

  /** Sends one event until a 2xx or until the budget runs out. */
  async send(event: { id: string }): Promise<Delivery> {
    const delivery: Delivery = { id: event.id, attempts: [], acked: false };
    this.deliveries.push(delivery);
    const started = Date.now();
    const body = JSON.stringify(event);
    for (let attempt = 1; attempt <= this.#options.maxAttempts; attempt++) {
      const result = await this.#post(body);
      delivery.attempts.push(result);
      if (result.status !== undefined && result.status >= 200 && result.status < 300) {
        delivery.acked = true;
        return delivery;
      }
      if (Date.now() - started > this.#options.giveUpAfterMs) break;
      await pause(Math.min(50 * 2 ** Math.min(attempt, 5), 1000) * (0.5 + Math.random() / 2));
    }
    return delivery;
  }

  /** All attempts of all events. */
  attempts(): Attempt[] {
    return this.deliveries.flatMap((delivery) => delivery.attempts);
  }

  close(): void {
    this.#agent.destroy();
  }

  #post(body: string): Promise<Attempt> {
    const started = performance.now();
    const headers = {
      ...sign({ secret: this.#options.secret, body }),
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(body)),
    };
    return new Promise((resolve) => {
      let settled = false;
      const finish = (status: number | undefined, error: string | undefined, text = '') => {
        if (settled) return;
        settled = true;
        resolve({
          status,
          error,
          ms: performance.now() - started,
          at: Date.now(),
          duplicate: text.includes('"duplicate":true'),
        });
      };
      const req = request(
        this.#options.url(),
        { method: 'POST', headers, agent: this.#agent, timeout: this.#options.requestTimeoutMs },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            text += chunk;
          });
          res.on('end', () => finish(res.statusCode, undefined, text));
          res.on('error', (error) => finish(undefined, error.message));
        },
      );
      req.on('timeout', () => {
        finish(undefined, HANG);
        req.destroy();
      });
      req.on('error', (error: NodeJS.ErrnoException) =>
        finish(undefined, error.code ?? error.message),
      );
      req.end(body);
    });
  }
}

function pause(ms: number): Promise<void> {
  // Retry backoff of the simulated sender, not synchronisation.
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Counts of a sender's traffic. */
export function traffic(sender: SignedSender): {
  sent: number;
  acked: number;
  non2xx: number;
  rejected: string[];
  statuses: Map<string, number>;
  hangs: number;
} {
  const statuses = new Map<string, number>();
  let non2xx = 0;
  let hangs = 0;
  for (const attempt of sender.attempts()) {
    const key = attempt.status === undefined ? `error:${attempt.error}` : String(attempt.status);
    statuses.set(key, (statuses.get(key) ?? 0) + 1);
    if (attempt.status === undefined || attempt.status < 200 || attempt.status >= 300) non2xx++;
    if (attempt.error === HANG) hangs++;
  }
  const deliveries = sender.deliveries;
  return {
    sent: deliveries.length,
    acked: deliveries.filter((delivery) => delivery.acked).length,
    non2xx,
    rejected: deliveries.filter((delivery) => !delivery.acked).map((delivery) => delivery.id),
    statuses,
    hangs,
  };
}
