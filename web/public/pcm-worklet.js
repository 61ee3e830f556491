// Live meetings (docs/live.md): hands the captured audio, as Float32 frames at the
// AudioContext's rate (16 kHz, asked for by web/src/lib/liveAudio.ts), to the page.
class PcmTap extends AudioWorkletProcessor {
  process(inputs) {
    const channels = inputs[0];
    if (channels && channels.length > 0) {
      const mono = new Float32Array(channels[0].length);
      for (const ch of channels) for (let i = 0; i < mono.length; i++) mono[i] += ch[i] / channels.length;
      this.port.postMessage(mono, [mono.buffer]);
    }
    return true;
  }
}
registerProcessor("pcm-tap", PcmTap);
