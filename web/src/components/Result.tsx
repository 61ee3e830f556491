"use client";
// A succeeded job's result: downloads, the player, speakers, corrections, the transcript.
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { Api, apiKey, href, streamUrl, withKey } from "@/api/client";
import type { Correction, Job, MeetingResult, Person } from "@/api/types";
import { useT } from "@/i18n/i18n";
import { speakerName } from "@/lib/names";
import { NO_STATUS, type Status } from "@/lib/status";
import { COLOURS, segmentAt, wordAt, wordIndex } from "@/lib/transcript";
import { Corrections } from "./Corrections";
import { Speakers } from "./Speakers";
import { Summary } from "./Summary";
import { Transcript, type TranscriptHandle } from "./Transcript";

const FORMATS = ["txt", "srt", "vtt", "json"] as const;

interface Props {
  job: Job;
  at: number | null;
  people: Person[];
  onJobChanged: (id: string) => void;
  onPeopleChanged: () => void;
}

export function Result({ job, at, people, onJobChanged, onPeopleChanged }: Props) {
  const t = useT();
  const [result, setResult] = useState<MeetingResult | null>(null);
  const [corrections, setCorrections] = useState<Correction[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [audio, setAudio] = useState<string | null>(null);
  const [follow, setFollow] = useState(true);
  const [now, setNow] = useState<{ segment: number; word: number } | null>(null);
  const [speakerStatus, setSpeakerStatus] = useState<Status>(NO_STATUS);
  const [correctionStatus, setCorrectionStatus] = useState<Status>(NO_STATUS);
  const nowRef = useRef<{ segment: number; word: number } | null>(null);
  const player = useRef<HTMLAudioElement>(null);
  const transcript = useRef<TranscriptHandle>(null);

  const reload = useCallback(async () => {
    const [r, c] = await Promise.all([Api.result(job.id), Api.corrections(job.id)]);
    setResult(r);
    setCorrections(c);
    return r;
  }, [job.id]);

  useEffect(() => {
    reload().catch((e: Error) => setError(e.message));
    streamUrl(job.id, "audio").then(setAudio, () => setAudio(href("/v1/jobs/{job_id}/audio", { path: { job_id: job.id } })));
  }, [job.id, reload]);

  // After a correction or an undo: the result as it reads now, and the list's summary.
  const corrected = useCallback(async () => {
    await reload();
    onJobChanged(job.id);
  }, [reload, onJobChanged, job.id]);

  const index = useMemo(() => wordIndex(result?.segments ?? []), [result]);
  const colour = useMemo(() => Object.fromEntries((result?.speakers ?? []).map((s, i) => [s.id, COLOURS[i % COLOURS.length]!])), [result]);
  const names = useMemo(() => Object.fromEntries((result?.speakers ?? []).map((s) => [s.id, speakerName(t, s)])), [result, t]);

  // The player follows the transcript: the word being said is marked, its line kept in view.
  const followPlayer = useCallback(
    (jump: boolean) => {
      const p = player.current;
      if (!p) return;
      const w = wordAt(index, p.currentTime);
      const before = nowRef.current;
      if (before?.segment === w?.segment && before?.word === w?.word) return;
      nowRef.current = w;
      setNow(w);
      if (w && follow && (jump || !p.paused) && before?.segment !== w.segment) transcript.current?.show(w.segment, !jump);
    },
    [index, follow],
  );
  useEffect(() => {
    const p = player.current;
    if (!p) return;
    let frame = 0;
    const loop = () => {
      followPlayer(false);
      frame = p.paused ? 0 : requestAnimationFrame(loop);
    };
    const onPlay = () => {
      if (!frame) frame = requestAnimationFrame(loop);
    };
    const onSeeked = () => followPlayer(true);
    const onTime = () => followPlayer(false);
    p.addEventListener("play", onPlay);
    p.addEventListener("seeked", onSeeked);
    p.addEventListener("timeupdate", onTime);
    return () => {
      cancelAnimationFrame(frame);
      p.removeEventListener("play", onPlay);
      p.removeEventListener("seeked", onSeeked);
      p.removeEventListener("timeupdate", onTime);
    };
  }, [followPlayer, audio]);

  // With a key, the audio's token expires after ten minutes: take a new one where it stopped.
  const retried = useRef(0);
  const onAudioError = async () => {
    const p = player.current;
    if (!p || !apiKey() || Date.now() - retried.current < 60000) return;
    retried.current = Date.now();
    const position = p.currentTime;
    try {
      setAudio(await streamUrl(job.id, "audio"));
      p.currentTime = position;
    } catch {
      /* the player says */
    }
  };

  const seek = useCallback((time: number, play = true) => {
    const p = player.current;
    if (!p) return;
    p.currentTime = time + 0.01;
    if (play) p.play().catch(() => {}); // autoplay refused: the position is set anyway
  }, []);

  // Opened from a search result: that moment, in view and under the player's head.
  const opened = useRef(false);
  useEffect(() => {
    if (!result || at === null || opened.current) return;
    opened.current = true;
    const seg = segmentAt(result.segments, at);
    transcript.current?.show(seg, false, true);
    seek(at, false);
  }, [result, at, seek]);

  if (error !== null) {
    return (
      <div id="job-error" className="error-box" role="alert">
        <strong>{t.resultFailed}</strong>
        <p>{error}</p>
      </div>
    );
  }
  if (!result) return <p className="muted">{t.loading}</p>;
  const base = (job.filename || job.id).replace(/\.[^.]+$/, "");

  return (
    <div id="result">
      <div className="result-head">
        <h3 className="sub" id="result-title" tabIndex={-1}>
          {t.transcript}
        </h3>
        <nav id="downloads" className="downloads" aria-label={t.downloads}>
          {FORMATS.map((f) => {
            const link = href("/v1/jobs/{job_id}/result", { path: { job_id: job.id }, query: { format: f } });
            return (
              <a
                key={f}
                href={link}
                download={`${base}.${f}`}
                aria-label={t.downloadAs(f.toUpperCase())}
                onClick={apiKey() ? (e) => void downloadWithKey(e, link, `${base}.${f}`, t.downloadFailed) : undefined}
              >
                {f.toUpperCase()}
              </a>
            );
          })}
        </nav>
      </div>
      <div className="player">
        <audio id="player" ref={player} controls preload="metadata" src={audio ?? undefined} aria-label={t.player} onError={() => void onAudioError()} />
        <label className="follow">
          <input type="checkbox" id="follow" checked={follow} onChange={(e) => setFollow(e.target.checked)} /> {t.follow}
        </label>
      </div>
      <Speakers
        job={job}
        result={result}
        colour={colour}
        names={names}
        people={people}
        status={speakerStatus}
        setStatus={setSpeakerStatus}
        onRenamed={async (remembered) => {
          await corrected();
          if (remembered) onPeopleChanged();
        }}
      />
      <Corrections jobId={job.id} result={result} corrections={corrections} names={names} status={correctionStatus} setStatus={setCorrectionStatus} onUndone={corrected} />
      <Summary jobId={job.id} onSeek={seek} />
      <p className="muted small edit-hint">{t.editHint}</p>
      <Transcript
        ref={transcript}
        jobId={job.id}
        result={result}
        colour={colour}
        names={names}
        now={now}
        onSeek={seek}
        onPause={() => player.current?.pause()}
        setStatus={setCorrectionStatus}
        onCorrected={corrected}
      />
      {result.segments.length === 0 && (
        <p id="transcript-empty" className="muted">
          {t.noSpeechFound}
        </p>
      )}
    </div>
  );
}

// A link cannot send the key: fetch the file with it, then save what came back.
async function downloadWithKey(e: React.MouseEvent, path: string, name: string, failed: (s: number) => string) {
  e.preventDefault();
  const res = await fetch(path, { headers: withKey() });
  if (!res.ok) {
    alert(failed(res.status));
    return;
  }
  const url = URL.createObjectURL(await res.blob());
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}
