"use client";
// "Start live": a meeting captioned while it happens (docs/live.md). The microphone, or a
// tab's or screen's audio for an online meeting; the captions show on the job's page, where
// anyone of the same tenant can follow them; "Stop" sends the rest and ends the meeting,
// whose recording then goes through the whole pipeline.
import { useRef, useState } from "react";
import { Api, ApiError, apiKey } from "@/api/client";
import { useT } from "@/i18n/i18n";
import { LiveSender, capture, type Source } from "@/lib/liveAudio";
import { jobHref } from "@/lib/route";

interface Props {
  onStarted: () => void;
}

export function Live({ onStarted }: Props) {
  const t = useT();
  const [source, setSource] = useState<Source>("microphone");
  const [state, setState] = useState<"idle" | "starting" | "live" | "stopping">("idle");
  const [stored, setStored] = useState(0);
  const [message, setMessage] = useState<{ text: string; bad: boolean } | null>(null);
  const sender = useRef<LiveSender | null>(null);

  const start = async () => {
    setState("starting");
    setMessage(null);
    let stream: MediaStream;
    try {
      stream = await capture(source);
    } catch {
      setState("idle");
      setMessage({ text: source === "tab" ? t.liveNoTab : t.liveNoMicrophone, bad: true });
      return;
    }
    let started: Awaited<ReturnType<typeof Api.startLive>>;
    try {
      started = await Api.startLive();
    } catch (e) {
      for (const track of stream.getTracks()) track.stop();
      setState("idle");
      setMessage({ text: t.liveRefused(e instanceof ApiError ? e.message : String(e)), bad: true });
      return;
    }
    const socketUrl = async () => {
      // A key cannot go in a WebSocket's headers from a browser: a short-lived token does.
      const token = apiKey() ? await Api.streamToken(started.job_id) : started.token;
      const scheme = location.protocol === "https:" ? "wss:" : "ws:";
      return `${scheme}//${location.host}${started.socket}?token=${encodeURIComponent(token)}`;
    };
    const live = new LiveSender(socketUrl, {
      onStored: setStored,
      onEnded: (reason) => {
        for (const track of stream.getTracks()) track.stop();
        sender.current = null;
        setState("idle");
        setMessage({ text: t.liveEnded(reason), bad: reason === "error" });
        onStarted();
      },
      onError: (why) => setMessage({ text: why, bad: true }),
    });
    sender.current = live;
    await live.start(stream);
    setState("live");
    location.hash = jobHref(started.job_id);
    onStarted();
  };

  const stop = () => {
    setState("stopping");
    sender.current?.stop();
  };

  return (
    <section className="card" id="live" aria-labelledby="live-title">
      <h2 id="live-title">{t.liveTitle}</h2>
      <fieldset className="live-source" disabled={state !== "idle"}>
        <legend>{t.liveSource}</legend>
        <label>
          <input type="radio" name="live-source" checked={source === "microphone"} onChange={() => setSource("microphone")} /> {t.liveMicrophone}
        </label>
        <label>
          <input type="radio" name="live-source" checked={source === "tab"} onChange={() => setSource("tab")} /> {t.liveTab}
        </label>
      </fieldset>
      {state === "idle" || state === "starting" ? (
        <button id="live-start" type="button" disabled={state === "starting"} onClick={() => void start()}>
          {t.liveStart}
        </button>
      ) : (
        <button id="live-stop" type="button" disabled={state === "stopping"} onClick={stop}>
          {t.liveStop}
        </button>
      )}
      <p id="live-status" className={message?.bad ? "error" : "muted"} role="status">
        {state === "live" || state === "stopping" ? t.liveRecording(stored.toFixed(0)) : (message?.text ?? "")}
      </p>
    </section>
  );
}
