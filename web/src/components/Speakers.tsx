"use client";
// The job's speakers: rename one, optionally remembering the voice with the consent given.
import { useRef, useState } from "react";
import { Api } from "@/api/client";
import type { Job, MeetingResult, Person, ResultSpeaker, SpeakerRename } from "@/api/types";
import { useT } from "@/i18n/i18n";
import { focusSoon } from "@/lib/focus";
import { clock } from "@/lib/format";
import type { Status } from "@/lib/status";

interface Props {
  job: Job;
  result: MeetingResult;
  colour: Record<string, string>;
  names: Record<string, string>;
  people: Person[];
  status: Status;
  setStatus: (s: Status) => void;
  onRenamed: (remembered: boolean) => Promise<void>;
}

export function Speakers({ job, result, colour, names, people, status, setStatus, onRenamed }: Props) {
  const t = useT();
  const [renaming, setRenaming] = useState<string | null>(null);
  const list = useRef<HTMLUListElement>(null);
  const focusRename = (label: string) => focusSoon(() => list.current?.querySelector<HTMLButtonElement>(`[data-speaker="${label}"] .rename`));

  return (
    <>
      <h3 className="sub">{t.speakers}</h3>
      <ul id="speakers" className="speakers" ref={list}>
        {result.speakers.map((s) => {
          const shown = names[s.id] ?? s.id;
          const swatch = <span className="swatch" style={{ background: colour[s.id] }} aria-hidden="true" />;
          if (renaming === s.id) {
            return (
              <li key={s.id} data-speaker={s.id}>
                {swatch}
                <RenameForm
                  speaker={s}
                  shown={shown}
                  people={people}
                  onCancel={() => {
                    setRenaming(null);
                    focusRename(s.id);
                  }}
                  onSave={async (body) => {
                    try {
                      await Api.rename(job.id, s.id, body);
                    } catch (err) {
                      setStatus({ text: (err as Error).message, bad: true });
                      return;
                    }
                    setStatus({ text: t.renamed(shown, body.name, Boolean(body.remember)), bad: false });
                    setRenaming(null);
                    await onRenamed(Boolean(body.remember));
                    focusRename(s.id);
                  }}
                  setStatus={setStatus}
                />
              </li>
            );
          }
          const facts = [
            t.talking(clock(s.talk_time_s)),
            s.speaker_id ? (s.confidence != null ? t.recognised(Math.round(100 * s.confidence)) : t.knownVoice) : null,
          ].filter(Boolean);
          // Close to an enrolled person but below what names them: "Alice?", never their name
          // until someone confirms it (the rename, linked to that voiceprint).
          const hint = !s.speaker_id && !s.name ? s.suggestion : null;
          const confirm = async () => {
            if (!hint) return;
            try {
              await Api.rename(job.id, s.id, { name: hint.name, speaker_id: hint.speaker_id, remember: false });
            } catch (err) {
              setStatus({ text: (err as Error).message, bad: true });
              return;
            }
            setStatus({ text: t.renamed(shown, hint.name, false), bad: false });
            await onRenamed(false);
            focusRename(s.id);
          };
          return (
            <li key={s.id} data-speaker={s.id}>
              {swatch}
              <span className="speaker-label">
                <span className="speaker-name">{shown}</span>
                <span className="speaker-facts">{facts.join(" · ")}</span>
                {hint && <span className="speaker-suggestion">{t.suggested(hint.name, Math.round(100 * hint.score))}</span>}
              </span>
              {hint && (
                <button type="button" className="quiet confirm" aria-label={t.confirmSuggestionLabel(shown, hint.name)} onClick={() => void confirm()}>
                  {t.confirmSuggestion(hint.name)}
                </button>
              )}
              <button type="button" className="quiet rename" aria-label={t.renameLabel(shown)} onClick={() => setRenaming(s.id)}>
                {t.rename}
              </button>
            </li>
          );
        })}
      </ul>
      <p id="speaker-status" className={`status${status.bad ? " bad" : ""}`} role="status" aria-live="polite">
        {status.text}
      </p>
    </>
  );
}

interface FormProps {
  speaker: ResultSpeaker;
  shown: string;
  people: Person[];
  onCancel: () => void;
  onSave: (body: SpeakerRename) => Promise<void>;
  setStatus: (s: Status) => void;
}

function RenameForm({ speaker, shown, people, onCancel, onSave, setStatus }: FormProps) {
  const t = useT();
  const [name, setName] = useState(speaker.name ?? "");
  const [remember, setRemember] = useState(false);
  const [consentBy, setConsentBy] = useState("");
  const [note, setNote] = useState("");
  const [expires, setExpires] = useState("");
  const [busy, setBusy] = useState(false);
  const id = speaker.id;

  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    const n = name.trim();
    if (!n) {
      setStatus({ text: t.typeName, bad: true });
      document.getElementById(`rename-${id}`)?.focus();
      return;
    }
    if (remember && !consentBy.trim()) {
      setStatus({ text: t.consentNeeded, bad: true });
      document.getElementById(`consent-by-${id}`)?.focus();
      return;
    }
    const body: SpeakerRename = { name: n, remember };
    // The same person as a known voice: link (and, remembering, refine) them.
    const known = people.find((p) => p.name.toLowerCase() === n.toLowerCase());
    if (known) body.speaker_id = known.id;
    if (remember) {
      body.consent_by = consentBy.trim();
      if (note.trim()) body.consent_note = note.trim();
      if (expires) body.expires_at = `${expires}T00:00:00Z`;
    }
    setBusy(true);
    await onSave(body);
    setBusy(false);
  };

  return (
    <form
      className="rename-form"
      noValidate
      onSubmit={(e) => void submit(e)}
      onKeyDown={(e) => {
        if (e.key === "Escape") onCancel();
      }}
    >
      <label htmlFor={`rename-${id}`} className="sr-only">
        {t.newNameFor(shown)}
      </label>
      <input type="text" id={`rename-${id}`} name="name" value={name} required maxLength={200} autoComplete="off" list="people-names" placeholder={shown} autoFocus onChange={(e) => setName(e.target.value)} />
      <label className="check">
        <input type="checkbox" name="remember" checked={remember} onChange={(e) => setRemember(e.target.checked)} /> {t.rememberVoice}
      </label>
      {remember && (
        <fieldset className="consent">
          <legend>{t.consentLegend}</legend>
          <p className="muted small">{t.consentExplain}</p>
          <label>
            {t.consentWho}
            <input id={`consent-by-${id}`} name="consent_by" required maxLength={200} autoComplete="off" value={consentBy} onChange={(e) => setConsentBy(e.target.value)} />
          </label>
          <label>
            {t.consentNote}
            <input id={`consent-note-${id}`} name="consent_note" maxLength={2000} placeholder={t.consentNoteHint} value={note} onChange={(e) => setNote(e.target.value)} />
          </label>
          <label>
            {t.consentExpires}
            <input id={`consent-expires-${id}`} name="expires_at" type="date" value={expires} onChange={(e) => setExpires(e.target.value)} />
          </label>
        </fieldset>
      )}
      <button type="submit" className="primary" disabled={busy}>
        {t.save}
      </button>
      <button type="button" onClick={onCancel}>
        {t.cancel}
      </button>
    </form>
  );
}
