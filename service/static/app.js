// The play page: record a performance, send it to RoboJam, play the reply back over the pad while you keep
// playing, and keep every layer for download. Modules: csv (MicroJam format), recorder (pointer input),
// pad (drawing), sound (WebAudio), api (requests and error sentences), options (sliders from the OpenAPI schema).
import { duration, parseMicroJamCSV, toMicroJamCSV } from "./csv.js";
import { MAX_SECONDS, Recorder } from "./recorder.js";
import { Pad } from "./pad.js";
import { Sound } from "./sound.js";
import { getJSON, predict } from "./api.js";
import { makeSliders } from "./options.js";

const AUTO_PAUSE_MS = 600; // auto mode: send after this long with no pointer down (AI Duet's rule)

const $ = (id) => document.getElementById(id);
const ui = {
  jam: $("jam"),
  continue: $("continue"),
  clear: $("clear"),
  auto: $("auto"),
  status: $("status"),
  rtt: $("rtt"),
  error: $("error"),
  countdown: $("countdown"),
  meter: $("meter-fill"),
  layers: $("layers"),
  footer: $("model"),
  seed: $("seed"),
};

const state = {
  options: () => ({}), // until the OpenAPI document is read: the API's defaults
  layers: [], // every layer played or received: { who, rows, url }
  shown: [], // what the pad draws besides the live recording: the last sent performance
  reply: null, // the last RoboJam reply: { text, rows }
  playback: null, // { rows, start, next }
  inFlight: false,
  queued: null,
  call: 0, // the current call's number; Clear moves it on, so an older call's answer is dropped
  autoTimer: null,
  fullTimer: null,
};

const sound = new Sound($("sound"));
const canvas = $("pad");
const pad = new Pad(canvas);
const recorder = new Recorder(canvas, {
  onDown: () => {
    sound.unlock();
    clearTimeout(state.autoTimer);
  },
  onStart: (timeStamp) => {
    hideError();
    state.shown = [];
    const left = MAX_SECONDS * 1000 - (performance.now() - timeStamp);
    state.fullTimer = setTimeout(() => recorder.close(), Math.max(0, left));
  },
  onTouch: (pointerId, row) => sound.touch(`you-${pointerId}`, row, "sine"),
  onUp: () => {
    if (ui.auto.checked && recorder.active.size === 0 && !recorder.empty && !recorder.full) {
      clearTimeout(state.autoTimer);
      state.autoTimer = setTimeout(() => {
        if (ui.auto.checked && recorder.active.size === 0 && !recorder.empty) sendRecording(); // Auto may be off by now
      }, AUTO_PAUSE_MS);
    }
  },
  onFull: () => {
    clearTimeout(state.fullTimer);
    if (ui.auto.checked) sendRecording();
  },
});

function showError(message) {
  ui.error.textContent = message;
  ui.error.hidden = false;
}

function hideError() {
  ui.error.hidden = true;
  ui.error.textContent = "";
}

function addLayer(who, rows) {
  const url = URL.createObjectURL(new Blob([toMicroJamCSV(rows)], { type: "text/csv" }));
  state.layers.push({ who, rows, url });
  const n = state.layers.length;
  const li = document.createElement("li");
  li.className = `layer-${who}`;
  const swatch = document.createElement("span");
  swatch.className = "swatch";
  const text = document.createTextNode(
    `${who === "you" ? "You" : "RoboJam"}: ${rows.length} touches, ${duration(rows).toFixed(2)} s`,
  );
  const link = document.createElement("a");
  link.href = url;
  link.download = `robojam-layer-${n}-${who}.csv`;
  link.textContent = "CSV";
  li.append(swatch, text, link);
  ui.layers.querySelector(".none")?.remove();
  ui.layers.append(li);
}

function sendRecording() {
  clearTimeout(state.autoTimer);
  clearTimeout(state.fullTimer);
  const rows = recorder.rows;
  recorder.reset();
  if (rows.length) {
    addLayer("you", rows);
    state.shown = rows;
  }
  jam(toMicroJamCSV(rows), rows.length === 0);
}

// The optional seed: empty for a random reply. JavaScript numbers hold integers exactly only up to 2^53 - 1, so
// a longer seed is refused here rather than sent rounded.
function seed() {
  const text = ui.seed.value.trim();
  if (text === "") return {};
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value)) {
    throw new Error(`The seed must be a whole number from 0 to ${Number.MAX_SAFE_INTEGER}, or empty for a random reply.`);
  }
  return { seed: value };
}

