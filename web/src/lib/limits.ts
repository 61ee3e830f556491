// A key's limits as a person types them (MB, minutes, jobs) and as the API has them
// (bytes, seconds, jobs). A field left empty is left out: the key gets the admin's own.
import type { KeyRequest } from "@/api/types";

export const MB = 1024 * 1024; // as the page shows sizes (format.ts's bytes)

export interface LimitFields {
  uploadMb: string;
  durationMin: string;
  jobs: string;
}

export type Limits = Pick<KeyRequest, "max_upload_bytes" | "max_duration_s" | "max_concurrent_jobs">;

// A number above zero ("1,5" as well as "1.5"), null for an empty field, NaN for anything else.
function positive(text: string): number | null {
  const t = text.trim().replace(",", ".");
  if (!t) return null;
  const n = /^\d*\.?\d+$|^\d+\.$/.test(t) ? Number(t) : NaN;
  return n > 0 ? n : NaN;
}

// The API's limits, or the first field that is not a number above zero (jobs: a whole one).
export function limitsOf(fields: LimitFields): { limits: Limits } | { bad: keyof LimitFields } {
  const mb = positive(fields.uploadMb);
  const min = positive(fields.durationMin);
  const jobs = positive(fields.jobs);
  if (Number.isNaN(mb) || (mb !== null && Math.round(mb * MB) < 1)) return { bad: "uploadMb" };
  if (Number.isNaN(min)) return { bad: "durationMin" };
  if (Number.isNaN(jobs) || (jobs !== null && !Number.isInteger(jobs))) return { bad: "jobs" };
  const limits: Limits = {};
  if (mb !== null) limits.max_upload_bytes = Math.round(mb * MB);
  if (min !== null) limits.max_duration_s = min * 60;
  if (jobs !== null) limits.max_concurrent_jobs = jobs;
  return { limits };
}

// A duration limit in minutes, as typed: 90 → "1.5", 3600 → "60".
export function minutes(s: number, decimal = "."): string {
  return String(Math.round((s / 60) * 10) / 10).replace(".", decimal);
}
