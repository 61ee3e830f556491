// The summary beside the transcript and the Ask box, against a fake gateway (fetch answered
// in the test, named as such): a citation plays its moment; an answer streams, then shows
// checked with its moments; a model that cannot be reached is said so, in French too.
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import type { AskAnswer, SummaryAnswer } from "@/api/types";
import { Ask } from "@/components/Ask";
import { Summary } from "@/components/Summary";
import { I18n } from "@/i18n/i18n";
import { en } from "@/i18n/en";
import { fr } from "@/i18n/fr";

const moment = (segment: number, start: number, speaker: string) => ({ segment, start, end: start + 2, speaker });
const summary: SummaryAnswer = {
  job_id: "job-1",
  status: "succeeded",
  error: null,
  summary: {
    language: "en",
    model: "fake",
    summary: [{ text: "Version two ships on Friday.", citations: [moment(0, 12.5, "Alice")] }],
    decisions: [],
    action_items: [{ what: "Write the notes", owner: "S2", owner_speaker: "S2", due: "Thursday", citations: [moment(1, 30, "S2")] }],
    rejected: [{ kind: "due", text: "March 3rd", segments: [1], reason: "no cited segment says it" }],
    chunks: 1,
  },
};

/** A fake gateway answering one JSON body (or an SSE stream) to every request. */
function fakeGateway(status: number, body: string, type = "application/json"): void {
  globalThis.fetch = (async () => new Response(body, { status, headers: { "Content-Type": type } })) as typeof fetch;
}

afterEach(cleanup);

describe("Summary", () => {
  it("shows each item with its moments, and a citation plays that moment", async () => {
    fakeGateway(200, JSON.stringify(summary));
    const seeks: number[] = [];
    render(
      <I18n.Provider value={en}>
        <Summary jobId="job-1" onSeek={(t) => seeks.push(t)} />
      </I18n.Provider>,
    );
    await screen.findByText(/Version two ships on Friday/);
    expect(screen.getByText("None said.")).toBeTruthy(); // no decisions
    expect(screen.getByText(/Speaker 2, due Thursday/)).toBeTruthy();
    expect(screen.getByText(/1 claim left out/)).toBeTruthy();
    fireEvent.click(screen.getByRole("button", { name: "Play from 0:12, Alice" }));
    expect(seeks).toEqual([12.5]);
  });

  it("says why there is no summary when the stage failed", async () => {
    fakeGateway(200, JSON.stringify({ job_id: "job-1", status: "failed", error: "the language model server at http://llm:11434/v1 cannot be reached", summary: null }));
    render(
      <I18n.Provider value={fr}>
        <Summary jobId="job-1" onSeek={() => {}} />
      </I18n.Provider>,
    );
    await screen.findByText(/Pas de résumé : The language model server at http:\/\/llm:11434\/v1 cannot be reached/);
  });
});

describe("Ask", () => {
  const answer: AskAnswer = {
    question: "Who writes the notes?",
    language: "en",
    answer: "Bob writes the notes.",
    declined: false,
    sentences: [{ text: "Bob writes the notes.", citations: [0] }],
    citations: [{ job_id: "job-1", file_name: "standup.wav", segment: 1, start: 30, end: 32, speaker: "Bob", text: "I will write the notes" }],
    dropped: [],
    model: "fake",
  };

  it("streams the draft, then shows the checked answer with its moments", async () => {
    const stream = `event: delta\ndata: {"text": "Bob writes"}\n\nevent: answer\ndata: ${JSON.stringify(answer)}\n\n`;
    fakeGateway(200, stream, "text/event-stream");
    render(
      <I18n.Provider value={en}>
        <Ask />
      </I18n.Provider>,
    );
    fireEvent.change(screen.getByLabelText("A question about your meetings"), { target: { value: "Who writes the notes?" } });
    fireEvent.click(screen.getByRole("button", { name: "Ask" }));
    await screen.findByText(/Answered from 1 moment/);
    expect(screen.getByText("Bob writes the notes.")).toBeTruthy();
    const link = screen.getByRole("link", { name: "standup.wav at 0:30, Bob" });
    expect(link.getAttribute("href")).toBe("#/jobs/job-1?t=30.00");
  });

  it("says the model cannot be reached (a 503), in French", async () => {
    fakeGateway(503, JSON.stringify({ error: { code: "language_model_unavailable", message: "the language model server at http://llm:11434/v1 cannot be reached" } }));
    render(
      <I18n.Provider value={fr}>
        <Ask />
      </I18n.Provider>,
    );
    fireEvent.change(screen.getByLabelText("Une question sur vos réunions"), { target: { value: "Qui ?" } });
    fireEvent.click(screen.getByRole("button", { name: "Demander" }));
    await waitFor(() => expect(screen.getByText(/Impossible d’interroger pour l’instant/)).toBeTruthy());
  });
});
