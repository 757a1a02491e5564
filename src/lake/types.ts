import { invalidArgument, TributaryError } from '../core/index.ts';

/** Iceberg types, in the JSON shape of the spec (Appendix C). */
export type PrimitiveType = string; // 'int', 'long', 'decimal(9,2)', 'fixed[16]', ...

export interface NestedField {
  id: number;
  name: string;
  required: boolean;
  type: IcebergType;
  doc?: string;
  'initial-default'?: unknown;
  'write-default'?: unknown;
}
export interface StructType {
  type: 'struct';
  fields: NestedField[];
}
export interface ListType {
  type: 'list';
  'element-id': number;
  element: IcebergType;
  'element-required': boolean;
}
export interface MapType {
  type: 'map';
  'key-id': number;
  key: IcebergType;
  'value-id': number;
  value: IcebergType;
  'value-required': boolean;
}
export type IcebergType = PrimitiveType | StructType | ListType | MapType;

export interface Schema {
  type: 'struct';
  'schema-id': number;
  'identifier-field-ids'?: number[];
  fields: NestedField[];
}

const PRIMITIVES = new Set([
  'boolean',
  'int',
  'long',
  'float',
  'double',
  'date',
  'time',
  'timestamp',
  'timestamptz',
  'timestamp_ns',
  'timestamptz_ns',
  'string',
  'uuid',
  'binary',
]);

export function isPrimitive(t: IcebergType): t is PrimitiveType {
  return typeof t === 'string';
}

export function parseDecimal(t: string): { precision: number; scale: number } | undefined {
  const m = /^decimal\(\s*(\d+)\s*,\s*(\d+)\s*\)$/.exec(t);
  if (!m) return undefined;
  return { precision: Number(m[1]), scale: Number(m[2]) };
}
export function parseFixed(t: string): number | undefined {
  const m = /^fixed\[\s*(\d+)\s*\]$/.exec(t);
  return m ? Number(m[1]) : undefined;
}

/** Validates a type from JSON; throws INVALID_ARGUMENT naming the path. */
export function validateType(t: unknown, path: string): IcebergType {
  if (typeof t === 'string') {
    if (PRIMITIVES.has(t) || parseDecimal(t) || parseFixed(t) !== undefined) return t;
    throw invalidArgument(path, 'an Iceberg type (int, long, string, decimal(P,S), ...)', t);
  }
  if (t === null || typeof t !== 'object') throw invalidArgument(path, 'an Iceberg type', t);
  const o = t as Record<string, unknown>;
  if (o.type === 'struct') {
    if (!Array.isArray(o.fields)) throw invalidArgument(`${path}.fields`, 'an array');
    return { type: 'struct', fields: o.fields.map((f, i) => validateField(f, `${path}.fields[${i}]`)) };
  }
  if (o.type === 'list') {
    if (typeof o['element-id'] !== 'number') throw invalidArgument(`${path}.element-id`, 'a number', o['element-id']);
    return {
      type: 'list',
      'element-id': o['element-id'],
      element: validateType(o.element, `${path}.element`),
      'element-required': o['element-required'] === true,
    };
  }
  if (o.type === 'map') {
    if (typeof o['key-id'] !== 'number') throw invalidArgument(`${path}.key-id`, 'a number', o['key-id']);
    if (typeof o['value-id'] !== 'number') throw invalidArgument(`${path}.value-id`, 'a number', o['value-id']);
    return {
      type: 'map',
      'key-id': o['key-id'],
      key: validateType(o.key, `${path}.key`),
      'value-id': o['value-id'],
      value: validateType(o.value, `${path}.value`),
      'value-required': o['value-required'] === true,
    };
  }
  throw invalidArgument(`${path}.type`, 'struct, list or map', o.type);
}

function validateField(f: unknown, path: string): NestedField {
  if (f === null || typeof f !== 'object') throw invalidArgument(path, 'a field object', f);
  const o = f as Record<string, unknown>;
  if (typeof o.id !== 'number' || !Number.isInteger(o.id)) throw invalidArgument(`${path}.id`, 'an integer', o.id);
  if (typeof o.name !== 'string' || o.name === '') throw invalidArgument(`${path}.name`, 'a non-empty string', o.name);
  const field: NestedField = {
    id: o.id,
    name: o.name,
    required: o.required === true,
    type: validateType(o.type, `${path}.type`),
  };
  if (typeof o.doc === 'string') field.doc = o.doc;
  if (o['initial-default'] !== undefined) field['initial-default'] = o['initial-default'];
  if (o['write-default'] !== undefined) field['write-default'] = o['write-default'];
  return field;
}

