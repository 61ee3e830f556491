"use client";
// An admin key's team: its API keys, a new one (its token shown once), revoking one.
import { useCallback, useEffect, useRef, useState } from "react";
import { Api } from "@/api/client";
import type { KeyCreated, KeyOut, Me } from "@/api/types";
import type { Messages } from "@/i18n/en";
import { useT } from "@/i18n/i18n";
import { bytes, when } from "@/lib/format";
import { limitsOf, minutes, type LimitFields } from "@/lib/limits";
import { NO_STATUS, type Status } from "@/lib/status";

const EMPTY: LimitFields = { uploadMb: "", durationMin: "", jobs: "" };
const FIELD_IDS: Record<keyof LimitFields, string> = { uploadMb: "key-upload-mb", durationMin: "key-duration-min", jobs: "key-jobs" };

function facts(t: Messages, k: KeyOut): string[] {
  const limits = [
    k.max_upload_bytes != null ? t.keyUploadLimit(bytes(k.max_upload_bytes, t.units)) : null,
    k.max_duration_s != null ? t.keyDurationLimit(minutes(k.max_duration_s, t.decimal)) : null,
    k.max_concurrent_jobs != null ? t.keyJobsLimit(k.max_concurrent_jobs) : null,
  ].filter((f): f is string => f !== null);
  return [`${k.prefix}…`, k.admin ? t.keyAdminRole : t.keyMemberRole, t.keyCreatedAt(when(k.created_at, t.locale)), ...(limits.length ? limits : [t.keyServerLimits])];
}

