import { describe, expect, it } from 'vitest';
import { jsonNestedDeeperThan } from './json-depth.js';

const bytes = (text: string) => new TextEncoder().encode(text);
const nested = (levels: number) => `${'{"a":'.repeat(levels - 1)}{}${'}'.repeat(levels - 1)}`;

describe('jsonNestedDeeperThan', () => {
  it('counts objects and arrays, exactly at the limit', () => {
    expect(jsonNestedDeeperThan(bytes(nested(64)), 64)).toBe(false);
    expect(jsonNestedDeeperThan(bytes(nested(65)), 64)).toBe(true);
    expect(jsonNestedDeeperThan(bytes(`${'['.repeat(65)}${']'.repeat(65)}`), 64)).toBe(true);
    expect(jsonNestedDeeperThan(bytes('[[{"a":[1]}]]'), 4)).toBe(false);
    expect(jsonNestedDeeperThan(bytes('[[{"a":[1]}]]'), 3)).toBe(true);
    expect(jsonNestedDeeperThan(bytes('42'), 0)).toBe(false);
  });

  it('measures depth, not the number of brackets', () => {
    const wide = `[${Array.from({ length: 1000 }, () => '{"a":[1,{}]}').join(',')}]`;
    expect(jsonNestedDeeperThan(bytes(wide), 4)).toBe(false);
    expect(jsonNestedDeeperThan(bytes(wide), 3)).toBe(true);
  });

  it('skips brackets inside strings, escaped quotes included', () => {
    const text = JSON.stringify({ s: '[[[[{{{{ \\" [[[[', t: '"]]]]' });
    expect(jsonNestedDeeperThan(bytes(text), 1)).toBe(false);
    expect(jsonNestedDeeperThan(bytes('{"a\\\\":[[]]}'), 2)).toBe(true);
  });

  it('reads UTF-8 bytes: multi-byte characters never look like brackets', () => {
    const text = JSON.stringify({ s: 'é€😀', d: [['x']] });
    expect(jsonNestedDeeperThan(bytes(text), 3)).toBe(false);
    expect(jsonNestedDeeperThan(bytes(text), 2)).toBe(true);
  });

  it('stops at the first level past the limit, whatever follows', () => {
    const deep = bytes(`${'['.repeat(100_000)}${']'.repeat(100_000)}`);
    expect(jsonNestedDeeperThan(deep, 64)).toBe(true);
  });
});
