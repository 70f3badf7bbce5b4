/** Where the browser tests look for Chromium unless CHROMIUM_PATH says otherwise. */
export declare const DEFAULT_CHROMIUM: string;
/** An executable named `command` on a PATH string, or undefined. */
export declare function findOnPath(command: string, path: string | undefined): string | undefined;
/** The directory holding the PostgreSQL server binaries (`initdb`, `postgres`), or undefined. */
export declare function postgresBinDir(
  env?: Readonly<Record<string, string | undefined>>,
): string | undefined;
/** The prerequisites of `pnpm test` missing from this machine, each with how to get it. */
export declare function missingPrerequisites(
  env?: Readonly<Record<string, string | undefined>>,
): string[];
