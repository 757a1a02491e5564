// Validates OpenLineage events against the shared JSON schemas: the core schema, then every facet
// against its own schema (the core schema's facet slots accept any object).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DIR = path.join(ROOT, '../shared/reference/openlineage');

const FACET_FILES: Record<string, string> = {
  schema: 'SchemaDatasetFacet',
  dataSource: 'DatasourceDatasetFacet',
  columnLineage: 'ColumnLineageDatasetFacet',
  dataQualityAssertions: 'DataQualityAssertionsDatasetFacet',
  errorMessage: 'ErrorMessageRunFacet',
  nominalTime: 'NominalTimeRunFacet',
  jobType: 'JobTypeJobFacet',
  outputStatistics: 'OutputStatisticsOutputDatasetFacet',
};

export function schemasAvailable(): boolean {
  return fs.existsSync(path.join(DIR, 'OpenLineage.json'));
}

type Validate = ((x: unknown) => boolean) & { errors?: unknown };

let cache: { core: Validate; facet: (file: string) => Validate } | undefined;
function load(): NonNullable<typeof cache> {
  if (cache) return cache;
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
  const core = JSON.parse(fs.readFileSync(path.join(DIR, 'OpenLineage.json'), 'utf8'));
  ajv.addSchema(core);
  const compiled = new Map<string, Validate>();
  const facet = (file: string): Validate => {
    let v = compiled.get(file);
    if (!v) {
      v = ajv.compile(JSON.parse(fs.readFileSync(path.join(DIR, 'facets', `${file}.json`), 'utf8'))) as Validate;
      compiled.set(file, v);
    }
    return v;
  };
  cache = { core: ajv.getSchema(`${core.$id}#/$defs/RunEvent`) as Validate, facet };
  return cache;
}

/** Problems found (empty when the event is valid); counts the facets checked in `checked`. */
export function validateRunEvent(event: unknown, checked: Map<string, number> = new Map()): string[] {
  const { core, facet } = load();
  const problems: string[] = [];
  if (!core(event)) problems.push(`core: ${JSON.stringify(core.errors)}`);
  const check = (where: string, facets: Record<string, unknown> | undefined, dataQualityMetricsFile: string): void => {
    for (const [name, value] of Object.entries(facets ?? {})) {
      const file = name === 'dataQualityMetrics' ? dataQualityMetricsFile : FACET_FILES[name];
      if (!file) {
        problems.push(`${where}.${name}: no schema known for this facet`);
        continue;
      }
      const v = facet(file);
      if (!v({ [name]: value })) problems.push(`${where}.${name}: ${JSON.stringify(v.errors)}`);
      checked.set(name, (checked.get(name) ?? 0) + 1);
    }
  };
  const e = event as {
    run: { facets?: Record<string, unknown> };
    job: { facets?: Record<string, unknown> };
    inputs?: { facets?: Record<string, unknown>; inputFacets?: Record<string, unknown> }[];
    outputs?: { facets?: Record<string, unknown>; outputFacets?: Record<string, unknown> }[];
  };
  check('run', e.run.facets, '');
  check('job', e.job.facets, '');
  e.inputs?.forEach((d, i) => {
    check(`inputs[${i}]`, d.facets, 'DataQualityMetricsDatasetFacet');
    check(`inputs[${i}].inputFacets`, d.inputFacets, 'DataQualityMetricsInputDatasetFacet');
  });
  e.outputs?.forEach((d, i) => {
    check(`outputs[${i}]`, d.facets, 'DataQualityMetricsDatasetFacet');
    check(`outputs[${i}].outputFacets`, d.outputFacets, '');
  });
  return problems;
}
