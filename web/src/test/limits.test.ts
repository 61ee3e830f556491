import { describe, expect, it } from "vitest";
import { en } from "@/i18n/en";
import { fr } from "@/i18n/fr";
import { MB, limitsOf, minutes } from "@/lib/limits";

const none = { uploadMb: "", durationMin: "", jobs: "" };

describe("a key's limits", () => {
  it("converts MB, minutes and jobs to the API's bytes, seconds and jobs", () => {
    expect(limitsOf({ uploadMb: "50", durationMin: "90", jobs: "2" })).toEqual({
      limits: { max_upload_bytes: 50 * MB, max_duration_s: 5400, max_concurrent_jobs: 2 },
    });
    expect(limitsOf({ uploadMb: "1,5", durationMin: " 0.5 ", jobs: "" })).toEqual({
      limits: { max_upload_bytes: Math.round(1.5 * MB), max_duration_s: 30 },
    });
  });
  it("leaves an empty field out: the key gets the admin's own", () => {
    expect(limitsOf(none)).toEqual({ limits: {} });
  });
  it("names the first field that is not a number above zero", () => {
    expect(limitsOf({ ...none, uploadMb: "0" })).toEqual({ bad: "uploadMb" });
    expect(limitsOf({ ...none, uploadMb: "lots" })).toEqual({ bad: "uploadMb" });
    expect(limitsOf({ ...none, durationMin: "-3" })).toEqual({ bad: "durationMin" });
    expect(limitsOf({ ...none, jobs: "1.5" })).toEqual({ bad: "jobs" });
    expect(limitsOf({ ...none, jobs: "1e3" })).toEqual({ bad: "jobs" });
  });
  it("shows a duration limit in minutes", () => {
    expect(minutes(3600)).toBe("60");
    expect(minutes(90, ",")).toBe("1,5");
  });
});

describe("the French words", () => {
  it("have every key of the English ones", () => {
    expect(Object.keys(fr).sort()).toEqual(Object.keys(en).sort());
  });
});
