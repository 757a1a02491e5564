/**
 * Generates TypeScript codecs for the Kafka protocol from Kafka's message definitions
 * (`../shared/reference/kafka-messages/*.json`, relative to the repository root) into
 * `src/kafka/generated/`. Run with `npm run generate:kafka`. The output is committed; a test checks that
 * regenerating changes nothing.
 *
 * One file per message: an interface per struct, and a `write`/`read` function per struct that takes
 * the version and tests it inline (as Kafka's own generator does), so there are no per-field closures.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface VersionRange {
  lo: number;
  hi: number; // Infinity for "N+"; lo > hi when empty ("none")
}

export interface FieldSpec {
  name: string;
  jsName: string;
  type: string;
  versions: VersionRange;
  nullableVersions: VersionRange;
  taggedVersions: VersionRange;
  tag: number | null;
  /** Field-level override of the message's flexible versions (RequestHeader's ClientId is never compact). */
  flexibleVersions: VersionRange | null;
  default: string | number | boolean | undefined;
  fields: FieldSpec[] | undefined;
}

export interface StructSpec {
  name: string; // Kafka's struct name
  tsName: string;
  fields: FieldSpec[];
  /** Versions in which this struct can appear (the union over its uses). */
  versions: VersionRange;
}

export interface MessageSpec {
  name: string;
  file: string;
  kind: 'request' | 'response' | 'header' | 'data';
  apiKey: number;
  validVersions: VersionRange;
  flexibleVersions: VersionRange;
  fields: FieldSpec[];
  structs: Map<string, StructSpec>;
}

export const PRIMITIVES = new Set([
  'bool',
  'int8',
  'int16',
  'uint16',
  'int32',
  'int64',
  'float64',
  'uuid',
  'string',
  'bytes',
  'records',
]);

const EMPTY: VersionRange = { lo: 1, hi: 0 };

export function parseVersions(text: string | undefined, fallback: VersionRange = EMPTY): VersionRange {
  if (text === undefined) return fallback;
  const t = String(text).trim();
  if (t === 'none') return EMPTY;
  if (t.endsWith('+')) return { lo: Number(t.slice(0, -1)), hi: Number.POSITIVE_INFINITY };
  const dash = t.indexOf('-');
  if (dash > 0) return { lo: Number(t.slice(0, dash)), hi: Number(t.slice(dash + 1)) };
  return { lo: Number(t), hi: Number(t) };
}

export function intersect(a: VersionRange, b: VersionRange): VersionRange {
  return { lo: Math.max(a.lo, b.lo), hi: Math.min(a.hi, b.hi) };
}

export function isEmpty(r: VersionRange): boolean {
  return r.lo > r.hi;
}

export function contains(r: VersionRange, v: number): boolean {
  return v >= r.lo && v <= r.hi;
}

