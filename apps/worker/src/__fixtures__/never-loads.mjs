// A handler module whose top-level await never settles and holds nothing else: without a load
// timeout, Node would exit 13 ("unsettled top-level await") without a word.
await new Promise(() => {});

export default {
  'resource.created': async () => {},
  'resource.updated': async () => {},
  'resource.deleted': async () => {},
};
