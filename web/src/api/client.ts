// Every request goes to the gateway's /v1 API, with the API key when the server wants one.
// The calls are typed end to end by the gateway's own OpenAPI schema (schema.d.ts, made by
// `npm run openapi`) through openapi-fetch: a wrong path, method, parameter or body fails `tsc`.
import createClient, { createFinalURL, createQuerySerializer, defaultPathSerializer, type ClientPathsWithMethod } from "openapi-fetch";
import type { paths } from "./schema";
import type { AskAnswer, AskRequest, CorrectionBody, KeyRequest, ReplayRequest, SpeakerRename } from "./types";

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

// The error shape of every answer that is not a success (gateway/http/errors.py, error_body):
// {"error": {"code": "...", "message": "..."}}, the message written for a person. The schema
// does not describe it (it lists FastAPI's validation shape), so it is read as unknown.
interface ErrorBody {
  error?: { code?: string; message?: string };
}

const errorOfBody = (body: unknown) => (typeof body === "object" && body !== null ? (body as ErrorBody).error : undefined);

export function errorOf(status: number, body: unknown): ApiError {
  const e = errorOfBody(body);
  return new ApiError(status, e?.message ?? `the server answered ${status}`, e?.code);
}

/** The gateway, typed by its schema; only JSON answers are read ("application/json"). */
export const gateway = createClient<paths, "application/json">({
  // Same origin as the page. A Request needs an absolute URL outside a browser (tests); the
  // static build evaluates this module without a location and never calls the API.
  baseUrl: typeof location === "undefined" ? "" : location.origin,
  fetch: (request) => fetch(request), // looked up at each call, so a test's stub answers
});
gateway.use({
  onRequest({ request }) {
    for (const [name, value] of Object.entries(withKey())) request.headers.set(name, value);
    return request;
  },
});

type Gateway = typeof gateway;

/** What a call of the gateway answers: its data on a success, else the error body. */
interface Answer<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

/** A call's data, or an ApiError with the server's message; a 401 asks for a key. */
async function ok<T>(call: Promise<Answer<T>>): Promise<T> {
  const { data, error, response } = await call;
  if (response.status === 401) onUnauthorized(errorOfBody(error)?.message ?? "");
  if (!response.ok) throw errorOf(response.status, error);
  return data as T; // a success: the body as the schema types it (nothing for a 204)
}

const inJob = (id: string) => ({ params: { path: { job_id: id } } });

export const Api = {
  stages: () => ok(gateway.GET("/v1/stages")),
  jobs: () => ok(gateway.GET("/v1/jobs", { params: { query: { limit: 30 } } })),
  job: (id: string) => ok(gateway.GET("/v1/jobs/{job_id}", inJob(id))),
  deleteJob: (id: string): Promise<void> => ok(gateway.DELETE("/v1/jobs/{job_id}", inJob(id))),
  result: (id: string) => ok(gateway.GET("/v1/jobs/{job_id}/result", inJob(id))),
  speakers: (id: string) => ok(gateway.GET("/v1/jobs/{job_id}/speakers", inJob(id))),
  corrections: (id: string) => ok(gateway.GET("/v1/jobs/{job_id}/corrections", inJob(id))),
  correct: (id: string, body: CorrectionBody) => ok(gateway.POST("/v1/jobs/{job_id}/corrections", { ...inJob(id), body })),
  undo: (id: string, correction: string): Promise<void> =>
    ok(gateway.DELETE("/v1/jobs/{job_id}/corrections/{correction_id}", { params: { path: { job_id: id, correction_id: correction } } })),
  rename: (id: string, label: string, body: SpeakerRename) =>
    ok(gateway.PATCH("/v1/jobs/{job_id}/speakers/{label}", { params: { path: { job_id: id, label } }, body })),
  replay: (id: string, stage: string, params: ReplayRequest["params"]) =>
    ok(gateway.POST("/v1/jobs/{job_id}/stages/{stage}/replay", { params: { path: { job_id: id, stage } }, body: { params } })),
  startLive: (language?: string) => ok(gateway.POST("/v1/live", { body: language ? { language } : {} })),
  stopLive: (id: string) => ok(gateway.POST("/v1/live/{job_id}/stop", inJob(id))),
  streamToken: async (id: string) => (await ok(gateway.POST("/v1/jobs/{job_id}/events/token", inJob(id)))).token,
  people: () => ok(gateway.GET("/v1/speakers")),
  forget: (id: string): Promise<void> => ok(gateway.DELETE("/v1/speakers/{speaker_id}", { params: { path: { speaker_id: id } } })),
  search: (q: string, limit = 20) => ok(gateway.GET("/v1/search", { params: { query: { q, limit } } })),
  summary: (id: string) => ok(gateway.GET("/v1/jobs/{job_id}/summary", inJob(id))),
  me: () => ok(gateway.GET("/v1/me")),
  keys: () => ok(gateway.GET("/v1/keys")),
  createKey: (body: KeyRequest) => ok(gateway.POST("/v1/keys", { body })),
  revokeKey: (id: string) => ok(gateway.DELETE("/v1/keys/{key_id}", { params: { path: { key_id: id } } })),
};

