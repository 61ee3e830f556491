"use client";
// Upload with byte progress (XMLHttpRequest: fetch has no upload progress) and options.
import { useRef, useState } from "react";
import { apiKey, errorOf } from "@/api/client";
import type { JobAccepted } from "@/api/types";
import { useT } from "@/i18n/i18n";
import { bytes } from "@/lib/format";
import { jobHref } from "@/lib/route";

export function Upload({ onUploaded }: { onUploaded: () => void }) {
  const t = useT();
  const form = useRef<HTMLFormElement>(null);
  const input = useRef<HTMLInputElement>(null);
  const [file, setFile] = useState<File | null>(null);
  const [over, setOver] = useState(false);
  const [sent, setSent] = useState<number | null>(null);
  const [status, setStatus] = useState<{ text: string; bad: boolean }>({ text: "", bad: false });

  const submit = (e: React.FormEvent) => {
    e.preventDefault();
    if (!file || !form.current) {
      setStatus({ text: t.chooseFirst, bad: true });
      input.current?.focus();
      return;
    }
    const data = new FormData();
    for (const [k, v] of new FormData(form.current)) if (k !== "file" && String(v).trim() !== "") data.append(k, v);
    data.append("file", file); // last, so the options arrive before the big part
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/v1/jobs");
    if (apiKey()) xhr.setRequestHeader("Authorization", `Bearer ${apiKey()}`);
    xhr.upload.onprogress = (ev) => {
      if (!ev.lengthComputable) return;
      setSent(ev.loaded / ev.total);
      setStatus({ text: t.uploadingOf(bytes(ev.loaded, t.units), bytes(ev.total, t.units), Math.round((100 * ev.loaded) / ev.total)), bad: false });
    };
    xhr.onload = () => {
      setSent(null);
      let body: unknown = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        /* not JSON */
      }
      if (xhr.status === 202 && body) {
        setStatus({ text: t.uploaded(file.name), bad: false });
        form.current?.reset();
        setFile(null);
        onUploaded();
        location.hash = jobHref((body as JobAccepted).id);
      } else {
        setStatus({ text: t.uploadRefused(errorOf(xhr.status, body).message), bad: true });
      }
    };
    xhr.onerror = () => {
      setSent(null);
      setStatus({ text: t.uploadUnreachable, bad: true });
    };
    setSent(0);
    setStatus({ text: t.uploading, bad: false });
    xhr.send(data);
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
