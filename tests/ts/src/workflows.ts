// The module the worker bundles (workflowsPath): every workflow used by the tests.
export * from './order';
export * from './features';
export * from './tier3';
