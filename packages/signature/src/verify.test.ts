import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { computeSignature, sign } from './sign.js';
import { MAX_SIGNATURES, type VerifyInput, verify } from './verify.js';

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const TS = '1614265330';
const NOW = 1614265330;
const BODY = '{"test": 2432232314}';
const SIG = '2e37df5d4a028c51a7f3133d64ae1e300d2c2c900f1b1d49d4369ad2530f8964';

function valid(overrides: Partial<VerifyInput> = {}): VerifyInput {
  return {
    secrets: [SECRET],
    signature: SIG,
    timestamp: TS,
    body: Buffer.from(BODY),
    nowSeconds: NOW,
    ...overrides,
  };
}

describe('reference vectors (SPEC §2)', () => {
  it.each([
    [
      "It's a Secret to Everybody",
      '1614265330',
      'Hello, World!',
      'f37376a318b83773050e9e3ac8c6d599d2254e4f69edd75a1419cb54dc7264f3',
    ],
    [SECRET, TS, BODY, SIG],
  ])('secret %j signs %j.%j as %s', (secret, timestamp, body, expected) => {
    expect(computeSignature(secret, timestamp, Buffer.from(body))).toBe(expected);
    expect(
      verify({ secrets: [secret], signature: expected, timestamp, body, nowSeconds: NOW }),
    ).toEqual({ ok: true, keyIndex: 0, timestamp: Number(timestamp) });
  });

  it('sign() produces the reference headers', () => {
    expect(sign({ secret: SECRET, body: BODY, timestamp: NOW })).toEqual({
      'x-groq-signature': SIG,
      'x-groq-timestamp': TS,
    });
  });
});

describe('accepted forms', () => {
  it('accepts a v1= prefix', () => {
    expect(verify(valid({ signature: `v1=${SIG}` })).ok).toBe(true);
  });

  it('accepts several signatures separated by commas or spaces; one match is enough', () => {
    const other = 'a'.repeat(64);
    for (const header of [
      `${other},${SIG}`,
      `${SIG} ${other}`,
      `v1=${other}, v1=${SIG}`,
      `${other}\t${SIG}`,
    ]) {
      expect(verify(valid({ signature: header })).ok, header).toBe(true);
    }
  });

  it(`checks at most ${MAX_SIGNATURES} entries of a header: a match past them does not count`, () => {
    expect(MAX_SIGNATURES).toBe(8);
    const others = (n: number) =>
      Array.from({ length: n }, (_, i) => `${i}`.repeat(64).slice(0, 64));
    expect(verify(valid({ signature: [...others(7), SIG].join(',') })).ok).toBe(true);
    expect(verify(valid({ signature: [...others(8), SIG].join(',') }))).toEqual({
      ok: false,
      reason: 'invalid_signature',
    });
    // Malformed entries count too: junk cannot push the work past the cap either.
    expect(verify(valid({ signature: ['x', 'y', ...others(6), SIG].join(' ') })).ok).toBe(false);
    // Separators do not count as entries.
    expect(verify(valid({ signature: `,, ${others(7).join(' ,  ')} ,${SIG}` })).ok).toBe(true);
  });

  it('accepts a duplicated header joined by a comma', () => {
    expect(verify(valid({ signature: `${SIG}, ${SIG}` })).ok).toBe(true);
  });

  it('reports which receiver secret matched during rotation', () => {
    expect(verify(valid({ secrets: ['old-secret', SECRET] }))).toEqual({
      ok: true,
      keyIndex: 1,
      timestamp: NOW,
    });
    expect(verify(valid({ secrets: [SECRET, 'next-secret'] }))).toMatchObject({ keyIndex: 0 });
  });

  it('takes the whsec_ prefix as part of the key', () => {
    expect(verify(valid({ secrets: [SECRET.slice('whsec_'.length)] })).ok).toBe(false);
  });

  it.each([300, -300])('accepts a timestamp exactly %i s from now', (offset) => {
    expect(verify(valid({ nowSeconds: NOW + offset })).ok).toBe(true);
  });

  it('honours a custom tolerance', () => {
    expect(verify(valid({ nowSeconds: NOW + 11, toleranceSeconds: 10 }))).toMatchObject({
      ok: false,
      reason: 'timestamp_out_of_tolerance',
      skewSeconds: 11,
    });
  });
});

