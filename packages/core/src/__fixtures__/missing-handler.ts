// Negative fixture: must NOT compile (checked by handlers.test.ts).
import { defineHandlers } from '../handlers.js';

export default defineHandlers({
  'resource.created': async () => {},
  'resource.updated': async () => {},
});
