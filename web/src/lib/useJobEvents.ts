"use client";
// Live progress over Server-Sent Events, resumed after a reload with the last event id
// (kept per job in sessionStorage); with an API key, through a short-lived stream token.
import { useEffect, useRef } from "react";
import { Api, streamUrl } from "@/api/client";
import type { Job, JobEvent } from "@/api/types";
import { isFinished } from "./stages";

const EVENT_TYPES = ["job.queued", "stage.started", "stage.progress", "stage.finished", "stage.failed", "live.caption", "live.ended"] as const;
const TERMINAL = ["job.succeeded", "job.failed"] as const;

export const lastEventKey = (id: string) => `scribe:last-event:${id}`;

function remembered(id: string): string | null {
  try {
    return sessionStorage.getItem(lastEventKey(id));
  } catch {
    return null;
  }
}

function remember(id: string, eventId: string): void {
  try {
    sessionStorage.setItem(lastEventKey(id), eventId);
  } catch {
    /* storage disabled: a reload starts from the job store's view */
  }
}

export function forgetEvents(id: string): void {
  try {
    sessionStorage.removeItem(lastEventKey(id));
  } catch {
    /* nothing kept */
  }
}

/** Follows job `id` while `run` (a counter: a new value starts a new stream) is not null.
 * `onEvent` gets each progress event; `onEnd` the job as stored once it has ended. */
export function useJobEvents(
  id: string,
  run: number | null,
  onEvent: (e: JobEvent) => void,
  onEnd: (job: Job) => void,
): void {
  const handlers = useRef({ onEvent, onEnd });
  useEffect(() => {
    handlers.current = { onEvent, onEnd };
  });

  useEffect(() => {
    if (run === null) return;
    let closed = false;
    let source: EventSource | null = null;
    let retry: ReturnType<typeof setTimeout> | undefined;

    const end = (job: Job) => {
      closed = true;
      source?.close();
      forgetEvents(id);
      handlers.current.onEnd(job);
    };

    const open = async (after: string | null) => {
      let url: string;
      try {
        url = await streamUrl(id, "events", after ? { after } : {});
      } catch {
        return; // no token: the key field says why
      }
      if (closed) return;
      const es = new EventSource(url);
      source = es;
      const seen = (m: MessageEvent<string>) => {
        if (m.lastEventId) remember(id, m.lastEventId);
        return JSON.parse(m.data) as JobEvent;
      };
      for (const type of EVENT_TYPES) {
        es.addEventListener(type, (m) => {
          if (!closed) handlers.current.onEvent(seen(m as MessageEvent<string>));
        });
      }
      for (const type of TERMINAL) {
        es.addEventListener(type, async (m) => {
          if (closed) return;
          const last = (m as MessageEvent<string>).lastEventId;
          seen(m as MessageEvent<string>);
          es.close();
          // The job store has the last word: a terminal event may be an earlier run's.
          const job = await Api.job(id).catch(() => null);
          if (closed || !job) return;
          if (isFinished(job)) end(job);
          else void open(last);
        });
      }
      es.onerror = async () => {
        // While CONNECTING the browser retries by itself with Last-Event-ID; CLOSED means it
        // gave up. Either way, ask the job store whether the job ended meanwhile.
        const job = await Api.job(id).catch(() => null);
        if (closed || source !== es) return;
        if (job && isFinished(job)) end(job);
        else if (es.readyState === EventSource.CLOSED) {
          retry = setTimeout(() => void open(remembered(id)), 3000);
        }
      };
    };

    void open(remembered(id));
    return () => {
      closed = true;
      clearTimeout(retry);
      source?.close();
    };
  }, [id, run]);
}
