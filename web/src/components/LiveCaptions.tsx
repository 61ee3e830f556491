"use client";
// A live meeting's captions on its job's page: final words grouped by speaker (named when
// the voice is enrolled), and the words the next pass may still change, greyed.
import type { JobEvent } from "@/api/types";
import { useT } from "@/i18n/i18n";
import { clock } from "@/lib/format";

export interface CaptionLine {
  speaker: string | null;
  start: number;
  text: string;
}

export interface Captions {
  lines: CaptionLine[];
  unstable: string;
  names: Record<string, string>;
}

export const noCaptions: Captions = { lines: [], unstable: "", names: {} };

/** The captions after one `live.caption` event. */
export function addCaption(c: Captions, e: JobEvent): Captions {
  const cap = e.caption;
  if (!cap) return c;
  const names = cap.speaker && cap.name ? { ...c.names, [cap.speaker]: cap.name } : c.names;
  const lines = [...c.lines];
  const words = (cap.final ?? []).map((w) => w.word).join(" ");
  if (words) {
    const last = lines[lines.length - 1];
    const speaker = cap.speaker ?? null;
    if (last && last.speaker === speaker) lines[lines.length - 1] = { ...last, text: `${last.text} ${words}` };
    else lines.push({ speaker, start: cap.final?.[0]?.start ?? 0, text: words });
  }
  return { lines, names, unstable: (cap.unstable ?? []).map((w) => w.word).join(" ") };
}

export function LiveCaptions({ captions, ended }: { captions: Captions; ended: boolean }) {
  const t = useT();
  return (
    <section id="live-captions" aria-live="polite" aria-labelledby="live-captions-title" data-ended={ended}>
      <h3 id="live-captions-title">{ended ? t.liveDraft : t.liveNow}</h3>
      {captions.lines.length === 0 && !captions.unstable && <p className="muted">{t.liveWaiting}</p>}
      {captions.lines.map((line, i) => (
        <p key={i} className="caption" data-speaker={line.speaker ?? ""}>
          <span className="caption-who">
            {(line.speaker && captions.names[line.speaker]) || line.speaker || t.liveSomeone} · {clock(line.start)}
          </span>{" "}
          <span className="caption-text">{line.text}</span>
        </p>
      ))}
      {captions.unstable && (
        <p className="caption unstable muted" id="live-unstable">
          {captions.unstable}
        </p>
      )}
    </section>
  );
}
