import { describe, expect, it } from 'vitest';
import { parseEnvelope } from './envelope.js';
import { createdMillis, isEventType, payloadProblem, resourceKeyOf } from './events.js';

const valid = { id: 'evt_1', type: 'resource.created', data: {}, created: '2026-11-28T10:00:00Z' };

describe('parseEnvelope', () => {
  it('accepts a valid envelope and returns the same object', () => {
    const result = parseEnvelope(valid);
    expect(result).toEqual({ ok: true, envelope: valid });
    expect(result.ok && result.envelope).toBe(valid);
  });

  it('accepts unknown types and extra fields', () => {
    expect(parseEnvelope({ ...valid, type: 'batch.finished', extra: 1 }).ok).toBe(true);
  });

  it.each<[string, unknown, string]>([
    ['null', null, 'body must be a JSON object'],
    ['an array', [valid], 'body must be a JSON object'],
    ['a string', 'evt', 'body must be a JSON object'],
    ['a number', 42, 'body must be a JSON object'],
    ['no id', { ...valid, id: undefined }, 'id is required'],
    ['numeric id', { ...valid, id: 7 }, 'id must be a string'],
    ['empty id', { ...valid, id: '' }, 'id must not be empty'],
    ['256-character id', { ...valid, id: 'x'.repeat(256) }, 'id must be at most 255 characters'],
    [
      'id with an unpaired high surrogate',
      { ...valid, id: 'evt_\ud800' },
      'id must be well-formed Unicode',
    ],
    [
      'id with an unpaired low surrogate',
      { ...valid, id: '\udfffevt' },
      'id must be well-formed Unicode',
    ],
    ['no type', { ...valid, type: undefined }, 'type is required'],
    ['array type', { ...valid, type: ['a'] }, 'type must be a string'],
    ['empty type', { ...valid, type: '' }, 'type must not be empty'],
    ['huge type', { ...valid, type: 't'.repeat(10_000) }, 'type must be at most 255 characters'],
    ['no data', { ...valid, data: undefined }, 'data is required'],
    ['null data', { ...valid, data: null }, 'data must be a JSON object'],
    ['array data', { ...valid, data: [] }, 'data must be a JSON object'],
    ['string data', { ...valid, data: '{}' }, 'data must be a JSON object'],
    ['no created', { ...valid, created: undefined }, 'created is required'],
    ['boolean created', { ...valid, created: true }, 'created must be a string'],
  ])('refuses %s: %s', (_name, value, problem) => {
    expect(parseEnvelope(value)).toEqual({ ok: false, problem });
  });

  it('counts id length in characters, not UTF-16 units', () => {
    expect(parseEnvelope({ ...valid, id: '😀'.repeat(255) }).ok).toBe(true);
    expect(parseEnvelope({ ...valid, id: '😀'.repeat(256) }).ok).toBe(false);
  });

  it('accepts ids with paired surrogates and U+FFFD itself', () => {
    expect(parseEnvelope({ ...valid, id: 'evt_😀\ufffd' }).ok).toBe(true);
    expect(
      parseEnvelope(JSON.parse('{"id":"evt_\\ud83d\\ude00","type":"t","data":{},"created":"c"}'))
        .ok,
    ).toBe(true);
  });

  it('leaves __proto__ keys as plain data', () => {
    const hostile = JSON.parse(
      '{"id":"e","type":"t","created":"c","data":{"__proto__":{"polluted":true}},"__proto__":{"x":1}}',
    );
    const result = parseEnvelope(hostile);
    expect(result.ok).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(hostile)).toBe(Object.prototype);
  });
});

describe('known types', () => {
  it('recognises only known type names, not inherited properties', () => {
    expect(isEventType('resource.updated')).toBe(true);
    expect(isEventType('resource.unknown')).toBe(false);
    expect(isEventType('toString')).toBe(false);
    expect(isEventType('__proto__')).toBe(false);
  });

  it('accepts empty and extended payloads and names a wrong-typed field', () => {
    expect(payloadProblem('resource.created', {})).toBeUndefined();
    expect(payloadProblem('resource.updated', { id: 'r1', extra: [1] })).toBeUndefined();
    expect(payloadProblem('resource.deleted', { id: 5 })).toMatch(/^data\.id: /);
  });
});

describe('resource keys and creation times', () => {
  it('takes data.id of the resource types as the resource key', () => {
    expect(resourceKeyOf('resource.updated', { id: 'res_1' })).toBe('res_1');
    expect(resourceKeyOf('resource.deleted', { id: 'res_2', object: 'file' })).toBe('res_2');
    expect(resourceKeyOf('resource.created', {})).toBeUndefined();
    expect(resourceKeyOf('resource.created', { id: '' })).toBeUndefined();
  });

  it('reads created as ISO-8601 or epoch seconds or milliseconds', () => {
    expect(createdMillis('2026-11-28T10:00:00Z')).toBe(Date.UTC(2026, 10, 28, 10));
    expect(createdMillis('2026-11-28T10:00:00.250+01:00')).toBe(
      Date.UTC(2026, 10, 28, 9, 0, 0, 250),
    );
    expect(createdMillis('1795000000')).toBe(1_795_000_000_000);
    expect(createdMillis('1795000000123')).toBe(1_795_000_000_123);
    expect(createdMillis('yesterday')).toBeUndefined();
    expect(createdMillis('')).toBeUndefined();
  });
});
