// A small WebAudio voice per touch: pitch from y (higher up = higher note, on a pentatonic scale), pan from x,
// a short envelope re-triggered by each row of the touch. Silent until the first user gesture creates the
// AudioContext (browsers block audio before one).
const SCALE = [0, 2, 4, 7, 9]; // major pentatonic
const STEPS = 15; // three octaves
const BASE_HZ = 130.81; // C3

export function pitch(y) {
  const n = Math.min(STEPS - 1, Math.max(0, Math.floor((1 - y) * STEPS)));
  return BASE_HZ * 2 ** ((12 * Math.floor(n / SCALE.length) + SCALE[n % SCALE.length]) / 12);
}

export class Sound {
  constructor(button) {
    this.button = button;
    this.ctx = null;
    this.on = true;
    this.voices = new Map();
    this.started = 0;
    button.addEventListener("click", () => {
      this.on = !this.on;
      this.show();
    });
  }

  // Called from user gestures only: creates or resumes the AudioContext.
  unlock() {
    if (!this.ctx) {
      this.ctx = new AudioContext();
      this.out = this.ctx.createGain();
      this.out.gain.value = 0.3;
      this.out.connect(this.ctx.destination);
      this.ctx.addEventListener("statechange", () => this.show());
    }
    if (this.ctx.state === "suspended") this.ctx.resume();
    this.show();
  }

  show() {
    this.button.textContent = this.on ? "Sound on" : "Sound off";
    this.button.setAttribute("aria-pressed", String(this.on));
    this.button.dataset.audio = this.ctx ? this.ctx.state : "off";
    this.button.dataset.voices = String(this.started);
  }

  voice(wave) {
    const ctx = this.ctx;
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    const pan = ctx.createStereoPanner();
    osc.type = wave;
    gain.gain.value = 0;
    osc.connect(gain).connect(pan).connect(this.out);
    osc.start();
    osc.addEventListener("ended", () => pan.disconnect());
    this.started += 1;
    this.show();
    return { osc, gain, pan, until: 0 };
  }

  // One row of touch `key` (a pointer, or a RoboJam layer): a new voice on moving = 0.
  touch(key, row, wave) {
    if (!this.ctx || !this.on || this.ctx.state !== "running") return;
    const now = this.ctx.currentTime;
    let v = this.voices.get(key);
    const fresh = !v || row.moving === 0 || v.until <= now;
    if (fresh) {
      v = this.voice(wave);
      this.voices.set(key, v);
      v.osc.frequency.setValueAtTime(pitch(row.y), now);
      v.pan.pan.setValueAtTime(2 * row.x - 1, now);
    } else {
      v.osc.frequency.setTargetAtTime(pitch(row.y), now, 0.015);
      v.pan.pan.setTargetAtTime(2 * row.x - 1, now, 0.015);
    }
    const g = v.gain.gain;
    if (g.cancelAndHoldAtTime) g.cancelAndHoldAtTime(now);
    else g.cancelScheduledValues(now);
    g.setTargetAtTime(row.moving ? 0.12 : 0.25, now, 0.004);
    g.setTargetAtTime(0, now + 0.03, 0.06);
    v.until = now + 0.5;
    v.osc.stop(v.until);
  }
}
