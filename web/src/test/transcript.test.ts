import { describe, expect, it } from "vitest";
import type { Segment } from "@/api/types";
import { lineChanges, nextLabel, paragraphOf, paragraphs, pickWord, textFix, wordAt, wordIndex, wordsReassign } from "@/lib/transcript";
import { applyEvent, downstream, emptyRows, stageLabel } from "@/lib/stages";
import { chooseLanguage } from "@/i18n/i18n";
import { bytes, clock, seconds } from "@/lib/format";

function seg(start: number, speaker: string, text: string): Segment {
  const words = text.split(" ").map((w, j) => ({ start: start + j * 0.3, end: start + j * 0.3 + 0.25, word: ` ${w}`, probability: 0.9, speaker }));
  return { start, end: start + words.length * 0.3, speaker, text, words };
}

const segments = [seg(0, "S1", "Hello there"), seg(1, "S1", "how are you"), seg(2, "S2", "Fine thanks"), seg(3, "S1", "Good")];

describe("paragraphs", () => {
  it("joins consecutive lines of one speaker", () => {
    const p = paragraphs(segments);
    expect(p.map((x) => [x.speaker, x.first, x.last])).toEqual([
      ["S1", 0, 1],
      ["S2", 2, 2],
      ["S1", 3, 3],
    ]);
    expect(p[0]!.words).toBe(5);
  });
  it("finds the paragraph of a line", () => {
    const p = paragraphs(segments);
    expect([0, 1, 2, 3].map((i) => paragraphOf(p, i))).toEqual([0, 0, 1, 2]);
  });
});

describe("the line editor's corrections", () => {
  it("corrects only the word that changed, so the others keep their timings", () => {
    expect(textFix(segments[1]!, 1, "how were you")).toEqual({ kind: "fix_text", segment: 1, word: 1, text: "were" });
  });
  it("corrects the whole line when more changed", () => {
    expect(textFix(segments[1]!, 1, "how do you do")).toEqual({ kind: "fix_text", segment: 1, text: "how do you do" });
  });
  it("sends who said it first, then the text, and nothing when nothing changed", () => {
    expect(lineChanges(segments[2]!, 2, "S2", "  Fine   thanks ")).toEqual([]);
    expect(lineChanges(segments[2]!, 2, "S1", "Fine, thanks")).toEqual([
      { kind: "reassign", segment: 2, speaker: "S1" },
      { kind: "fix_text", segment: 2, word: 0, text: "Fine," },
    ]);
  });
  it("offers a new speaker after the highest label", () => {
    expect(nextLabel([{ id: "S1", talk_time_s: 1 }, { id: "S7", talk_time_s: 1 }])).toBe("S8");
  });
});

describe("giving words to another speaker", () => {
  it("selects from the first click to the second, either way round", () => {
    let r = pickWord(null, 3);
    expect(r).toEqual({ anchor: 3, start: 3, end: 4 });
    r = pickWord(r, 1);
    expect(r).toEqual({ anchor: 3, start: 1, end: 4 });
    expect(pickWord(r, 0)).toEqual({ anchor: 0, start: 0, end: 1 }); // a third click starts again
    expect(pickWord({ anchor: 2, start: 2, end: 3 }, 2)).toBeNull();
  });
  it("sends a word range, or the whole line when every word is chosen", () => {
    expect(wordsReassign(4, { anchor: 1, start: 1, end: 3 }, "S2", 5)).toEqual({ kind: "reassign", segment: 4, speaker: "S2", word_start: 1, word_end: 3 });
    expect(wordsReassign(4, { anchor: 0, start: 0, end: 5 }, "S2", 5)).toEqual({ kind: "reassign", segment: 4, speaker: "S2" });
  });
});

describe("the player following the transcript", () => {
  const index = wordIndex(segments);
  it("finds the word being said", () => {
    expect(wordAt(index, 1.35)).toEqual({ segment: 1, word: 1 });
    expect(wordAt(index, 0)).toEqual({ segment: 0, word: 0 });
  });
  it("finds nothing before the first word or in a long pause", () => {
    expect(wordAt(index, -1)).toBeNull();
    expect(wordAt(index, 10)).toBeNull();
  });
});

describe("stages", () => {
  const stages = [
    { name: "decode", label: "Decoding", labels: { en: "Decoding", fr: "Décodage" }, inputs: [], result: true },
    { name: "diarize", label: "Finding speakers", labels: { en: "Finding speakers", fr: "Repérage des intervenants" }, inputs: ["decode"], result: true },
    { name: "transcribe", label: "Transcribing", labels: { en: "Transcribing", fr: "Transcription" }, inputs: ["decode"], result: true },
    { name: "merge", label: "Merging", labels: { en: "Merging", fr: "Assemblage" }, inputs: ["diarize", "transcribe"], result: true },
  ];
  it("labels a stage in the page's language, from the API", () => {
    expect(stageLabel(stages[1]!, "fr")).toBe("Repérage des intervenants");
    expect(stageLabel(stages[1]!, "en")).toBe("Finding speakers");
    // A language the graph has no label in: English.
    expect(stageLabel({ name: "shout", label: "Shouting", labels: { en: "Shouting" }, inputs: [], result: false }, "fr")).toBe("Shouting");
  });
  it("replays a stage and what reads it, nothing else", () => {
    expect(downstream(stages, "diarize")).toEqual(["diarize", "merge"]);
  });
  it("moves a row through its events", () => {
    let rows = emptyRows(stages);
    rows = applyEvent(rows, { type: "stage.started", job_id: "j", stage: "diarize", ts: 100 }, stages);
    rows = applyEvent(rows, { type: "stage.progress", job_id: "j", stage: "diarize", progress: 0.5, ts: 101 }, stages);
    expect(rows.diarize).toEqual({ status: "running", fraction: 0.5, startedAt: 100_000, elapsed: null });
    rows = applyEvent(rows, { type: "stage.finished", job_id: "j", stage: "diarize", reused: true, elapsed_s: 0.2, ts: 102 }, stages);
    expect(rows.diarize!.status).toBe("reused");
    rows = applyEvent(rows, { type: "job.queued", job_id: "j", stage: "diarize", ts: 103 }, stages);
    expect([rows.decode!.status, rows.diarize!.status, rows.transcribe!.status, rows.merge!.status]).toEqual(["waiting", "queued", "waiting", "queued"]);
  });
});

describe("language and formats", () => {
  it("takes the stored choice, else the browser's first known language", () => {
    expect(chooseLanguage(null, ["fr-CA", "en"])).toBe("fr");
    expect(chooseLanguage(null, ["de", "en-GB"])).toBe("en");
    expect(chooseLanguage("en", ["fr"])).toBe("en");
    expect(chooseLanguage(null, ["de"])).toBe("en");
  });
  it("writes times and sizes", () => {
    expect(clock(3725)).toBe("1:02:05");
    expect(clock(65)).toBe("1:05");
    expect(seconds(2.25, ",")).toBe("2,3 s");
    expect(bytes(31_000, ["o", "Ko", "Mo", "Go"])).toBe("30 Ko");
  });
});
