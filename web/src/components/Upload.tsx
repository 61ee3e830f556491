"use client";
// Upload with byte progress and options; then the job it started, until it has ended.
import { useEffect, useRef, useState } from "react";
import { ApiError, uploadJob, type UploadField } from "@/api/client";
import type { Job } from "@/api/types";
import { useT } from "@/i18n/i18n";
import { bytes } from "@/lib/format";
import { jobHref } from "@/lib/route";
import { NO_STATUS, type Status } from "@/lib/status";

interface Props {
  /** The recent jobs as the page last listed them (App), null before the first answer. */
  jobs: Job[] | null;
  onUploaded: () => void;
}

/** The job this panel started: followed through the list until it ends. */
interface Started {
  id: string;
  name: string;
  listed: boolean; // seen in the list once: missing from it later means it was deleted
}

export function Upload({ jobs, onUploaded }: Props) {
  const t = useT();
  const form = useRef<HTMLFormElement>(null);
  const input = useRef<HTMLInputElement>(null);
  const [file, setFile] = useState<File | null>(null);
  const [over, setOver] = useState(false);
  const [sent, setSent] = useState<number | null>(null);
  const [status, setStatus] = useState<Status>(NO_STATUS);
  const [started, setStarted] = useState<Started | null>(null);

  // "Processing…" lasts while the job does: the list (refreshed by App when the job view
  // sees the end, and every few seconds) says when it succeeded or failed.
  useEffect(() => {
    if (started === null || jobs === null) return;
    const job = jobs.find((j) => j.id === started.id);
    if (!job) {
      if (started.listed) {
        setStarted(null);
        setStatus(NO_STATUS);
      }
      return;
    }
    if (job.status === "succeeded" || job.status === "failed") {
      setStarted(null);
      setStatus(job.status === "succeeded" ? { text: t.uploadDone(started.name), bad: false } : { text: t.uploadFailed(started.name), bad: true });
    } else if (!started.listed) {
      setStarted({ ...started, listed: true });
    }
  }, [jobs, started, t]);

  const submit = (e: React.FormEvent) => {
    e.preventDefault();
    if (!file || !form.current) {
      setStatus({ text: t.chooseFirst, bad: true });
      input.current?.focus();
      return;
    }
    const data = new FormData();
    for (const [k, v] of new FormData(form.current)) if (k !== "file" && String(v).trim() !== "") data.append(k, v);
    data.append("file" satisfies UploadField, file); // last, so the options arrive before the big part
    setSent(0);
    setStarted(null);
    setStatus({ text: t.uploading, bad: false });
    uploadJob(data, (loaded, total) => {
      setSent(loaded / total);
      setStatus({ text: t.uploadingOf(bytes(loaded, t.units), bytes(total, t.units), Math.round((100 * loaded) / total)), bad: false });
    }).then(
      (job) => {
        setSent(null);
        setStatus({ text: t.uploaded(file.name), bad: false });
        setStarted({ id: job.id, name: file.name, listed: false });
        form.current?.reset();
        setFile(null);
        onUploaded();
        location.hash = jobHref(job.id);
      },
      (err: unknown) => {
        setSent(null);
        setStatus({ text: err instanceof ApiError ? t.uploadRefused(err.message) : t.uploadUnreachable, bad: true });
      },
    );
  };

  return (
    <section className="card" id="upload" aria-labelledby="upload-title">
      <h2 id="upload-title">{t.uploadTitle}</h2>
      <form id="upload-form" ref={form} noValidate onSubmit={submit}>
        <label
          id="drop"
          className={`drop${over ? " over" : ""}${file ? " has-file" : ""}`}
          htmlFor="file"
          onDragEnter={(e) => {
            e.preventDefault();
            setOver(true);
          }}
          onDragOver={(e) => {
            e.preventDefault();
            setOver(true);
          }}
          onDragLeave={() => setOver(false)}
          onDrop={(e) => {
            e.preventDefault();
            setOver(false);
            const f = e.dataTransfer.files[0];
            if (f) setFile(f);
          }}
        >
          <span className="drop-icon" aria-hidden="true">
            ⬆
          </span>
          <span id="drop-text">{file ? t.chosen(file.name, bytes(file.size, t.units)) : t.dropHint}</span>
          <input id="file" ref={input} name="file" type="file" accept="audio/*,video/*" onChange={(e) => setFile(e.target.files?.[0] ?? null)} />
        </label>
        <details className="options">
          <summary>{t.options}</summary>
          <div className="fields">
            <label>
              {t.language}
              <input name="language" placeholder={t.detect} autoComplete="off" pattern="[A-Za-z-]{2,8}" title={t.languageHint} />
            </label>
            <label>
              {t.speakers}
              <input name="num_speakers" type="number" min={1} max={64} inputMode="numeric" placeholder={t.auto} />
            </label>
          </div>
        </details>
        <div className="actions">
          <button id="submit" type="submit" className="primary" disabled={sent !== null}>
            {t.transcribe}
          </button>
        </div>
        {sent !== null && (
          <div id="upload-meter" className="meter">
            <progress id="upload-progress" max={1} value={sent} aria-label={t.uploadProgress} />
          </div>
        )}
        <p id="upload-status" className={`status${status.bad ? " bad" : ""}`} role="status" aria-live="polite">
          {status.text}
        </p>
      </form>
    </section>
  );
}
