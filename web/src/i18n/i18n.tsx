"use client";
// The interface language: the browser's first of French or English, switchable, remembered.
import { createContext, useContext } from "react";
import { en, type Messages } from "./en";
import { fr } from "./fr";

export const LANGUAGES: Record<string, Messages> = { en, fr };
const STORE = "scribe.lang";

export function chooseLanguage(stored: string | null, preferred: readonly string[]): string {
  if (stored && stored in LANGUAGES) return stored;
  for (const tag of preferred) {
    const base = tag.toLowerCase().split("-")[0] ?? "";
    if (base in LANGUAGES) return base;
  }
  return "en";
}

export function initialLanguage(): string {
  let stored: string | null = null;
  try {
    stored = localStorage.getItem(STORE);
  } catch {
    /* storage disabled */
  }
  return chooseLanguage(stored, navigator.languages ?? [navigator.language]);
}

export function rememberLanguage(lang: string): void {
  try {
    localStorage.setItem(STORE, lang);
  } catch {
    /* storage disabled: the choice lasts until the page is left */
  }
}

export const I18n = createContext<Messages>(en);
export const useT = (): Messages => useContext(I18n);
