import type { BackendFactory, RedisQueueBackend } from 'bullmq';
import type { RedisClient } from '../connection.js';
import { CLAIM_FRESH, DEFAULT_MARKER_SETTINGS } from '../done-markers.js';
import type { EncodedHistoryRecord } from '../history.js';
import {
  type ClaimResult,
  type EndedTurn,
  type EventLedger,
  type LedgerOptions,
  PROCESSING,
  RedisLedger,
} from '../idempotency.js';
import { DONE_GROUP, idempotencyKey, resourceStateKey } from '../naming.js';
import {
  createdArg,
  type ResourceTurn,
  TAKE_TURN,
  type TurnResult,
  turnResult,
} from '../ordering.js';
import {
  type DoneMark,
  type FetchedTurn,
  type FinishBook,
  type FinishRecord,
  fusedFinishBackend,
} from './backend.js';

// The turns of many events at once (per-resource ordering, see `ordering.ts`): one command for
// every turn the worker's jobs take in the same turn of the event loop. ARGV: the seconds to
// keep a resource's state, then owner, lock milliseconds and created per key.
const TAKE_TURNS = `${TAKE_TURN}
local replies = {}
local now = turnClock()
for i, key in ipairs(KEYS) do
  local at = 2 + (i - 1) * 3
  replies[i] = takeTurn(key, ARGV[at], ARGV[at + 1], ARGV[at + 2], ARGV[1], now)
end
return replies`;

/** Most keys one coalesced command carries (a fresh claim looks the event's marker up too). */
const MAX_KEYS = 256;

type FreshClaimClient = RedisClient & {
  groqClaimFreshMarked(count: number, ...keysThenArgs: (string | number)[]): Promise<number[]>;
  groqTakeTurns(count: number, ...keysThenArgs: (string | number)[]): Promise<unknown[]>;
};

/** One turn waiting for the coalesced command. */
interface TurnCall {
  readonly key: string;
  readonly owner: string;
  readonly created: string;
}

/**
 * The fast path's ledger, on a single Redis. The claim is usually taken by the job's fetch
 * (BullMQ's finish of the previous job, fused with it) and the done-marker written by the job's
 * own completion, so a job costs one round trip, as in a bare BullMQ worker. What the fetch did
 * not claim (the first job of an idle slot) is claimed with one command for all the claims of a
 * turn. It keeps the finish's book: which job completions carry a done-marker, which fetches
 * claimed their event.
 */
export class FastLedger extends RedisLedger implements EventLedger, FinishBook {
  readonly backendFactory: BackendFactory<RedisQueueBackend>;
  readonly shadowUntil: number;
  readonly #freshClaims: Coalescer<{ key: string; value: string }, ClaimResult | undefined>;
  readonly #takenTurns: Coalescer<TurnCall, TurnResult>;
  /** By job id: handled events whose job completion (which marks them) is still to come. */
  readonly #doneMarks = new Map<string, DoneMark>();
  /** Lock token by job id: jobs whose fetch claimed their event for that token. */
  readonly #fetchClaims = new Map<string, string>();
  readonly turnsAtFetch: boolean;
  /** By job id: turns the job's fetch took, and for which lock token, until the job uses them. */
  readonly #fetchTurns = new Map<string, { token: string; turn: FetchedTurn }>();
  /** By job id: the event history's records of attempts whose job completion writes them. */
  readonly #records = new Map<string, FinishRecord>();

