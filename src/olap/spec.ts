import { z } from 'zod';
import { invalidArgument } from '../core/index.ts';
import { type Granularity, type Interval, parseGranularity, parseInterval } from './time.ts';
import { nonEmpty, parseWith } from './validate.ts';

/** Aggregator types accepted at ingestion and query time. */
export const AGGREGATOR_TYPES = [
  'count',
  'longSum',
  'doubleSum',
  'floatSum',
  'longMin',
  'longMax',
  'doubleMin',
  'doubleMax',
  'floatMin',
  'floatMax',
  'longFirst',
  'longLast',
  'doubleFirst',
  'doubleLast',
  'floatFirst',
  'floatLast',
  'stringFirst',
  'stringLast',
  'hyperUnique',
  'cardinality',
  'thetaSketch',
  'HLLSketchBuild',
  'HLLSketchMerge',
  'quantilesDoublesSketch',
  'filtered',
] as const;
export type AggregatorType = (typeof AGGREGATOR_TYPES)[number];

export interface AggregatorSpec {
  type: AggregatorType;
  name: string;
  fieldName?: string | undefined;
  fieldNames?: string[] | undefined;
  expression?: string | undefined;
  /** theta size / quantiles k. */
  size?: number | undefined;
  k?: number | undefined;
  lgK?: number | undefined;
  round?: boolean | undefined;
  byRow?: boolean | undefined;
  isInputThetaSketch?: boolean | undefined;
  filter?: unknown;
  aggregator?: AggregatorSpec | undefined;
}

const baseAgg = z.looseObject({ type: z.enum(AGGREGATOR_TYPES), name: nonEmpty });

export function parseAggregator(value: unknown, field: string): AggregatorSpec {
  const b = parseWith(baseAgg, value, field);
  const o = value as Record<string, unknown>;
  const needsField = !['count', 'filtered', 'cardinality'].includes(b.type);
  const schema = z.looseObject({
    fieldName: needsField && o.expression === undefined ? nonEmpty : nonEmpty.optional(),
    fieldNames: z.array(z.union([nonEmpty, z.looseObject({ dimension: nonEmpty })])).optional(),
    expression: z.string().optional(),
    size: z.number().int().positive().optional(),
    k: z.number().int().positive().optional(),
    lgK: z.number().int().min(4).max(21).optional(),
    round: z.boolean().optional(),
    byRow: z.boolean().optional(),
    isInputThetaSketch: z.boolean().optional(),
  });
  const p = parseWith(schema, value, field);
  const spec: AggregatorSpec = {
    type: b.type,
    name: b.name,
    fieldName: p.fieldName,
    fieldNames: p.fieldNames?.map((f) => (typeof f === 'string' ? f : f.dimension)),
    expression: p.expression,
    size: p.size,
    k: p.k,
    lgK: p.lgK,
    round: p.round,
    byRow: p.byRow,
    isInputThetaSketch: p.isInputThetaSketch,
  };
  if (b.type === 'cardinality' && !spec.fieldNames?.length)
    throw invalidArgument(`${field}.fieldNames`, 'a non-empty array of dimension names');
  if (b.type === 'filtered') {
    if (o.filter === undefined || o.filter === null) throw invalidArgument(`${field}.filter`, 'a filter object');
    spec.filter = o.filter;
    spec.aggregator = parseAggregator(o.aggregator, `${field}.aggregator`);
    spec.name = b.name;
  }
  return spec;
}

export type DimensionType = 'string' | 'long' | 'float' | 'double' | 'json';
export interface DimensionSpec {
  name: string;
  type: DimensionType;
}

export interface TimestampSpec {
  column: string;
  format: string;
  missingValue?: string | undefined;
}

export interface DataSchema {
  dataSource: string;
  timestampSpec: TimestampSpec;
  dimensions: DimensionSpec[];
  /** No dimensions listed: every other input column becomes a dimension. */
  discovery: boolean;
  useSchemaDiscovery: boolean;
  dimensionExclusions: string[];
  metrics: AggregatorSpec[];
  segmentGranularity: Granularity;
  queryGranularity: Granularity;
  rollup: boolean;
  intervals: Interval[] | undefined;
  transforms: { name: string; expression: string }[];
  transformFilter: unknown;
}

