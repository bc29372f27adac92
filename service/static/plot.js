// Small SVG helpers: elements, linear scales, nice ticks, axes and line plots.
// No library: the dashboard must work offline and stay readable end to end.

export const SVG_NS = "http://www.w3.org/2000/svg";

// Okabe–Ito: distinguishable with the common colour-vision deficiencies.
export const PALETTE = {
  blue: "#0072B2",
  orange: "#E69F00",
  vermillion: "#D55E00",
  green: "#009E73",
  purple: "#CC79A7",
  sky: "#56B4E9",
  yellow: "#F0E442",
  black: "#000000",
};
export const CLASS_COLOURS = [PALETTE.blue, PALETTE.orange, PALETTE.purple, PALETTE.green, PALETTE.sky];

/** An SVG element with attributes, appended to parent when given. */
export function svg(tag, attrs = {}, parent = null) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined) node.setAttribute(key, String(value));
  }
  if (parent) parent.appendChild(node);
  return node;
}

/** An HTML element with attributes and children (strings become text). */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

/** SVG text with content. */
export function text(parent, x, y, content, attrs = {}) {
  const node = svg("text", { x, y, ...attrs }, parent);
  node.textContent = content;
  return node;
}

export function scale(d0, d1, r0, r1) {
  const span = d1 - d0 || 1;
  const f = (v) => r0 + ((v - d0) / span) * (r1 - r0);
  f.invert = (r) => d0 + ((r - r0) / (r1 - r0)) * span;
  return f;
}

/** About `count` round tick values covering [lo, hi]. */
export function ticks(lo, hi, count = 5) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
  const out = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) {
    out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  }
  return out;
}

export function tickLabel(v) {
  if (Math.abs(v) >= 1e5) return v.toExponential(1).replace("e+", "e");
  return String(+v.toPrecision(4));
}

/** A plot frame: an <svg> with a plot box, axes, tick labels and axis titles. */
export function frame(parent, { width: wanted = 560, height: tall = 320, x, y, xlabel, ylabel, title, margin, fit = 0 }) {
  // Narrower than wanted (a phone): draw at the width there is, so text keeps its size.
  let width = wanted;
  let height = tall;
  const room = fit || (parent && parent.clientWidth) || 0;
  if (room > 0 && room < wanted) {
    width = Math.max(260, Math.floor(room));
    height = Math.round(tall * Math.max(0.8, width / wanted));
  }
  const m = { top: 16, right: 16, bottom: 46, left: 58, ...(margin || {}) };
  const root = svg("svg", {
    viewBox: `0 0 ${width} ${height}`,
    class: "chart",
    role: "img",
    "aria-label": title || `${ylabel} against ${xlabel}`,
  }, parent);
  const box = { left: m.left, top: m.top, right: width - m.right, bottom: height - m.bottom };
  const sx = scale(x[0], x[1], box.left, box.right);
  const sy = scale(y[0], y[1], box.bottom, box.top);
  const grid = svg("g", { class: "grid" }, root);
  const axis = svg("g", { class: "axis" }, root);
  for (const t of ticks(x[0], x[1], Math.max(3, Math.round((box.right - box.left) / 80)))) {
    svg("line", { x1: sx(t), x2: sx(t), y1: box.top, y2: box.bottom }, grid);
    text(axis, sx(t), box.bottom + 16, tickLabel(t), { "text-anchor": "middle" });
  }
  for (const t of ticks(y[0], y[1], Math.max(3, Math.round((box.bottom - box.top) / 50)))) {
    svg("line", { x1: box.left, x2: box.right, y1: sy(t), y2: sy(t) }, grid);
    text(axis, box.left - 6, sy(t) + 4, tickLabel(t), { "text-anchor": "end" });
  }
  svg("rect", {
    x: box.left, y: box.top, width: box.right - box.left, height: box.bottom - box.top, class: "box",
  }, axis);
  if (xlabel) text(axis, (box.left + box.right) / 2, height - 8, xlabel, { "text-anchor": "middle", class: "axis-title" });
  if (ylabel) {
    text(axis, 0, 0, ylabel, {
      "text-anchor": "middle", class: "axis-title",
      transform: `translate(14 ${(box.top + box.bottom) / 2}) rotate(-90)`,
    });
  }
  const layer = svg("g", { class: "data" }, root);
  return { root, layer, box, sx, sy };
}

/** The points attribute of a polyline through (x, y) pairs. */
export function polyline(points, sx, sy) {
  return points.map(([a, b]) => `${sx(a).toFixed(2)},${sy(b).toFixed(2)}`).join(" ");
}

export function extent(values, pad = 0) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (Number.isFinite(v)) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
  }
  if (!Number.isFinite(lo)) return [0, 1];
  if (lo === hi) return [lo - 0.5, hi + 0.5];
  const p = (hi - lo) * pad;
  return [lo - p, hi + p];
}

/** A legend line: a swatch (line, dashed line or marker) and its text. */
export function legendItem(kind, colour, label) {
  const mark = svg("svg", { viewBox: "0 0 28 12", width: 28, height: 12, "aria-hidden": "true" });
  if (kind === "dots") svg("circle", { cx: 14, cy: 6, r: 3.5, fill: colour }, mark);
  else svg("line", { x1: 1, x2: 27, y1: 6, y2: 6, stroke: colour, "stroke-width": 2.5, "stroke-dasharray": kind === "dashed" ? "5 3" : null }, mark);
  return h("span", { class: "legend-item" }, mark, label);
}

/** A number as the lecture prints it: 5 decimals (trailing zeros dropped), tiny ones in e-notation. */
export function fmt(v, digits = 5) {
  if (v === null || v === undefined) return "–";
  if (typeof v !== "number") return String(v);
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a < 10 ** -(digits - 2) || a >= 1e6) return v.toExponential(Math.max(1, digits - 2)).replace(/\.?0+e/, "e");
  let s = v.toFixed(digits);
  if (s.includes(".")) s = s.replace(/0+$/, "").replace(/\.$/, "");
  return s === "-0" ? "0" : s;
}
