import { EventEmitter } from 'node:events';
import { setImmediate as turn } from 'node:timers/promises';
import { type Context, createContextKey, ROOT_CONTEXT } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import { OnDemandContextManager } from './on-demand-context.js';

const KEY = createContextKey('on-demand test');
const named = (name: string): Context => ROOT_CONTEXT.setValue(KEY, name);
const nameIn = (manager: OnDemandContextManager) => manager.active().getValue(KEY);

/** A promise and its resolve, to hold a `with` open from outside. */
function gate() {
  let open = (): void => {};
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { open, opened };
}

describe('OnDemandContextManager', () => {
  it('carries a context across awaits and timers while its with runs, nested and concurrent', async () => {
    const manager = new OnDemandContextManager();
    const seen: unknown[] = [];
    const first = manager.with(named('a'), async () => {
      await turn();
      seen.push(nameIn(manager));
      await manager.with(named('a.1'), async () => {
        await new Promise((resolve) => setTimeout(resolve, 1));
        seen.push(nameIn(manager));
      });
      seen.push(nameIn(manager));
    });
    const second = manager.with(named('b'), async () => {
      await turn();
      await turn();
      seen.push(nameIn(manager));
    });
    expect(nameIn(manager)).toBeUndefined();
    await Promise.all([first, second]);
    expect(seen.sort()).toEqual(['a', 'a', 'a.1', 'b']);
  });

  it('switches the async context off once no with runs: what outlived its with finds the root', async () => {
    const manager = new OnDemandContextManager();
    const left = gate();
    const held = gate();
    const seen: unknown[] = [];
    // Started inside its with, resumed after it returned.
    const leftover = manager.with(named('left'), async () => {
      void (async () => {
        await left.opened;
        seen.push(nameIn(manager));
      })();
    });
    const holding = manager.with(named('holding'), () => held.opened);
    await leftover;
    // Another with still runs: the leftover keeps its context.
    left.open();
    await turn();
    expect(seen).toEqual(['left']);

    const later = gate();
    const again = manager.with(named('again'), async () => {
      void (async () => {
        await later.opened;
        seen.push(nameIn(manager));
      })();
    });
    await again;
    held.open();
    await holding;
    // No with runs any more: the context is gone (the stock manager would still say 'again').
    later.open();
    await turn();
    expect(seen).toEqual(['left', undefined]);
    // And a new with carries its own again.
    await manager.with(named('new'), async () => {
      await turn();
      seen.push(nameIn(manager));
    });
    expect(seen).toEqual(['left', undefined, 'new']);
  });

  it('passes results and errors through, and a with that failed has ended', async () => {
    const manager = new OnDemandContextManager();
    expect(manager.with(named('sync'), (a: number, b: number) => a + b, undefined, 2, 3)).toBe(5);
    const thrown = new Error('thrown');
    expect(() =>
      manager.with(named('throws'), () => {
        throw thrown;
      }),
    ).toThrow(thrown);
    const rejected = new Error('rejected');
    await expect(
      manager.with(named('rejects'), async () => {
        await turn();
        throw rejected;
      }),
    ).rejects.toBe(rejected);
    const self = { name: 'this' };
    expect(
      manager.with(
        named('this'),
        function (this: typeof self) {
          return this.name;
        },
        self,
      ),
    ).toBe('this');
    // Every with above has ended: a continuation started in one now finds the root.
    const after = gate();
    let seen: unknown = 'unset';
    await manager.with(named('last'), async () => {
      void (async () => {
        await after.opened;
        seen = nameIn(manager);
      })();
    });
    after.open();
    await turn();
    expect(seen).toBeUndefined();
  });

  it('binds functions and event emitters to a context', async () => {
    const manager = new OnDemandContextManager();
    const bound = manager.bind(named('fn'), async () => {
      await turn();
      return nameIn(manager);
    });
    expect(await bound()).toBe('fn');
    const emitter = manager.bind(named('emitter'), new EventEmitter());
    const heard = new Promise((resolve) => emitter.on('ping', () => resolve(nameIn(manager))));
    emitter.emit('ping');
    expect(await heard).toBe('emitter');
  });

  it('keeps the async context on after an attach, until disabled', async () => {
    const manager = new OnDemandContextManager();
    const seen: unknown[] = [];
    await manager.with(named('outer'), async () => {
      const token = manager.attach(named('attached'));
      await turn();
      seen.push(nameIn(manager));
      token.dispose();
      seen.push(nameIn(manager));
    });
    expect(seen).toEqual(['attached', 'outer']);
    manager.disable();
    expect(nameIn(manager)).toBeUndefined();
  });
});
