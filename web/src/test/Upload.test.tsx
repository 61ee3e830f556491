// The upload panel against a stub XMLHttpRequest (answered in the test, named as such): once
// the server accepts the file it says "Processing…", and once the job list says the job ended,
// it says how it ended instead of "Processing…" for good.
import { act, cleanup, fireEvent, render, screen } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Job } from "@/api/types";
import { Upload } from "@/components/Upload";
import { I18n } from "@/i18n/i18n";
import { en } from "@/i18n/en";
import { fr } from "@/i18n/fr";

/** A stub XMLHttpRequest: keeps the last request; the test gives its answer. */
class StubXhr {
  static last: StubXhr | null = null;
  method = "";
  url = "";
  headers: Record<string, string> = {};
  body: FormData | null = null;
  status = 0;
  responseText = "";
  upload: { onprogress: ((ev: ProgressEvent) => void) | null } = { onprogress: null };
  onload: (() => void) | null = null;
  onerror: (() => void) | null = null;
  open(method: string, url: string) {
    this.method = method;
    this.url = url;
  }
  setRequestHeader(name: string, value: string) {
    this.headers[name] = value;
  }
  send(body: FormData) {
    this.body = body;
    StubXhr.last = this;
  }
  answer(status: number, body: unknown) {
    this.status = status;
    this.responseText = JSON.stringify(body);
    this.onload?.();
  }
}

const job = (status: Job["status"]): Job => ({
  id: "job-1",
  status,
  filename: "standup.wav",
  created_at: "2025-01-01T00:00:00Z",
  updated_at: "2025-01-01T00:00:00Z",
  size_bytes: 4,
  upload_sha256: "x",
});

function panel(messages = en) {
  let uploaded = 0;
  const view = (jobs: Job[] | null) => (
    <I18n.Provider value={messages}>
      <Upload jobs={jobs} onUploaded={() => uploaded++} />
    </I18n.Provider>
  );
  const { rerender } = render(view([]));
  return { list: (jobs: Job[] | null) => rerender(view(jobs)), uploads: () => uploaded };
}

/** Chooses a file, sends it, and has the stub server accept it as job-1. */
async function upload() {
  const file = new File(["RIFF"], "standup.wav", { type: "audio/wav" });
  fireEvent.change(document.getElementById("file")!, { target: { files: [file] } });
  fireEvent.submit(document.getElementById("upload-form")!);
  const xhr = StubXhr.last!;
  expect(xhr.method).toBe("POST");
  expect(xhr.url).toBe("/v1/jobs");
  expect((xhr.body?.get("file") as File).name).toBe("standup.wav");
  await act(async () => xhr.answer(202, { id: "job-1", status: "queued", links: {} }));
}

const status = () => document.getElementById("upload-status")!;

beforeEach(() => {
  StubXhr.last = null;
  vi.stubGlobal("XMLHttpRequest", StubXhr);
});
afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
  location.hash = "";
});

describe("Upload", () => {
  it("says the job is processing until the list says it succeeded", async () => {
    const { list, uploads } = panel();
    await upload();
    expect(uploads()).toBe(1);
    expect(location.hash).toContain("job-1");
    expect(status().textContent).toBe("Uploaded standup.wav. Processing…");
    list([]); // the list as it was before the upload
    list([job("queued")]);
    list([job("running")]);
    expect(status().textContent).toBe("Uploaded standup.wav. Processing…");
    list([job("succeeded")]);
    expect(status().textContent).toBe("standup.wav is transcribed.");
    expect(status().className).not.toContain("bad");
    expect(screen.getByRole("button", { name: "Transcribe" })).toHaveProperty("disabled", false);
  });

  it("says when the job failed (in French: no “Traitement…” left)", async () => {
    const { list } = panel(fr);
    await upload();
    expect(status().textContent).toBe("standup.wav envoyé. Traitement…");
    list([job("running")]);
    list([job("failed")]);
    expect(status().textContent).toBe("standup.wav n’a pas pu être transcrit ; sa page dit pourquoi.");
    expect(status().className).toContain("bad");
  });

  it("clears once the job it started is deleted", async () => {
    const { list } = panel();
    await upload();
    list([job("running")]);
    list([]);
    expect(status().textContent).toBe("");
  });

  it("says why the server refused the upload", async () => {
    panel();
    const file = new File(["RIFF"], "standup.wav", { type: "audio/wav" });
    fireEvent.change(document.getElementById("file")!, { target: { files: [file] } });
    fireEvent.submit(document.getElementById("upload-form")!);
    await act(async () => StubXhr.last!.answer(413, { error: { code: "upload_too_large", message: "the upload is over 2 GB" } }));
    expect(status().textContent).toBe("Upload refused: the upload is over 2 GB");
  });
});
