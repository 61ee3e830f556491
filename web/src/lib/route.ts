"use client";
// The selected job (and a moment in it) lives in the URL's hash: #/jobs/<id>?t=<seconds>.
import { useSyncExternalStore } from "react";

export interface Route {
  jobId: string | null;
  at: number | null;
}

export function parseRoute(hash: string): Route {
  const m = /^#\/jobs\/([0-9a-f-]{36})(?:\?t=([\d.]+))?$/.exec(hash);
  if (!m) return { jobId: null, at: null };
  return { jobId: m[1]!, at: m[2] ? Number(m[2]) : null };
}

export const jobHref = (id: string, at?: number) => `#/jobs/${id}${at !== undefined ? `?t=${at.toFixed(2)}` : ""}`;

const subscribe = (fn: () => void) => {
  window.addEventListener("hashchange", fn);
  return () => window.removeEventListener("hashchange", fn);
};

export function useHash(): string {
  return useSyncExternalStore(subscribe, () => location.hash, () => "");
}
