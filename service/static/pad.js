// Draws layers of touches on the square canvas: lines along each touch, a dot where it went down, and a
// bright head on a layer that is still playing. Colours come from the page's CSS variables.
export class Pad {
  constructor(canvas) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    const style = getComputedStyle(document.documentElement);
    this.colours = {
      you: style.getPropertyValue("--user").trim(),
      robojam: style.getPropertyValue("--robojam").trim(),
      pad: style.getPropertyValue("--pad").trim(),
    };
    new ResizeObserver(() => this.resize()).observe(canvas);
    this.resize();
  }

  resize() {
    const side = Math.max(1, Math.round(this.canvas.clientWidth * (window.devicePixelRatio || 1)));
    if (this.canvas.width !== side) {
      this.canvas.width = side;
      this.canvas.height = side;
    }
  }

  // layers: [{ rows, who: "you" | "robojam", upTo: seconds drawn (Infinity: all), playing: bool }]
  draw(layers) {
    const { ctx, canvas } = this;
    const side = canvas.width;
    const unit = side / 320;
    ctx.fillStyle = this.colours.pad;
    ctx.fillRect(0, 0, side, side);
    for (const layer of layers) {
      const colour = this.colours[layer.who];
      ctx.strokeStyle = colour;
      ctx.fillStyle = colour;
      ctx.lineWidth = 3 * unit;
      ctx.lineCap = "round";
      ctx.lineJoin = "round";
      let last = null;
      ctx.beginPath();
      for (const row of layer.rows) {
        if (row.time > layer.upTo) break;
        const x = row.x * side;
        const y = row.y * side;
        if (row.moving === 0 || last === null) {
          ctx.moveTo(x, y);
          ctx.lineTo(x + 0.01, y);
        } else {
          ctx.lineTo(x, y);
        }
        last = { x, y };
      }
      ctx.stroke();
      for (const row of layer.rows) {
        if (row.time > layer.upTo) break;
        if (row.moving === 0) {
          ctx.beginPath();
          ctx.arc(row.x * side, row.y * side, 4 * unit, 0, 2 * Math.PI);
          ctx.fill();
        }
      }
      if (layer.playing && last) {
        ctx.globalAlpha = 0.35;
        ctx.beginPath();
        ctx.arc(last.x, last.y, 12 * unit, 0, 2 * Math.PI);
        ctx.fill();
        ctx.globalAlpha = 1;
      }
    }
  }
}
