"use client";
// The selected job: its head, live stages, a failure explained, replay, and its result.
import { useCallback, useEffect, useState } from "react";
import { Api } from "@/api/client";
import type { Job, JobEvent, Person, StageInfo } from "@/api/types";
import { useT } from "@/i18n/i18n";
import { bytes, clock, sentence, when } from "@/lib/format";
import { applyEvent, emptyRows, isFinished, rowsFromJob, type Rows } from "@/lib/stages";
import { useJobEvents } from "@/lib/useJobEvents";
import { LiveCaptions, addCaption, noCaptions, type Captions } from "./LiveCaptions";
import { Replay } from "./Replay";
import { Result } from "./Result";
import { Stages as StagesBlock } from "./Stages";

const ON_THE_WAY = new Set(["queued", "running"]);

interface Props {
  id: string;
  at: number | null;
  stages: StageInfo[];
  people: Person[];
  onJobChanged: (id: string) => void;
  onPeopleChanged: () => void;
}

export function JobView({ id, at, stages, people, onJobChanged, onPeopleChanged }: Props) {
  const t = useT();
  const [job, setJob] = useState<Job | null>(null);
  const [missing, setMissing] = useState<string | null>(null);
  const [rows, setRows] = useState<Rows>(() => emptyRows(stages));
  const [announcement, setAnnouncement] = useState("");
  const [run, setRun] = useState<number | null>(null); // live events while not null
  const [shown, setShown] = useState(0); // a new value loads the result again
  const [captions, setCaptions] = useState<Captions>(noCaptions); // a live meeting's
  const [liveEnded, setLiveEnded] = useState(false);

  const load = useCallback(async () => {
    let j: Job;
    try {
      j = await Api.job(id);
    } catch (e) {
      setMissing((e as Error).message);
      return;
    }
    setJob(j);
    setRows((r) => rowsFromJob(r, j));
    if (isFinished(j)) setShown((n) => n + 1);
    else setRun((n) => (n ?? 0) + 1);
  }, [id]);

  useEffect(() => {
    void load();
  }, [load]);

  const onEvent = useCallback(
    (e: JobEvent) => {
      if (e.type === "live.caption") {
        setCaptions((c) => addCaption(c, e));
        return;
      }
      if (e.type === "live.ended" || e.type === "job.queued") setLiveEnded(e.type === "live.ended" || e.stage !== null);
      setRows((r) => applyEvent(r, e, stages));
      const s = e.stage ?? "";
      if (e.type === "stage.started") setAnnouncement(t.started(s));
      else if (e.type === "stage.finished") setAnnouncement(e.reused ? t.reusedStage(s) : t.finished(s));
      else if (e.type === "stage.failed") setAnnouncement(t.failedStage(s));
    },
    [stages, t],
  );
  const onEnd = useCallback(
    (j: Job) => {
      setRun(null);
      setJob(j);
      setRows((r) => rowsFromJob(r, j));
      setAnnouncement(j.status === "failed" ? t.failedAt(j.error?.stage ?? "?") : t.ready);
      setShown((n) => n + 1);
      onJobChanged(j.id);
    },
    [onJobChanged, t],
  );
  useJobEvents(id, run, onEvent, onEnd);

  // Stages that run after the result (search indexing): followed from the job store until
  // they end, so the page never shows one as waiting for good.
  const after = job !== null && job.status === "succeeded" && run === null && (job.stages ?? []).some((s) => ON_THE_WAY.has(s.status));
  useEffect(() => {
    if (!after) return;
    const timer = setInterval(async () => {
      const j = await Api.job(id).catch(() => null);
      if (!j) return;
      setRows((r) => rowsFromJob(r, j));
      if (!(j.stages ?? []).some((s) => ON_THE_WAY.has(s.status))) setJob(j);
    }, 1500);
    return () => clearInterval(timer);
  }, [after, id]);

  if (missing !== null) {
    return (
      <div id="job-detail">
        <div className="job-head">
          <h2 id="job-title">{t.notFound}</h2>
          <p id="job-meta" className="muted">
            {missing}
          </p>
        </div>
      </div>
    );
  }
  if (job === null) {
    return (
      <div id="job-detail">
        <h2 id="job-title">{t.loading}</h2>
      </div>
    );
  }

  const facts = [
    t.status[job.status] ?? job.status,
    t.uploadedAt(when(job.created_at, t.locale)),
    bytes(job.size_bytes, t.units),
    job.duration_s ? t.long(clock(job.duration_s)) : null,
    job.language ? t.languageIs(job.language) : null,
  ].filter(Boolean);
  const failed = job.status === "failed" ? (job.error?.stage ?? null) : null;
  const finished = isFinished(job) && run === null;

  return (
    <div id="job-detail" data-job={job.id} data-status={job.status}>
      <div className="job-head">
        <h2 id="job-title">{job.filename || t.recording}</h2>
        <p id="job-meta" className="muted">
          {facts.join(" · ")}
        </p>
      </div>
      {!finished && (captions.lines.length > 0 || captions.unstable) && <LiveCaptions captions={captions} ended={liveEnded} />}
      <StagesBlock stages={stages} rows={rows} announcement={announcement} />
      {finished && job.status === "failed" && (
        <div id="job-error" className="error-box" role="alert">
          <strong>{failed ? t.stageFailed(failed) : t.jobFailed}</strong>
          <p>{job.error?.message ? sentence(job.error.message) : t.noReason}</p>
          <p className="small">{failed === "decode" ? t.decodeAdvice : t.replayAdvice}</p>
        </div>
      )}
      {finished && (
        <Replay
          key={job.updated_at}
          job={job}
          stages={stages}
          failedStage={failed}
          onStarted={() => {
            onJobChanged(job.id);
            setJob({ ...job, status: "queued" });
            void load();
          }}
        />
      )}
      {finished && job.status === "succeeded" && (
        <Result key={shown} job={job} at={at} people={people} onJobChanged={onJobChanged} onPeopleChanged={onPeopleChanged} />
      )}
    </div>
  );
}
