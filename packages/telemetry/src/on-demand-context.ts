import { AsyncLocalStorage } from 'node:async_hooks';
import { type Context, ROOT_CONTEXT } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';

/**
 * An `AsyncLocalStorage` context manager whose async context is on only while a `with` runs.
 *
 * On Node 20, an `AsyncLocalStorage` that was ever entered runs its async hooks for every promise
 * the process makes, sampled or not, inside a traced call or not: in the worker, BullMQ's and
 * ioredis's promises between two handlers paid for it (≈ 8 µs of CPU per job, a tenth of what a
 * job costs there). This one enters its storage in `with` and, once every `with` has returned (a
 * promise it returned has settled), switches it off (`AsyncLocalStorage.disable()`), so the hooks
 * run only while some context is in use. Within a `with` nothing differs from the SDK's default
 * manager: the context follows every await, timer and callback made inside it, nested and
 * concurrent `with`s included. What differs is after: a continuation that outlives its `with` (a
 * promise left running, a timer set inside) finds the root context once no `with` runs, instead
 * of the one it started in. Binding (`bind`, of functions and event emitters) is the parent's,
 * which runs the bound code through this `with`.
 *
 * `attach` (a context entered for the rest of an async chain, no end to wait for) keeps the
 * async context on from then on. On Node 24, whose `AsyncLocalStorage` runs on async context
 * frames without hooks, the switch saves nothing.
 */
export class OnDemandContextManager extends AsyncLocalStorageContextManager {
  readonly #storage = new AsyncLocalStorage<Context>();
  /** `with`s not ended yet: their callbacks' promises still pending. */
  #running = 0;
  /** An `attach` asked for the async context with no end: it stays on. */
  #pinned = false;

  override active(): Context {
    return this.#storage.getStore() ?? ROOT_CONTEXT;
  }

  override with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    context: Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    this.#running += 1;
    let result: ReturnType<F>;
    try {
      result = this.#storage.run(context, () => fn.apply(thisArg, args));
    } catch (thrown) {
      this.#ended();
      throw thrown;
    }
    // Only a native promise is waited for: `then` on another thenable may start work (a query
    // builder's does). The caller gets the derived promise, so a rejection nobody handles is
    // still reported as unhandled.
    if (result instanceof Promise) {
      return result.then(
        (value: unknown) => {
          this.#ended();
          return value;
        },
        (reason: unknown) => {
          this.#ended();
          throw reason;
        },
      ) as ReturnType<F>;
    }
    this.#ended();
    return result;
  }

  override attach(context: Context): ReturnType<AsyncLocalStorageContextManager['attach']> {
    this.#pinned = true;
    const previous = this.active();
    this.#storage.enterWith(context);
    let disposed = false;
    return {
      dispose: () => {
        if (disposed) return;
        disposed = true;
        this.#storage.enterWith(previous);
      },
    };
  }

  override enable(): this {
    return this;
  }

  override disable(): this {
    this.#pinned = false;
    this.#storage.disable();
    return this;
  }

  #ended(): void {
    this.#running -= 1;
    if (this.#running === 0 && !this.#pinned) this.#storage.disable();
  }
}
