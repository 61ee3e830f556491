"use client";
// One line in place: its words and who said it (Enter saves, Escape cancels), or some of its
// words given to another speaker (choose the first and the last, then the speaker).
import { useState } from "react";
import { Api } from "@/api/client";
import type { MeetingResult, Segment } from "@/api/types";
import { useT } from "@/i18n/i18n";
import { clock, quote } from "@/lib/format";
import { defaultName } from "@/lib/names";
import { lineChanges, lineText, nextLabel, pickWord, wordsReassign, wordTexts, type WordRange } from "@/lib/transcript";
import type { Status } from "@/lib/status";

interface Props {
  jobId: string;
  result: MeetingResult;
  seg: Segment;
  index: number;
  names: Record<string, string>;
  onClose: (saved: boolean) => void;
  onSaved: () => Promise<void>;
  setStatus: (s: Status) => void;
}

export function LineEditor({ jobId, result, seg, index: i, names, onClose, onSaved, setStatus }: Props) {
  const t = useT();
  const at = t.lineAt(clock(seg.start));
  const shown = lineText(seg);
  const fresh = nextLabel(result.speakers);
  const who = (label: string) => names[label] ?? defaultName(t, label);
  const [speaker, setSpeaker] = useState(seg.speaker);
  const [text, setText] = useState(shown);
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const words = wordTexts(seg);
  const [range, setRange] = useState<WordRange | null>(null);
  const others = result.speakers.filter((s) => s.id !== seg.speaker);
  const [giveTo, setGiveTo] = useState(others[0]?.id ?? fresh);

  const save = async (e: React.FormEvent) => {
    e.preventDefault();
    const typed = text.replace(/\s+/g, " ").trim();
    if (!typed) {
      setError(t.typeLine);
      document.getElementById(`edit-text-${i}`)?.focus();
      return;
    }
    const changes = lineChanges(seg, i, speaker, typed);
    if (!changes.length) {
      onClose(false);
      setStatus({ text: t.nothingChanged(at), bad: false });
      return;
    }
    setBusy(true);
    let saved = 0;
    let partly: string | null = null;
    try {
      for (const body of changes) {
        await Api.correct(jobId, body);
        saved++;
      }
    } catch (err) {
      if (!saved) {
        setBusy(false);
        setError(t.notSaved((err as Error).message));
        return;
      }
      partly = (err as Error).message;
    }
    const said = changes.map((c) => (c.kind === "reassign" ? t.isSaidBy(who(c.speaker)) : t.reads(quote(typed))));
    await onSaved();
    setStatus(partly === null ? { text: t.savedLine(at, said.join(t.and)), bad: false } : { text: t.partlySaved(partly), bad: true });
    onClose(true);
  };

  const give = async () => {
    if (!range) return;
    setBusy(true);
    try {
      await Api.correct(jobId, wordsReassign(i, range, giveTo, words.length));
    } catch (err) {
      setBusy(false);
      setError(t.notSaved((err as Error).message));
      return;
    }
    await onSaved();
    setStatus({ text: t.gaveWords(range.end - range.start, who(giveTo)), bad: false });
    onClose(true);
  };

  const escape = (e: React.KeyboardEvent) => {
    if (e.key === "Escape") {
      e.preventDefault();
      e.stopPropagation();
      onClose(false);
    }
  };

  return (
    <div className="editor" onKeyDown={escape}>
      <form className="edit-form" aria-label={t.editLine(clock(seg.start), who(seg.speaker))} onSubmit={(e) => void save(e)}>
        <div className="edit-row">
          <label htmlFor={`edit-speaker-${i}`}>{t.saidBy}</label>
          <select id={`edit-speaker-${i}`} name="speaker" value={speaker} onChange={(e) => setSpeaker(e.target.value)}>
            {result.speakers.map((s) => (
              <option key={s.id} value={s.id}>
                {who(s.id)}
              </option>
            ))}
            <option value={fresh}>{t.newSpeaker(defaultName(t, fresh))}</option>
          </select>
        </div>
        <label htmlFor={`edit-text-${i}`} className="sr-only">
          {t.textOf(at)}
        </label>
        <textarea
          id={`edit-text-${i}`}
          name="text"
          rows={3}
          maxLength={10000}
          required
          spellCheck
          aria-describedby={`edit-keys-${i}`}
          value={text}
          autoFocus
          onFocus={(e) => e.currentTarget.setSelectionRange(e.currentTarget.value.length, e.currentTarget.value.length)}
          onChange={(e) => setText(e.target.value)}
          onKeyDown={(e) => {
            // A line is one line in every format: Enter saves instead of breaking it.
            if (e.key === "Enter" && !e.shiftKey && !e.nativeEvent.isComposing) {
              e.preventDefault();
              e.currentTarget.form?.requestSubmit();
            }
          }}
        />
        <div className="edit-row">
          <button type="submit" className="primary" disabled={busy}>
            {t.save}
          </button>
          <button type="button" onClick={() => onClose(false)}>
            {t.cancel}
          </button>
          <span id={`edit-keys-${i}`} className="muted small">
            {t.keysHint}
          </span>
        </div>
      </form>
      {words.length >= 2 && (
        <div className="give-words" role="group" aria-labelledby={`give-title-${i}`}>
          <p id={`give-title-${i}`} className="give-title">
            {t.giveWords}
          </p>
          <p className="muted small">{t.giveWordsHint}</p>
          <div className="word-picks">
            {words.map((w, j) => {
              const chosen = range !== null && j >= range.start && j < range.end;
              return (
                <button
                  key={j}
                  type="button"
                  className="pick"
                  data-word={j}
                  aria-pressed={chosen}
                  aria-label={t.wordButton(w, j)}
                  onClick={() => setRange((r) => pickWord(r, j))}
                >
                  {w}
                </button>
              );
            })}
          </div>
          <div className="edit-row">
            <label htmlFor={`give-speaker-${i}`}>{t.giveTo}</label>
            <select id={`give-speaker-${i}`} value={giveTo} onChange={(e) => setGiveTo(e.target.value)}>
              {others.map((s) => (
                <option key={s.id} value={s.id}>
                  {who(s.id)}
                </option>
              ))}
              <option value={fresh}>{t.newSpeaker(defaultName(t, fresh))}</option>
            </select>
            <button type="button" className="primary give" disabled={busy || range === null} onClick={() => void give()}>
              {t.giveButton}
            </button>
            <span className="muted small" aria-live="polite">
              {range ? t.wordsChosen(range.end - range.start) : ""}
            </span>
          </div>
        </div>
      )}
      {error && (
        <p className="status bad" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}
