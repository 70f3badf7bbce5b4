import { createHmac, timingSafeEqual } from 'node:crypto';
import type { BodyBytes } from './sign.js';

/** Default replay window: a timestamp may be this many seconds in the past or the future. */
export const DEFAULT_TOLERANCE_SECONDS = 300;

/** Every way a verification can fail. Closed: callers may switch over it exhaustively. */
export const VERIFY_FAILURES = [
  'missing_signature',
  'missing_timestamp',
  'invalid_timestamp',
  'timestamp_out_of_tolerance',
  'invalid_signature',
] as const;

/** One of {@link VERIFY_FAILURES}. */
export type VerifyFailure = (typeof VERIFY_FAILURES)[number];

/** Outcome of {@link verify}. */
export type VerifyResult =
  | {
      ok: true;
      /** Index (in the configured list) of the receiver secret that matched. */
      keyIndex: number;
      /** The verified timestamp, Unix seconds. */
      timestamp: number;
    }
  | {
      ok: false;
      reason: VerifyFailure;
      /** For `timestamp_out_of_tolerance`: now − timestamp in seconds (negative: from the future). */
      skewSeconds?: number;
    };

/** Input of {@link verify}. Header values are taken as received: absent, empty or joined. */
export interface VerifyInput {
  /** Receiver secrets, current first; several while rotating. */
  secrets: readonly string[];
  /** Value of `x-groq-signature`. */
  signature: string | null | undefined;
  /** Value of `x-groq-timestamp`. */
  timestamp: string | null | undefined;
  /** The raw request bytes, before any decoding. */
  body: BodyBytes;
  /** Current Unix time in seconds. */
  nowSeconds: number;
  /** Replay window in seconds, both ways. Default {@link DEFAULT_TOLERANCE_SECONDS}. */
  toleranceSeconds?: number;
}

const TIMESTAMP_PATTERN = /^[0-9]{1,12}$/;
const SIGNATURE_PATTERN = /^[0-9a-f]{64}$/;
/** One entry of a signature header: what lies between commas and spaces. */
const ENTRY = /[^\s,]+/g;
const VERSION_PREFIX = 'v1=';

/**
 * Entries of a signature header that are looked at; the rest is ignored. A sender rotating keys
 * sends two or three; without a cap a 16 KB header of 245 MACs costs about three times the CPU.
 */
export const MAX_SIGNATURES = 8;

/**
 * Verifies a Groq webhook request. Pure: no I/O, no clock of its own, never throws on
 * attacker-controlled input, and compares MACs in constant time.
 */
export function verify(input: VerifyInput): VerifyResult {
  const { signature, timestamp } = input;
  if (signature === undefined || signature === null || signature.trim() === '') {
    return { ok: false, reason: 'missing_signature' };
  }
  if (timestamp === undefined || timestamp === null || timestamp === '') {
    return { ok: false, reason: 'missing_timestamp' };
  }
  if (!TIMESTAMP_PATTERN.test(timestamp)) {
    return { ok: false, reason: 'invalid_timestamp' };
  }
  const signedAt = Number(timestamp);
  const tolerance = input.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  const skewSeconds = Math.floor(input.nowSeconds) - signedAt;
  if (Math.abs(skewSeconds) > tolerance) {
    return { ok: false, reason: 'timestamp_out_of_tolerance', skewSeconds };
  }

  const candidates = parseSignatures(signature);
  if (candidates.length === 0) {
    return { ok: false, reason: 'invalid_signature' };
  }
  const signedPrefix = `${timestamp}.`;
  for (let keyIndex = 0; keyIndex < input.secrets.length; keyIndex++) {
    const secret = input.secrets[keyIndex];
    if (secret === undefined) continue;
    const expected = createHmac('sha256', secret).update(signedPrefix).update(input.body).digest();
    // Every candidate is compared, so the time taken does not tell which one matched.
    let matched = false;
    for (const candidate of candidates) {
      if (timingSafeEqual(candidate, expected)) matched = true;
    }
    if (matched) return { ok: true, keyIndex, timestamp: signedAt };
  }
  return { ok: false, reason: 'invalid_signature' };
}

/**
 * Splits a signature header into 32-byte MACs: its first {@link MAX_SIGNATURES} entries, of
 * which anything not 64 lowercase hex is dropped.
 */
function parseSignatures(header: string): Buffer[] {
  // The usual header is one MAC, bare or versioned: no splitting.
  if (header.length === 64 || header.length === 64 + VERSION_PREFIX.length) {
    const hex = withoutVersion(header);
    if (SIGNATURE_PATTERN.test(hex)) return [Buffer.from(hex, 'hex')];
  }
  const macs: Buffer[] = [];
  let entries = 0;
  for (const [part] of header.matchAll(ENTRY)) {
    const hex = withoutVersion(part);
    if (SIGNATURE_PATTERN.test(hex)) macs.push(Buffer.from(hex, 'hex'));
    entries += 1;
    if (entries === MAX_SIGNATURES) break;
  }
  return macs;
}

function withoutVersion(part: string): string {
  return part.startsWith(VERSION_PREFIX) ? part.slice(VERSION_PREFIX.length) : part;
}
