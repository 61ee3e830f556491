"use client";
// Only when the server asks for a key (auth on). Kept in this browser only.
import { useEffect, useState } from "react";
import { apiKey, saveApiKey } from "@/api/client";
import { useT } from "@/i18n/i18n";

export function ApiKey({ needed, onSaved }: { needed: string | null; onSaved: () => void }) {
  const t = useT();
  const [value, setValue] = useState("");
  const [status, setStatus] = useState<{ text: string; bad: boolean } | null>(null);
  // After hydration: the static HTML has no key, and the first render must match it.
  useEffect(() => setValue(apiKey()), []);
  if (needed === null && !value && !status) return null;
  const message = needed === null ? status : { text: needed === "needed" ? t.needsKey : needed, bad: true };
  return (
    <form
      id="api-key"
      className="api-key"
      onSubmit={(e) => {
        e.preventDefault();
        const v = value.trim();
        saveApiKey(v);
        setStatus({ text: v ? t.saved : t.cleared, bad: false });
        onSaved();
      }}
    >
      <label>
        {t.apiKey}{" "}
        <input id="api-key-input" type="password" autoComplete="off" placeholder="scr_…" value={value} onChange={(e) => setValue(e.target.value)} />
      </label>
      <button type="submit" className="quiet">
        {t.save}
      </button>
      <span id="api-key-status" className={`status${message?.bad ? " bad" : ""}`} role="status">
        {message?.text}
      </span>
    </form>
  );
}
