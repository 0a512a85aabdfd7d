// The sliders for the request options. Ranges and defaults are read from the service's OpenAPI document (the
// pydantic model that validates requests), so the page never holds its own copy of the API's numbers.
const POSITIONS = 1000;

function round3(value) {
  return Number(value.toPrecision(3));
}

// (low, high] or [low, high] from a JSON-schema number property; an exclusive 0 becomes a small positive low.
export function bounds(schema) {
  const high = schema.maximum ?? schema.exclusiveMaximum;
  if ("minimum" in schema) return { low: schema.minimum, high };
  const floor = schema.exclusiveMinimum ?? 0;
  return { low: floor + (high - floor) / POSITIONS, high };
}

export class Slider {
  constructor(input, schema) {
    this.input = input;
    this.output = document.getElementById(`${input.id}-value`);
    this.field = input.dataset.field;
    this.log = input.dataset.scale === "log" && bounds(schema).low > 0;
    Object.assign(this, bounds(schema));
    this.value = schema.default;
    input.min = "0";
    input.max = String(POSITIONS);
    input.step = "1";
    input.title = schema.description || "";
    input.dataset.min = String(this.low);
    input.dataset.max = String(this.high);
    input.value = String(this.position(this.value));
    input.disabled = false;
    input.addEventListener("input", () => {
      this.value = this.at(Number(input.value));
      this.show();
    });
    this.show();
  }

  at(position) {
    const f = position / POSITIONS;
    const v = this.log ? this.low * (this.high / this.low) ** f : this.low + (this.high - this.low) * f;
    return Math.min(this.high, Math.max(this.low, round3(v)));
  }

  position(value) {
    const f = this.log
      ? Math.log(value / this.low) / Math.log(this.high / this.low)
      : (value - this.low) / (this.high - this.low);
    return Math.round(Math.min(1, Math.max(0, f)) * POSITIONS);
  }

  show() {
    this.input.dataset.value = String(this.value);
    this.output.textContent = String(this.value);
  }
}

// Sliders for every input[data-field] in `container`; values() gives the request's option fields.
export function makeSliders(container, openapi) {
  const properties = openapi.components.schemas.PredictRequest.properties;
  const sliders = [...container.querySelectorAll("input[data-field]")].map(
    (input) => new Slider(input, properties[input.dataset.field]),
  );
  return () => Object.fromEntries(sliders.map((s) => [s.field, s.value]));
}
