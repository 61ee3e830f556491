"use client";
// Every correction, newest first, each with an Undo.
import { useRef } from "react";
import { Api, ApiError } from "@/api/client";
import type { Correction, MeetingResult } from "@/api/types";
import { useT } from "@/i18n/i18n";
import { describe, keptVoice } from "@/lib/corrections";
import { focusSoon } from "@/lib/focus";
import { when } from "@/lib/format";
import type { Status } from "@/lib/status";

interface Props {
  jobId: string;
  result: MeetingResult;
  corrections: Correction[];
  names: Record<string, string>;
  status: Status;
  setStatus: (s: Status) => void;
  onUndone: () => Promise<void>;
}

export function Corrections({ jobId, result, corrections, names, status, setStatus, onUndone }: Props) {
  const t = useT();
  const list = useRef<HTMLOListElement>(null);
  // Newest first: the one to undo is most often the last one made.
  const newest = [...corrections].reverse();

  const undo = async (c: Correction, what: string, at: number) => {
    try {
      await Api.undo(jobId, c.id);
    } catch (err) {
      // 409: it split a line, and later corrections point at the lines as split.
      const why = err instanceof ApiError && err.status === 409 ? t.undoBlocked : (err as Error).message;
      setStatus({ text: t.cannotUndo(why), bad: true });
      return;
    }
    await onUndone();
    setStatus({ text: t.undone(what) + (keptVoice(c) ? t.voiceKept : ""), bad: false });
    // Focus stays in the list: on the correction now in that place, else the transcript's
    // title; once the list is drawn without the one undone.
    const before = corrections.length;
    focusSoon(() => {
      const left = list.current?.querySelectorAll<HTMLButtonElement>("button.undo") ?? [];
      if (left.length !== before - 1) return before === 1 ? document.getElementById("result-title") : null;
      return left[Math.min(at, left.length - 1)] ?? document.getElementById("result-title");
    });
  };

  return (
    <>
      {newest.length > 0 && (
        <div id="corrections-box">
          <h3 className="sub" id="corrections-title" tabIndex={-1}>
            {t.corrections}
          </h3>
          <ol id="corrections" className="corrections" aria-labelledby="corrections-title" ref={list}>
            {newest.map((c, at) => {
              const what = describe(t, c, result, names);
              return (
                <li key={c.id} data-correction={c.id} data-kind={c.kind}>
                  <span className="what">{what}</span>
                  {c.created_at && (
                    <time className="when" dateTime={c.created_at}>
                      {when(c.created_at, t.locale)}
                    </time>
                  )}
                  <button type="button" className="quiet undo" aria-label={t.undoLabel(what)} onClick={() => void undo(c, what, at)}>
                    {t.undo}
                  </button>
                </li>
              );
            })}
          </ol>
        </div>
      )}
      <p id="correction-status" className={`status${status.bad ? " bad" : ""}`} role="status" aria-live="polite">
        {status.text}
      </p>
    </>
  );
}
