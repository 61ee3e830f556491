// The speakers list against a fake gateway (fetch answered in the test, named as such): a
// suggestion ("Alice?") is shown, never as the name, and one click confirms it with the
// rename the page already sends, linked to the suggested voiceprint.
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import type { Job, MeetingResult } from "@/api/types";
import { Speakers } from "@/components/Speakers";
import { I18n } from "@/i18n/i18n";
import { en } from "@/i18n/en";
import { fr } from "@/i18n/fr";

const job: Job = {
  id: "job-1",
  status: "succeeded",
  size_bytes: 10,
  upload_sha256: "0".repeat(64),
  created_at: "2026-12-01T00:00:00Z",
  updated_at: "2026-12-01T00:00:00Z",
};

const result: MeetingResult = {
  schema_version: 1,
  job_id: "job-1",
  duration_s: 60,
  language: "en",
  speakers: [
    { id: "S1", name: "Bob", speaker_id: "vp-bob", confidence: 0.91, talk_time_s: 30 },
    { id: "S2", talk_time_s: 20, suggestion: { speaker_id: "vp-alice", name: "Alice", score: 0.62 } },
  ],
  segments: [],
};

/** A fake gateway: records each request's method, path and body. */
function fakeGateway(): { sent: { method: string; url: string; body: unknown }[] } {
  const sent: { method: string; url: string; body: unknown }[] = [];
  globalThis.fetch = (async (request: Request) => {
    sent.push({ method: request.method, url: request.url, body: await request.json() });
    return new Response(JSON.stringify({ id: "S2", name: "Alice", speaker_id: "vp-alice", talk_time_s: 20 }), { status: 200 });
  }) as typeof fetch;
  return { sent };
}

function list(messages = en) {
  const renamed: boolean[] = [];
  render(
    <I18n.Provider value={messages}>
      <Speakers
        job={job}
        result={result}
        colour={{ S1: "#000", S2: "#111" }}
        names={{ S1: "Bob", S2: messages.defaultName(2) }}
        people={[]}
        status={{ text: "", bad: false }}
        setStatus={() => {}}
        onRenamed={async (remembered) => {
          renamed.push(remembered);
        }}
      />
    </I18n.Provider>,
  );
  return { renamed };
}

afterEach(cleanup);

describe("Speakers", () => {
  it("shows a suggestion beside the speaker's own label, not as their name", () => {
    fakeGateway();
    list();
    expect(screen.getByText("Alice? (62% match, not confirmed)")).toBeTruthy();
    const row = document.querySelector('[data-speaker="S2"] .speaker-name');
    expect(row?.textContent).toBe(en.defaultName(2));
    // a named speaker gets no suggestion line
    expect(document.querySelector('[data-speaker="S1"] .speaker-suggestion')).toBeNull();
  });

  it("confirms the suggestion in one click with the rename, linked to the voiceprint", async () => {
    const gw = fakeGateway();
    const { renamed } = list();
    fireEvent.click(screen.getByRole("button", { name: `Confirm that ${en.defaultName(2)} is Alice` }));
    await waitFor(() => expect(renamed).toEqual([false]));
    expect(gw.sent).toHaveLength(1);
    expect(gw.sent[0]!.method).toBe("PATCH");
    expect(gw.sent[0]!.url).toContain("/v1/jobs/job-1/speakers/S2");
    expect(gw.sent[0]!.body).toEqual({ name: "Alice", speaker_id: "vp-alice", remember: false });
  });

  it("speaks French", () => {
    fakeGateway();
    list(fr);
    expect(screen.getByText("Alice ? (62 % de ressemblance, non confirmé)")).toBeTruthy();
    expect(screen.getByRole("button", { name: `Confirmer que ${fr.defaultName(2)} est Alice` })).toBeTruthy();
  });
});
