/**
 * Client-side mixdown and 16-bit PCM WAV encoding for the stem mixer.
 * @module wav
 */

/**
 * Sum decoded stems, each times its gain, into stereo; peak-normalised when the sum clips.
 * @param {Array<{buffer: AudioBuffer, gain: number}>} layers decoded stems (same sample rate)
 * @returns {Float32Array[]} two channels
 */
export function mixdown(layers) {
  const length = Math.max(0, ...layers.map((layer) => layer.buffer.length));
  const out = [new Float32Array(length), new Float32Array(length)];
  for (const { buffer, gain } of layers) {
    out.forEach((channel, index) => {
      const source = buffer.getChannelData(Math.min(index, buffer.numberOfChannels - 1));
      for (let i = 0; i < source.length; i += 1) channel[i] += source[i] * gain;
    });
  }
  let peak = 0;
  for (const channel of out) for (const sample of channel) peak = Math.max(peak, Math.abs(sample));
  if (peak > 1) for (const channel of out) for (let i = 0; i < channel.length; i += 1) channel[i] /= peak;
  return out;
}

/**
 * Encode channels as a 16-bit PCM WAV file.
 * @param {Float32Array[]} channels samples in [-1, 1], all the same length
 * @param {number} sampleRate Hz
 * @returns {Blob} `audio/wav`
 */
export function encodeWav(channels, sampleRate) {
  const frames = channels[0]?.length ?? 0;
  const blockAlign = channels.length * 2;
  const data = frames * blockAlign;
  const view = new DataView(new ArrayBuffer(44 + data));
  const text = (offset, value) => [...value].forEach((char, i) => view.setUint8(offset + i, char.charCodeAt(0)));
  text(0, "RIFF");
  view.setUint32(4, 36 + data, true);
  text(8, "WAVE");
  text(12, "fmt ");
  view.setUint32(16, 16, true);
  view.setUint16(20, 1, true);
  view.setUint16(22, channels.length, true);
  view.setUint32(24, sampleRate, true);
  view.setUint32(28, sampleRate * blockAlign, true);
  view.setUint16(32, blockAlign, true);
  view.setUint16(34, 16, true);
  text(36, "data");
  view.setUint32(40, data, true);
  let offset = 44;
  for (let i = 0; i < frames; i += 1) {
    for (const channel of channels) {
      const sample = Math.max(-1, Math.min(1, channel[i]));
      view.setInt16(offset, sample < 0 ? sample * 0x8000 : sample * 0x7fff, true);
      offset += 2;
    }
  }
  return new Blob([view], { type: "audio/wav" });
}
