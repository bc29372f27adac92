// The dashboard page (GET /): seven panels over the service's own JSON API.

import { ApiError, api, clearError, showError } from "./api.js";
import { CLASS_COLOURS, PALETTE, extent, fmt, frame, h, legendItem, polyline, svg, text } from "./plot.js";
import { drawTrace } from "./tracegraph.js";

// The Iris range of each feature (cm), for the sliders.
const IRIS_RANGE = {
  sepal_length: [4.3, 7.9],
  sepal_width: [2.0, 4.4],
  petal_length: [1.0, 6.9],
  petal_width: [0.1, 2.5],
};
const TOKEN_KEY = "backprop-serve.token";
const $ = (id) => document.getElementById(id);

const state = { model: null, values: {} };

function pretty(feature) {
  return feature.replace(/_/g, " ");
}

function withUnit(feature) {
  return feature in IRIS_RANGE ? `${pretty(feature)} (cm)` : pretty(feature);
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

function say(message) {
  $("status").textContent = message;
}

function range(feature, index) {
  if (feature in IRIS_RANGE) return IRIS_RANGE[feature];
  const pre = state.model && state.model.preprocessing;
  if (pre && pre.mean && pre.std) {
    const m = pre.mean[index];
    const s = pre.std[index] || 1;
    return [+(m - 3 * s).toFixed(2), +(m + 3 * s).toFixed(2)];
  }
  return [-10, 10];
}

function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

// ---------------------------------------------------------------- 1 model card

function architecture(model) {
  const layers = model.architecture.layers;
  const parts = [`${layers[0].in} inputs`];
  for (const layer of layers) parts.push(`${layer.out} ${layer.activation}`);
  return parts.join(" → ");
}

function renderModel(model) {
  const m = model.metrics || {};
  const t = model.training || {};
  const rows = [
    ["version", model.version],
    ["created", model.created_at],
    ["architecture", architecture(model)],
    ["features", model.features.map(pretty).join(", ")],
    ["classes", model.classes.join(", ")],
    ["train accuracy", m.train_accuracy == null ? "–" : fmt(m.train_accuracy, 4)],
    ["test accuracy", m.test_accuracy == null ? "–" : fmt(m.test_accuracy, 4)],
    ["train / test loss", `${fmt(m.train_loss, 4)} / ${fmt(m.test_loss, 4)}`],
    ["epochs", `${m.epochs ?? "–"}${m.converged ? " (converged)" : ""}, ${fmt(m.seconds, 2)} s`],
    ["training", Object.entries(t).filter(([k]) => k !== "features" && k !== "data").map(([k, v]) => `${k}=${v}`).join(", ")],
  ];
  const dl = h("dl", { class: "kv" });
  for (const [k, v] of rows) dl.append(h("dt", {}, k), h("dd", {}, String(v ?? "–")));
  $("model-card").replaceChildren(dl);
}

async function loadVersions() {
  const box = $("versions-error");
  try {
    const versions = await api("/models");
    const body = $("versions").querySelector("tbody");
    body.replaceChildren();
    const activeIndex = versions.findIndex((v) => v.active);
    versions.forEach((v, i) => {
      let action;
      if (v.active) action = h("span", { class: "badge" }, "active");
      else if (v.status && v.status !== "ok") action = h("span", { class: "muted" }, v.status);
      else {
        const verb = activeIndex >= 0 && i > activeIndex ? "Roll back" : "Activate";
        action = h("button", { type: "button", class: "small", "aria-label": `${verb} to ${v.version}` }, verb);
        action.addEventListener("click", () => activate(v.version));
      }
      const acc = v.metrics && v.metrics.test_accuracy != null ? fmt(v.metrics.test_accuracy, 3) : "–";
      body.append(h("tr", { class: v.active ? "active-row" : null, "data-version": v.version },
        h("td", {}, h("code", {}, v.version)),
        h("td", { class: "col-created" }, (v.created_at || "").replace("T", " ").slice(0, 19)),
        h("td", {}, String(v.target ?? (v.training && v.training.target) ?? "–")),
        h("td", {}, acc),
        h("td", {}, action)));
    });
    clearError(box);
  } catch (error) {
    showError(box, error);
  }
}

async function activate(version) {
  const box = $("versions-error");
  try {
    await api(`/models/${encodeURIComponent(version)}/activate`, { method: "POST", token: token() });
    say(`Version ${version} is now active.`);
    clearError(box);
    await refresh();
  } catch (error) {
    showError(box, error);
    if (error instanceof ApiError && (error.status === 401 || error.status === 403)) $("token").focus();
  }
}

async function refresh() {
  try {
    const model = await api("/model");
    const changed = !state.model || state.model.version !== model.version;
    state.model = model;
    renderModel(model);
    if (changed) {
      buildPredict(model);
      buildSurfaceControls(model);
      buildTraceInputs();
      drawActivations(model);
      loadSurface();
    }
  } catch (error) {
    $("model-card").replaceChildren(h("p", { class: "error" }, error instanceof ApiError ? error.describe() : String(error)));
  }
  await loadVersions();
}

// ---------------------------------------------------------------- 2 predict

function buildPredict(model) {
  const form = $("predict-form");
  form.replaceChildren();
  const pre = model.preprocessing || {};
  model.features.forEach((feature, i) => {
    const [lo, hi] = range(feature, i);
    const start = state.values[feature] ?? +(pre.mean ? pre.mean[i] : (lo + hi) / 2).toFixed(2);
    state.values[feature] = start;
    const id = `pf-${feature}`;
    const number = h("input", { id, name: feature, type: "number", step: "0.1", value: String(start), inputmode: "decimal" });
    const slider = h("input", {
      id: `${id}-range`, type: "range", min: String(lo), max: String(hi), step: "0.05", value: String(start),
      "aria-label": `${pretty(feature)} slider, ${lo} to ${hi} cm`,
    });
    number.addEventListener("input", () => {
      if (number.value !== "") slider.value = number.value;
      state.values[feature] = number.value === "" ? null : Number(number.value);
      schedulePredict();
    });
    slider.addEventListener("input", () => {
      number.value = slider.value;
      state.values[feature] = Number(slider.value);
      schedulePredict();
    });
    form.append(h("div", { class: "feature" },
      h("label", { for: id }, withUnit(feature)),
      number, slider,
      h("span", { class: "range-note", "aria-hidden": "true" }, `${lo} – ${hi}`)));
  });
  predict();
}

let predictSeq = 0;
async function predict() {
  const seq = ++predictSeq;
  const model = state.model;
  const row = {};
  for (const f of model.features) row[f] = state.values[f];
  const box = $("predict-error");
  const missing = model.features.filter((f) => !Number.isFinite(row[f]));
  if (missing.length) { // the server would refuse the row; name the field here
    showError(box, new ApiError(422, missing.map((f) => ({ loc: [f], msg: "enter a number (cm)" }))), $("predict-form"));
    return;
  }
  try {
    const answer = await api("/predict", { method: "POST", body: { instances: [row] } });
    if (seq !== predictSeq) return;
    clearError(box, $("predict-form"));
    const p = answer.predictions[0];
    const result = $("predict-result");
    const bars = h("div", { class: "bars" });
    model.classes.forEach((cls, k) => {
      const prob = p.probabilities[cls];
      const fill = h("span", { class: "bar-fill" });
      fill.style.width = `${(prob * 100).toFixed(2)}%`;
      fill.style.background = CLASS_COLOURS[k % CLASS_COLOURS.length];
      bars.append(h("div", { class: "bar", "data-class": cls, "data-p": String(prob) },
        h("span", { class: "bar-label" }, cls),
        h("span", { class: "bar-track", "aria-hidden": "true" }, fill),
        h("span", { class: "bar-value" }, fmt(prob, 4))));
    });
    result.replaceChildren(
      h("p", { class: "predicted" }, "predicted ", h("strong", { id: "predict-label" }, p.label),
        h("span", { class: "muted" }, ` · model ${answer.model_version}`)),
      bars);
    result.dataset.row = JSON.stringify(row);
  } catch (error) {
    if (seq !== predictSeq) return;
    showError(box, error, $("predict-form"));
  }
}
const schedulePredict = debounce(predict, 60);

// ---------------------------------------------------------------- 3 decision surface

function buildSurfaceControls(model) {
  const xs = $("surface-x");
  const ys = $("surface-y");
  for (const select of [xs, ys]) {
    select.replaceChildren(...model.features.map((f) => h("option", { value: f }, pretty(f))));
  }
  xs.value = model.features[0];
  ys.value = model.features[1] || model.features[0];
  ys.disabled = model.features.length < 2;
}

let surfaceSeq = 0;
async function loadSurface() {
  const model = state.model;
  if (!model) return;
  const seq = ++surfaceSeq;
  const box = $("surface-error");
  const q = new URLSearchParams({ x: $("surface-x").value, resolution: $("surface-res").value });
  if (model.features.length > 1) q.set("y", $("surface-y").value);
  try {
    const surface = await api(`/model/decision-surface?${q}`);
    if (seq !== surfaceSeq) return;
    clearError(box, $("surface-form"));
    drawSurface(surface);
  } catch (error) {
    if (seq !== surfaceSeq) return;
    showError(box, error, $("surface-form"));
  }
}

const SHAPES = ["circle", "square", "triangle", "diamond"];

function marker(parent, shape, x, y, size, attrs) {
  if (shape === "circle") return svg("circle", { cx: x, cy: y, r: size, ...attrs }, parent);
  let d;
  if (shape === "square") d = `M${x - size} ${y - size}h${2 * size}v${2 * size}h${-2 * size}z`;
  else if (shape === "triangle") {
    const s = size * 1.25;
    d = `M${x} ${y - s}L${x + s} ${y + s * 0.8}L${x - s} ${y + s * 0.8}z`;
  } else d = `M${x} ${y - size * 1.3}L${x + size * 1.3} ${y}L${x} ${y + size * 1.3}L${x - size * 1.3} ${y}z`;
  return svg("path", { d, ...attrs }, parent);
}

function tint(hex, amount) {
  const n = parseInt(hex.slice(1), 16);
  const mix = (c) => Math.round(255 - (255 - c) * amount);
  return [mix((n >> 16) & 255), mix((n >> 8) & 255), mix(n & 255)];
}

function drawSurface(surface) {
  state.surface = surface;
  const figure = $("surface-figure");
  figure.replaceChildren();
  const [fx, fy] = surface.features;
  const nx = surface.x.length;
  const ny = surface.y.length;
  const dx = nx > 1 ? (surface.x[1] - surface.x[0]) / 2 : 0.5;
  const dy = ny > 1 ? (surface.y[1] - surface.y[0]) / 2 : 0.5;
  const xd = [surface.x[0] - dx, surface.x[nx - 1] + dx];
  const yd = [surface.y[0] - dy, surface.y[ny - 1] + dy];
  const k = surface.classes.length;
  // The heat map: one canvas pixel per grid cell, tinted by class, deeper when surer.
  const canvas = document.createElement("canvas");
  canvas.width = nx;
  canvas.height = ny;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(nx, ny);
  for (let j = 0; j < ny; j += 1) {
    for (let i = 0; i < nx; i += 1) {
      const cls = surface.labels[j][i];
      const p = Math.max(...surface.probabilities[j][i]);
      const sure = k > 1 ? (p - 1 / k) / (1 - 1 / k) : p;
      const [r, g, b] = tint(CLASS_COLOURS[cls % CLASS_COLOURS.length], 0.12 + 0.33 * sure);
      const at = ((ny - 1 - j) * nx + i) * 4;
      image.data.set([r, g, b, 255], at);
    }
  }
  ctx.putImageData(image, 0, 0);
  const title = `Decision surface of ${surface.model_version} over ${pretty(fx)} and ${pretty(fy)}, with 150 Iris flowers`;
  const plot = frame(figure, {
    width: 560, height: 440, x: xd, y: yd, xlabel: withUnit(fx), ylabel: withUnit(fy), title,
  });
  const { box, sx, sy, layer } = plot;
  svg("image", {
    href: canvas.toDataURL(), x: box.left, y: box.top, width: box.right - box.left, height: box.bottom - box.top,
    preserveAspectRatio: "none", class: "heat",
  }, layer);
  // Keep the axes above the heat map.
  plot.root.append(plot.root.querySelector(".axis"));
  const species = [...new Set(surface.points.map((p) => p.species))];
  const points = svg("g", { class: "points" }, plot.root);
  const colourOf = (cls) => {
    const c = surface.classes.indexOf(cls);
    return c < 0 ? "#bbbbbb" : CLASS_COLOURS[c % CLASS_COLOURS.length];
  };
  for (const p of surface.points) {
    const shape = SHAPES[species.indexOf(p.species) % SHAPES.length];
    const m = marker(points, shape, sx(p.x), sy(p.y), 4.2, {
      class: "pt", fill: colourOf(p.class), "data-species": p.species,
    });
    const t = svg("title", {}, m);
    t.textContent = `${p.species}: ${pretty(fx)} ${p.x}, ${pretty(fy)} ${p.y}`;
  }
  figure.dataset.points = String(surface.points.length);
  const held = Object.entries(surface.held || {}).map(([f, v]) => `${pretty(f)} = ${fmt(v, 2)}`);
  figure.append(h("figcaption", {}, held.length ? `Other features held at their training means: ${held.join(", ")}.` : `Model ${surface.model_version}.`));
  // The legend: region colours by class, marker shapes by species.
  const legend = $("surface-legend");
  legend.replaceChildren(h("h3", {}, "predicted class"));
  surface.classes.forEach((cls, c) => {
    const sw = h("span", { class: "swatch", "aria-hidden": "true" });
    const [r, g, b] = tint(CLASS_COLOURS[c % CLASS_COLOURS.length], 0.45);
    sw.style.background = `rgb(${r}, ${g}, ${b})`;
    sw.style.borderColor = CLASS_COLOURS[c % CLASS_COLOURS.length];
    legend.append(h("p", { class: "legend-row" }, sw, cls));
  });
  legend.append(h("p", { class: "muted" }, "deeper colour = surer prediction"));
  legend.append(h("h3", {}, "Iris flowers"));
  species.forEach((sp, s) => {
    const icon = svg("svg", { viewBox: "0 0 16 16", width: 16, height: 16, "aria-hidden": "true" });
    const cls = surface.points.find((p) => p.species === sp).class;
    marker(icon, SHAPES[s % SHAPES.length], 8, 8, 5, { fill: colourOf(cls), class: "pt-legend" });
    legend.append(h("p", { class: "legend-row" }, icon, cls && cls !== sp ? `${sp} (${cls})` : sp));
  });
}

// ---------------------------------------------------------------- 4 train

function trainBody(form) {
  const body = {};
  const features = [...form.querySelectorAll('input[name="features"]:checked')].map((i) => i.value);
  body.features = features;
  for (const name of ["target", "hidden_activation", "optimizer"]) {
    const v = form.elements[name].value;
    if (v) body[name] = v;
  }
  for (const name of ["hidden_units", "learning_rate", "batch_size", "max_epochs", "tolerance", "test_fraction", "seed", "min_test_accuracy"]) {
    const input = form.elements[name];
    if (input.value !== "") body[name] = Number(input.value);
    else if (input.validity.badInput) body[name] = input.value; // typed but not a number: the server names it
  }
  body.standardize = form.elements.standardize.checked;
  body.activate = form.elements.activate.checked;
  return body;
}

const curve = { points: [], pending: false };

function drawCurve() {
  curve.pending = false;
  const figure = $("train-figure");
  figure.replaceChildren();
  const pts = curve.points;
  figure.dataset.points = String(pts.length);
  if (!pts.length) return;
  const epochs = extent(pts.map((p) => p.epoch));
  const wrap = h("div", { class: "two-plots" });
  figure.append(wrap);
  const columns = getComputedStyle(wrap).gridTemplateColumns.split(" ").length;
  const fit = figure.clientWidth / columns - 8;
  const lossPlot = frame(h("div", {}), {
    fit,
    width: 440, height: 260, x: [Math.min(0, epochs[0]), Math.max(1, epochs[1])], y: [0, Math.max(...pts.map((p) => p.loss)) * 1.05 || 1],
    xlabel: "epoch", ylabel: "training loss", title: `training loss over ${pts.length} points`,
  });
  svg("polyline", { points: polyline(pts.map((p) => [p.epoch, p.loss]), lossPlot.sx, lossPlot.sy), class: "series s-blue", id: "train-loss-line" }, lossPlot.layer);
  const accPlot = frame(h("div", {}), {
    fit,
    width: 440, height: 260, x: [Math.min(0, epochs[0]), Math.max(1, epochs[1])], y: [0, 1],
    xlabel: "epoch", ylabel: "train accuracy", title: `train accuracy over ${pts.length} points`,
  });
  const acc = pts.filter((p) => p.train_accuracy != null);
  svg("polyline", { points: polyline(acc.map((p) => [p.epoch, p.train_accuracy]), accPlot.sx, accPlot.sy), class: "series s-orange dashed" }, accPlot.layer);
  wrap.append(lossPlot.root, accPlot.root);
  const last = pts[pts.length - 1];
  figure.append(h("figcaption", {}, `epoch ${last.epoch}: loss ${fmt(last.loss)}, train accuracy ${last.train_accuracy == null ? "–" : fmt(last.train_accuracy, 4)}`));
}

function setCurve(points) {
  curve.points = points.slice();
  if (!curve.pending) {
    curve.pending = true;
    requestAnimationFrame(drawCurve);
  }
}

function addPoint(point) {
  const last = curve.points[curve.points.length - 1];
  if (last && point.epoch <= last.epoch) return;
  setCurve([...curve.points, point]);
}

function describeJob(job) {
  const p = job.progress || {};
  const where = p.epoch != null ? ` · epoch ${p.epoch} of ${p.max_epochs}` : "";
  let end = "";
  if (job.status === "succeeded" && job.result) {
    const acc = job.result.metrics && job.result.metrics.test_accuracy;
    end = ` · new version ${job.result.model_version}${job.result.activated ? " (active)" : ""}${acc != null ? `, test accuracy ${fmt(acc, 4)}` : ""}`;
  } else if (job.error) end = ` · ${job.error}`;
  $("train-status").textContent = `job ${job.job_id}: ${job.status}${where}${end}`;
}

async function finished(job) {
  describeJob(job);
  if (job.history && job.history.length) setCurve(job.history);
  $("train-start").disabled = false;
  await refresh();
  if (job.result && job.result.model_version) say(`Training finished: version ${job.result.model_version} is in the list.`);
}

function poll(jobId) {
  const tick = async () => {
    try {
      const job = await api(`/train/${encodeURIComponent(jobId)}`);
      describeJob(job);
      if (job.history) setCurve(job.history);
      if (["succeeded", "failed", "cancelled"].includes(job.status)) await finished(job);
      else setTimeout(tick, 400);
    } catch (error) {
      showError($("train-error"), error);
      $("train-start").disabled = false;
    }
  };
  tick();
}

function follow(jobId) {
  if (!("EventSource" in window)) {
    poll(jobId);
    return;
  }
  const source = new EventSource(`/train/${encodeURIComponent(jobId)}/events`);
  let ended = false;
  source.addEventListener("job", (e) => {
    const job = JSON.parse(e.data);
    describeJob(job);
    if (job.history) setCurve(job.history);
  });
  source.addEventListener("progress", (e) => {
    const p = JSON.parse(e.data);
    addPoint(p);
    $("train-status").textContent = `job ${jobId}: running · epoch ${p.epoch} of ${p.max_epochs}, loss ${fmt(p.loss)}`;
  });
  source.addEventListener("end", (e) => {
    ended = true;
    source.close();
    finished(JSON.parse(e.data));
  });
  source.onerror = () => {
    source.close();
    if (!ended) poll(jobId); // the stream broke: follow the job by polling instead
  };
}

async function startTraining(event) {
  event.preventDefault();
  const form = $("train-form");
  const box = $("train-error");
  clearError(box, form);
  $("train-start").disabled = true;
  try {
    const answer = await api("/train", { method: "POST", body: trainBody(form), token: token() });
    setCurve([]);
    describeJob({ job_id: answer.job_id, status: answer.status });
    follow(answer.job_id);
  } catch (error) {
    $("train-start").disabled = false;
    showError(box, error, form);
    if (error instanceof ApiError && (error.status === 401 || error.status === 403)) $("token").focus();
  }
}

// ---------------------------------------------------------------- 5 trace

function buildTraceInputs() {
  const lecture = $("trace-weights").value === "lecture";
  const box = $("trace-inputs");
  box.replaceChildren();
  const features = lecture ? ["x1", "x2"] : state.model.features;
  features.forEach((f, i) => {
    const value = lecture ? [5, 3][i] : state.values[f];
    box.append(h("label", {}, lecture ? f : pretty(f),
      h("input", { name: f, type: "number", step: "any", value: String(value ?? ""), class: "narrow" })));
  });
  const label = $("trace-label");
  const options = lecture ? ["1", "0"] : state.model.classes;
  label.replaceChildren(...options.map((o) => h("option", { value: o }, o)));
  if (!lecture) label.value = state.model.classes[state.model.classes.length - 1];
}

function traceQuery() {
  const lecture = $("trace-weights").value === "lecture";
  const q = new URLSearchParams();
  if (lecture) q.set("weights", "lecture");
  for (const input of $("trace-inputs").querySelectorAll("input")) {
    if (lecture) q.append("x", input.value);
    else q.set(input.name, input.value);
  }
  q.set("label", $("trace-label").value);
  return q;
}

async function runTrace(event) {
  if (event) event.preventDefault();
  const q = traceQuery();
  const box = $("trace-error");
  const lecture = q.get("weights") === "lecture";
  const html = new URLSearchParams(q);
  html.set("format", "html");
  $("trace-link").href = `/backprop?${html}`;
  try {
    const trace = await api(`/backprop?${q}`);
    clearError(box, $("trace-form"));
    drawTrace($("trace-view"), trace, { inputs: lecture ? null : state.model.features });
  } catch (error) {
    showError(box, error, $("trace-form"));
  }
}

function lectureExample() {
  $("trace-weights").value = "lecture";
  buildTraceInputs();
  runTrace();
}

// ---------------------------------------------------------------- 6 descent

async function runDescent(event) {
  if (event) event.preventDefault();
  const form = $("descent-form");
  const box = $("descent-error");
  const num = (name) => (form.elements[name].value === "" ? null : Number(form.elements[name].value));
  const body = {
    x: [num("x1"), num("x2")],
    label: Number(form.elements.label.value),
    weights: "lecture",
    steps: num("steps"),
    learning_rate: num("learning_rate"),
  };
  try {
    const answer = await api("/backprop", { method: "POST", body });
    clearError(box, form);
    drawDescent(answer.descent, body.label);
  } catch (error) {
    showError(box, error, form);
  }
}

function drawDescent(descent, label) {
  state.descent = [descent, label];
  const figure = $("descent-figure");
  figure.replaceChildren();
  const loss = descent.loss;
  const output = descent.output.map((o) => (Array.isArray(o) ? o[0] : o));
  const n = loss.length - 1;
  const top = Math.max(1, ...loss) * 1.05;
  const plot = frame(figure, {
    width: 520, height: 300, x: [0, Math.max(1, n)], y: [0, top], xlabel: "step", ylabel: "value",
    title: `loss and output over ${n} gradient-descent steps on one sample, label ${label}`,
  });
  svg("polyline", { points: polyline(loss.map((v, i) => [i, v]), plot.sx, plot.sy), class: "series s-blue", id: "descent-loss" }, plot.layer);
  const dots = svg("g", { class: "dots" }, plot.layer);
  output.forEach((v, i) => svg("circle", { cx: plot.sx(i).toFixed(2), cy: plot.sy(v).toFixed(2), r: 2.4, fill: PALETTE.orange, stroke: "#8a5a00", "stroke-width": 0.5 }, dots));
  figure.append(h("figcaption", { class: "legend" },
    legendItem("line", PALETTE.blue, "loss J"), legendItem("dots", PALETTE.orange, "output y")));
  figure.dataset.firstLoss = String(loss[0]);
  figure.dataset.lastLoss = String(loss[n]);
  figure.dataset.steps = String(n);
  $("descent-summary").textContent =
    `label ${label}: loss ${fmt(loss[0])} → ${fmt(loss[n])} and output ${fmt(output[0])} → ${fmt(output[n])} after ${n} steps (learning rate ${descent.learning_rate})`;
}

// ---------------------------------------------------------------- 7 activations

const ACTIVATIONS = [
  { name: "step", f: (z) => (z > 0 ? 1 : 0), d: () => 0, y: [-0.2, 1.2], note: "derivative 0 (undefined at 0): no gradient to learn from" },
  { name: "sigmoid", f: (z) => 1 / (1 + Math.exp(-z)), d: (z) => { const s = 1 / (1 + Math.exp(-z)); return s * (1 - s); }, y: [-0.1, 1.1], note: "σ' = σ(1−σ), at most 0.25" },
  { name: "tanh", f: Math.tanh, d: (z) => 1 - Math.tanh(z) ** 2, y: [-1.2, 1.2], note: "tanh' = 1 − tanh²" },
  { name: "relu", label: "ReLU", f: (z) => Math.max(0, z), d: (z) => (z > 0 ? 1 : 0), y: [-0.5, 5.2], note: "ReLU' = 1 for z > 0, else 0" },
];

function drawActivations(model) {
  const layers = model.architecture.layers;
  const hidden = layers.length > 1 ? layers[0].activation : null;
  const output = layers[layers.length - 1].activation;
  const box = $("activation-plots");
  box.replaceChildren();
  const zs = Array.from({ length: 201 }, (_, i) => -5 + i * 0.05);
  for (const a of ACTIVATIONS) {
    const served = a.name === hidden;
    const title = a.label || a.name;
    const card = h("figure", { class: `activation${served ? " served" : ""}`, "data-activation": a.name });
    const plot = frame(card, {
      width: 300, height: 200, x: [-5, 5], y: a.y, xlabel: "z", ylabel: "", title: `${title} and its derivative`,
      margin: { left: 34, bottom: 36, top: 10, right: 10 },
    });
    const colour = served ? "s-vermillion" : "s-blue";
    if (a.name === "step") {
      svg("polyline", { points: polyline([[-5, 0], [0, 0]], plot.sx, plot.sy), class: `series ${colour}` }, plot.layer);
      svg("polyline", { points: polyline([[0, 1], [5, 1]], plot.sx, plot.sy), class: `series ${colour}` }, plot.layer);
    } else {
      svg("polyline", { points: polyline(zs.map((z) => [z, a.f(z)]), plot.sx, plot.sy), class: `series ${colour}` }, plot.layer);
    }
    svg("polyline", { points: polyline(zs.map((z) => [z, a.d(z)]), plot.sx, plot.sy), class: "series s-black dashed" }, plot.layer);
    const tags = [];
    if (served) tags.push(h("span", { class: "badge" }, "served: hidden layer"));
    if (a.name === output) tags.push(h("span", { class: "badge quiet" }, "served: output layer"));
    card.prepend(h("figcaption", {}, h("strong", {}, title), " ", ...tags, h("br"), h("span", { class: "muted" }, a.note)));
    box.append(card);
  }
  box.append(h("p", { class: "legend" }, legendItem("line", PALETTE.blue, "function"), legendItem("dashed", PALETTE.black, "derivative"),
    hidden ? legendItem("line", PALETTE.vermillion, `the served model's hidden activation (${hidden})`) : "the served model has no hidden layer"));
}

// ---------------------------------------------------------------- start

function init() {
  const tokenInput = $("token");
  tokenInput.value = token();
  tokenInput.addEventListener("input", () => sessionStorage.setItem(TOKEN_KEY, tokenInput.value));
  $("surface-form").addEventListener("change", loadSurface);
  $("surface-form").addEventListener("submit", (e) => e.preventDefault());
  $("predict-form").addEventListener("submit", (e) => e.preventDefault());
  $("token-form").addEventListener("submit", (e) => e.preventDefault());
  $("train-form").addEventListener("submit", startTraining);
  $("trace-form").addEventListener("submit", runTrace);
  $("trace-lecture").addEventListener("click", lectureExample);
  $("trace-weights").addEventListener("change", () => {
    buildTraceInputs();
    runTrace();
  });
  $("descent-form").addEventListener("submit", runDescent);
  let lastWidth = window.innerWidth;
  window.addEventListener("resize", debounce(() => {
    if (Math.abs(window.innerWidth - lastWidth) < 40) return;
    lastWidth = window.innerWidth;
    if (state.surface) drawSurface(state.surface);
    if (state.descent) drawDescent(...state.descent);
    if (curve.points.length) drawCurve();
    if (state.model) drawActivations(state.model);
  }, 150));
  refresh().then(() => {
    lectureExample();
    runDescent();
  });
}

init();
