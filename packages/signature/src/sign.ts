import { createHmac } from 'node:crypto';

/** Bytes of a request body: a string is taken as its UTF-8 bytes. */
export type BodyBytes = Uint8Array | string;

/** Header names of the Groq signature scheme. */
export const SIGNATURE_HEADER = 'x-groq-signature';
export const TIMESTAMP_HEADER = 'x-groq-timestamp';

/**
 * HMAC-SHA256 of `<timestamp>.<raw body bytes>` keyed by the secret's UTF-8 bytes, as 64
 * lowercase hex characters. Same computation as Stripe's `v1` scheme.
 */
export function computeSignature(secret: string, timestamp: string, body: BodyBytes): string {
  return createHmac('sha256', secret).update(timestamp).update('.').update(body).digest('hex');
}

/** Options for {@link sign}. */
export interface SignOptions {
  /** The sender's secret, used whole (a `whsec_` prefix is part of the key). */
  secret: string;
  /** The raw body exactly as it will be sent. */
  body: BodyBytes;
  /** Unix time in seconds. Default: now. */
  timestamp?: number;
}

/** Headers that make a signed Groq webhook request. */
export interface SignedHeaders {
  [SIGNATURE_HEADER]: string;
  [TIMESTAMP_HEADER]: string;
}

/** Signs a body the way the sender does and returns the two headers to send with it. */
export function sign(options: SignOptions): SignedHeaders {
  const timestamp = String(options.timestamp ?? Math.floor(Date.now() / 1000));
  return {
    [SIGNATURE_HEADER]: computeSignature(options.secret, timestamp, options.body),
    [TIMESTAMP_HEADER]: timestamp,
  };
}
