"use client";
// Past recordings, newest first, each with a delete button.
import { memo } from "react";
import { Api } from "@/api/client";
import type { Job, ResultSpeaker } from "@/api/types";
import type { Messages } from "@/i18n/en";
import { useT } from "@/i18n/i18n";
import { clock, when } from "@/lib/format";
import { jobHref } from "@/lib/route";
import { speakerName } from "@/lib/names";

function summary(t: Messages, speakers: ResultSpeaker[] | undefined): string | null {
  if (!speakers) return null;
  if (!speakers.length) return t.noSpeech;
  const count = t.speakerCount(speakers.length);
  // Names only once someone is named; "Speaker 1, Speaker 2" says nothing the count does not.
  if (!speakers.some((s) => s.name)) return count;
  return `${count}: ${speakers.map((s) => speakerName(t, s)).join(", ")}`;
}

interface Props {
  jobs: Job[] | null;
  speakers: Record<string, ResultSpeaker[]>;
  current: string | null;
  onChanged: () => void;
}

export const JobList = memo(function JobList({ jobs, speakers, current, onChanged }: Props) {
  const t = useT();
  const remove = async (job: Job, name: string) => {
    if (!confirm(t.deleteConfirm(name))) return;
    try {
      await Api.deleteJob(job.id);
    } catch (e) {
      alert((e as Error).message);
      return;
    }
    if (current === job.id) location.hash = "";
    onChanged();
  };
  return (
    <section className="card" id="jobs" aria-labelledby="jobs-title">
      <div className="card-head">
        <h2 id="jobs-title">{t.recordings}</h2>
        <button id="jobs-refresh" type="button" className="quiet" aria-label={t.refreshList} onClick={onChanged}>
          ↻
        </button>
      </div>
      <ul id="job-list" className="job-list">
        {(jobs ?? []).map((job) => {
          const name = job.filename || t.recording;
          const facts = [
            when(job.created_at, t.locale),
            job.duration_s ? clock(job.duration_s) : null,
            job.language ? job.language.toUpperCase() : null,
            summary(t, speakers[job.id]),
          ].filter(Boolean);
          const here = job.id === current;
          return (
            <li key={job.id} className={here ? "current" : ""} data-job={job.id}>
              <a href={jobHref(job.id)} aria-current={here ? "true" : undefined}>
                <span className="job-name">
                  <strong title={name}>{name}</strong>
                  <span className={`badge ${job.status}`} data-status={job.status}>
                    {t.status[job.status] ?? job.status}
                  </span>
                </span>
                <span className="job-facts">{facts.join(" · ")}</span>
              </a>
              <button type="button" className="danger" title={t.deleteLabel(name)} aria-label={t.deleteLabel(name)} onClick={() => void remove(job, name)}>
                ✕
              </button>
            </li>
          );
        })}
      </ul>
      {jobs !== null && jobs.length === 0 && (
        <p id="jobs-empty" className="muted">
          {t.noRecordings}
        </p>
      )}
    </section>
  );
});
