// Stage rows as the page shows them, from the job store's view and from live events.
// The stages, their order and their labels come from GET /v1/stages, never from a list of
// our own: a new stage in the graph (core/graph.py) needs no change here.
import type { Job, JobEvent, StageInfo } from "@/api/types";

/** What a person reads for the stage in the page's language (the graph declares a label in
 * each of them); the English one for a language it has none in. */
export function stageLabel(s: StageInfo, locale: string): string {
  return s.labels[locale] ?? s.label;
}

export type RowStatus = "waiting" | "queued" | "running" | "succeeded" | "reused" | "failed";

export interface Row {
  status: RowStatus;
  fraction: number;
  startedAt: number | null; // ms since the epoch
  elapsed: number | null; // seconds, once finished
}

export type Rows = Record<string, Row>;

const WAITING: Row = { status: "waiting", fraction: 0, startedAt: null, elapsed: null };

export function emptyRows(stages: readonly StageInfo[]): Rows {
  return Object.fromEntries(stages.map((s) => [s.name, WAITING]));
}

/** `stage` and every stage that reads it, directly or not: what a replay runs again. */
export function downstream(stages: readonly StageInfo[], stage: string): string[] {
  const found = new Set([stage]);
  for (const s of stages) if (s.inputs.some((i) => found.has(i))) found.add(s.name);
  return stages.filter((s) => found.has(s.name)).map((s) => s.name);
}

/** The job store's view: right after a reload, and the final word once a run ends. */
export function rowsFromJob(rows: Rows, job: Job): Rows {
  const next = { ...rows };
  for (const s of job.stages ?? []) {
    const status: RowStatus =
      s.status === "succeeded" ? (s.reused ? "reused" : "succeeded") : s.status === "pending" ? "waiting" : (s.status as RowStatus);
    next[s.stage] = {
      status,
      fraction: s.status === "succeeded" ? 1 : s.status === "running" ? (rows[s.stage]?.fraction ?? 0) : 0,
      startedAt: s.started_at ? Date.parse(s.started_at) : null,
      elapsed: s.elapsed_s ?? null,
    };
  }
  return next;
}

export function applyEvent(rows: Rows, e: JobEvent, stages: readonly StageInfo[]): Rows {
  const stage = e.stage ?? "";
  const row = rows[stage];
  const ts = (e.ts ?? Date.now() / 1000) * 1000;
  switch (e.type) {
    case "job.queued": {
      // A (re)run from e.stage: that stage and those that depend on it start over.
      const next = { ...rows };
      for (const s of downstream(stages, stage)) next[s] = { ...WAITING, status: "queued" };
      return next;
    }
    case "stage.started":
      return { ...rows, [stage]: { status: "running", fraction: 0, startedAt: ts, elapsed: null } };
    case "stage.progress":
      return {
        ...rows,
        [stage]: { status: "running", fraction: e.progress ?? 0, startedAt: row?.startedAt ?? ts, elapsed: null },
      };
    case "stage.finished":
      return {
        ...rows,
        [stage]: { status: e.reused ? "reused" : "succeeded", fraction: 1, startedAt: row?.startedAt ?? null, elapsed: e.elapsed_s ?? null },
      };
    case "stage.failed":
      return { ...rows, [stage]: { ...(row ?? WAITING), status: "failed" } };
    default:
      return rows;
  }
}

export const isFinished = (job: Job): boolean => job.status === "succeeded" || job.status === "failed";