type GetPath = ClientPathsWithMethod<Gateway, "get">;
type GetParams<P extends GetPath> = paths[P] extends { get: { parameters: infer X } } ? X : never;

/** A GET path as a link, for what cannot go through the client (a download, <audio>,
 * EventSource): its path and query typed like the client's calls. */
export function href<P extends GetPath>(path: P, params: Omit<GetParams<P>, "header" | "cookie">): string {
  return createFinalURL(path, {
    baseUrl: "",
    params: params as { path?: Record<string, unknown>; query?: Record<string, unknown> },
    querySerializer: createQuerySerializer(),
    pathSerializer: defaultPathSerializer,
  });
}

// EventSource and <audio> cannot send headers: with a key, a short-lived token stands in.
export async function streamUrl(id: string, path: "events" | "audio", query: { after?: string } = {}): Promise<string> {
  const token = apiKey() ? await Api.streamToken(id) : undefined;
  const params = { path: { job_id: id }, query: { ...query, token } };
  return path === "events" ? href("/v1/jobs/{job_id}/events", params) : href("/v1/jobs/{job_id}/audio", params);
}

type CreateJob = paths["/v1/jobs"]["post"];
/** The fields of an upload's form, as the schema names them. */
export type UploadField = keyof CreateJob["requestBody"]["content"]["multipart/form-data"];
export type UploadAccepted = CreateJob["responses"][202]["content"]["application/json"];
const UPLOAD = "/v1/jobs" satisfies ClientPathsWithMethod<Gateway, "post">;

/** Uploads a recording (POST /v1/jobs) with byte progress: XMLHttpRequest, since fetch cannot
 * report an upload's progress. Resolves with the accepted job; rejects with an ApiError when
 * the server refused it, or a TypeError when it could not be reached. */
export function uploadJob(data: FormData, onProgress: (loaded: number, total: number) => void): Promise<UploadAccepted> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", UPLOAD);
    for (const [name, value] of Object.entries(withKey())) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (ev) => {
      if (ev.lengthComputable) onProgress(ev.loaded, ev.total);
    };
    xhr.onload = () => {
      let body: unknown = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        /* not JSON */
      }
      if (xhr.status === 401) onUnauthorized(errorOfBody(body)?.message ?? "");
      if (xhr.status === 202 && body) resolve(body as UploadAccepted); // the 202 the schema types
      else reject(errorOf(xhr.status, body));
    };
    xhr.onerror = () => reject(new TypeError("the server could not be reached"));
    xhr.send(data);
  });
}

const ASK = "/v1/ask" satisfies ClientPathsWithMethod<Gateway, "post">;

/** POST /v1/ask streamed (Server-Sent Events over fetch: EventSource cannot POST): `onDraft`
 * gets the answer as the model writes it; resolves with the checked answer, rejects with an
 * ApiError (a 503 when the model cannot be reached, a 422 for a bad question). */
export async function ask(body: Omit<AskRequest, "stream">, onDraft: (text: string) => void): Promise<AskAnswer> {
  const res = await fetch(ASK, {
    method: "POST",
    headers: withKey({ "Content-Type": "application/json", Accept: "text/event-stream" }),
    body: JSON.stringify({ ...body, stream: true }),
  });
  if (!res.ok || !res.body) {
    const error: unknown = await res.json().catch(() => null);
    if (res.status === 401) onUnauthorized(errorOfBody(error)?.message ?? "");
    throw errorOf(res.status, error);
  }
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let draft = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end: number;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (!event || data === undefined) continue;
      const parsed: unknown = JSON.parse(data);
      if (event === "delta") onDraft((draft += (parsed as { text: string }).text));
      else if (event === "answer") return parsed as AskAnswer;
      else if (event === "error") throw new ApiError(503, (parsed as { message: string }).message);
    }
  }
  throw new ApiError(502, "the answer ended before it was complete");
}