export type InputSource =
  | { type: 'local'; baseDir?: string | undefined; filter?: string | undefined; files?: string[] | undefined }
  | { type: 'inline'; data: string }
  /** An Iceberg table of the lake's catalog (Druid's iceberg input source; namespace dot-separated). */
  | { type: 'iceberg'; namespace: string; tableName: string };

export interface InputFormat {
  type: 'json' | 'csv' | 'tsv' | 'parquet';
  columns?: string[] | undefined;
  findColumnsFromHeader?: boolean | undefined;
  skipHeaderRows?: number | undefined;
  delimiter?: string | undefined;
  listDelimiter?: string | undefined;
}

export interface IngestionSpec {
  type: 'index' | 'index_parallel' | 'kafka';
  dataSchema: DataSchema;
  inputSource: InputSource | undefined;
  inputFormat: InputFormat;
  appendToExisting: boolean;
  maxRowsPerSegment: number;
  /** Kafka ioConfig, when type = kafka. */
  kafka?: {
    topic: string;
    useEarliestOffset: boolean;
    taskDuration: string | undefined;
    consumerProperties: Record<string, unknown>;
  };
  intermediatePersistPeriodMs: number;
  maxRowsInMemory: number;
}

const timestampSchema = z.looseObject({
  column: nonEmpty.default('timestamp'),
  format: z.string().default('auto'),
  missingValue: z.string().optional(),
});

const dimSchema = z.union([
  nonEmpty,
  z.looseObject({
    name: nonEmpty,
    type: z.enum(['string', 'long', 'float', 'double', 'json', 'auto']).default('string'),
  }),
]);

const dimensionsSchema = z.looseObject({
  dimensions: z.array(dimSchema).default([]),
  dimensionExclusions: z.array(z.string()).default([]),
  useSchemaDiscovery: z.boolean().default(false),
});

const granularitySchema = z.looseObject({
  type: z.string().optional(),
  segmentGranularity: z.unknown().optional(),
  queryGranularity: z.unknown().optional(),
  rollup: z.boolean().default(true),
  intervals: z.array(z.string()).optional(),
});

const transformSpecSchema = z.looseObject({
  transforms: z
    .array(z.looseObject({ type: z.literal('expression').default('expression'), name: nonEmpty, expression: nonEmpty }))
    .default([]),
  filter: z.unknown().optional(),
});

const dataSchemaSchema = z.looseObject({
  dataSource: nonEmpty,
  timestampSpec: timestampSchema.optional(),
  dimensionsSpec: dimensionsSchema.optional(),
  metricsSpec: z.array(z.unknown()).default([]),
  granularitySpec: granularitySchema.default({ rollup: true }),
  transformSpec: transformSpecSchema.optional(),
  parser: z
    .looseObject({
      type: z.string().optional(),
      parseSpec: z.looseObject({
        format: z.enum(['json', 'csv', 'tsv', 'parquet']).default('json'),
        timestampSpec: timestampSchema.optional(),
        dimensionsSpec: dimensionsSchema.optional(),
        columns: z.array(z.string()).optional(),
        delimiter: z.string().optional(),
        listDelimiter: z.string().optional(),
        hasHeaderRow: z.boolean().optional(),
        skipHeaderRows: z.number().int().nonnegative().optional(),
      }),
    })
    .optional(),
});

const inputSourceSchema = z.discriminatedUnion('type', [
  z.looseObject({
    type: z.literal('local'),
    baseDir: z.string().optional(),
    filter: z.string().optional(),
    files: z.array(z.string()).optional(),
  }),
  z.looseObject({ type: z.literal('inline'), data: z.string() }),
  z.looseObject({ type: z.literal('iceberg'), namespace: nonEmpty, tableName: nonEmpty }),
]);

