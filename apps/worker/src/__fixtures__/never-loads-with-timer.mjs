// A handler module whose top-level await waits on something that keeps the process alive and
// never answers (a connection that never opens, say): without a load timeout the worker hangs.
await new Promise(() => {
  setInterval(() => {}, 1000);
});

export default {
  'resource.created': async () => {},
  'resource.updated': async () => {},
  'resource.deleted': async () => {},
};