describe('one thing broken per case', () => {
  const cases: Array<[string, Partial<VerifyInput>, string]> = [
    ['wrong secret', { secrets: ['not-the-secret'] }, 'invalid_signature'],
    ['no secrets configured', { secrets: [] }, 'invalid_signature'],
    ['one flipped body byte', { body: Buffer.from(BODY.replace('2', '3')) }, 'invalid_signature'],
    ['timestamp 301 s old', { nowSeconds: NOW + 301 }, 'timestamp_out_of_tolerance'],
    ['timestamp 301 s ahead', { nowSeconds: NOW - 301 }, 'timestamp_out_of_tolerance'],
    ['timestamp abc', { timestamp: 'abc' }, 'invalid_timestamp'],
    ['timestamp 1e3', { timestamp: '1e3' }, 'invalid_timestamp'],
    ['timestamp with a leading space', { timestamp: ' 1614265330' }, 'invalid_timestamp'],
    ['timestamp with a trailing space', { timestamp: '1614265330 ' }, 'invalid_timestamp'],
    ['timestamp -5', { timestamp: '-5' }, 'invalid_timestamp'],
    ['timestamp +5', { timestamp: '+5' }, 'invalid_timestamp'],
    ['timestamp 0x10', { timestamp: '0x10' }, 'invalid_timestamp'],
    ['timestamp 13 digits', { timestamp: '1614265330000' }, 'invalid_timestamp'],
    ['timestamp in milliseconds-like decimal', { timestamp: '1614265330.5' }, 'invalid_timestamp'],
    ['duplicated timestamp header', { timestamp: `${TS}, ${TS}` }, 'invalid_timestamp'],
    ['timestamp in Arabic-Indic digits', { timestamp: '١٦١٤٢٦٥٣٣٠' }, 'invalid_timestamp'],
    ['empty timestamp', { timestamp: '' }, 'missing_timestamp'],
    ['absent timestamp', { timestamp: undefined }, 'missing_timestamp'],
    ['null timestamp', { timestamp: null }, 'missing_timestamp'],
    ['signature too short', { signature: SIG.slice(0, 63) }, 'invalid_signature'],
    ['signature too long', { signature: `${SIG}0` }, 'invalid_signature'],
    ['signature non-hex', { signature: `${SIG.slice(0, 63)}g` }, 'invalid_signature'],
    ['signature uppercase', { signature: SIG.toUpperCase() }, 'invalid_signature'],
    ['signature of 64 multi-byte characters', { signature: 'é'.repeat(64) }, 'invalid_signature'],
    ['signature of 64 emoji', { signature: '😀'.repeat(64) }, 'invalid_signature'],
    ['signature with the wrong version', { signature: `v0=${SIG}` }, 'invalid_signature'],
    [
      'signature as base64',
      { signature: Buffer.from(SIG, 'hex').toString('base64') },
      'invalid_signature',
    ],
    ['empty signature', { signature: '' }, 'missing_signature'],
    ['blank signature', { signature: ' , ' }, 'invalid_signature'],
    ['whitespace-only signature', { signature: '   ' }, 'missing_signature'],
    ['absent signature', { signature: undefined }, 'missing_signature'],
    ['huge signature header', { signature: 'a,'.repeat(8000) }, 'invalid_signature'],
  ];

  it.each(cases)('%s → %s, without throwing', (_name, overrides, reason) => {
    let result: ReturnType<typeof verify> | undefined;
    expect(() => {
      result = verify(valid(overrides));
    }).not.toThrow();
    expect(result).toMatchObject({ ok: false, reason });
  });

  it('reports the measured skew for a timestamp outside the window', () => {
    expect(verify(valid({ nowSeconds: NOW + 3600 }))).toEqual({
      ok: false,
      reason: 'timestamp_out_of_tolerance',
      skewSeconds: 3600,
    });
    expect(verify(valid({ nowSeconds: NOW - 400 }))).toMatchObject({ skewSeconds: -400 });
  });
});

