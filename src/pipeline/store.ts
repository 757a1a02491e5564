import * as fs from 'node:fs';
import * as path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { notFound } from '../core/index.ts';

export type RunStatus = 'running' | 'succeeded' | 'failed';
export type StageStatus = 'pending' | 'running' | 'succeeded' | 'failed' | 'skipped' | 'cancelled';

export interface RunRecord {
  id: string;
  pipeline: string;
  runKey: string;
  params: Record<string, string>;
  partition: string | null;
  status: RunStatus;
  /** The spec as it was when the run was created (JSON; functions referenced by name). */
  spec: unknown;
  /** Per-stage timeout, retry and failure policy, fixed when the run was created. */
  policy: Record<string, StagePolicy>;
  createdAt: string;
  startedAt: string | null;
  endedAt: string | null;
  attempts: number;
  error: string | null;
  qualityScore: number | null;
}

export interface StagePolicy {
  timeoutMs: number | null;
  retry: { maxAttempts: number; initialDelayMs: number; maxDelayMs: number; multiplier: number; jitter: number };
  onFailure: 'fail' | 'continue' | 'skip-downstream';
}

export interface StageRecord {
  runId: string;
  stageId: string;
  type: string;
  status: StageStatus;
  attempts: number;
  startedAt: string | null;
  endedAt: string | null;
  rows: number | null;
  error: string | null;
  details: unknown;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS runs (
  id TEXT PRIMARY KEY, pipeline TEXT NOT NULL, run_key TEXT NOT NULL, params TEXT NOT NULL, partition TEXT,
  status TEXT NOT NULL, spec TEXT NOT NULL, policy TEXT NOT NULL, created_at TEXT NOT NULL, started_at TEXT,
  ended_at TEXT, attempts INTEGER NOT NULL DEFAULT 0, error TEXT, quality_score REAL);
CREATE INDEX IF NOT EXISTS runs_key ON runs(run_key, created_at);
CREATE INDEX IF NOT EXISTS runs_pipeline ON runs(pipeline, created_at);
CREATE TABLE IF NOT EXISTS stages (
  run_id TEXT NOT NULL, stage_id TEXT NOT NULL, type TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL,
  started_at TEXT, ended_at TEXT, rows INTEGER, error TEXT, details TEXT, PRIMARY KEY (run_id, stage_id));
CREATE TABLE IF NOT EXISTS quality (
  run_id TEXT NOT NULL, stage_id TEXT NOT NULL, dataset TEXT NOT NULL, score REAL NOT NULL, report TEXT NOT NULL,
  PRIMARY KEY (run_id, stage_id));
CREATE TABLE IF NOT EXISTS lineage_events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, event_type TEXT NOT NULL, event TEXT NOT NULL);
`;

/** Run history, stage results, quality reports and lineage events in SQLite (node:sqlite). */
export class RunStore {
  readonly db: DatabaseSync;

  constructor(file: string) {
    if (file !== ':memory:') fs.mkdirSync(path.dirname(file), { recursive: true });
    this.db = new DatabaseSync(file);
    this.db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;');
    this.db.exec(SCHEMA);
  }

  close(): void {
    if (this.db.isOpen) this.db.close();
  }

  createRun(r: Omit<RunRecord, 'startedAt' | 'endedAt' | 'attempts' | 'error' | 'qualityScore' | 'status'>): RunRecord {
    this.db
      .prepare(
        'INSERT INTO runs (id, pipeline, run_key, params, partition, status, spec, policy, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
      )
      .run(
        r.id,
        r.pipeline,
        r.runKey,
        JSON.stringify(r.params),
        r.partition,
        'running',
        JSON.stringify(r.spec),
        JSON.stringify(r.policy),
        r.createdAt,
      );
    return this.getRun(r.id);
  }

  private toRun(row: Record<string, unknown>): RunRecord {
    return {
      id: String(row.id),
      pipeline: String(row.pipeline),
      runKey: String(row.run_key),
      params: JSON.parse(String(row.params)),
      partition: (row.partition as string | null) ?? null,
      status: row.status as RunStatus,
      spec: JSON.parse(String(row.spec)),
      policy: JSON.parse(String(row.policy)),
      createdAt: String(row.created_at),
      startedAt: (row.started_at as string | null) ?? null,
      endedAt: (row.ended_at as string | null) ?? null,
      attempts: Number(row.attempts),
      error: (row.error as string | null) ?? null,
      qualityScore: (row.quality_score as number | null) ?? null,
    };
  }

  getRun(id: string): RunRecord {
    const row = this.db.prepare('SELECT * FROM runs WHERE id = ?').get(id);
    if (!row) throw notFound(`run ${id}`);
    return this.toRun(row);
  }

  latestByKey(runKey: string): RunRecord | undefined {
    const row = this.db
      .prepare('SELECT * FROM runs WHERE run_key = ? ORDER BY created_at DESC, rowid DESC LIMIT 1')
      .get(runKey);
    return row ? this.toRun(row) : undefined;
  }

  listRuns(opts: { pipeline?: string; limit?: number } = {}): RunRecord[] {
    const limit = opts.limit ?? 100;
    const rows = opts.pipeline
      ? this.db
          .prepare('SELECT * FROM runs WHERE pipeline = ? ORDER BY created_at DESC, rowid DESC LIMIT ?')
          .all(opts.pipeline, limit)
      : this.db.prepare('SELECT * FROM runs ORDER BY created_at DESC, rowid DESC LIMIT ?').all(limit);
    return rows.map((r) => this.toRun(r));
  }

  pipelines(): { name: string; runs: number; lastRun: string; lastStatus: string }[] {
    return this.db
      .prepare(
        `SELECT pipeline AS name, count(*) AS runs, max(created_at) AS lastRun,
           (SELECT status FROM runs r2 WHERE r2.pipeline = runs.pipeline ORDER BY created_at DESC, rowid DESC LIMIT 1) AS lastStatus
         FROM runs GROUP BY pipeline ORDER BY pipeline`,
      )
      .all()
      .map((r) => ({
        name: String(r.name),
        runs: Number(r.runs),
        lastRun: String(r.lastRun),
        lastStatus: String(r.lastStatus),
      }));
  }

  startAttempt(id: string): void {
    this.db
      .prepare(
        "UPDATE runs SET status = 'running', started_at = ?, ended_at = NULL, error = NULL, attempts = attempts + 1 WHERE id = ?",
      )
      .run(new Date().toISOString(), id);
  }

  finishRun(id: string, status: RunStatus, error: string | null, qualityScore: number | null): void {
    this.db
      .prepare('UPDATE runs SET status = ?, ended_at = ?, error = ?, quality_score = ? WHERE id = ?')
      .run(status, new Date().toISOString(), error, qualityScore, id);
  }

  private toStage(row: Record<string, unknown>): StageRecord {
    return {
      runId: String(row.run_id),
      stageId: String(row.stage_id),
      type: String(row.type),
      status: row.status as StageStatus,
      attempts: Number(row.attempts),
      startedAt: (row.started_at as string | null) ?? null,
      endedAt: (row.ended_at as string | null) ?? null,
      rows: row.rows === null || row.rows === undefined ? null : Number(row.rows),
      error: (row.error as string | null) ?? null,
      details: row.details ? JSON.parse(String(row.details)) : null,
    };
  }

  stages(runId: string): StageRecord[] {
    return this.db
      .prepare('SELECT * FROM stages WHERE run_id = ? ORDER BY rowid')
      .all(runId)
      .map((r) => this.toStage(r));
  }

  putStage(s: StageRecord): void {
    this.db
      .prepare(
        `INSERT INTO stages (run_id, stage_id, type, status, attempts, started_at, ended_at, rows, error, details)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (run_id, stage_id) DO UPDATE SET type = excluded.type, status = excluded.status,
           attempts = excluded.attempts, started_at = excluded.started_at, ended_at = excluded.ended_at,
           rows = excluded.rows, error = excluded.error, details = excluded.details`,
      )
      .run(
        s.runId,
        s.stageId,
        s.type,
        s.status,
        s.attempts,
        s.startedAt,
        s.endedAt,
        s.rows,
        s.error,
        s.details === null ? null : JSON.stringify(s.details),
      );
  }

  putQuality(runId: string, stageId: string, dataset: string, score: number, report: unknown): void {
    this.db
      .prepare('INSERT OR REPLACE INTO quality (run_id, stage_id, dataset, score, report) VALUES (?, ?, ?, ?, ?)')
      .run(runId, stageId, dataset, score, JSON.stringify(report));
  }

  quality(runId: string): { stageId: string; dataset: string; score: number; report: unknown }[] {
    return this.db
      .prepare('SELECT * FROM quality WHERE run_id = ? ORDER BY rowid')
      .all(runId)
      .map((r) => ({
        stageId: String(r.stage_id),
        dataset: String(r.dataset),
        score: Number(r.score),
        report: JSON.parse(String(r.report)),
      }));
  }

  addLineageEvent(runId: string, eventType: string, event: unknown): void {
    this.db
      .prepare('INSERT INTO lineage_events (run_id, event_type, event) VALUES (?, ?, ?)')
      .run(runId, eventType, JSON.stringify(event));
  }

  lineageEvents(runId?: string): unknown[] {
    const rows = runId
      ? this.db.prepare('SELECT event FROM lineage_events WHERE run_id = ? ORDER BY seq').all(runId)
      : this.db.prepare('SELECT event FROM lineage_events ORDER BY seq').all();
    return rows.map((r) => JSON.parse(String(r.event)));
  }
}
