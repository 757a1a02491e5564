export { OlapEngine, type OlapEngineOptions, type QueryOptions, type TaskState } from './engine.ts';
export { type DruidRoutesOptions, druidError, druidRoutes } from './http.ts';
export { csvField, toDruidJson } from './json.ts';
export { type IngestionSpec, parseIngestionSpec } from './spec.ts';
