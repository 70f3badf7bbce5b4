import { sign } from '@groq-webhooks/signature';

/** The envelope a test sends. */
export interface TestEvent {
  id: string;
  type: 'resource.created';
  data: { id: string; object: string; attributes: Record<string, unknown> };
  created: string;
}

/** A `resource.created` event; `attributes` reach the handler module. */
export function testEvent(id: string, attributes: Record<string, unknown> = {}): TestEvent {
  return {
    id,
    type: 'resource.created',
    data: { id: `res_${id}`, object: 'test', attributes },
    created: new Date().toISOString(),
  };
}

/** What happened to one event. */
export interface Delivery {
  /** HTTP status per attempt; 0 for a transport error or a hang. */
  statuses: number[];
  /** It got a 2xx: the receiver took responsibility for it. */
  acked: boolean;
}

/** Options of {@link sendSigned}. */
export interface SendOptions {
  /** Where to POST; called per attempt, so it can spread attempts over several ingests. */
  url: () => string;
  secret: string;
  /** Requests in flight at once. Default 16. */
  concurrency?: number;
  /** Stop retrying an event after this long. Default 60 s. */
  giveUpAfterMs?: number;
}

/**
 * Sends signed events like Groq does: every non-2xx and every transport error is retried with a
 * short capped backoff until acknowledged or the time budget is spent. Returns every delivery.
 */
export async function sendSigned(
  events: readonly TestEvent[],
  options: SendOptions,
  deliveries = new Map<string, Delivery>(),
): Promise<Map<string, Delivery>> {
  const giveUpAfterMs = options.giveUpAfterMs ?? 60_000;
  let next = 0;
  const lane = async () => {
    for (let event = events[next++]; event !== undefined; event = events[next++]) {
      const delivery: Delivery = { statuses: [], acked: false };
      deliveries.set(event.id, delivery);
      const body = JSON.stringify(event);
      const started = Date.now();
      for (let attempt = 1; ; attempt++) {
        const status = await post(options.url(), options.secret, body);
        delivery.statuses.push(status);
        if (status >= 200 && status < 300) {
          delivery.acked = true;
          break;
        }
        if (Date.now() - started > giveUpAfterMs) break;
        // The simulated sender's retry backoff, not synchronisation.
        await pause(Math.min(50 * 2 ** Math.min(attempt, 5), 1000));
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency ?? 16 }, lane));
  return deliveries;
}

async function post(url: string, secret: string, body: string): Promise<number> {
  try {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...sign({ secret, body }) },
      body,
      signal: AbortSignal.timeout(10_000),
    });
    await response.arrayBuffer();
    return response.status;
  } catch {
    return 0;
  }
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Non-2xx answers (and transport errors) over all deliveries. */
export function rejectedAttempts(deliveries: ReadonlyMap<string, Delivery>): number {
  let count = 0;
  for (const delivery of deliveries.values()) {
    count += delivery.statuses.filter((status) => status < 200 || status >= 300).length;
  }
  return count;
}