function stripComments(text: string): string {
  // Kafka's JSON allows `//` line comments; none of the definitions put `//` inside a string.
  return text
    .split('\n')
    .map((line) => {
      const i = line.indexOf('//');
      if (i < 0) return line;
      const before = line.slice(0, i);
      const quotes = (before.match(/"/g) ?? []).length;
      return quotes % 2 === 0 ? before : line;
    })
    .join('\n');
}

function jsName(name: string): string {
  return name.charAt(0).toLowerCase() + name.slice(1);
}

interface RawField {
  name: string;
  type: string;
  versions?: string;
  nullableVersions?: string;
  taggedVersions?: string;
  tag?: number | string;
  flexibleVersions?: string;
  default?: string | number | boolean;
  fields?: RawField[];
}

function toField(raw: RawField): FieldSpec {
  return {
    name: raw.name,
    jsName: jsName(raw.name),
    type: raw.type.trim(),
    versions: parseVersions(raw.versions),
    nullableVersions: parseVersions(raw.nullableVersions),
    taggedVersions: parseVersions(raw.taggedVersions),
    tag: raw.tag === undefined ? null : Number(raw.tag),
    flexibleVersions: raw.flexibleVersions === undefined ? null : parseVersions(raw.flexibleVersions),
    default: raw.default,
    fields: raw.fields?.map(toField),
  };
}

export function elementType(type: string): string | null {
  return type.startsWith('[]') ? type.slice(2) : null;
}

export function structName(type: string): string | null {
  const t = elementType(type) ?? type;
  return PRIMITIVES.has(t) ? null : t;
}

export function loadMessages(dir: string): MessageSpec[] {
  const files = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort();
  const messages: MessageSpec[] = [];
  for (const file of files) {
    const raw = JSON.parse(stripComments(fs.readFileSync(path.join(dir, file), 'utf8')));
    const validVersions = parseVersions(raw.validVersions);
    const spec: MessageSpec = {
      name: raw.name,
      file,
      kind: raw.type,
      apiKey: raw.apiKey ?? -1,
      validVersions,
      flexibleVersions: parseVersions(raw.flexibleVersions),
      fields: (raw.fields as RawField[]).map(toField),
      structs: new Map(),
    };
    for (const common of (raw.commonStructs ?? []) as RawField[]) {
      addStruct(spec, common.name, (common.fields ?? []).map(toField), EMPTY);
    }
    collectStructs(spec, spec.fields, validVersions);
    messages.push(spec);
  }
  return messages;
}

function addStruct(spec: MessageSpec, name: string, fields: FieldSpec[], versions: VersionRange): void {
  const existing = spec.structs.get(name);
  if (existing !== undefined) {
    if (fields.length > 0 && JSON.stringify(existing.fields) !== JSON.stringify(fields)) {
      throw new Error(`${spec.file}: struct ${name} is defined twice with different fields`);
    }
    existing.versions = union(existing.versions, versions);
    return;
  }
  // struct names usually repeat the message name (MetadataRequestTopic): keep those as they are
  const taken = (n: string) => n === spec.name || [...spec.structs.values()].some((s) => s.tsName === n);
  let tsName = name.startsWith(spec.name) ? name : `${spec.name}${name}`;
  if (taken(tsName)) tsName = `${spec.name}${name}`;
  for (let i = 2; taken(tsName); i++) tsName = `${spec.name}${name}${i}`;
  spec.structs.set(name, { name, tsName, fields, versions });
}

function union(a: VersionRange, b: VersionRange): VersionRange {
  if (isEmpty(a)) return b;
  if (isEmpty(b)) return a;
  return { lo: Math.min(a.lo, b.lo), hi: Math.max(a.hi, b.hi) };
}

function collectStructs(spec: MessageSpec, fields: FieldSpec[], outer: VersionRange): void {
  for (const f of fields) {
    const s = structName(f.type);
    if (s === null) continue;
    const range = intersect(outer, f.versions);
    if (f.fields !== undefined) addStruct(spec, s, f.fields, range);
    else if (spec.structs.has(s)) addStruct(spec, s, [], range);
    else throw new Error(`${spec.file}: field ${f.name} refers to unknown struct ${s}`);
    const struct = spec.structs.get(s)!;
    collectStructs(spec, struct.fields, range);
  }
}

// ---- code generation ----

/** A JS condition for "v is in r", simplified under the knowledge that v is in `outer`. */
function cond(r: VersionRange, outer: VersionRange): string {
  const x = intersect(r, outer);
  if (isEmpty(x)) return 'false';
  const parts: string[] = [];
  if (x.lo > outer.lo) parts.push(`v >= ${x.lo}`);
  if (x.hi < outer.hi) parts.push(`v <= ${x.hi}`);
  return parts.length === 0 ? 'true' : parts.join(' && ');
}

function tsType(spec: MessageSpec, type: string): string {
  const el = elementType(type);
  if (el !== null) return `${tsType(spec, el)}[]`;
  switch (type) {
    case 'bool':
      return 'boolean';
    case 'int8':
    case 'int16':
    case 'uint16':
    case 'int32':
    case 'float64':
      return 'number';
    case 'int64':
      return 'bigint';
    case 'uuid':
    case 'string':
      return 'string';
    case 'bytes':
    case 'records':
      return 'Buffer';
    default:
      return spec.structs.get(type)!.tsName;
  }
}

function canBeNull(f: FieldSpec, outer: VersionRange): boolean {
  return !isEmpty(intersect(intersect(f.nullableVersions, f.versions), outer));
}

/** The default value of a field as a TypeScript expression. */
export function defaultExpr(spec: MessageSpec, f: FieldSpec, outer: VersionRange): string {
  const d = f.default;
  const nullable = canBeNull(f, outer);
  if (d === 'null' && nullable) return 'null';
  const el = elementType(f.type);
  if (el !== null) return '[]';
  switch (f.type) {
    case 'bool':
      return d === true || d === 'true' ? 'true' : 'false';
    case 'int8':
    case 'int16':
    case 'uint16':
    case 'int32':
    case 'float64':
      return d === undefined || d === '' ? '0' : String(Number(d));
    case 'int64':
      return d === undefined || d === '' ? '0n' : `${BigInt(Number(d))}n`;
    case 'uuid':
      return 'ZERO_UUID';
    case 'string':
      return JSON.stringify(typeof d === 'string' && d !== 'null' ? d : '');
    case 'bytes':
      return 'EMPTY_BUFFER';
    case 'records':
      return nullable ? 'null' : 'EMPTY_BUFFER';
    default:
      return nullable ? 'null' : `default${spec.structs.get(f.type)!.tsName}()`;
  }
}

interface Ctx {
  spec: MessageSpec;
  lines: string[];
}

function fieldFlex(f: FieldSpec): string | null {
  // A field-level flexibleVersions ("none") overrides the message's.
  if (f.flexibleVersions === null) return null;
  return isEmpty(f.flexibleVersions) ? 'false' : null;
}

/** Emits code writing expression `e` of (element) type `type`. */
function emitWrite(
  ctx: Ctx,
  spec: MessageSpec,
  type: string,
  e: string,
  nullCond: string,
  flex: string,
  label: string,
  indent: string,
): void {
  const L = ctx.lines;
  const lab = JSON.stringify(label);
  const el = elementType(type);
  if (el !== null) {
    L.push(`${indent}w.arrayLength(${e}, ${flex}, ${nullCond}, ${lab});`);
    const guard = nullCond === 'false' ? '' : `if (${e} !== null) `;
    L.push(`${indent}${guard}for (const item of ${e}) {`);
    emitWrite(ctx, spec, el, 'item', 'false', flex, `${label}[]`, `${indent}  `);
    L.push(`${indent}}`);
    return;
  }
  switch (type) {
    case 'bool':
    case 'int8':
    case 'int16':
    case 'uint16':
    case 'int32':
    case 'int64':
    case 'float64':
      L.push(`${indent}w.${type}(${e});`);
      return;
    case 'uuid':
      L.push(`${indent}w.uuid(${e}, ${lab});`);
      return;
    case 'string':
      if (nullCond === 'false') L.push(`${indent}w.string(${e}, ${flex}, ${lab});`);
      else L.push(`${indent}w.nullableString(${e}, ${flex}, ${nullCond}, ${lab});`);
      return;
    case 'bytes':
    case 'records':
      if (nullCond === 'false') L.push(`${indent}w.bytes(${e}, ${flex}, ${lab});`);
      else L.push(`${indent}w.nullableBytes(${e}, ${flex}, ${nullCond}, ${lab});`);
      return;
    default: {
      const s = spec.structs.get(type)!;
      if (nullCond === 'false') {
        L.push(`${indent}write${s.tsName}(w, v, ${e});`);
      } else {
        L.push(`${indent}if (${e} === null) {`);
        L.push(
          `${indent}  if (!(${nullCond})) throw new TributaryError('INVALID_ARGUMENT', ${JSON.stringify(`${label}: expected a struct, got null`)});`,
        );
        L.push(`${indent}  w.int8(-1);`);
        L.push(`${indent}} else {`);
        L.push(`${indent}  if (${nullCond}) w.int8(1);`);
        L.push(`${indent}  write${s.tsName}(w, v, ${e});`);
        L.push(`${indent}}`);
      }
    }
  }
}

/** Emits code assigning a decoded value of (element) type `type` to `target`. */
function emitRead(
  ctx: Ctx,
  spec: MessageSpec,
  type: string,
  target: string,
  nullCond: string,
  flex: string,
  label: string,
  indent: string,
  depth: number,
): void {
  const L = ctx.lines;
  const lab = JSON.stringify(label);
  const el = elementType(type);
  if (el !== null) {
    const n = `n${depth}`;
    const a = `a${depth}`;
    const i = `i${depth}`;
    L.push(`${indent}{`);
    L.push(`${indent}  const ${n} = r.arrayLength(${flex}, ${nullCond}, ${lab});`);
    L.push(`${indent}  if (${n} < 0) ${target} = null as never;`);
    L.push(`${indent}  else {`);
    const e = `e${depth}`;
    L.push(`${indent}    const ${a}: ${tsType(spec, el)}[] = [];`);
    L.push(`${indent}    for (let ${i} = 0; ${i} < ${n}; ${i}++) {`);
    L.push(`${indent}      let ${e}: ${tsType(spec, el)};`);
    emitRead(ctx, spec, el, e, 'false', flex, `${label}[]`, `${indent}      `, depth + 1);
    L.push(`${indent}      ${a}.push(${e});`);
    L.push(`${indent}    }`);
    L.push(`${indent}    ${target} = ${a};`);
    L.push(`${indent}  }`);
    L.push(`${indent}}`);
    return;
  }
  switch (type) {
    case 'bool':
    case 'int8':
    case 'int16':
    case 'uint16':
    case 'int32':
    case 'int64':
    case 'float64':
    case 'uuid':
      L.push(`${indent}${target} = r.${type}(${lab});`);
      return;
    case 'string':
      if (nullCond === 'false') L.push(`${indent}${target} = r.string(${flex}, ${lab});`);
      else L.push(`${indent}${target} = r.nullableString(${flex}, ${nullCond}, ${lab}) as never;`);
      return;
    case 'bytes':
    case 'records':
      if (nullCond === 'false') L.push(`${indent}${target} = r.bytes(${flex}, ${lab});`);
      else L.push(`${indent}${target} = r.nullableBytes(${flex}, ${nullCond}, ${lab}) as never;`);
      return;
    default: {
      const s = spec.structs.get(type)!;
      if (nullCond === 'false') {
        L.push(`${indent}${target} = read${s.tsName}(r, v);`);
      } else {
        L.push(`${indent}if ((${nullCond}) && r.int8(${lab}) < 0) ${target} = null as never;`);
        L.push(`${indent}else ${target} = read${s.tsName}(r, v);`);
      }
    }
  }
}

/** True when a tagged field's value differs from its default, so it must be written. */
function taggedPresent(spec: MessageSpec, f: FieldSpec, e: string, outer: VersionRange): string {
  const d = defaultExpr(spec, f, outer);
  if (elementType(f.type) !== null) return d === 'null' ? `${e} !== null` : `${e} !== null && ${e}.length > 0`;
  if (f.type === 'bytes' || f.type === 'records') {
    return d === 'null' ? `${e} !== null` : `${e} !== null && ${e}.length > 0`;
  }
  if (structName(f.type) !== null) return `${e} !== null`;
  return `${e} !== ${d}`;
}

function isOptional(f: FieldSpec, outer: VersionRange): boolean {
  const present = intersect(f.versions, outer);
  if (present.lo > outer.lo || present.hi < outer.hi) return true;
  if (!isEmpty(intersect(f.taggedVersions, outer))) return true;
  return f.default !== undefined;
}

/** Versions in which a field is written among the regular (untagged) fields. */
function regularCond(f: FieldSpec, outer: VersionRange): string {
  const present = intersect(f.versions, outer);
  const inVersion = cond(f.versions, outer);
  if (f.tag === null || isEmpty(intersect(f.taggedVersions, present))) return inVersion;
  const tagged = intersect(f.taggedVersions, present);
  if (tagged.lo <= present.lo && tagged.hi >= present.hi) return 'false';
  return `(${inVersion}) && !(${cond(f.taggedVersions, outer)})`;
}

function structFlexCond(spec: MessageSpec, outer: VersionRange): string {
  return cond(spec.flexibleVersions, outer);
}

function emitStruct(ctx: Ctx, s: StructSpec): void {
  const { spec } = ctx;
  const L = ctx.lines;
  const outer = intersect(s.versions, spec.validVersions);
  // interface
  L.push(`export interface ${s.tsName} {`);
  for (const f of s.fields) {
    if (isEmpty(intersect(f.versions, outer))) continue;
    const opt = isOptional(f, outer) ? '?' : '';
    const nul = canBeNull(f, outer) ? ' | null' : '';
    L.push(`  ${f.jsName}${opt}: ${tsType(spec, f.type)}${nul};`);
  }
  L.push('}');
  L.push('');
  const live = s.fields.filter((f) => !isEmpty(intersect(f.versions, outer)));
  // default instance
  L.push(`export function default${s.tsName}(): ${s.tsName} {`);
  L.push(`  return {`);
  for (const f of live) L.push(`    ${f.jsName}: ${defaultExpr(spec, f, outer)},`);
  L.push('  };');
  L.push('}');
  L.push('');
  const flexAll = structFlexCond(spec, outer);
  const regular = live.filter((f) => cond(f.versions, outer) !== 'false');
  const tagged = live
    .filter((f) => f.tag !== null && cond(f.taggedVersions, outer) !== 'false')
    .sort((a, b) => a.tag! - b.tag!);
  const prefix = s.name === spec.name ? '' : `${s.name}.`;

  // writer
  L.push(`export function write${s.tsName}(w: Writer, v: number, x: ${s.tsName}): void {`);
  if (flexAll !== 'false' && flexAll !== 'true') L.push(`  const flex = ${flexAll};`);
  const flexVar = flexAll === 'false' || flexAll === 'true' ? flexAll : 'flex';
  for (const f of regular) {
    const condition = regularCond(f, outer);
    if (condition === 'false') continue;
    const opt = isOptional(f, outer);
    const e = opt ? `(x.${f.jsName} === undefined ? ${defaultExpr(spec, f, outer)} : x.${f.jsName})` : `x.${f.jsName}`;
    const nullCond = canBeNull(f, outer) ? cond(f.nullableVersions, intersect(f.versions, outer)) : 'false';
    const flex = fieldFlex(f) ?? flexVar;
    const indent = condition === 'true' ? '  ' : '    ';
    if (condition !== 'true') L.push(`  if (${condition}) {`);
    const local = `f_${f.jsName}`;
    if (opt || elementType(f.type) !== null || structName(f.type) !== null) {
      L.push(`${indent}const ${local} = ${e};`);
      emitWrite(ctx, spec, f.type, local, nullCond, flex, `${prefix}${f.jsName}`, indent);
    } else {
      emitWrite(ctx, spec, f.type, e, nullCond, flex, `${prefix}${f.jsName}`, indent);
    }
    if (condition !== 'true') L.push('  }');
  }
  if (flexVar !== 'false') {
    const indent = flexVar === 'true' ? '  ' : '    ';
    if (flexVar !== 'true') L.push(`  if (${flexVar}) {`);
    if (tagged.length === 0) {
      L.push(`${indent}w.uvarint(0);`);
    } else {
      L.push(`${indent}let tags = 0;`);
      for (const f of tagged) {
        const local = `t_${f.jsName}`;
        // an unset tagged struct is not written (Kafka writes it only when it differs from the default)
        const isStruct = elementType(f.type) === null && structName(f.type) !== null;
        L.push(
          isStruct
            ? `${indent}const ${local} = x.${f.jsName} === undefined ? null : x.${f.jsName};`
            : `${indent}const ${local} = x.${f.jsName} === undefined ? ${defaultExpr(spec, f, outer)} : x.${f.jsName};`,
        );
        const tc = cond(f.taggedVersions, outer);
        L.push(
          `${indent}const has_${f.jsName} = ${tc === 'true' ? '' : `(${tc}) && `}${taggedPresent(spec, f, local, outer)};`,
        );
        L.push(`${indent}if (has_${f.jsName}) tags++;`);
      }
      L.push(`${indent}w.uvarint(tags);`);
      for (const f of tagged) {
        const local = `t_${f.jsName}`;
        const nullCond = canBeNull(f, outer) ? cond(f.nullableVersions, outer) : 'false';
        L.push(`${indent}if (has_${f.jsName}) {`);
        L.push(`${indent}  const tw = new Writer(64);`);
        // tagged values are encoded into a sub-writer (their size prefix comes first)
        const sub: Ctx = { spec, lines: [] };
        emitWrite(sub, spec, f.type, local, nullCond, 'true', `${prefix}${f.jsName}`, `${indent}  `);
        for (const line of sub.lines) L.push(line.replace(/\bw\./g, 'tw.').replace(/\(w, v,/g, '(tw, v,'));
        L.push(`${indent}  w.uvarint(${f.tag});`);
        L.push(`${indent}  w.uvarint(tw.length);`);
        L.push(`${indent}  w.raw(tw.toBuffer());`);
        L.push(`${indent}}`);
      }
    }
    if (flexVar !== 'true') L.push('  }');
  }
  L.push('}');
  L.push('');

  // reader
  L.push(`export function read${s.tsName}(r: Reader, v: number): ${s.tsName} {`);
  if (flexAll !== 'false' && flexAll !== 'true') L.push(`  const flex = ${flexAll};`);
  for (const f of live) {
    L.push(
      `  let f_${f.jsName}: ${tsType(spec, f.type)}${canBeNull(f, outer) ? ' | null' : ''} = ${defaultExpr(spec, f, outer)};`,
    );
  }
  for (const f of regular) {
    const condition = regularCond(f, outer);
    if (condition === 'false') continue;
    const nullCond = canBeNull(f, outer) ? cond(f.nullableVersions, intersect(f.versions, outer)) : 'false';
    const flex = fieldFlex(f) ?? flexVar;
    const indent = condition === 'true' ? '  ' : '    ';
    if (condition !== 'true') L.push(`  if (${condition}) {`);
    emitRead(ctx, spec, f.type, `f_${f.jsName}`, nullCond, flex, `${prefix}${f.jsName}`, indent, 0);
    if (condition !== 'true') L.push('  }');
  }
  if (flexVar !== 'false') {
    const indent = flexVar === 'true' ? '  ' : '    ';
    if (flexVar !== 'true') L.push(`  if (${flexVar}) {`);
    if (tagged.length === 0) {
      L.push(`${indent}r.skipTaggedFields(${JSON.stringify(`${prefix}_tagged_fields`)});`);
    } else {
      const lab = JSON.stringify(`${prefix}_tagged_fields`);
      L.push(`${indent}const tags = r.uvarint(${lab});`);
      L.push(`${indent}for (let t = 0; t < tags; t++) {`);
      L.push(`${indent}  const tag = r.uvarint(${lab});`);
      L.push(`${indent}  const size = r.uvarint(${lab});`);
      L.push(`${indent}  const end = r.limit(size, ${lab});`);
      L.push(`${indent}  const savedEnd = r.end;`);
      L.push(`${indent}  r.end = end;`);
      L.push(`${indent}  switch (tag) {`);
      for (const f of tagged) {
        const nullCond = canBeNull(f, outer) ? cond(f.nullableVersions, outer) : 'false';
        const tc = cond(f.taggedVersions, outer);
        L.push(`${indent}    case ${f.tag}:`);
        const inner = tc === 'true' ? `${indent}      ` : `${indent}        `;
        if (tc !== 'true') L.push(`${indent}      if (${tc}) {`);
        emitRead(ctx, spec, f.type, `f_${f.jsName}`, nullCond, 'true', `${prefix}${f.jsName}`, inner, 0);
        if (tc !== 'true') L.push(`${indent}      }`);
        L.push(`${indent}      break;`);
      }
      L.push(`${indent}  }`);
      L.push(`${indent}  r.end = savedEnd;`);
      L.push(`${indent}  r.offset = end;`);
      L.push(`${indent}}`);
    }
    if (flexVar !== 'true') L.push('  }');
  }
  L.push('  return {');
  for (const f of live) L.push(`    ${f.jsName}: f_${f.jsName},`);
  L.push('  };');
  L.push('}');
  L.push('');
}

export function kebab(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase();
}

export function generateMessage(spec: MessageSpec): string {
  const ctx: Ctx = { spec, lines: [] };
  const L = ctx.lines;
  L.push(`// Generated by scripts/generate-kafka-codecs.ts from ${spec.file}. Do not edit.`);
  const headerAt = L.length;
  const top: StructSpec = { name: spec.name, tsName: spec.name, fields: spec.fields, versions: spec.validVersions };
  emitStruct(ctx, top);
  for (const s of spec.structs.values()) {
    if (isEmpty(intersect(s.versions, spec.validVersions))) continue;
    emitStruct(ctx, s);
  }
  const { lo, hi } = spec.validVersions;
  const flexFrom = isEmpty(spec.flexibleVersions) ? -1 : spec.flexibleVersions.lo;
  L.push(`export const ${spec.name}Codec: MessageCodec<${spec.name}> = {`);
  L.push(`  name: ${JSON.stringify(spec.name)},`);
  L.push(`  apiKey: ${spec.apiKey},`);
  L.push(`  minVersion: ${lo},`);
  L.push(`  maxVersion: ${hi},`);
  L.push(`  flexibleFrom: ${flexFrom},`);
  L.push(`  write(w: Writer, version: number, value: ${spec.name}): void {`);
  L.push(
    `    if (!(version >= ${lo} && version <= ${hi})) throw unsupportedVersion(${JSON.stringify(spec.name)}, version, ${lo}, ${hi});`,
  );
  L.push(`    write${spec.name}(w, version, value);`);
  L.push('  },');
  L.push(`  encode(version: number, value: ${spec.name}): Buffer {`);
  L.push('    const w = new Writer();');
  L.push('    this.write(w, version, value);');
  L.push('    return w.toBuffer();');
  L.push('  },');
  L.push(`  decode(version: number, r: Reader): ${spec.name} {`);
  L.push(
    `    if (!(version >= ${lo} && version <= ${hi})) throw unsupportedVersion(${JSON.stringify(spec.name)}, version, ${lo}, ${hi});`,
  );
  L.push(`    return read${spec.name}(r, version);`);
  L.push('  },');
  L.push('};');
  L.push('');
  const body = L.slice(headerAt).join('\n');
  const imports: string[] = [];
  if (body.includes('TributaryError')) imports.push(`import { TributaryError } from '../../core/index.ts';`);
  const wire = ['EMPTY_BUFFER', 'type MessageCodec', 'Reader', 'unsupportedVersion', 'Writer', 'ZERO_UUID'].filter(
    (n) => body.includes(n.replace('type ', '')),
  );
  imports.push(`import { ${wire.join(', ')} } from '../wire.ts';`);
  L.splice(headerAt, 0, ...imports, '');
  return L.join('\n');
}

export function generateIndex(messages: MessageSpec[]): string {
  const L: string[] = [];
  L.push('// Generated by scripts/generate-kafka-codecs.ts. Do not edit.');
  for (const m of messages) L.push(`export * from './${kebab(m.name)}.ts';`);
  const byKey = new Map<number, { request?: MessageSpec; response?: MessageSpec }>();
  for (const m of messages) {
    if (m.kind !== 'request' && m.kind !== 'response') continue;
    const entry = byKey.get(m.apiKey) ?? {};
    entry[m.kind] = m;
    byKey.set(m.apiKey, entry);
  }
  for (const m of messages) {
    if (m.kind === 'request' || m.kind === 'response') {
      L.push(`import { ${m.name}Codec } from './${kebab(m.name)}.ts';`);
    }
  }
  L.push(`import type { MessageCodec } from '../wire.ts';`);
  L.push('');
  L.push('export interface ApiDefinition {');
  L.push('  apiKey: number;');
  L.push('  name: string;');
  L.push('  minVersion: number;');
  L.push('  maxVersion: number;');
  L.push('  /** First flexible version, or -1. */');
  L.push('  flexibleFrom: number;');
  L.push('  request: MessageCodec<never>;');
  L.push('  response: MessageCodec<never>;');
  L.push('}');
  L.push('');
  L.push('/** Every API by key. */');
  L.push('export const APIS: ReadonlyMap<number, ApiDefinition> = new Map<number, ApiDefinition>([');
  for (const [key, { request, response }] of [...byKey.entries()].sort((a, b) => a[0] - b[0])) {
    if (request === undefined || response === undefined) continue;
    const flex = isEmpty(request.flexibleVersions) ? -1 : request.flexibleVersions.lo;
    const name = request.name.replace(/Request$/, '');
    L.push(
      `  [${key}, { apiKey: ${key}, name: ${JSON.stringify(name)}, minVersion: ${request.validVersions.lo}, maxVersion: ${request.validVersions.hi}, flexibleFrom: ${flex}, request: ${request.name}Codec as MessageCodec<never>, response: ${response.name}Codec as MessageCodec<never> }],`,
    );
  }
  L.push(']);');
  L.push('');
  return L.join('\n');
}

export function generate(referenceDir: string, outDir: string): string[] {
  const messages = loadMessages(referenceDir);
  fs.mkdirSync(outDir, { recursive: true });
  const written: string[] = [];
  for (const m of messages) {
    const file = path.join(outDir, `${kebab(m.name)}.ts`);
    fs.writeFileSync(file, generateMessage(m));
    written.push(file);
  }
  const index = path.join(outDir, 'index.ts');
  fs.writeFileSync(index, generateIndex(messages));
  written.push(index);
  return written;
}

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const REFERENCE_DIR = path.resolve(REPO_ROOT, '../shared/reference/kafka-messages');
export const OUTPUT_DIR = path.join(REPO_ROOT, 'src/kafka/generated');

if (import.meta.main) {
  const out = process.argv[2] ?? OUTPUT_DIR;
  if (fs.existsSync(out)) {
    for (const f of fs.readdirSync(out)) if (f.endsWith('.ts')) fs.rmSync(path.join(out, f));
  }
  const files = generate(REFERENCE_DIR, out);
  console.log(`wrote ${files.length} files to ${path.relative(process.cwd(), out) || '.'}`);
}
