// Pointer events (mouse, pen, touch) on the pad -> touch rows as MicroJam records them: time since the first
// touch, x and y divided by the pad's side, z the contact radius (a constant for a mouse), moving 0 on down and
// 1 on move. A recording holds at most MAX_SECONDS; past that it is full and touches are not recorded.
import { touch } from "./csv.js";

export const MAX_SECONDS = 5; // MicroJam's performance length
const CONSTANT_Z = 20; // a mouse (or a pointer without contact geometry) has no size: MicroJam's usual radius

const clip = (v) => Math.min(1, Math.max(0, v));

export class Recorder {
  constructor(element, { onStart, onTouch, onDown, onUp, onFull }) {
    this.element = element;
    this.handlers = { onStart, onTouch, onDown, onUp, onFull };
    this.active = new Set(); // pointers down now
    this.reset();
    element.addEventListener("pointerdown", (e) => this.down(e));
    element.addEventListener("pointermove", (e) => this.move(e));
    for (const type of ["pointerup", "pointercancel"]) element.addEventListener(type, (e) => this.up(e));
    element.addEventListener("contextmenu", (e) => e.preventDefault());
  }

  // A new, empty recording; pointers already down do not continue into it.
  reset() {
    this.rows = [];
    this.start = null;
    this.full = false;
    this.pointers = new Set();
  }

  get empty() {
    return this.rows.length === 0;
  }

  elapsed(now) {
    return this.start === null ? 0 : (now - this.start) / 1000;
  }

  point(e, moving) {
    const rect = this.element.getBoundingClientRect();
    const sized = e.pointerType !== "mouse" && e.width > 1;
    const z = sized ? Math.max(e.width, e.height) / 2 : CONSTANT_Z;
    const time = this.start === null ? 0 : Math.max(0, (e.timeStamp - this.start) / 1000);
    return touch(time, clip((e.clientX - rect.left) / rect.width), clip((e.clientY - rect.top) / rect.height), z, moving);
  }

  down(e) {
    e.preventDefault();
    this.element.setPointerCapture(e.pointerId);
    this.active.add(e.pointerId);
    this.handlers.onDown(e);
    if (!this.full) {
      if (this.start === null) {
        this.start = e.timeStamp;
        this.handlers.onStart(e.timeStamp);
      }
      this.pointers.add(e.pointerId);
    }
    this.take(e, 0);
  }

  move(e) {
    if (this.active.has(e.pointerId)) this.take(e, 1);
  }

  up(e) {
    if (this.active.delete(e.pointerId)) this.handlers.onUp(e);
  }

  take(e, moving) {
    const row = this.point(e, moving);
    this.handlers.onTouch(e.pointerId, row);
    if (this.full || !this.pointers.has(e.pointerId)) return;
    if (row.time > MAX_SECONDS) {
      this.close();
      return;
    }
    this.rows.push(row);
  }

  // The recording is full (5 s since the first touch): nothing more is added until it is reset.
  close() {
    if (this.full || this.start === null) return;
    this.full = true;
    this.handlers.onFull();
  }
}
