"use client";
// Ask across meetings: an answer written from what the meetings say, streamed as it is written,
// then shown checked, each sentence with the moments it cites (a citation opens that moment).
import { useState } from "react";
import { ApiError, ask } from "@/api/client";
import type { AskAnswer } from "@/api/types";
import { useT } from "@/i18n/i18n";
import { clock } from "@/lib/format";
import { defaultName } from "@/lib/names";
import { jobHref } from "@/lib/route";
import { NO_STATUS, type Status } from "@/lib/status";

export function Ask() {
  const t = useT();
  const [q, setQ] = useState("");
  const [draft, setDraft] = useState("");
  const [answer, setAnswer] = useState<AskAnswer | null>(null);
  const [status, setStatus] = useState<Status>(NO_STATUS);
  const [busy, setBusy] = useState(false);

  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setAnswer(null);
    setDraft("");
    setStatus({ text: t.asking, bad: false });
    try {
      const a = await ask({ question: q.trim() }, setDraft);
      setAnswer(a);
      setDraft("");
      setStatus({ text: a.declined ? t.askDeclined : t.askAnswered(a.citations.length), bad: false });
    } catch (err) {
      const unavailable = err instanceof ApiError && err.status === 503;
      setStatus({ text: unavailable ? t.askUnavailable((err as Error).message) : (err as Error).message, bad: true });
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="card" id="ask" aria-labelledby="ask-title">
      <h2 id="ask-title">{t.askTitle}</h2>
      <form id="ask-form" className="search-form" onSubmit={(e) => void submit(e)}>
        <label htmlFor="ask-q" className="sr-only">
          {t.askLabel}
        </label>
        <input id="ask-q" type="text" value={q} maxLength={500} autoComplete="off" onChange={(e) => setQ(e.target.value)} />
        <button type="submit" className="primary" disabled={busy}>
          {t.askButton}
        </button>
      </form>
      <p id="ask-status" className={`status${status.bad ? " bad" : ""}`} role="status" aria-live="polite">
        {status.text}
      </p>
      {draft && (
        <p id="ask-draft" className="muted" aria-busy="true">
          {draft}
        </p>
      )}
      {answer && !answer.declined && (
        <div id="ask-answer" lang={answer.language}>
          <p>
            {answer.sentences.map((s, i) => (
              <span key={i}>
                {s.text}{" "}
                {s.citations.map((c) => (
                  <sup key={c}>
                    <a href={`#ask-cite-${c}`}>[{c + 1}]</a>
                  </sup>
                ))}{" "}
              </span>
            ))}
          </p>
          <ol className="search-results">
            {answer.citations.map((c, i) => {
              const file = c.file_name || t.recording;
              const who = defaultName(t, c.speaker);
              return (
                <li key={i} id={`ask-cite-${i}`} data-job={c.job_id} data-segment={c.segment}>
                  <a href={jobHref(c.job_id, c.start)} aria-label={t.searchHit(file, clock(c.start), who)}>
                    <span className="hit-head">
                      <strong>{file}</strong> <span className="muted">{clock(c.start)}</span> <span className="muted">· {who}</span>
                    </span>
                    <span className="hit-text">{c.text}</span>
                  </a>
                </li>
              );
            })}
          </ol>
          {answer.dropped.length > 0 && <p className="muted small">{t.askDropped(answer.dropped.length)}</p>}
        </div>
      )}
    </section>
  );
}
