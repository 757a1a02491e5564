/** SQL text helpers: every identifier and literal that reaches DuckDB goes through one of these. */

/** A double-quoted identifier; embedded quotes doubled. NUL is refused (DuckDB truncates at it). */
export function ident(name: string): string {
  if (name.includes('\u0000')) throw new Error(`identifier contains NUL: ${JSON.stringify(name)}`);
  return `"${name.replaceAll('"', '""')}"`;
}

/** A string literal; embedded single quotes doubled (DuckDB has no backslash escapes in '...'). */
export function lit(value: string): string {
  if (value.includes('\u0000')) throw new Error('string literal contains NUL');
  return `'${value.replaceAll("'", "''")}'`;
}

/** A numeric literal from a finite JS number or bigint. */
export function num(value: number | bigint): string {
  if (typeof value === 'bigint') return `${value}::BIGINT`;
  if (!Number.isFinite(value)) throw new Error(`not a finite number: ${value}`);
  return Number.isInteger(value) && Math.abs(value) < 2 ** 53 ? `${value}` : `${value}::DOUBLE`;
}

/** A literal for any scalar JSON value. */
export function scalar(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  if (typeof value === 'number' || typeof value === 'bigint') return num(value);
  if (typeof value === 'boolean') return value ? 'TRUE' : 'FALSE';
  return lit(String(value));
}

/** Escapes a LIKE pattern's own metacharacters so a literal substring can be matched with ESCAPE '\'. */
export function likeEscape(s: string): string {
  return s.replace(/[\\%_]/g, (m) => `\\${m}`);
}
