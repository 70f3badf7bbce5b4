import type { VerifyFailure } from '@groq-webhooks/signature';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { OutcomeCode } from './types.js';

/** Codes a request can be rejected with (every outcome that is not a 2xx). */
export type RejectionCode = Exclude<OutcomeCode, 'received' | 'duplicate' | 'requeued'>;

/** Details of a rejection that go to the log line, never to the response. */
export interface RejectionDetails {
  /** Which signature check failed. */
  reason?: VerifyFailure;
  /** For `timestamp_out_of_tolerance`: now − timestamp, seconds (negative: from the future). */
  skewSeconds?: number;
  /** For `invalid_payload`: the first problem (also in the response: it names no secret). */
  problem?: string;
}

/** A request the ingest refuses; mapped to its status and `{error, code}` body by `onError`. */
export class IngestError extends Error {
  override name = 'IngestError';
  readonly code: RejectionCode;
  readonly details: RejectionDetails;

  constructor(code: RejectionCode, details: RejectionDetails = {}, options?: ErrorOptions) {
    super(details.problem === undefined ? code : `${code}: ${details.problem}`, options);
    this.code = code;
    this.details = details;
  }
}

/** Status and short, stable message of each rejection (SPEC §4). */
export const REJECTIONS: Readonly<
  Record<RejectionCode, { status: ContentfulStatusCode; error: string }>
> = {
  invalid_signature: { status: 401, error: 'Invalid signature' },
  invalid_timestamp: { status: 401, error: 'Invalid timestamp' },
  timestamp_out_of_tolerance: { status: 401, error: 'Timestamp outside tolerance' },
  payload_too_large: { status: 413, error: 'Payload too large' },
  invalid_payload: { status: 400, error: 'Invalid payload' },
  request_aborted: { status: 400, error: 'Request aborted' },
  overloaded: { status: 503, error: 'Server overloaded' },
  queue_unavailable: { status: 503, error: 'Queue unavailable' },
  internal_error: { status: 500, error: 'Internal error' },
};

/** Maps a verify failure to the contract's code (a missing header counts as malformed). */
export function verifyFailureCode(reason: VerifyFailure): RejectionCode {
  switch (reason) {
    case 'missing_signature':
    case 'invalid_signature':
      return 'invalid_signature';
    case 'missing_timestamp':
    case 'invalid_timestamp':
      return 'invalid_timestamp';
    case 'timestamp_out_of_tolerance':
      return 'timestamp_out_of_tolerance';
  }
}

/** The JSON error body of a rejection; `invalid_payload` names its first problem. */
export function rejectionBody(code: RejectionCode, problem?: string): string {
  const { error } = REJECTIONS[code];
  const message =
    code === 'invalid_payload' && problem !== undefined ? `${error}: ${problem}` : error;
  return JSON.stringify({ error: message, code });
}
