"use client";
// A live meeting's audio from the browser (docs/live.md): the microphone, or a tab's or
// screen's audio (getDisplayMedia), resampled by an AudioContext at 16 kHz, tapped by an
// AudioWorklet (public/pcm-worklet.js) and sent as numbered 0.5 s chunks of 16-bit PCM over
// the gateway's socket. Every chunk stays here until it is acknowledged; after a dropped
// connection the socket says which chunk it wants next, and sending resumes there.

export type Source = "microphone" | "tab";
export const RATE = 16000;
const CHUNK = RATE / 2; // samples per chunk: 0.5 s

export interface LiveHandlers {
  onStored: (seconds: number) => void;
  onEnded: (reason: string) => void;
  onError: (message: string) => void;
}

function toPcm(samples: Float32Array): Uint8Array {
  const out = new DataView(new ArrayBuffer(4 + samples.length * 2));
  for (let i = 0; i < samples.length; i++) {
    const s = Math.max(-1, Math.min(1, samples[i] ?? 0));
    out.setInt16(4 + i * 2, s < 0 ? s * 0x8000 : s * 0x7fff, true);
  }
  return new Uint8Array(out.buffer);
}

export async function capture(source: Source): Promise<MediaStream> {
  if (source === "tab") {
    // A tab's or screen's audio, for an online meeting; the video track is not used.
    const stream = await navigator.mediaDevices.getDisplayMedia({ audio: true, video: true });
    for (const track of stream.getVideoTracks()) track.stop();
    if (stream.getAudioTracks().length === 0) throw new Error("no-audio");
    return stream;
  }
  return navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: true } });
}

export class LiveSender {
  private pending = new Map<number, Uint8Array>(); // sent or not, not yet acknowledged
  private next = 0; // the number of the next chunk made
  private buffer = new Float32Array(CHUNK);
  private filled = 0;
  private ws: WebSocket | null = null;
  private ctx: AudioContext | null = null;
  private stopping = false;
  private ended = false;

  constructor(
    private readonly url: () => Promise<string>,
    private readonly handlers: LiveHandlers,
  ) {}

  async start(stream: MediaStream): Promise<void> {
    const ctx = new AudioContext({ sampleRate: RATE });
    this.ctx = ctx;
    await ctx.audioWorklet.addModule("/pcm-worklet.js");
    const tap = new AudioWorkletNode(ctx, "pcm-tap");
    tap.port.onmessage = (m: MessageEvent<Float32Array>) => this.take(m.data);
    ctx.createMediaStreamSource(stream).connect(tap);
    await this.connect();
  }

  private take(frame: Float32Array): void {
    if (this.stopping) return;
    let at = 0;
    while (at < frame.length) {
      const n = Math.min(CHUNK - this.filled, frame.length - at);
      this.buffer.set(frame.subarray(at, at + n), this.filled);
      this.filled += n;
      at += n;
      if (this.filled === CHUNK) this.flush();
    }
  }

  private flush(): void {
    if (this.filled === 0) return;
    const chunk = toPcm(this.buffer.subarray(0, this.filled));
    new DataView(chunk.buffer).setUint32(0, this.next, false);
    this.pending.set(this.next, chunk);
    this.next += 1;
    this.filled = 0;
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(chunk);
  }

  private async connect(): Promise<void> {
    const ws = new WebSocket(await this.url());
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.onmessage = (m: MessageEvent<string>) => {
      const msg = JSON.parse(m.data) as { type: string; seq?: number; next_seq?: number; stored_s?: number; reason?: string };
      if (msg.type === "ready") {
        for (const seq of [...this.pending.keys()]) if (seq < (msg.next_seq ?? 0)) this.pending.delete(seq);
        for (const [, chunk] of [...this.pending.entries()].sort((a, b) => a[0] - b[0])) ws.send(chunk);
        if (this.stopping) this.sendStop();
      } else if (msg.type === "ack") {
        this.pending.delete(msg.seq ?? -1);
        this.handlers.onStored(msg.stored_s ?? 0);
        if (this.stopping) this.sendStop();
      } else if (msg.type === "ended") {
        this.finish(msg.reason ?? "stopped");
      }
    };
    ws.onclose = (e) => {
      if (this.ended) return;
      if (e.code >= 4000) {
        this.handlers.onError(e.reason || `closed (${e.code})`);
        this.finish("error");
      } else setTimeout(() => void this.connect().catch(() => undefined), 1000); // a dropped connection
    };
  }

  private sendStop(): void {
    if (this.pending.size === 0 && this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ type: "stop" }));
  }

  /** Stop: what is captured is sent, then the meeting is ended (its graph starts). */
  stop(): void {
    this.flush();
    this.stopping = true;
    void this.ctx?.close();
    this.sendStop();
  }

  private finish(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    void this.ctx?.close().catch(() => undefined);
    this.ws?.close();
    this.handlers.onEnded(reason);
  }
}