export function Keys({ me }: { me: Me }) {
  const t = useT();
  const [keys, setKeys] = useState<KeyOut[] | null>(null);
  const [status, setStatus] = useState<Status>(NO_STATUS);
  const [name, setName] = useState("");
  const [admin, setAdmin] = useState(false);
  const [fields, setFields] = useState<LimitFields>(EMPTY);
  const [invalid, setInvalid] = useState<keyof LimitFields | null>(null);
  const [busy, setBusy] = useState(false);
  const [made, setMade] = useState<KeyCreated | null>(null); // its token, until "done"
  const [asking, setAsking] = useState<string | null>(null); // the key whose revoke waits for a yes
  const title = useRef<HTMLHeadingElement>(null);
  const confirmButton = useRef<HTMLButtonElement>(null);
  const token = useRef<HTMLInputElement>(null);

  const load = useCallback(async () => {
    try {
      setKeys(await Api.keys());
    } catch (e) {
      setStatus({ text: t.keysNotLoaded((e as Error).message), bad: true });
    }
  }, [t]);
  useEffect(() => {
    void load();
  }, [load]);
  useEffect(() => {
    if (asking) confirmButton.current?.focus();
  }, [asking]);
  useEffect(() => {
    token.current?.focus();
  }, [made]);

  const labels: Record<keyof LimitFields, string> = { uploadMb: t.keyUploadMb, durationMin: t.keyDurationMin, jobs: t.keyJobs };

  const create = async (e: React.FormEvent) => {
    e.preventDefault();
    const n = name.trim();
    if (!n) {
      setStatus({ text: t.keyNameNeeded, bad: true });
      document.getElementById("key-name")?.focus();
      return;
    }
    const asked = limitsOf(fields);
    if ("bad" in asked) {
      setInvalid(asked.bad);
      setStatus({ text: (asked.bad === "jobs" ? t.keyBadJobs : t.keyBadLimit)(labels[asked.bad]), bad: true });
      document.getElementById(FIELD_IDS[asked.bad])?.focus();
      return;
    }
    setInvalid(null);
    setBusy(true);
    setStatus({ text: t.keyCreating, bad: false });
    try {
      const created = await Api.createKey({ name: n, admin, ...asked.limits });
      setMade(created);
      setName("");
      setAdmin(false);
      setFields(EMPTY);
      setStatus({ text: t.keyMade(created.key.name), bad: false });
      await load();
    } catch (err) {
      setStatus({ text: t.keyNotCreated((err as Error).message), bad: true });
    } finally {
      setBusy(false);
    }
  };

  const revoke = async (k: KeyOut) => {
    setAsking(null);
    title.current?.focus();
    try {
      await Api.revokeKey(k.id);
      setStatus({ text: t.keyRevoked(k.name), bad: false });
    } catch (err) {
      setStatus({ text: t.keyNotRevoked((err as Error).message), bad: true });
    }
    await load();
  };

  const cancel = (id: string) => {
    setAsking(null);
    requestAnimationFrame(() => document.querySelector<HTMLButtonElement>(`#key-list li[data-key="${CSS.escape(id)}"] .revoke`)?.focus());
  };

  const copy = async () => {
    token.current?.select();
    try {
      await navigator.clipboard.writeText(made?.token ?? "");
      setStatus({ text: t.copied, bad: false });
    } catch {
      setStatus({ text: t.copyFailed, bad: true }); // the token is selected: Ctrl+C does it
    }
  };

  const limitField = (field: keyof LimitFields, mode: "decimal" | "numeric") => (
    <label>
      {labels[field]}
      <input
        id={FIELD_IDS[field]}
        inputMode={mode}
        autoComplete="off"
        value={fields[field]}
        aria-invalid={invalid === field || undefined}
        onChange={(e) => setFields((f) => ({ ...f, [field]: e.target.value }))}
      />
    </label>
  );

  return (
    <section className="card" id="keys" aria-labelledby="keys-title">
      <h2 id="keys-title" ref={title} tabIndex={-1}>
        {t.keysTitle}
      </h2>
      <p className="muted small">{t.keysIntro(me.tenant ?? "")}</p>
      <ul id="key-list" className="people-list key-list">
        {(keys ?? []).map((k) => (
          <li key={k.id} data-key={k.id} data-revoked={k.revoked_at ? "true" : undefined}>
            <span className="who">
              {k.name}
              <small>{facts(t, k).join(" · ")}</small>
              {k.revoked_at && <small className="revoked">{t.keyRevokedAt(when(k.revoked_at, t.locale))}</small>}
            </span>
            {k.id === me.key_id ? (
              <span className="badge this-key">{t.keyThis}</span>
            ) : (
              !k.revoked_at &&
              asking !== k.id && (
                <button type="button" className="danger revoke" aria-label={t.keyRevokeLabel(k.name)} onClick={() => setAsking(k.id)}>
                  {t.keyRevoke}
                </button>
              )
            )}
            {asking === k.id && (
              <div className="key-confirm" onKeyDown={(e) => e.key === "Escape" && cancel(k.id)}>
                <span>{t.keyRevokeAsk(k.name)}</span>
                <button type="button" className="danger confirm" ref={confirmButton} onClick={() => void revoke(k)}>
                  {t.keyRevokeConfirm}
                </button>
                <button type="button" className="quiet" onClick={() => cancel(k.id)}>
                  {t.cancel}
                </button>
              </div>
            )}
          </li>
        ))}
      </ul>
      <h3 className="sub">{t.keyNew}</h3>
      <form id="key-create" className="key-create" onSubmit={(e) => void create(e)}>
        <div className="fields">
          <label className="key-name">
            {t.keyName}
            <input id="key-name" required maxLength={100} autoComplete="off" value={name} onChange={(e) => setName(e.target.value)} />
          </label>
          <label className="check">
            <input id="key-admin" type="checkbox" checked={admin} onChange={(e) => setAdmin(e.target.checked)} /> {t.keyAdmin}
          </label>
        </div>
        <fieldset className="key-limits">
          <legend>{t.keyLimits}</legend>
          <p className="muted small">{t.keyLimitsHint}</p>
          <div className="fields">
            {limitField("uploadMb", "decimal")}
            {limitField("durationMin", "decimal")}
            {limitField("jobs", "numeric")}
          </div>
        </fieldset>
        <div className="actions">
          <button type="submit" className="primary" disabled={busy}>
            {t.keyCreate}
          </button>
        </div>
      </form>
      {made && (
        <div id="key-made" className="key-made">
          <label htmlFor="key-token">{t.keyToken(made.key.name)}</label>
          <div className="token-row">
            <input id="key-token" ref={token} readOnly value={made.token} spellCheck={false} autoComplete="off" aria-describedby="key-once" onFocus={(e) => e.currentTarget.select()} />
            <button type="button" id="key-copy" onClick={() => void copy()}>
              {t.copy}
            </button>
          </div>
          <p id="key-once" className="small">
            {t.keyTokenOnce}
          </p>
          <button
            type="button"
            className="quiet"
            onClick={() => {
              setMade(null);
              document.getElementById("key-name")?.focus();
            }}
          >
            {t.done}
          </button>
        </div>
      )}
      <p id="keys-status" className={`status${status.bad ? " bad" : ""}`} role="status" aria-live="polite">
        {status.text}
      </p>
    </section>
  );
}
