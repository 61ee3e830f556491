// The API client against a stub fetch (its answers set in each test, named as such): the paths,
// methods and headers it sends, and the messages its errors carry. The @ts-expect-error lines
// prove the typing: should a wrong path, method, parameter or body ever compile, the directive
// goes unused and tsc fails.
import { afterEach, describe, expect, expectTypeOf, it, vi } from "vitest";
import { Api, ApiError, gateway, href, saveApiKey, setUnauthorizedHandler, streamUrl } from "@/api/client";
import type { Job, JobAccepted, MeetingResult } from "@/api/types";

interface Sent {
  method: string;
  path: string; // path and query, as the gateway sees them
  headers: Headers;
  body: unknown;
}

const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

/** A stub fetch: records each request and gives the next queued answer (then `{}`). */
function stubFetch(...answers: Response[]): Sent[] {
  const sent: Sent[] = [];
  vi.stubGlobal("fetch", async (request: Request) => {
    const url = new URL(request.url);
    const text = await request.text();
    sent.push({ method: request.method, path: url.pathname + url.search, headers: request.headers, body: text ? JSON.parse(text) : undefined });
    return answers.shift() ?? json({});
  });
  return sent;
}

const job = { id: "j 1", status: "queued", created_at: "2025-01-01T00:00:00Z", updated_at: "2025-01-01T00:00:00Z", size_bytes: 3, upload_sha256: "x" };

afterEach(() => {
  vi.unstubAllGlobals();
  saveApiKey("");
  setUnauthorizedHandler(() => {});
});

describe("the API client", () => {
  it("sends typed paths, their parameters encoded, and no key when none is saved", async () => {
    const sent = stubFetch(json(job), json([]), json({ query: "q", hits: [] }));
    expect(await Api.job("j 1")).toEqual(job);
    await Api.jobs();
    await Api.search("who said");
    expect(sent.map((s) => `${s.method} ${s.path}`)).toEqual(["GET /v1/jobs/j%201", "GET /v1/jobs?limit=30", "GET /v1/search?q=who%20said&limit=20"]);
    expect(sent[0]!.headers.get("Authorization")).toBeNull();
  });

  it("sends the saved key as a bearer token, and a body as JSON", async () => {
    saveApiKey("secret");
    const sent = stubFetch(json({ id: "c1" }, 201), json({ id: "j1", status: "queued", links: {} }, 202));
    await Api.correct("j1", { kind: "fix_text", segment: 0, word: 3, text: "monday" });
    await Api.replay("j1", "diarize", { num_speakers: 2 });
    expect(sent.map((s) => `${s.method} ${s.path}`)).toEqual(["POST /v1/jobs/j1/corrections", "POST /v1/jobs/j1/stages/diarize/replay"]);
    for (const s of sent) {
      expect(s.headers.get("Authorization")).toBe("Bearer secret");
      expect(s.headers.get("Content-Type")).toBe("application/json");
    }
    expect(sent[0]!.body).toEqual({ kind: "fix_text", segment: 0, word: 3, text: "monday" });
    expect(sent[1]!.body).toEqual({ params: { num_speakers: 2 } });
  });

  it("answers nothing for a 204", async () => {
    const sent = stubFetch(new Response(null, { status: 204 }));
    await expect(Api.deleteJob("j1")).resolves.toBeUndefined();
    expect(sent[0]).toMatchObject({ method: "DELETE", path: "/v1/jobs/j1" });
  });

  it("turns the API's error body into a readable message, with its code", async () => {
    stubFetch(json({ error: { code: "not_found", message: "no job j9" } }, 404));
    const error = await Api.job("j9").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 404, code: "not_found", message: "no job j9" });
  });

  it("says what the server answered when the error is not the API's", async () => {
    stubFetch(new Response("<html>Bad Gateway</html>", { status: 502 }));
    await expect(Api.stages()).rejects.toMatchObject({ status: 502, message: "the server answered 502", code: undefined });
  });

  it("asks for a key on a 401, with the server's message", async () => {
    const asked: string[] = [];
    setUnauthorizedHandler((m) => asked.push(m));
    stubFetch(json({ error: { code: "unauthorized", message: "an API key is needed" } }, 401));
    await expect(Api.me()).rejects.toMatchObject({ status: 401, message: "an API key is needed" });
    expect(asked).toEqual(["an API key is needed"]);
  });

  it("builds stream links, with a stream token when a key is saved", async () => {
    const none = stubFetch();
    expect(await streamUrl("j1", "events", { after: "5" })).toBe("/v1/jobs/j1/events?after=5");
    expect(none).toEqual([]);
    saveApiKey("secret");
    const sent = stubFetch(json({ token: "tok", expires_in: 600 }));
    expect(await streamUrl("j1", "audio")).toBe("/v1/jobs/j1/audio?token=tok");
    expect(sent[0]).toMatchObject({ method: "POST", path: "/v1/jobs/j1/events/token" });
    expect(href("/v1/jobs/{job_id}/result", { path: { job_id: "j1" }, query: { format: "srt" } })).toBe("/v1/jobs/j1/result?format=srt");
  });

  it("is typed by the schema: answers, and wrong calls refused by tsc", () => {
    expectTypeOf(Api.job).returns.resolves.toEqualTypeOf<Job>();
    expectTypeOf(Api.result).returns.resolves.toEqualTypeOf<MeetingResult>();
    expectTypeOf(Api.replay).returns.resolves.toEqualTypeOf<JobAccepted>();
    // Never called: these lines are here for the type checker.
    const wrong = [
      // @ts-expect-error: no such path
      () => gateway.GET("/v1/jobz", {}),
      // @ts-expect-error: /v1/stages cannot be deleted
      () => gateway.DELETE("/v1/stages", {}),
      // @ts-expect-error: the job's path parameter is job_id
      () => gateway.GET("/v1/jobs/{job_id}", { params: { path: { id: "j1" } } }),
      // @ts-expect-error: a correction says its kind
      () => gateway.POST("/v1/jobs/{job_id}/corrections", { params: { path: { job_id: "j1" } }, body: { segment: 0, text: "hi" } }),
      // @ts-expect-error: a download's format is one the API makes
      () => href("/v1/jobs/{job_id}/result", { path: { job_id: "j1" }, query: { format: "pdf" } }),
    ];
    expect(wrong).toHaveLength(5);
  });
});
