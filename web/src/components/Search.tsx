"use client";
// Search across meetings; a result opens its meeting at that moment.
import { useState } from "react";
import { Api, ApiError } from "@/api/client";
import type { SearchHit } from "@/api/types";
import { useT } from "@/i18n/i18n";
import { clock } from "@/lib/format";
import { defaultName } from "@/lib/names";
import { jobHref } from "@/lib/route";
import { NO_STATUS, type Status } from "@/lib/status";

export function Search() {
  const t = useT();
  const [q, setQ] = useState("");
  const [hits, setHits] = useState<SearchHit[] | null>(null);
  const [status, setStatus] = useState<Status>(NO_STATUS);

  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    const query = q.trim();
    setStatus({ text: t.searching, bad: false });
    try {
      const answer = await Api.search(query);
      setHits(answer.hits);
      setStatus({ text: answer.hits.length ? t.searchFound(answer.hits.length, query) : t.searchNone(query), bad: false });
    } catch (err) {
      setHits(null);
      const unavailable = err instanceof ApiError && (err.status === 404 || err.status === 405 || err.status === 503);
      setStatus({ text: unavailable ? t.searchUnavailable : (err as Error).message, bad: true });
    }
  };

  return (
    <section className="card" id="search" aria-labelledby="search-title">
      <h2 id="search-title">{t.searchTitle}</h2>
      <form id="search-form" role="search" className="search-form" onSubmit={(e) => void submit(e)}>
        <label htmlFor="search-q" className="sr-only">
          {t.searchLabel}
        </label>
        <input id="search-q" type="search" value={q} maxLength={1000} autoComplete="off" onChange={(e) => setQ(e.target.value)} />
        <button type="submit" className="primary">
          {t.searchButton}
        </button>
      </form>
      <p id="search-status" className={`status${status.bad ? " bad" : ""}`} role="status" aria-live="polite">
        {status.text}
      </p>
      {hits && hits.length > 0 && (
        <ol id="search-results" className="search-results">
          {hits.map((h) => {
            const file = h.file_name || t.recording;
            const who = h.speaker ? defaultName(t, h.speaker) : "";
            return (
              <li key={`${h.job_id}:${h.segment_index}:${h.start}`} data-job={h.job_id} data-start={h.start}>
                <a href={jobHref(h.job_id, h.start)} aria-label={t.searchHit(file, clock(h.start), who)}>
                  <span className="hit-head">
                    <strong>{file}</strong> <span className="muted">{clock(h.start)}</span> {who && <span className="muted">· {who}</span>}
                  </span>
                  <span className="hit-text">{h.text}</span>
                </a>
              </li>
            );
          })}
        </ol>
      )}
    </section>
  );
}
