"use client";
// Run a stage again with other settings; unchanged stages are reused.
import { useState } from "react";
import { Api } from "@/api/client";
import type { Job, StageInfo } from "@/api/types";
import { useT } from "@/i18n/i18n";
import { NO_STATUS, type Status } from "@/lib/status";
import { stageLabel } from "@/lib/stages";

interface Props {
  job: Job;
  stages: StageInfo[];
  failedStage: string | null;
  onStarted: () => void;
}

export function Replay({ job, stages, failedStage, onStarted }: Props) {
  const t = useT();
  const [open, setOpen] = useState(false);
  const [stage, setStage] = useState(failedStage ?? (stages.some((s) => s.name === "diarize") ? "diarize" : (stages[0]?.name ?? "")));
  const [speakers, setSpeakers] = useState(job.params?.num_speakers != null ? String(job.params.num_speakers) : "");
  const [language, setLanguage] = useState(job.params?.language ?? "");
  const [status, setStatus] = useState<Status>(NO_STATUS);

  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    const params = { num_speakers: speakers.trim() ? Number(speakers) : null, language: language.trim() || null };
    try {
      await Api.replay(job.id, stage, params);
    } catch (err) {
      setStatus({ text: (err as Error).message, bad: true });
      return;
    }
    setStatus({ text: t.runningFrom(stage), bad: false });
    setOpen(false);
    onStarted();
  };

  return (
    <details id="replay" className="replay" open={open} onToggle={(e) => setOpen((e.target as HTMLDetailsElement).open)}>
      <summary>{t.runAgain}</summary>
      <form id="replay-form" className="fields" onSubmit={(e) => void submit(e)}>
        <label>
          {t.fromStage}
          <select name="stage" id="replay-stage" value={stage} onChange={(e) => setStage(e.target.value)}>
            {stages.map((s) => (
              <option key={s.name} value={s.name} title={stageLabel(s, t.locale)}>
                {s.name}
              </option>
            ))}
          </select>
        </label>
        <label>
          {t.speakers}
          <input name="num_speakers" id="replay-speakers" type="number" min={1} max={64} inputMode="numeric" placeholder={t.auto} value={speakers} onChange={(e) => setSpeakers(e.target.value)} />
        </label>
        <label>
          {t.language}
          <input name="language" id="replay-language" placeholder={t.detect} autoComplete="off" value={language} onChange={(e) => setLanguage(e.target.value)} />
        </label>
        <button type="submit" className="primary">
          {t.runAgainButton}
        </button>
        <p className="muted small full">{t.reuseHint}</p>
        <p id="replay-status" className={`status full${status.bad ? " bad" : ""}`} role="status" aria-live="polite">
          {status.text}
        </p>
      </form>
    </details>
  );
}
