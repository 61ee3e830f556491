// What a correction did, in words (names and times as the transcript reads now).
import type { Correction, MeetingResult } from "@/api/types";
import type { Messages } from "@/i18n/en";
import { clock, quote, sentence } from "./format";
import { defaultName } from "./names";

interface Payload {
  speaker?: string;
  name?: string;
  speaker_id?: string | null;
  segment?: number;
  word_start?: number;
  word_end?: number;
  word?: number;
  text?: string;
}

export function lineAt(t: Messages, result: MeetingResult, i: number | undefined): string {
  const seg = i === undefined ? undefined : result.segments[i];
  return seg ? t.lineAt(clock(seg.start)) : t.lineAt("?");
}

export function describe(t: Messages, c: Correction, result: MeetingResult, names: Record<string, string>): string {
  const p = (c.payload ?? {}) as Payload;
  const who = (label: string | undefined) => (label ? (names[label] ?? defaultName(t, label)) : "?");
  const line = lineAt(t, result, p.segment);
  if (c.kind === "rename_speaker") return t.named(defaultName(t, p.speaker ?? "?"), quote(p.name ?? ""));
  if (c.kind === "reassign") {
    const what = p.word_start !== undefined && p.word_end !== undefined ? t.wordsOf(p.word_start + 1, p.word_end, line) : sentence(line);
    return t.givenTo(what, who(p.speaker));
  }
  if (c.kind === "fix_text") {
    const what = p.word !== undefined ? t.wordOf(p.word + 1, line) : sentence(line);
    return t.readsText(what, quote(p.text ?? ""));
  }
  return sentence(c.kind.replace(/_/g, " "));
}

/** Undoing a rename that remembered a voice keeps the voiceprint: say so. */
export function keptVoice(c: Correction): boolean {
  return c.kind === "rename_speaker" && Boolean((c.payload as Payload | undefined)?.speaker_id);
}
