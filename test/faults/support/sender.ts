import { SignedSender, type SignedSenderOptions } from '@groq-webhooks/testing';
import { SECRET } from './stack.js';

/** An event envelope as the fault scenarios send it. */
export interface FaultEvent {
  id: string;
  type: string;
  data: { id: string; object: string; attributes: { durationMs: number } };
  created: string;
}

/** An event whose handler works for `durationMs`. */
export function faultEvent(id: string, durationMs = 0): FaultEvent {
  return {
    id,
    type: 'resource.created',
    data: { id: `res_${id}`, object: 'fault', attributes: { durationMs } },
    created: new Date().toISOString(),
  };
}

/** A sender signing with the fault suite's secret. */
export function faultSender(options: Omit<SignedSenderOptions, 'secret'>): SignedSender {
  return new SignedSender({ ...options, secret: SECRET });
}
