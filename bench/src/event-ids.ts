/**
 * Deterministic event ids shaped as senders make them: `evt_` + 24–32 characters of
 * [A-Za-z0-9] (mulberry32 from `seed`), so that memory figures do not depend on a lucky length.
 */
export function* eventIds(seed: number): Generator<string> {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  for (;;) {
    const length = 24 + Math.floor(next() * 9);
    let id = 'evt_';
    for (let j = 0; j < length; j++) id += alphabet[Math.floor(next() * alphabet.length)];
    yield id;
  }
}

/** The next `count` items of an iterator. */
export function* take<T>(items: Iterator<T>, count: number): Generator<T> {
  for (let i = 0; i < count; i++) yield items.next().value as T;
}
