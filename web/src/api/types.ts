// The API's shapes, generated from the gateway's OpenAPI schema (src/api/schema.d.ts, made by
// `npm run openapi`): a change of the API that breaks the page fails `tsc`.
import type { components, paths } from "./schema";

type Schemas = components["schemas"];

export type Job = Schemas["Job"];
export type StageState = Schemas["StageState"];
export type StageInfo = Schemas["StageInfo"];
export type MeetingResult = Schemas["MeetingResult"];
export type Segment = Schemas["ResultSegment"];
export type Word = Schemas["ResultWord"];
export type ResultSpeaker = Schemas["ResultSpeaker"];
export type Correction = Schemas["Correction"];
export type Person = Schemas["Speaker"];
export type SpeakerRename = Schemas["SpeakerRename"];
export type ReassignBody = Schemas["ReassignBody"];
export type FixTextBody = Schemas["FixTextBody"];
export type CorrectionBody = ReassignBody | FixTextBody;
export type JobEvent = Schemas["JobEvent"];
export type JobEventType = JobEvent["type"];
export type JobAccepted = Schemas["JobAccepted"];
export type StreamToken = Schemas["StreamToken"];
export type ReplayRequest = Schemas["ReplayRequest"];

type Ok<P extends keyof paths, M extends keyof paths[P]> = paths[P][M] extends {
  responses: { 200: { content: { "application/json": infer T } } };
}
  ? T
  : never;

// Search across meetings: GET /v1/search.
export type SearchAnswer = Schemas["SearchResponse"];
export type SearchHit = Schemas["SearchHitOut"];
// What was decided: GET /v1/jobs/{id}/summary and POST /v1/ask.
export type SummaryAnswer = Schemas["SummaryResponse"];
export type Moment = Schemas["MomentOut"];
export type AskAnswer = Schemas["AskResponse"];
export type AskRequest = Schemas["AskRequest"];

export type JobList = Ok<"/v1/jobs", "get">;

// Who the caller is, and an admin key's own tenant's keys: /v1/me, /v1/keys.
export type Me = Schemas["Me"];
export type KeyOut = Schemas["KeyOut"];
export type KeyCreated = Schemas["KeyCreated"];
export type KeyRequest = Schemas["KeyRequest"];