  constructor(client: RedisClient, options: LedgerOptions & { finishScript: string }) {
    super(client, options);
    this.shadowUntil = (options.markers ?? DEFAULT_MARKER_SETTINGS).shadowUntil;
    this.turnsAtFetch = options.turnsAtFetch ?? false;
    // Numbers of keys vary per call: ioredis then takes the key count as first argument.
    client.defineCommand('groqClaimFreshMarked', { lua: CLAIM_FRESH });
    client.defineCommand('groqTakeTurns', { lua: TAKE_TURNS });
    const scripts = client as FreshClaimClient;
    this.#freshClaims = new Coalescer(async (ttlMs, claims) => {
      const keys = claims.map((claim) => claim.key);
      const values = claims.map((claim) => claim.value);
      const replies = await scripts.groqClaimFreshMarked(
        keys.length + 1,
        DONE_GROUP,
        ...keys,
        ttlMs,
        ...values,
      );
      return replies.map((reply) => (reply === 1 ? 'claimed' : reply === 2 ? 'done' : undefined));
    });
    this.#takenTurns = new Coalescer(async (lockMs, calls) => {
      const args: (string | number)[] = calls.map((call) => call.key);
      args.push(this.doneTtlSeconds);
      for (const call of calls) args.push(call.owner, lockMs, call.created);
      const replies = await scripts.groqTakeTurns(calls.length, ...args);
      return replies.map(turnResult);
    });
    this.backendFactory = fusedFinishBackend({ book: this, script: options.finishScript });
  }

  async claim(eventId: string, jobId: string, token: string, ttlMs: number): Promise<ClaimResult> {
    if (this.#takeFetchClaim(jobId, token)) return 'claimed';
    // Almost every claim finds neither a marker nor a record: one command for the claims of a
    // moment is much cheaper than a script per event. Only when a record exists does the full
    // claim sort out busy, ours or the previous layout's done.
    const key = idempotencyKey(eventId);
    const fresh = await this.#freshClaims.add(ttlMs, { key, value: PROCESSING + token });
    return fresh ?? this.store.claim(eventId, token, ttlMs);
  }

  async giveBack(eventId: string, jobId: string, token: string): Promise<void> {
    this.attemptOver(jobId);
    if (this.#takeFetchClaim(jobId, token)) await this.store.release(eventId, token);
  }

  async takeTurn(
    turn: ResourceTurn,
    token: string,
    ttlMs: number,
    jobId?: string,
  ): Promise<TurnResult> {
    const fetched = jobId === undefined ? undefined : this.#takeFetchTurn(jobId);
    if (fetched !== undefined) {
      const same =
        fetched.token === token &&
        fetched.turn.key === turn.key &&
        fetched.turn.created === createdArg(turn);
      if (same) return fetched.turn.result;
      // The job's data named another turn than its event does: that one is given back.
      await this.#dropFetchTurn(fetched.token, fetched.turn);
    }
    return this.#takenTurns.add(ttlMs, {
      key: resourceStateKey(turn.key),
      owner: token,
      created: createdArg(turn),
    });
  }

  async markHandled(eventId: string, jobId: string, ended?: EndedTurn): Promise<void> {
    this.#doneMarks.set(jobId, { eventId, ended });
  }

  async markUnfinishedDone(): Promise<number> {
    const marks = [...this.#doneMarks.values()];
    this.#doneMarks.clear();
    this.#fetchClaims.clear();
    // Turns fetched jobs never used lapse with their locks, as their claims do.
    this.#fetchTurns.clear();
    const results = await Promise.allSettled(
      marks.map((mark) => this.markDone(mark.eventId, mark.ended)),
    );
    return results.filter((result) => result.status === 'rejected').length;
  }

  recordAtFinish(
    jobId: string,
    record: EncodedHistoryRecord,
    unwritten: (record: EncodedHistoryRecord) => void,
  ): boolean {
    this.#records.set(jobId, { record, unwritten });
    return true;
  }

  takeUnfinishedRecords(): EncodedHistoryRecord[] {
    const records = [...this.#records.values()].map((taken) => taken.record);
    this.#records.clear();
    return records;
  }

  // FinishBook: what the fused finish asks and tells.

  takeRecord(jobId: string): FinishRecord | undefined {
    const record = this.#records.get(jobId);
    if (record !== undefined) this.#records.delete(jobId);
    return record;
  }

  takeDoneMark(jobId: string): DoneMark | undefined {
    const mark = this.#doneMarks.get(jobId);
    if (mark !== undefined) this.#doneMarks.delete(jobId);
    return mark;
  }

  claimedAtFetch(jobId: string, token: string): void {
    this.#fetchClaims.set(jobId, token);
  }

  turnAtFetch(jobId: string, token: string, turn: FetchedTurn): void {
    this.#fetchTurns.set(jobId, { token, turn });
  }

  attemptOver(jobId: string): void {
    const left = this.#takeFetchTurn(jobId);
    if (left !== undefined) void this.#dropFetchTurn(left.token, left.turn);
  }

  /** The turn `jobId`'s fetch took, once. */
  #takeFetchTurn(jobId: string): { token: string; turn: FetchedTurn } | undefined {
    const fetched = this.#fetchTurns.get(jobId);
    if (fetched !== undefined) this.#fetchTurns.delete(jobId);
    return fetched;
  }

  /** Gives back a turn a fetch took and nobody uses (it would lapse with its lock anyway). */
  async #dropFetchTurn(token: string, fetched: FetchedTurn): Promise<void> {
    if (fetched.result.outcome !== 'acquired') return;
    const turn = { key: fetched.key, createdMs: undefined, type: '' };
    await this.turns.end(turn, token, false).catch(() => {});
  }

  #takeFetchClaim(jobId: string, token: string): boolean {
    if (this.#fetchClaims.get(jobId) !== token) return false;
    this.#fetchClaims.delete(jobId);
    return true;
  }
}

/**
 * Gathers the calls made in one turn of the event loop and runs them as one command per
 * `group` (e.g. per TTL) once the turn ends. Each call gets its own result or the batch's error.
 */
class Coalescer<Item, Result> {
  readonly #run: (group: number, items: Item[]) => Promise<Result[]>;
  #waiting = new Map<number, { item: Item; settle: Settle<Result> }[]>();

  constructor(run: (group: number, items: Item[]) => Promise<Result[]>) {
    this.#run = run;
  }

  add(group: number, item: Item): Promise<Result> {
    return new Promise<Result>((resolve, reject) => {
      if (this.#waiting.size === 0) setImmediate(() => this.#flush());
      let calls = this.#waiting.get(group);
      if (calls === undefined) {
        calls = [];
        this.#waiting.set(group, calls);
      }
      calls.push({ item, settle: { resolve, reject } });
    });
  }

  #flush(): void {
    const waiting = this.#waiting;
    this.#waiting = new Map();
    for (const [group, calls] of waiting) {
      for (let start = 0; start < calls.length; start += MAX_KEYS) {
        const batch = calls.slice(start, start + MAX_KEYS);
        this.#run(
          group,
          batch.map((call) => call.item),
        ).then(
          (results) => {
            batch.forEach((call, index) => {
              call.settle.resolve(results[index] as Result);
            });
          },
          (error: unknown) => {
            for (const call of batch) call.settle.reject(error);
          },
        );
      }
    }
  }
}

interface Settle<Result> {
  resolve(result: Result): void;
  reject(error: unknown): void;
}
