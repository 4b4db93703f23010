// The local sources: microphone, camera and screen. Each is a live track or
// null. The microphone is muted by disabling its track (instant, no new
// permission prompt); the camera and the screen are stopped when turned off
// so the camera light goes out.

import { mediaError } from './errors.js';

/** @typedef {'microphone'|'camera'|'screen'} Source */

export class LocalMedia {
  /** @type {Record<Source, MediaStreamTrack | null>} */
  tracks = { microphone: null, camera: null, screen: null };
  microphoneMuted = false;
  /** @type {{ microphone?: string, camera?: string }} chosen device ids */
  devices = {};
  #md;

  /** @param {MediaDevices | undefined} mediaDevices */
  constructor(mediaDevices) {
    this.#md = mediaDevices;
  }

  /** Whether the source is on (the microphone: present and not muted). */
  /** @param {Source} source */
  isOn(source) {
    const t = this.tracks[source];
    if (!t || t.readyState === 'ended') return false;
    return source !== 'microphone' || !this.microphoneMuted;
  }

  /**
   * Starts a source and returns its new track. Throws an SdkError.
   * @param {Source} source
   */
  async start(source) {
    if (!this.#md) throw mediaError({ name: 'NotSupportedError', message: 'media devices are unavailable (is the page served over https?)' }, source);
    let stream;
    try {
      if (source === 'screen') {
        stream = await this.#md.getDisplayMedia({ video: true, audio: false });
      } else if (source === 'camera') {
        const id = this.devices.camera;
        stream = await this.#md.getUserMedia({
          video: id ? { deviceId: { exact: id } } : { width: { ideal: 1280 }, height: { ideal: 720 } },
        });
      } else {
        const id = this.devices.microphone;
        stream = await this.#md.getUserMedia({ audio: id ? { deviceId: { exact: id } } : true });
      }
    } catch (e) {
      throw mediaError(e, source);
    }
    const track = source === 'microphone' ? stream.getAudioTracks()[0] : stream.getVideoTracks()[0];
    this.stop(source);
    this.tracks[source] = track;
    if (source === 'screen') track.contentHint = 'detail';
    return track;
  }

  /** @param {Source} source */
  stop(source) {
    this.tracks[source]?.stop();
    this.tracks[source] = null;
  }

  stopAll() {
    for (const s of /** @type {Source[]} */ (['microphone', 'camera', 'screen'])) this.stop(s);
  }

  /** Devices by kind, for a picker. Labels appear once a permission was granted. */
  async listDevices() {
    const all = this.#md ? await this.#md.enumerateDevices() : [];
    return {
      microphone: all.filter((d) => d.kind === 'audioinput'),
      camera: all.filter((d) => d.kind === 'videoinput'),
    };
  }
}
