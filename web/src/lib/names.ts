// What a speaker is called on the page: their name, else "Speaker N" in the page's language.
import type { ResultSpeaker } from "@/api/types";
import type { Messages } from "@/i18n/en";
import { labelNumber } from "./transcript";

export function defaultName(t: Messages, label: string): string {
  const n = labelNumber(label);
  return n === null ? label : t.defaultName(n);
}

export function speakerName(t: Messages, s: Pick<ResultSpeaker, "id" | "name">): string {
  return s.name || defaultName(t, s.id);
}
