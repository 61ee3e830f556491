"use client";
// One bar per stage of the graph, with its state and elapsed time, live.
import { useEffect, useState } from "react";
import type { StageInfo } from "@/api/types";
import { useT } from "@/i18n/i18n";
import { seconds } from "@/lib/format";
import { stageLabel, type Row, type Rows } from "@/lib/stages";

function useNow(active: boolean): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!active) return;
    const timer = setInterval(() => setNow(Date.now()), 500);
    return () => clearInterval(timer);
  }, [active]);
  return now;
}

export function Stages({ stages, rows, announcement }: { stages: StageInfo[]; rows: Rows; announcement: string }) {
  const t = useT();
  const now = useNow(Object.values(rows).some((r) => r.status === "running"));
  const text = (row: Row): string => {
    if (row.status === "running") {
      const pct = `${Math.round(100 * row.fraction)}${t.locale === "fr" ? " " : ""}%`;
      const elapsed = row.startedAt ? seconds(Math.max(0, (now - row.startedAt) / 1000), t.decimal) : "";
      return elapsed ? `${pct} · ${elapsed}` : pct;
    }
    if (row.status === "succeeded") return row.elapsed !== null ? `${t.state.succeeded} · ${seconds(row.elapsed, t.decimal)}` : (t.state.succeeded ?? "");
    return t.state[row.status] ?? row.status;
  };
  return (
    <>
      <h3 className="sub">{t.progress}</h3>
      <ol id="stages" className="stages" aria-label={t.stagesLabel}>
        {stages.map((s) => {
          const row = rows[s.name];
          if (!row) return null;
          const label = stageLabel(s, t.locale);
          return (
            <li key={s.name} className={row.status} data-stage={s.name} data-state={row.status}>
              <span className="stage-name">
                <span className="stage-label">{label}</span> <code className="stage-id">{s.name}</code>
              </span>
              <progress max={1} value={row.fraction} aria-label={t.stageProgress(label)} />
              <span className="stage-state">{text(row)}</span>
            </li>
          );
        })}
      </ol>
      <p id="stage-announcer" className="sr-only" aria-live="polite">
        {announcement}
      </p>
    </>
  );
}