const inputFormatSchema = z.looseObject({
  type: z.enum(['json', 'csv', 'tsv', 'parquet']),
  columns: z.array(z.string()).optional(),
  findColumnsFromHeader: z.boolean().optional(),
  skipHeaderRows: z.number().int().nonnegative().optional(),
  delimiter: z.string().min(1).optional(),
  listDelimiter: z.string().optional(),
});

const taskSchema = z.looseObject({
  type: z.enum(['index', 'index_parallel', 'kafka']),
  spec: z.looseObject({
    dataSchema: z.unknown(),
    ioConfig: z.looseObject({
      type: z.string().optional(),
      inputSource: z.unknown().optional(),
      inputFormat: z.unknown().optional(),
      firehose: z
        .looseObject({
          type: z.enum(['local', 'inline']),
          baseDir: z.string().optional(),
          filter: z.string().optional(),
          data: z.string().optional(),
        })
        .optional(),
      appendToExisting: z.boolean().default(false),
      topic: z.string().optional(),
      useEarliestOffset: z.boolean().default(false),
      taskDuration: z.string().optional(),
      consumerProperties: z.record(z.string(), z.unknown()).default({}),
    }),
    tuningConfig: z
      .looseObject({
        maxRowsPerSegment: z.number().int().positive().optional(),
        targetPartitionSize: z.number().int().positive().optional(),
        maxRowsInMemory: z.number().int().positive().optional(),
        intermediatePersistPeriod: z.string().optional(),
        partitionsSpec: z.looseObject({ maxRowsPerSegment: z.number().int().positive().optional() }).optional(),
      })
      .default({}),
  }),
});

/**
 * Parses a Druid ingestion task or supervisor spec (modern form, legacy parser/firehose form, and the
 * supervisor form whose dataSchema/ioConfig sit at the top level rather than under `spec`).
 */
