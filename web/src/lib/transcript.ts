// The transcript editor's logic, free of React: paragraphs, words for the player, the
// correction a typed line means, which words a selection covers.
import type { CorrectionBody, ResultSpeaker, Segment } from "@/api/types";

// Dark enough for text on white (WCAG AA), distinct enough side by side.
export const COLOURS = ["#1d4ed8", "#b45309", "#047857", "#7c3aed", "#be123c", "#0e7490", "#4d7c0f", "#a21caf"];
export const NO_COLOUR = "#667085";

export function labelNumber(label: string): number | null {
  const m = /^S(\d+)$/.exec(label);
  return m ? Number(m[1]) : null;
}

/** Consecutive lines of one speaker, read as one paragraph: [first, last] line indices. */
export interface Paragraph {
  speaker: string;
  first: number;
  last: number;
  start: number;
  words: number;
}

export function paragraphs(segments: readonly Segment[]): Paragraph[] {
  const out: Paragraph[] = [];
  segments.forEach((seg, i) => {
    const prev = out[out.length - 1];
    const words = seg.words?.length || seg.text.split(/\s+/).length;
    if (prev && prev.speaker === seg.speaker) {
      prev.last = i;
      prev.words += words;
    } else {
      out.push({ speaker: seg.speaker, first: i, last: i, start: seg.start, words });
    }
  });
  return out;
}

/** The paragraph that holds line `segment` (binary search over first indices). */
export function paragraphOf(paras: readonly Paragraph[], segment: number): number {
  let lo = 0;
  let hi = paras.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (paras[mid]!.first <= segment) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** A line's words as shown: Whisper's words carry their own leading space. */
export function wordTexts(seg: Segment): string[] {
  return (seg.words ?? []).map((w) => w.word.trim());
}

export function lineText(seg: Segment): string {
  const words = seg.words ?? [];
  if (!words.length) return seg.text;
  return words.map((w, j) => (j > 0 && /^\s/.test(w.word) ? " " : "") + w.word.trim()).join("");
}

/** The correction that says line `i` reads `text`. When exactly one word changed, only
 * that word is corrected, so the others keep their timings for the player. */
export function textFix(seg: Segment, i: number, text: string): CorrectionBody {
  const before = wordTexts(seg);
  const after = text.split(" ");
  if (before.length && before.length === after.length && lineText(seg) === before.join(" ")) {
    const changed = before.flatMap((w, j) => (w === after[j] ? [] : [j]));
    if (changed.length === 1) {
      const j = changed[0]!;
      return { kind: "fix_text", segment: i, word: j, text: after[j]! };
    }
  }
  return { kind: "fix_text", segment: i, text };
}

/** What saving the line editor sends: who said it, then what it reads (if either changed). */
export function lineChanges(seg: Segment, i: number, speaker: string, typed: string): CorrectionBody[] {
  const text = typed.replace(/\s+/g, " ").trim();
  const changes: CorrectionBody[] = [];
  if (speaker !== seg.speaker) changes.push({ kind: "reassign", segment: i, speaker });
  if (text && text !== lineText(seg)) changes.push(textFix(seg, i, text));
  return changes;
}

/** A label no speaker of the job has yet: one past the highest. */
export function nextLabel(speakers: readonly ResultSpeaker[]): string {
  const taken = speakers.map((s) => labelNumber(s.id) ?? 0);
  return `S${Math.max(0, ...taken) + 1}`;
}

/** Words chosen to give to another speaker: a click sets one end, the next the other;
 * a third click starts again. Ranges are [start, end) like the API's. */
export interface WordRange {
  anchor: number;
  start: number;
  end: number;
}

export function pickWord(range: WordRange | null, j: number): WordRange | null {
  if (range === null || range.end - range.start > 1) return { anchor: j, start: j, end: j + 1 };
  if (j === range.anchor) return null;
  return { anchor: range.anchor, start: Math.min(j, range.anchor), end: Math.max(j, range.anchor) + 1 };
}

export function wordsReassign(i: number, range: WordRange, speaker: string, count: number): CorrectionBody {
  if (range.start === 0 && range.end === count) return { kind: "reassign", segment: i, speaker };
  return { kind: "reassign", segment: i, speaker, word_start: range.start, word_end: range.end };
}

/** Every word of the transcript in time order, for the player to follow. */
export interface WordIndex {
  starts: Float64Array;
  ends: Float64Array;
  segment: Int32Array;
  word: Int32Array;
}

export function wordIndex(segments: readonly Segment[]): WordIndex {
  const all: [number, number, number, number][] = [];
  segments.forEach((seg, i) => (seg.words ?? []).forEach((w, j) => all.push([w.start, w.end, i, j])));
  all.sort((a, b) => a[0] - b[0]);
  return {
    starts: Float64Array.from(all, (w) => w[0]),
    ends: Float64Array.from(all, (w) => w[1]),
    segment: Int32Array.from(all, (w) => w[2]),
    word: Int32Array.from(all, (w) => w[3]),
  };
}

/** The word being said at `t` (line and word index), or null in a pause. */
export function wordAt(index: WordIndex, t: number): { segment: number; word: number } | null {
  let lo = 0;
  let hi = index.starts.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (index.starts[mid]! <= t) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  if (found < 0) return null;
  // In a pause longer than that, nothing is being said.
  if (t > index.ends[found]! + 0.6) return null;
  return { segment: index.segment[found]!, word: index.word[found]! };
}

/** The line being said at `t`, or the last one before it (a search hit's moment). */
export function segmentAt(segments: readonly Segment[], t: number): number {
  let found = 0;
  segments.forEach((s, i) => {
    if (s.start <= t + 0.05) found = i;
  });
  return found;
}
