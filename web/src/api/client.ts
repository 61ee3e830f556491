// Every request goes to the gateway's /v1 API, with the API key when the server wants one.
import type { CorrectionBody, Correction, Job, KeyCreated, KeyOut, KeyRequest, Me, MeetingResult, Person, ResultSpeaker, SearchAnswer, SpeakerRename, StageInfo, StreamToken } from "./types";

const KEY_STORE = "scribe.apiKey";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

// The key is kept for this tab only (sessionStorage: gone when the tab closes), never in
// localStorage, where it would stay on the disk for any later script of this origin to read.
export function apiKey(): string {
  forgetStoredKey();
  try {
    return sessionStorage.getItem(KEY_STORE) ?? "";
  } catch {
    return "";
  }
}

export function saveApiKey(value: string): void {
  forgetStoredKey();
  try {
    if (value) sessionStorage.setItem(KEY_STORE, value);
    else sessionStorage.removeItem(KEY_STORE);
  } catch {
    /* storage disabled: the key lasts until the page is left */
  }
}

// Earlier versions of the page kept the key in localStorage: removed at first use.
let storedKeyForgotten = false;
function forgetStoredKey(): void {
  if (storedKeyForgotten) return;
  storedKeyForgotten = true;
  try {
    localStorage.removeItem(KEY_STORE);
  } catch {
    /* storage disabled: nothing was kept */
  }
}

export function withKey(headers: Record<string, string> = {}): Record<string, string> {
  const key = apiKey();
  return key ? { ...headers, Authorization: `Bearer ${key}` } : headers;
}

// Who to tell when the server asks for a key (the header shows the key field).
let onUnauthorized: (message: string) => void = () => {};
export function setUnauthorizedHandler(fn: (message: string) => void): void {
  onUnauthorized = fn;
}

interface ErrorBody {
  error?: { code?: string; message?: string };
}

export function errorOf(status: number, body: unknown): ApiError {
  const e = (body as ErrorBody | null)?.error;
  return new ApiError(status, e?.message ?? `the server answered ${status}`, e?.code);
}

export async function api<T>(path: string, options: { method?: string; body?: unknown } = {}): Promise<T> {
  const res = await fetch(path, {
    method: options.method ?? "GET",
    headers: withKey(options.body !== undefined ? { "Content-Type": "application/json" } : {}),
    body: options.body !== undefined ? JSON.stringify(options.body) : undefined,
  });
  if (res.status === 204) return null as T;
  const body: unknown = await res.json().catch(() => null);
  if (res.status === 401) onUnauthorized((body as ErrorBody | null)?.error?.message ?? "");
  if (!res.ok) throw errorOf(res.status, body);
  return body as T;
}

const job = (id: string) => `/v1/jobs/${encodeURIComponent(id)}`;

export const Api = {
  stages: () => api<StageInfo[]>("/v1/stages"),
  jobs: () => api<Job[]>("/v1/jobs?limit=30"),
  job: (id: string) => api<Job>(job(id)),
  deleteJob: (id: string) => api<null>(job(id), { method: "DELETE" }),
  result: (id: string) => api<MeetingResult>(`${job(id)}/result`),
  speakers: (id: string) => api<ResultSpeaker[]>(`${job(id)}/speakers`),
  corrections: (id: string) => api<Correction[]>(`${job(id)}/corrections`),
  correct: (id: string, body: CorrectionBody) => api<Correction>(`${job(id)}/corrections`, { method: "POST", body }),
  undo: (id: string, correction: string) =>
    api<null>(`${job(id)}/corrections/${encodeURIComponent(correction)}`, { method: "DELETE" }),
  rename: (id: string, label: string, body: SpeakerRename) =>
    api<ResultSpeaker>(`${job(id)}/speakers/${encodeURIComponent(label)}`, { method: "PATCH", body }),
  replay: (id: string, stage: string, params: Record<string, unknown>) =>
    api<unknown>(`${job(id)}/stages/${encodeURIComponent(stage)}/replay`, { method: "POST", body: { params } }),
  streamToken: async (id: string) => (await api<StreamToken>(`${job(id)}/events/token`, { method: "POST" })).token,
  people: () => api<Person[]>("/v1/speakers"),
  forget: (id: string) => api<null>(`/v1/speakers/${encodeURIComponent(id)}`, { method: "DELETE" }),
  search: (q: string, limit = 20) =>
    api<SearchAnswer>(`/v1/search?${new URLSearchParams({ q, limit: String(limit) })}`),
  me: () => api<Me>("/v1/me"),
  keys: () => api<KeyOut[]>("/v1/keys"),
  createKey: (body: KeyRequest) => api<KeyCreated>("/v1/keys", { method: "POST", body }),
  revokeKey: (id: string) => api<KeyOut>(`/v1/keys/${encodeURIComponent(id)}`, { method: "DELETE" }),
};

// EventSource and <audio> cannot send headers: with a key, a short-lived token stands in.
export async function streamUrl(id: string, path: "events" | "audio", query: Record<string, string> = {}): Promise<string> {
  const params = new URLSearchParams(query);
  if (apiKey()) params.set("token", await Api.streamToken(id));
  const q = params.toString();
  return `${job(id)}/${path}${q ? `?${q}` : ""}`;
}