describe('bytes, not text', () => {
  it('signs over raw bytes: bodies differing only in invalid UTF-8 do not share a signature', () => {
    const a = Buffer.from([0x7b, 0xff, 0x7d]);
    const b = Buffer.from([0x7b, 0xfe, 0x7d]);
    // Both decode to the same text, '{\uFFFD}', once the invalid byte becomes U+FFFD...
    expect(a.toString('utf8')).toBe(b.toString('utf8'));
    // ...but their MACs differ, and neither verifies for the other.
    const sigA = computeSignature(SECRET, TS, a);
    expect(computeSignature(SECRET, TS, b)).not.toBe(sigA);
    expect(verify(valid({ body: b, signature: sigA })).ok).toBe(false);
    expect(verify(valid({ body: a, signature: sigA })).ok).toBe(true);
  });

  it('does not let a string body stand in for its replacement-character decoding', () => {
    const raw = Buffer.from([0x61, 0x80, 0x62]);
    const sig = computeSignature(SECRET, TS, raw);
    expect(verify(valid({ body: raw.toString('utf8'), signature: sig })).ok).toBe(false);
  });
});

describe('properties', () => {
  const secret = fc.string({ minLength: 1, maxLength: 64, unit: 'binary' });
  const body = fc.uint8Array({ maxLength: 2048 });
  const timestamp = fc.integer({ min: 0, max: 999_999_999_999 });

  it('verify(sign(x)) holds for any secret, byte body and timestamp', () => {
    fc.assert(
      fc.property(secret, body, timestamp, (s, b, t) => {
        const headers = sign({ secret: s, body: b, timestamp: t });
        const result = verify({
          secrets: [s],
          signature: headers['x-groq-signature'],
          timestamp: headers['x-groq-timestamp'],
          body: b,
          nowSeconds: t,
        });
        return result.ok && result.keyIndex === 0;
      }),
      { numRuns: 500 },
    );
  });

  it('any single-byte mutation of body, timestamp or signature fails', () => {
    const mutation = fc.record({
      target: fc.constantFrom('body', 'timestamp', 'signature'),
      position: fc.nat(),
      delta: fc.integer({ min: 1, max: 255 }),
    });
    fc.assert(
      fc.property(secret, body, timestamp, mutation, (s, b, t, m) => {
        const headers = sign({ secret: s, body: b, timestamp: t });
        let bodyBytes = Uint8Array.from(b);
        let ts = headers['x-groq-timestamp'];
        let sig = headers['x-groq-signature'];
        if (m.target === 'body') {
          if (bodyBytes.length === 0) bodyBytes = Uint8Array.of(m.delta);
          else {
            const i = m.position % bodyBytes.length;
            bodyBytes[i] = ((bodyBytes[i] ?? 0) + m.delta) % 256;
          }
        } else {
          const bytes = Buffer.from(m.target === 'timestamp' ? ts : sig, 'latin1');
          const i = m.position % bytes.length;
          bytes[i] = ((bytes[i] ?? 0) + m.delta) % 256;
          if (m.target === 'timestamp') ts = bytes.toString('latin1');
          else sig = bytes.toString('latin1');
        }
        const result = verify({
          secrets: [s],
          signature: sig,
          timestamp: ts,
          body: bodyBytes,
          nowSeconds: t,
          // A mutated timestamp digit must fail on the MAC, not only on the window.
          toleranceSeconds: 1e13,
        });
        return !result.ok;
      }),
      { numRuns: 1000 },
    );
  });

  it('never throws, whatever the headers', () => {
    const header = fc.option(fc.string({ maxLength: 200, unit: 'binary' }), { nil: undefined });
    fc.assert(
      fc.property(header, header, body, (sig, ts, b) => {
        const result = verify({
          secrets: [SECRET],
          signature: sig,
          timestamp: ts,
          body: b,
          nowSeconds: NOW,
        });
        return result.ok === false;
      }),
      { numRuns: 1000 },
    );
  });
});