async function jam(perf, empty = false) {
  if (state.inFlight) {
    state.queued = () => jam(perf, empty);
    return;
  }
  let fields;
  try {
    fields = { perf, ...state.options(), ...seed() };
  } catch (error) {
    showError(error.message);
    return;
  }
  state.inFlight = true;
  const call = ++state.call;
  const current = () => call === state.call;
  hideError();
  updateButtons();
  ui.status.textContent = "Waiting for RoboJam…";
  const started = performance.now();
  try {
    const text = await predict(fields);
    if (!current()) return;
    const rows = parseMicroJamCSV(text);
    ui.rtt.textContent = `Round trip: ${Math.round(performance.now() - started)} ms.`;
    state.reply = { text, rows };
    state.playback = { rows, start: performance.now(), next: 0 };
    addLayer("robojam", rows);
    ui.status.dataset.replyTouches = String(rows.length);
    ui.status.textContent = `RoboJam replied: ${rows.length} touches, ${duration(rows).toFixed(2)} s.`;
  } catch (error) {
    if (!current()) return;
    ui.rtt.textContent = `Round trip: ${Math.round(performance.now() - started)} ms (failed).`;
    ui.status.textContent = "No reply.";
    const hint = empty ? "Nothing recorded yet: play on the square first. " : "";
    showError(hint + error.message);
  } finally {
    if (current()) {
      state.inFlight = false;
      updateButtons();
      const next = state.queued;
      state.queued = null;
      if (next) next();
    }
  }
}

function updateButtons() {
  ui.jam.disabled = state.inFlight;
  ui.continue.disabled = state.inFlight || state.reply === null;
}

ui.jam.addEventListener("click", () => {
  sound.unlock();
  sendRecording();
});
ui.continue.addEventListener("click", () => {
  sound.unlock();
  if (state.reply) jam(state.reply.text);
});
ui.clear.addEventListener("click", () => {
  clearTimeout(state.autoTimer);
  clearTimeout(state.fullTimer);
  recorder.reset();
  for (const layer of state.layers) URL.revokeObjectURL(layer.url);
  // A call still out and one queued behind it belong to what was cleared: forget both.
  state.call += 1;
  Object.assign(state, { layers: [], shown: [], reply: null, playback: null, inFlight: false, queued: null });
  ui.layers.replaceChildren(Object.assign(document.createElement("li"), { className: "none", textContent: "Nothing played yet." }));
  delete ui.status.dataset.replyTouches;
  ui.status.textContent = "Ready.";
  hideError();
  updateButtons();
});

function countdown(now) {
  let text = "Touch the square to play (up to 5 s).";
  let fill = 0;
  if (recorder.full) {
    text = ui.auto.checked ? "5 s recorded: sending." : "5 s recorded: press Jam.";
    fill = 1;
  } else if (recorder.start !== null) {
    const left = Math.max(0, MAX_SECONDS - recorder.elapsed(now));
    text = `Recording: ${left.toFixed(1)} s left.`;
    fill = 1 - left / MAX_SECONDS;
  }
  if (ui.countdown.textContent !== text) ui.countdown.textContent = text;
  ui.meter.style.width = `${(100 * fill).toFixed(1)}%`;
}

let drawn = "";

function frame(now) {
  countdown(now);
  requestAnimationFrame(frame);
  const play = state.playback;
  const playing = Boolean(play && play.next < play.rows.length);
  canvas.dataset.playing = String(playing);
  // What the pad shows; redrawn only when it changes (an idle page costs nothing).
  const view = [canvas.width, recorder.rows.length, state.shown.length, play?.rows.length, play?.next, playing];
  if (view.join() === drawn && !playing) return;
  drawn = view.join();
  const layers = [];
  const you = recorder.empty ? state.shown : recorder.rows;
  if (you.length) layers.push({ rows: you, who: "you", upTo: Infinity, playing: false });
  if (play) {
    const elapsed = (now - play.start) / 1000;
    while (play.next < play.rows.length && play.rows[play.next].time <= elapsed) {
      sound.touch("robojam", play.rows[play.next], "triangle");
      play.next += 1;
    }
    layers.push({ rows: play.rows, who: "robojam", upTo: elapsed, playing: play.next < play.rows.length });
  }
  pad.draw(layers);
}
requestAnimationFrame(frame);

function describeModel(m) {
  const nll = m.val_nll === null ? "not recorded" : m.val_nll.toFixed(3);
  ui.footer.replaceChildren(
    `Model: ${m.layers} × ${m.units} LSTM, ${m.mixtures} mixtures, ${m.parameters.toLocaleString("en")} parameters,` +
      ` validation NLL ${nll}. Weights sha256 `,
    Object.assign(document.createElement("code"), { textContent: m.sha256 ?? "unknown" }),
    ".",
  );
  Object.assign(ui.footer.dataset, {
    units: m.units,
    layers: m.layers,
    mixtures: m.mixtures,
    parameters: m.parameters,
    valNll: String(m.val_nll),
    sha256: String(m.sha256),
  });
}

getJSON("openapi.json")
  .then((doc) => {
    state.options = makeSliders($("options"), doc);
  })
  .catch((error) => showError(`${error.message} The sliders are off; replies use the service's defaults.`));
getJSON("api/model")
  .then(describeModel)
  .catch((error) => {
    ui.footer.textContent = `Model: unknown (${error.message})`;
  });
