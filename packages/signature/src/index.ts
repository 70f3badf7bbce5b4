export {
  type BodyBytes,
  computeSignature,
  SIGNATURE_HEADER,
  type SignedHeaders,
  type SignOptions,
  sign,
  TIMESTAMP_HEADER,
} from './sign.js';
export {
  DEFAULT_TOLERANCE_SECONDS,
  MAX_SIGNATURES,
  VERIFY_FAILURES,
  type VerifyFailure,
  type VerifyInput,
  type VerifyResult,
  verify,
} from './verify.js';
