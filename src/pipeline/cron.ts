import { TributaryError } from '../core/index.ts';
import type { PipelineInput, PipelineSpec } from './spec.ts';

interface CronFields {
  minute: Set<number>;
  hour: Set<number>;
  dom: Set<number>;
  month: Set<number>;
  dow: Set<number>;
  domAny: boolean;
  dowAny: boolean;
}

const ALIASES: Record<string, string> = {
  '@hourly': '0 * * * *',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@weekly': '0 0 * * 0',
  '@monthly': '0 0 1 * *',
  '@yearly': '0 0 1 1 *',
};

function field(text: string, min: number, max: number, name: string, expr: string): Set<number> {
  const out = new Set<number>();
  for (const part of text.split(',')) {
    const m = /^(\*|(\d+)(?:-(\d+))?)(?:\/(\d+))?$/.exec(part);
    if (!m)
      throw new TributaryError(
        'INVALID_ARGUMENT',
        `schedule: ${name} field "${part}" of "${expr}" is not a number, range, list or step`,
        { field: 'schedule' },
      );
    const lo = m[1] === '*' ? min : Number(m[2]);
    const hi = m[1] === '*' ? max : m[3] !== undefined ? Number(m[3]) : m[4] !== undefined ? max : lo;
    const step = m[4] !== undefined ? Number(m[4]) : 1;
    if (lo < min || hi > max || lo > hi || step < 1)
      throw new TributaryError(
        'INVALID_ARGUMENT',
        `schedule: ${name} field "${part}" of "${expr}" must be within ${min}-${max}`,
        { field: 'schedule' },
      );
    for (let v = lo; v <= hi; v += step) out.add(name === 'day-of-week' && v === 7 ? 0 : v);
  }
  return out;
}

/** Parses a 5-field cron expression (minute hour day-of-month month day-of-week, UTC) or an @alias. */
export function parseCron(expr: string): CronFields {
  const text = ALIASES[expr.trim()] ?? expr.trim();
  const parts = text.split(/\s+/);
  if (parts.length !== 5)
    throw new TributaryError(
      'INVALID_ARGUMENT',
      `schedule: expected 5 cron fields (minute hour day month weekday), got ${parts.length} in "${expr}"`,
      {
        field: 'schedule',
      },
    );
  return {
    minute: field(parts[0]!, 0, 59, 'minute', expr),
    hour: field(parts[1]!, 0, 23, 'hour', expr),
    dom: field(parts[2]!, 1, 31, 'day-of-month', expr),
    month: field(parts[3]!, 1, 12, 'month', expr),
    dow: field(parts[4]!, 0, 7, 'day-of-week', expr),
    domAny: parts[2] === '*',
    dowAny: parts[4] === '*',
  };
}

function matches(f: CronFields, d: Date): boolean {
  if (!f.minute.has(d.getUTCMinutes()) || !f.hour.has(d.getUTCHours()) || !f.month.has(d.getUTCMonth() + 1))
    return false;
  const dom = f.dom.has(d.getUTCDate());
  const dow = f.dow.has(d.getUTCDay());
  // cron: when both day fields are restricted, either may match
  if (!f.domAny && !f.dowAny) return dom || dow;
  return dom && dow;
}

/** The first time strictly after `after` that the expression fires (UTC, minute resolution). */
export function nextCronTime(expr: string, after: Date): Date {
  const f = parseCron(expr);
  const d = new Date(after.getTime());
  d.setUTCSeconds(0, 0);
  d.setUTCMinutes(d.getUTCMinutes() + 1);
  for (let i = 0; i < 4 * 366 * 24 * 60; i++) {
    if (matches(f, d)) return d;
    d.setUTCMinutes(d.getUTCMinutes() + 1);
  }
  throw new TributaryError('INVALID_ARGUMENT', `schedule: "${expr}" never fires`, { field: 'schedule' });
}

/** The partition a scheduled fire time runs: its UTC day, or hour for sub-daily schedules. */
export function partitionForFire(expr: string, fire: Date): string {
  const f = parseCron(expr);
  return f.hour.size > 1 || f.minute.size > 1 ? fire.toISOString().slice(0, 13) : fire.toISOString().slice(0, 10);
}

export interface ScheduleEntry {
  spec: PipelineSpec | PipelineInput;
  cron: string;
  next: Date;
}

/**
 * Fires pipeline runs on cron schedules. Each fire runs the pipeline with `partition` set to the fire's
 * day (or hour), so a fire repeated after a restart is the same idempotent run.
 */
export class Scheduler {
  private readonly entries: ScheduleEntry[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly runFn: (spec: PipelineSpec | PipelineInput, partition: string) => Promise<unknown>;
  readonly errors: Error[] = [];

  constructor(runFn: (spec: PipelineSpec | PipelineInput, partition: string) => Promise<unknown>) {
    this.runFn = runFn;
  }

  add(spec: PipelineSpec | PipelineInput, cron: string, now: Date = new Date()): ScheduleEntry {
    const e = { spec, cron, next: nextCronTime(cron, now) };
    this.entries.push(e);
    return e;
  }

  /** Runs every entry due at `now` (once per missed fire is not replayed: backfill does that). */
  async tick(now: Date = new Date()): Promise<string[]> {
    const fired: string[] = [];
    for (const e of this.entries) {
      if (e.next > now) continue;
      const partition = partitionForFire(e.cron, e.next);
      e.next = nextCronTime(e.cron, now);
      fired.push(partition);
      await this.runFn(e.spec, partition).catch((err: Error) => {
        this.errors.push(err);
      });
    }
    return fired;
  }

  start(): void {
    const loop = (): void => {
      const soonest = Math.min(...this.entries.map((e) => e.next.getTime()));
      const wait = Math.max(0, Math.min(Number.isFinite(soonest) ? soonest - Date.now() : 60_000, 60_000));
      this.timer = setTimeout(() => {
        void this.tick().finally(loop);
      }, wait);
      this.timer.unref?.();
    };
    loop();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
