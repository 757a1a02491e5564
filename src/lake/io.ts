import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TributaryError } from '../core/index.ts';

export interface PathMapping {
  from: string;
  to: string;
}

/**
 * Maps the paths a table stores (absolute, file://, s3://, relative) to local files. Real tables
 * written elsewhere store `s3://bucket/...` or relative paths; a prefix mapping points them here.
 */
export class FileIO {
  readonly mappings: PathMapping[];
  readonly baseDir: string | undefined;

  constructor(opts: { mappings?: PathMapping[]; baseDir?: string } = {}) {
    this.mappings = [...(opts.mappings ?? [])].sort((a, b) => b.from.length - a.from.length);
    this.baseDir = opts.baseDir;
  }

  resolve(p: string): string {
    for (const m of this.mappings) {
      if (p.startsWith(m.from)) {
        const rest = p.slice(m.from.length);
        return this.resolve(path.join(m.to, decodeURIComponentSafe(rest)));
      }
    }
    if (p.startsWith('file://')) return fileURLToPath(p);
    if (p.startsWith('file:')) return p.slice(5);
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(p)) {
      throw new TributaryError('UNSUPPORTED', `path ${p}: no path mapping for this scheme (pass --path-map FROM=TO)`);
    }
    if (path.isAbsolute(p)) return p;
    return path.resolve(this.baseDir ?? process.cwd(), p);
  }

  read(p: string): Buffer {
    const local = this.resolve(p);
    try {
      return fs.readFileSync(local);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        throw new TributaryError('NOT_FOUND', `file ${p} (local ${local}) does not exist`, { cause: err });
      throw err;
    }
  }

  exists(p: string): boolean {
    return fs.existsSync(this.resolve(p));
  }

  size(p: string): number {
    return fs.statSync(this.resolve(p)).size;
  }

  /** Writes a new file durably (fsync) — data and manifests are never overwritten. */
  write(p: string, data: Buffer | string): void {
    const local = this.resolve(p);
    fs.mkdirSync(path.dirname(local), { recursive: true });
    const fd = fs.openSync(local, 'wx');
    try {
      fs.writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }

  /**
   * Atomic put-if-absent: write a temp file, then link it to the target (link refuses an existing
   * target, unlike rename). Returns false if the target already exists.
   */
  putIfAbsent(p: string, data: Buffer | string): boolean {
    const local = this.resolve(p);
    const dir = path.dirname(local);
    fs.mkdirSync(dir, { recursive: true });
    const tmp = path.join(dir, `.tmp-${randomUUID()}`);
    const fd = fs.openSync(tmp, 'wx');
    try {
      fs.writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    try {
      fs.linkSync(tmp, local);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    } finally {
      fs.unlinkSync(tmp);
    }
  }

  delete(p: string): void {
    try {
      fs.unlinkSync(this.resolve(p));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }

  /** Every file under a directory (recursive), as absolute local paths. */
  list(dir: string): string[] {
    const local = this.resolve(dir);
    if (!fs.existsSync(local)) return [];
    return (fs.readdirSync(local, { recursive: true, withFileTypes: true }) as fs.Dirent[])
      .filter((d) => d.isFile())
      .map((d) => path.join(d.parentPath, d.name));
  }
}

function decodeURIComponentSafe(s: string): string {
  return s;
}

export function parsePathMap(spec: string): PathMapping {
  const eq = spec.indexOf('=');
  if (eq <= 0)
    throw new TributaryError('INVALID_ARGUMENT', `--path-map: expected FROM=TO, got ${JSON.stringify(spec)}`, {
      field: 'path-map',
    });
  return { from: spec.slice(0, eq), to: spec.slice(eq + 1) };
}
