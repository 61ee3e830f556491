// The line editor against a fake gateway (fetch answered in the test, named as such): the
// corrections it sends for a typed line and for words given to another speaker.
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import type { MeetingResult } from "@/api/types";
import { LineEditor } from "@/components/LineEditor";
import { I18n } from "@/i18n/i18n";
import { en } from "@/i18n/en";
import { fr } from "@/i18n/fr";

const result: MeetingResult = {
  schema_version: 1,
  job_id: "job-1",
  duration_s: 10,
  language: "en",
  speakers: [
    { id: "S1", name: "Alice", talk_time_s: 5 },
    { id: "S2", talk_time_s: 5 },
  ],
  segments: [
    {
      start: 2,
      end: 4,
      speaker: "S1",
      text: "we ship on friday",
      words: ["we", "ship", "on", "friday"].map((w, j) => ({ start: 2 + j * 0.5, end: 2.4 + j * 0.5, word: ` ${w}`, probability: 0.9, speaker: "S1" })),
    },
  ],
};

/** A fake gateway: records each request's body and answers 201. */
function fakeGateway(): { sent: unknown[] } {
  const sent: unknown[] = [];
  globalThis.fetch = (async (request: Request) => {
    sent.push(await request.json());
    return new Response(JSON.stringify({ id: "c1", job_id: "job-1", kind: "reassign" }), { status: 201 });
  }) as typeof fetch;
  return { sent };
}

function editor(messages = en) {
  const statuses: string[] = [];
  const closed: boolean[] = [];
  render(
    <I18n.Provider value={messages}>
      <LineEditor
        jobId="job-1"
        result={result}
        seg={result.segments[0]!}
        index={0}
        names={{ S1: "Alice", S2: messages.defaultName(2) }}
        onClose={(saved) => closed.push(saved)}
        onSaved={async () => {}}
        setStatus={(s) => statuses.push(s.text)}
      />
    </I18n.Provider>,
  );
  return { statuses, closed };
}

afterEach(cleanup);

describe("LineEditor", () => {
  it("saves one changed word as a word correction with Enter", async () => {
    const gateway = fakeGateway();
    const { statuses, closed } = editor();
    const text = screen.getByLabelText("Text of the line at 0:02");
    fireEvent.change(text, { target: { value: "we ship on monday" } });
    fireEvent.keyDown(text, { key: "Enter" });
    await waitFor(() => expect(closed).toEqual([true]));
    expect(gateway.sent).toEqual([{ kind: "fix_text", segment: 0, word: 3, text: "monday" }]);
    expect(statuses).toEqual(["Saved: the line at 0:02 reads “we ship on monday”."]);
  });

  it("gives the chosen words to another speaker", async () => {
    const gateway = fakeGateway();
    const { statuses } = editor();
    const give = screen.getByRole("button", { name: "Give these words" });
    expect((give as HTMLButtonElement).disabled).toBe(true);
    fireEvent.click(screen.getByRole("button", { name: "word 4: friday" }));
    fireEvent.click(screen.getByRole("button", { name: "word 3: on" }));
    expect(screen.getByRole("button", { name: "word 3: on" }).getAttribute("aria-pressed")).toBe("true");
    expect(screen.getByRole("button", { name: "word 2: ship" }).getAttribute("aria-pressed")).toBe("false");
    fireEvent.click(give);
    await waitFor(() => expect(gateway.sent).toHaveLength(1));
    expect(gateway.sent[0]).toEqual({ kind: "reassign", segment: 0, speaker: "S2", word_start: 2, word_end: 4 });
    await waitFor(() => expect(statuses).toEqual(["Saved: 2 words given to Speaker 2."]));
  });

  it("cancels with Escape and sends nothing", () => {
    const gateway = fakeGateway();
    const { closed } = editor();
    fireEvent.keyDown(screen.getByLabelText("Text of the line at 0:02"), { key: "Escape" });
    expect(closed).toEqual([false]);
    expect(gateway.sent).toEqual([]);
  });

  it("speaks French", () => {
    fakeGateway();
    editor(fr);
    expect(screen.getByRole("button", { name: "Donner ces mots" })).toBeTruthy();
    expect(screen.getByLabelText("Dit par")).toBeTruthy();
  });
});
