import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { EVENT_TYPES, type HandlerMap } from '@groq-webhooks/core';

/** A handler module that cannot be used; its message is the one line the worker prints. */
export class HandlersModuleError extends Error {
  override name = 'HandlersModuleError';
}

const TS_EXTENSION = /\.[cm]?tsx?$/;

/** Options of {@link loadHandlers}. */
export interface LoadHandlersOptions {
  /**
   * Give up when the module has not finished loading after this long (`HANDLERS_LOAD_TIMEOUT_MS`):
   * a top-level `await` that never settles would otherwise hang the worker, or make Node exit 13
   * without a word. Default: wait as long as it takes.
   */
  timeoutMs?: number;
}

/**
 * Loads the handler map named by `HANDLERS_MODULE`: an absolute path, a path relative to `cwd`,
 * or a package name resolved from `cwd`. `.ts` modules are compiled on the fly by tsx.
 * Throws {@link HandlersModuleError} when the module cannot be loaded, does not finish loading
 * within `timeoutMs`, or is not a handler map.
 */
export async function loadHandlers(
  specifier: string,
  cwd: string,
  options: LoadHandlersOptions = {},
): Promise<HandlerMap> {
  const fail = (why: string, cause?: unknown): HandlersModuleError =>
    new HandlersModuleError(
      `Invalid HANDLERS_MODULE ${specifier}: ${why}`,
      cause === undefined ? undefined : { cause },
    );
  let file: string;
  try {
    file = resolveModule(specifier, cwd);
  } catch (error) {
    throw fail(`cannot be found from ${cwd} (${errorMessage(error)})`, error);
  }
  let namespace: unknown;
  let timer: NodeJS.Timeout | undefined;
  try {
    const loading = importModule(file);
    const { timeoutMs } = options;
    namespace =
      timeoutMs === undefined
        ? await loading
        : await Promise.race([
            loading,
            new Promise<never>((_, reject) => {
              // Also keeps the event loop alive while the module's own await is pending.
              timer = setTimeout(() => reject(new LoadTimeout(timeoutMs)), timeoutMs);
            }),
          ]);
  } catch (error) {
    if (error instanceof LoadTimeout) {
      throw fail(
        `did not finish loading within ${error.timeoutMs} ms (HANDLERS_LOAD_TIMEOUT_MS; a top-level await that never settles?)`,
      );
    }
    throw fail(`failed to load (${errorMessage(error)})`, error);
  } finally {
    clearTimeout(timer);
  }
  return handlerMapOf(namespace, fail);
}

class LoadTimeout extends Error {
  constructor(readonly timeoutMs: number) {
    super(`load timeout after ${timeoutMs} ms`);
  }
}

async function importModule(file: string): Promise<unknown> {
  const url = pathToFileURL(file).href;
  if (TS_EXTENSION.test(file)) {
    // Loaded lazily: tsx registers loader hooks, which plain JavaScript modules never need.
    const { tsImport } = await import('tsx/esm/api');
    return tsImport(url, import.meta.url);
  }
  return import(url);
}

function handlerMapOf(namespace: unknown, fail: (why: string) => HandlersModuleError): HandlerMap {
  let candidate = defaultExport(namespace);
  // A `.ts` or `.js` file compiled as CommonJS arrives wrapped once more: `{ default: { default } }`.
  if (isObject(candidate) && !hasAnyHandler(candidate) && isObject(candidate.default)) {
    candidate = candidate.default;
  }
  if (candidate === undefined) return failWith(fail('the module has no default export'));
  const problem = handlerMapProblem(candidate);
  if (problem !== undefined) return failWith(fail(`default export ${problem}`));
  return candidate as HandlerMap;
}

/**
 * What keeps `candidate` from being a handler map (an object with a function for every known
 * event type), e.g. `is missing a handler for resource.deleted`; undefined when it is one.
 */
export function handlerMapProblem(candidate: unknown): string | undefined {
  if (!isObject(candidate)) {
    return `must be a handler map object, got ${candidate === null ? 'null' : typeof candidate}`;
  }
  for (const type of EVENT_TYPES) {
    const handler = candidate[type];
    if (handler === undefined) return `is missing a handler for ${type}`;
    if (typeof handler !== 'function') {
      return `has a handler for ${type} that is not a function (${typeof handler})`;
    }
  }
  return undefined;
}

function failWith(error: HandlersModuleError): never {
  throw error;
}

function defaultExport(namespace: unknown): unknown {
  return isObject(namespace) ? namespace.default : undefined;
}

function hasAnyHandler(value: Record<string, unknown>): boolean {
  return EVENT_TYPES.some((type) => typeof value[type] === 'function');
}

function isObject(value: unknown): value is Record<string, unknown> {
  return (typeof value === 'object' || typeof value === 'function') && value !== null;
}

/** A file path when `specifier` names an existing file (absolute or from `cwd`), else a package. */
function resolveModule(specifier: string, cwd: string): string {
  const asPath = isAbsolute(specifier) ? specifier : resolve(cwd, specifier);
  if (existsSync(asPath)) return asPath;
  if (isAbsolute(specifier) || specifier.startsWith('.')) {
    throw new Error(`no file ${asPath}`);
  }
  return resolvePackage(specifier, cwd);
}

/**
 * Resolves a package from `cwd`. `require.resolve` covers CommonJS and most dual packages;
 * ESM-only packages (an `exports` map with only an `import` condition) are looked up by hand.
 */
function resolvePackage(specifier: string, cwd: string): string {
  const require = createRequire(join(cwd, 'noop.js'));
  try {
    return require.resolve(specifier);
  } catch (error) {
    const found = resolveEsmOnlyPackage(specifier, cwd);
    if (found !== undefined) return found;
    throw error;
  }
}

function resolveEsmOnlyPackage(specifier: string, cwd: string): string | undefined {
  const parts = specifier.split('/');
  const nameLength = specifier.startsWith('@') ? 2 : 1;
  const name = parts.slice(0, nameLength).join('/');
  const subpath = parts.length > nameLength ? `./${parts.slice(nameLength).join('/')}` : '.';
  for (let dir = cwd; ; dir = dirname(dir)) {
    const root = join(dir, 'node_modules', name);
    const manifest = join(root, 'package.json');
    if (existsSync(manifest)) {
      const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as Record<string, unknown>;
      const target = exportTarget(pkg.exports, subpath);
      if (target !== undefined) return join(root, target);
      if (subpath === '.' && typeof pkg.main === 'string') return join(root, pkg.main);
      return undefined;
    }
    if (dirname(dir) === dir) return undefined;
  }
}

function exportTarget(exports: unknown, subpath: string): string | undefined {
  if (typeof exports === 'string') return subpath === '.' ? exports : undefined;
  if (!isObject(exports)) return undefined;
  const keys = Object.keys(exports);
  const entry = keys.some((key) => key.startsWith('.')) ? exports[subpath] : exports;
  return conditionTarget(entry);
}

function conditionTarget(entry: unknown): string | undefined {
  if (typeof entry === 'string') return entry;
  if (!isObject(entry)) return undefined;
  for (const condition of ['import', 'node', 'default']) {
    const target = conditionTarget(entry[condition]);
    if (target !== undefined) return target;
  }
  return undefined;
}

function errorMessage(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split('\n')[0] ?? text;
}
