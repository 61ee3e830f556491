"use client";
// A meeting's summary, decisions and action items beside its transcript; every item cites the
// moments it comes from, and a citation plays that moment.
import { useEffect, useState } from "react";
import { Api } from "@/api/client";
import type { Moment, SummaryAnswer } from "@/api/types";
import { useT } from "@/i18n/i18n";
import { clock, sentence } from "@/lib/format";
import { defaultName } from "@/lib/names";

const ON_THE_WAY = new Set(["pending", "queued", "running"]);

interface Props {
  jobId: string;
  onSeek: (t: number) => void;
}

export function Summary({ jobId, onSeek }: Props) {
  const t = useT();
  const [answer, setAnswer] = useState<SummaryAnswer | null>(null);
  const [error, setError] = useState<string | null>(null);

  // Loaded now, then again every few seconds while the summarize stage has yet to finish
  // (it runs after the result, and again after a rename or a text fix).
  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const load = async () => {
      try {
        const a = await Api.summary(jobId);
        if (stopped) return;
        setAnswer(a);
        setError(null);
        if (ON_THE_WAY.has(a.status)) timer = setTimeout(() => void load(), 3000);
      } catch (e) {
        if (!stopped) setError((e as Error).message);
      }
    };
    void load();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [jobId]);

  if (error !== null || answer === null) {
    return error === null ? null : (
      <aside id="summary" className="summary" aria-labelledby="summary-title">
        <h3 className="sub" id="summary-title">
          {t.summaryTitle}
        </h3>
        <p className="muted small">{error}</p>
      </aside>
    );
  }
  const doc = answer.summary;
  const cites = (moments: Moment[]) => (
    <span className="cites">
      {moments.map((m) => {
        const who = defaultName(t, m.speaker);
        return (
          <button
            key={m.segment}
            type="button"
            className="cite"
            data-segment={m.segment}
            data-start={m.start}
            aria-label={t.citeLabel(clock(m.start), who)}
            onClick={() => onSeek(m.start)}
          >
            {clock(m.start)} · {who}
          </button>
        );
      })}
    </span>
  );
  return (
    <aside id="summary" className="summary" aria-labelledby="summary-title" data-status={answer.status}>
      <h3 className="sub" id="summary-title">
        {t.summaryTitle}
      </h3>
      {answer.status === "failed" && !doc && (
        <p className="status bad" role="status">
          {t.summaryFailed(sentence(answer.error ?? t.noReason))}
        </p>
      )}
      {!doc && answer.status !== "failed" && <p className="muted small">{t.summaryWaiting(t.status[answer.status] ?? answer.status)}</p>}
      {doc && (
        <>
          {answer.status !== "succeeded" && <p className="muted small">{t.summaryAgain}</p>}
          <ul id="summary-points" lang={doc.language ?? undefined}>
            {doc.summary.map((p, i) => (
              <li key={i}>
                {p.text} {cites(p.citations)}
              </li>
            ))}
          </ul>
          <h4>{t.decisionsTitle}</h4>
          {doc.decisions.length === 0 ? (
            <p className="muted small">{t.noneSaid}</p>
          ) : (
            <ul id="summary-decisions" lang={doc.language ?? undefined}>
              {doc.decisions.map((p, i) => (
                <li key={i}>
                  {p.text} {cites(p.citations)}
                </li>
              ))}
            </ul>
          )}
          <h4>{t.actionsTitle}</h4>
          {doc.action_items.length === 0 ? (
            <p className="muted small">{t.noneSaid}</p>
          ) : (
            <ul id="summary-actions" lang={doc.language ?? undefined}>
              {doc.action_items.map((a, i) => (
                <li key={i}>
                  {a.what}{" "}
                  <span className="muted">
                    ({a.owner ? defaultName(t, a.owner) : t.noOwner}
                    {a.due ? `, ${t.dueOn(a.due)}` : ""})
                  </span>{" "}
                  {cites(a.citations)}
                </li>
              ))}
            </ul>
          )}
          {doc.rejected.length > 0 && <p className="muted small">{t.summaryLeftOut(doc.rejected.length)}</p>}
        </>
      )}
    </aside>
  );
}