export function validateSchema(s: unknown, path = 'schema'): Schema {
  if (s === null || typeof s !== 'object') throw invalidArgument(path, 'a schema object', s);
  const o = s as Record<string, unknown>;
  if (o.type !== undefined && o.type !== 'struct') throw invalidArgument(`${path}.type`, '"struct"', o.type);
  if (!Array.isArray(o.fields)) throw invalidArgument(`${path}.fields`, 'an array of fields');
  const st = validateType({ type: 'struct', fields: o.fields }, path) as StructType;
  const schema: Schema = {
    type: 'struct',
    'schema-id': typeof o['schema-id'] === 'number' ? o['schema-id'] : 0,
    fields: st.fields,
  };
  if (Array.isArray(o['identifier-field-ids'])) schema['identifier-field-ids'] = o['identifier-field-ids'] as number[];
  const ids = new Set<number>();
  for (const id of allFieldIds(schema)) {
    if (ids.has(id)) throw invalidArgument(path, `unique field ids, but id ${id} appears twice`);
    ids.add(id);
  }
  const names = new Set<string>();
  for (const f of schema.fields) {
    if (names.has(f.name)) throw invalidArgument(`${path}.fields`, `unique names, but "${f.name}" appears twice`);
    names.add(f.name);
  }
  return schema;
}

/** Every field id in a type (struct fields, list elements, map keys and values). */
export function allFieldIds(t: IcebergType): number[] {
  const out: number[] = [];
  const walk = (x: IcebergType): void => {
    if (isPrimitive(x)) return;
    if (x.type === 'struct') {
      for (const f of x.fields) {
        out.push(f.id);
        walk(f.type);
      }
    } else if (x.type === 'list') {
      out.push(x['element-id']);
      walk(x.element);
    } else {
      out.push(x['key-id'], x['value-id']);
      walk(x.key);
      walk(x.value);
    }
  };
  walk(t);
  return out;
}

export function maxFieldId(s: StructType): number {
  return Math.max(0, ...allFieldIds(s));
}

/** Top-level or nested field by id (nested struct fields only, not list/map internals). */
export function findField(s: StructType, id: number): NestedField | undefined {
  for (const f of s.fields) {
    if (f.id === id) return f;
    if (!isPrimitive(f.type) && f.type.type === 'struct') {
      const inner = findField(f.type, id);
      if (inner) return inner;
    }
  }
  return undefined;
}

export function fieldByName(s: StructType, name: string): NestedField | undefined {
  const exact = s.fields.find((f) => f.name === name);
  if (exact) return exact;
  const dot = name.indexOf('.');
  if (dot > 0) {
    const head = s.fields.find((f) => f.name === name.slice(0, dot));
    if (head && !isPrimitive(head.type) && head.type.type === 'struct')
      return fieldByName(head.type, name.slice(dot + 1));
  }
  return undefined;
}

/** The DuckDB SQL type for an Iceberg type. */
export function duckType(t: IcebergType): string {
  if (isPrimitive(t)) {
    const dec = parseDecimal(t);
    if (dec) return `DECIMAL(${dec.precision},${dec.scale})`;
    if (parseFixed(t) !== undefined) return 'BLOB';
    switch (t) {
      case 'boolean':
        return 'BOOLEAN';
      case 'int':
        return 'INTEGER';
      case 'long':
        return 'BIGINT';
      case 'float':
        return 'FLOAT';
      case 'double':
        return 'DOUBLE';
      case 'date':
        return 'DATE';
      case 'time':
        return 'TIME';
      case 'timestamp':
        return 'TIMESTAMP';
      case 'timestamptz':
        return 'TIMESTAMPTZ';
      case 'timestamp_ns':
        return 'TIMESTAMP_NS';
      case 'timestamptz_ns':
        return 'TIMESTAMPTZ';
      case 'string':
        return 'VARCHAR';
      case 'uuid':
        return 'UUID';
      case 'binary':
        return 'BLOB';
      default:
        throw new TributaryError('UNSUPPORTED', `Iceberg type ${t} has no DuckDB mapping`);
    }
  }
  if (t.type === 'struct')
    return `STRUCT(${t.fields.map((f) => `${quoteIdent(f.name)} ${duckType(f.type)}`).join(', ')})`;
  if (t.type === 'list') return `${duckType(t.element)}[]`;
  return `MAP(${duckType(t.key)}, ${duckType(t.value)})`;
}

export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

export function quoteLiteral(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

/** Type promotion allowed by the spec's schema evolution rules. */
export function canPromote(from: IcebergType, to: IcebergType): boolean {
  if (!isPrimitive(from) || !isPrimitive(to)) return false;
  if (from === to) return true;
  if (from === 'int' && to === 'long') return true;
  if (from === 'float' && to === 'double') return true;
  if (from === 'date' && (to === 'timestamp' || to === 'timestamp_ns')) return true;
  const a = parseDecimal(from);
  const b = parseDecimal(to);
  return !!a && !!b && a.scale === b.scale && b.precision >= a.precision;
}

export function typeToString(t: IcebergType): string {
  if (isPrimitive(t)) return t;
  if (t.type === 'struct') return `struct<${t.fields.map((f) => `${f.name}: ${typeToString(f.type)}`).join(', ')}>`;
  if (t.type === 'list') return `list<${typeToString(t.element)}>`;
  return `map<${typeToString(t.key)}, ${typeToString(t.value)}>`;
}
