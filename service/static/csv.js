// The MicroJam performance CSV, written and read exactly as the iOS app does.
// Writer: header "time,x,y,z,moving" then String(format: "%f, %f, %f, %f, %d\n", ...) per touch.
// Reader: split on "\n", delete spaces, split on ",", a touch when fields 0-4 all parse as numbers.

export const HEADER = "time,x,y,z,moving";

// Values are kept at the CSV's six decimals, so what the page holds, draws and sends is what the file says
// (and toFixed(6) never meets a halfway case where it could round differently from C's %f).
export function sixDecimals(value) {
  return Math.round(value * 1e6) / 1e6;
}

export function touch(time, x, y, z, moving) {
  return { time: sixDecimals(time), x: sixDecimals(x), y: sixDecimals(y), z: sixDecimals(z), moving: moving ? 1 : 0 };
}

export function toMicroJamCSV(rows) {
  const lines = rows.map(
    (r) => `${r.time.toFixed(6)}, ${r.x.toFixed(6)}, ${r.y.toFixed(6)}, ${r.z.toFixed(6)}, ${r.moving ? 1 : 0}\n`,
  );
  return `${HEADER}\n${lines.join("")}`;
}

const NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

// The app's reader: lines that do not parse (the header, blanks) are skipped. A line whose first field parses
// but that has fewer than five fields would crash the app; here it is an error naming the line.
export function parseMicroJamCSV(text) {
  const rows = [];
  text.split("\n").forEach((line, index) => {
    const fields = line.replaceAll(" ", "").split(",");
    const values = [];
    for (let i = 0; i < 5; i += 1) {
      if (i >= fields.length) {
        throw new Error(`line ${index + 1} of the reply has only ${fields.length} fields.`);
      }
      if (!NUMBER.test(fields[i])) return;
      values.push(Number(fields[i]));
    }
    const [time, x, y, z, moving] = values;
    rows.push({ time, x, y, z, moving: moving === 1 ? 1 : 0 });
  });
  return rows;
}

export function duration(rows) {
  return rows.length ? rows[rows.length - 1].time : 0;
}
