"use client";
// Known voices: who consented, until when; each can be forgotten.
import { Api } from "@/api/client";
import type { Person } from "@/api/types";
import { useT } from "@/i18n/i18n";
import { day } from "@/lib/format";

export function People({ people, onChanged }: { people: Person[]; onChanged: () => void }) {
  const t = useT();
  const forget = async (p: Person) => {
    if (!confirm(t.forgetConfirm(p.name))) return;
    try {
      await Api.forget(p.id);
    } catch (e) {
      alert((e as Error).message);
    }
    onChanged();
  };
  return (
    <section className="card" id="people" aria-labelledby="people-title">
      <h2 id="people-title">{t.knownVoices}</h2>
      <p className="muted small">{t.knownVoicesHint}</p>
      <ul id="people-list" className="people-list">
        {people.map((p) => {
          const facts = [
            p.num_clips ? t.clips(p.num_clips) : t.fromRecording,
            p.consent_by ? t.consentBy(p.consent_by) : t.noConsent,
            p.expires_at ? t.until(day(p.expires_at, t.locale)) : null,
          ].filter(Boolean);
          return (
            <li key={p.id} data-person={p.id}>
              <span className="who">
                {p.name}
                <small>{facts.join(" · ")}</small>
              </span>
              <button type="button" className="danger" aria-label={t.forgetLabel(p.name)} onClick={() => void forget(p)}>
                {t.forget}
              </button>
            </li>
          );
        })}
      </ul>
      {people.length === 0 && (
        <p id="people-empty" className="muted">
          {t.nobody}
        </p>
      )}
    </section>
  );
}
