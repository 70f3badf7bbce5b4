#!/usr/bin/env node
// Run by `pnpm test` before anything is built: names every missing prerequisite in one line
// and how to install it, then exits 1; silent and 0 when everything is there.
import { missingPrerequisites } from './prerequisites.mjs';

const missing = missingPrerequisites(process.env);
if (missing.length > 0) {
  process.stderr.write(`pnpm test needs ${missing.join('; and ')}\n`);
  process.exit(1);
}
