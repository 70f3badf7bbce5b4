// A handler module without a handler for resource.deleted: the worker must refuse it.
export default {
  'resource.created': async () => {},
  'resource.updated': async () => {},
};