export function parseIngestionSpec(value: unknown): IngestionSpec {
  let input = value;
  if (input && typeof input === 'object' && !('spec' in input) && 'dataSchema' in input) {
    const o = input as Record<string, unknown>;
    input = { type: o.type, spec: { dataSchema: o.dataSchema, ioConfig: o.ioConfig, tuningConfig: o.tuningConfig } };
  }
  const task = parseWith(taskSchema, input, 'task');
  const ds = parseWith(dataSchemaSchema, task.spec.dataSchema, 'spec.dataSchema');
  const parseSpec = ds.parser?.parseSpec;
  const ts = ds.timestampSpec ?? parseSpec?.timestampSpec ?? { column: 'timestamp', format: 'auto' };
  const dims = ds.dimensionsSpec ?? parseSpec?.dimensionsSpec ?? dimensionsSchema.parse({});
  const dimensions: DimensionSpec[] = dims.dimensions.map((d) =>
    typeof d === 'string' ? { name: d, type: 'string' } : { name: d.name, type: d.type === 'auto' ? 'json' : d.type },
  );
  const seen = new Set<string>();
  dimensions.forEach((d, i) => {
    if (seen.has(d.name))
      throw invalidArgument(`spec.dataSchema.dimensionsSpec.dimensions[${i}]`, 'a unique name', d.name);
    if (d.name === '__time')
      throw invalidArgument(`spec.dataSchema.dimensionsSpec.dimensions[${i}]`, 'a name other than __time');
    seen.add(d.name);
  });
  const metrics = ds.metricsSpec.map((m, i) => parseAggregator(m, `spec.dataSchema.metricsSpec[${i}]`));
  metrics.forEach((m, i) => {
    if (seen.has(m.name))
      throw invalidArgument(
        `spec.dataSchema.metricsSpec[${i}].name`,
        'a name not used by a dimension or metric',
        m.name,
      );
    seen.add(m.name);
    if (m.type === 'HLLSketchMerge' || (m.type === 'cardinality' && !m.fieldNames))
      throw invalidArgument(`spec.dataSchema.metricsSpec[${i}].type`, 'an ingestion aggregator', m.type);
  });
  const gs = ds.granularitySpec;
  const segmentGranularity = parseGranularity(
    gs.segmentGranularity ?? 'day',
    'spec.dataSchema.granularitySpec.segmentGranularity',
  );
  if (segmentGranularity.kind === 'all' || segmentGranularity.kind === 'none') {
    // Druid allows ALL; one segment interval covering all time.
  }
  const queryGranularity = parseGranularity(
    gs.queryGranularity ?? 'none',
    'spec.dataSchema.granularitySpec.queryGranularity',
  );
  const intervals = gs.intervals?.map((s, i) => parseInterval(s, `spec.dataSchema.granularitySpec.intervals[${i}]`));
  const io = task.spec.ioConfig;
  let inputSource: InputSource | undefined;
  let inputFormat: InputFormat = { type: parseSpec?.format ?? 'json' };
  if (io.inputSource !== undefined) {
    inputSource = parseWith(inputSourceSchema, io.inputSource, 'spec.ioConfig.inputSource') as InputSource;
  } else if (io.firehose) {
    const f = io.firehose;
    if (f.type === 'inline') {
      if (f.data === undefined) throw invalidArgument('spec.ioConfig.firehose.data', 'a string of input rows');
      inputSource = { type: 'inline', data: f.data };
    } else inputSource = { type: 'local', baseDir: f.baseDir, filter: f.filter };
    if (parseSpec) {
      inputFormat = {
        type: parseSpec.format,
        columns: parseSpec.columns,
        delimiter: parseSpec.delimiter,
        listDelimiter: parseSpec.listDelimiter,
        findColumnsFromHeader: parseSpec.hasHeaderRow,
        skipHeaderRows: parseSpec.skipHeaderRows,
      };
    }
  }
  if (io.inputFormat !== undefined)
    inputFormat = parseWith(inputFormatSchema, io.inputFormat, 'spec.ioConfig.inputFormat');
  if (task.type !== 'kafka' && inputSource === undefined)
    throw invalidArgument('spec.ioConfig.inputSource', 'an input source ({type: local|inline})');
  if (
    (inputFormat.type === 'csv' || inputFormat.type === 'tsv') &&
    !inputFormat.columns &&
    !inputFormat.findColumnsFromHeader
  )
    throw invalidArgument('spec.ioConfig.inputFormat.columns', 'column names, or findColumnsFromHeader: true');
  const tc = task.spec.tuningConfig;
  const transform = ds.transformSpec;
  const spec: IngestionSpec = {
    type: task.type,
    dataSchema: {
      dataSource: ds.dataSource,
      timestampSpec: { column: ts.column, format: ts.format, missingValue: ts.missingValue },
      dimensions,
      discovery: dimensions.length === 0,
      useSchemaDiscovery: dims.useSchemaDiscovery,
      dimensionExclusions: dims.dimensionExclusions,
      metrics,
      segmentGranularity,
      queryGranularity,
      rollup: gs.rollup,
      intervals,
      transforms: (transform?.transforms ?? []).map((t) => ({ name: t.name, expression: t.expression })),
      transformFilter: transform?.filter ?? undefined,
    },
    inputSource,
    inputFormat,
    appendToExisting: io.appendToExisting,
    maxRowsPerSegment:
      tc.partitionsSpec?.maxRowsPerSegment ?? tc.maxRowsPerSegment ?? tc.targetPartitionSize ?? 5_000_000,
    intermediatePersistPeriodMs: 600_000,
    maxRowsInMemory: tc.maxRowsInMemory ?? 150_000,
  };
  if (task.type === 'kafka') {
    if (!io.topic) throw invalidArgument('spec.ioConfig.topic', 'a topic name');
    spec.kafka = {
      topic: io.topic,
      useEarliestOffset: io.useEarliestOffset,
      taskDuration: io.taskDuration,
      consumerProperties: io.consumerProperties,
    };
    if (tc.intermediatePersistPeriod) {
      const m = /^PT(\d+)([SM])$/.exec(tc.intermediatePersistPeriod);
      if (m) spec.intermediatePersistPeriodMs = Number(m[1]) * (m[2] === 'S' ? 1000 : 60_000);
    }
  }
  return spec;
}
