// The backprop trace (GET /backprop JSON) drawn as the lecture's slides draw it:
// each node with its value and its derivative dJ/d(node), each edge with its weight
// and its gradient; focusing or hovering shows the chain-rule product behind a gradient.

import { fmt, h, svg, text } from "./plot.js";

const ACT_FACTOR = {
  sigmoid: (name) => `${name}(1−${name})`,
  tanh: (name) => `(1−${name}²)`,
  relu: (name) => `1[z>0]`,
  linear: () => "1",
};

function subscript(i) {
  return String(i + 1);
}

function layerSymbols(trace) {
  const n = trace.layers.length;
  const weights = n === 2 ? ["W", "V"] : trace.layers.map((_, i) => (n === 1 ? "W" : `W${i + 1}`));
  const units = trace.layers.map((layer, i) => (i === n - 1 ? "y" : n === 2 ? "h" : `h${i + 1}_`));
  return { weights, units };
}

function unitName(symbols, l, j, size) {
  const base = symbols.units[l];
  if (l === symbols.units.length - 1 && size === 1) return base;
  return `${base}${subscript(j)}`;
}

/** The local derivative's factors for unit j of a layer: [symbolic, numbers]. */
function localFactor(layer, name, j) {
  if (layer.activation === "softmax" || layer.activation_derivative === null) return null;
  const out = layer.output[j];
  if (layer.activation === "sigmoid") return { sym: ACT_FACTOR.sigmoid(name), nums: [out, 1 - out] };
  if (layer.activation in ACT_FACTOR) {
    return { sym: ACT_FACTOR[layer.activation](name), nums: [layer.activation_derivative[j]] };
  }
  return { sym: `σ'(z)`, nums: [layer.activation_derivative[j]] };
}

function product(nums, result) {
  return `${nums.map((v) => fmt(v)).join(" × ")} = ${fmt(result)}`;
}

/** Explanations for every gradient of the trace, keyed by element id. */
function explanations(trace, names) {
  const symbols = layerSymbols(trace);
  const last = trace.layers.length - 1;
  const out = {};
  const inputNames = names.inputs;
  const label = Number(trace.target.length === 1 ? trace.target[0] : NaN);
  const outputLayer = trace.layers[last];
  const dJdy = trace.grad_loss_output;
  // The loss and the output node.
  if (outputLayer.activation === "softmax") {
    const k = trace.target.findIndex((t) => t === 1);
    out.loss = `J = −log(p${subscript(k)}) = −log(${fmt(trace.output[k])}) = ${fmt(trace.loss)} (categorical cross-entropy)`;
  } else {
    const y = trace.output[0];
    out.loss = label === 1
      ? `J = −log(y) = −log(${fmt(y)}) = ${fmt(trace.loss)} (binary cross-entropy, label 1)`
      : `J = −log(1−y) = −log(1 − ${fmt(y)}) = ${fmt(trace.loss)} (binary cross-entropy, label 0)`;
  }
  // Every layer's units and edges.
  trace.layers.forEach((layer, l) => {
    const size = layer.output.length;
    const prevNames = l === 0 ? inputNames : trace.layers[l - 1].output.map((_, i) => unitName(symbols, l - 1, i, trace.layers[l - 1].output.length));
    const prevValues = l === 0 ? trace.input.network_input : trace.layers[l - 1].output;
    for (let j = 0; j < size; j += 1) {
      const name = unitName(symbols, l, j, size);
      const local = localFactor(layer, name, j);
      let nodeText;
      if (l === last) {
        const y = layer.output[j];
        if (layer.activation === "softmax") {
          nodeText = `dJ/d${name} = −t${subscript(j)}/${name} = ${fmt(layer.grad_output[j])}`;
        } else if (label === 1) {
          nodeText = `dJ/d${name} = −1/${name} = −1/${fmt(y)} = ${fmt(layer.grad_output[j])}`;
        } else {
          nodeText = `dJ/d${name} = 1/(1−${name}) = 1/(1 − ${fmt(y)}) = ${fmt(layer.grad_output[j])}`;
        }
      } else {
        const next = trace.layers[l + 1];
        const nextSize = next.output.length;
        const nextLocal = localFactor(next, unitName(symbols, l + 1, 0, nextSize), 0);
        const wsym = symbols.weights[l + 1];
        if (nextSize === 1 && nextLocal) {
          const nextName = unitName(symbols, l + 1, 0, 1);
          const nums = [next.grad_output[0], ...localFactor(next, nextName, 0).nums, next.weights[j][0]];
          nodeText = `dJ/d${name} = dJ/d${nextName} · ${nextLocal.sym} · ${wsym}${subscript(j)} = ${product(nums, layer.grad_output[j])}`;
        } else {
          const terms = next.grad_pre_activation.map((g, k) => `${fmt(g)} × ${fmt(next.weights[j][k])}`);
          nodeText = `dJ/d${name} = Σk dJ/dz_k · ${wsym}${subscript(j)}k = ${terms.join(" + ")} = ${fmt(layer.grad_output[j])}`;
        }
      }
      if (local) nodeText += `; local derivative ${local.sym} = ${fmt(layer.activation_derivative[j])}`;
      if (layer.bias) {
        nodeText += `; bias b = ${fmt(layer.bias[j])}, dJ/db = dJ/dz = ${fmt(layer.grad_bias[j])}`;
      }
      if (layer.saturated.includes(j)) nodeText += "; saturated: its derivative is below 1e-3, so almost no gradient passes back";
      out[`n-${l + 1}-${j}`] = nodeText;
      prevValues.forEach((a, i) => {
        const wname = `${symbols.weights[l]}${subscript(i)}${size > 1 ? subscript(j) : ""}`;
        const grad = layer.grad_weights[i][j];
        let edgeText;
        if (local) {
          const nums = [layer.grad_output[j], ...local.nums, a];
          edgeText = `dJ/d${wname} = dJ/d${name} · ${local.sym} · ${prevNames[i]} = ${product(nums, grad)}`;
        } else {
          edgeText = `dJ/d${wname} = (p${subscript(j)} − t${subscript(j)}) · ${prevNames[i]} = ${product([layer.grad_pre_activation[j], a], grad)}`;
        }
        out[`e-${l + 1}-${i}-${j}`] = `${wname} = ${fmt(layer.weights[i][j])}; ${edgeText}`;
      });
    }
  });
  // The inputs: dJ/dx_i = Σ_j dJ/dz_j · W_ij.
  const first = trace.layers[0];
  trace.input.network_input.forEach((x, i) => {
    const terms = first.grad_pre_activation.map((g, j) => `${fmt(g)} × ${fmt(first.weights[i][j])}`);
    let s = `dJ/d${inputNames[i]} = Σj dJ/dz_j · ${symbols.weights[0]}${subscript(i)}j = ${terms.join(" + ")} = ${fmt(trace.grad_input[i])}`;
    if (trace.grad_raw_input && trace.input.raw[i] !== x) {
      s += `; through the standardisation, dJ/d(raw ${inputNames[i]}) = ${fmt(trace.grad_raw_input[i])}`;
    }
    out[`n-0-${i}`] = s;
  });
  out.dJdy = `dJ/dy = ${fmt(dJdy[0])}`;
  return out;
}

/**
 * Draw `trace` into `container`. `names.inputs` labels the input nodes (feature
 * names or x1, x2), `names.classes` the outputs of a softmax model.
 */
export function drawTrace(container, trace, names = {}) {
  container.replaceChildren();
  const n0 = trace.input.network_input.length;
  const inputs = names.inputs && names.inputs.length === n0 ? names.inputs : trace.input.network_input.map((_, i) => `x${i + 1}`);
  const info = explanations(trace, { inputs });
  const symbols = layerSymbols(trace);
  const columns = [trace.input.network_input, ...trace.layers.map((l) => l.output)];
  const maxN = Math.max(...columns.map((c) => c.length));
  // Each column spreads its units over the tallest column's height.
  const height = Math.max(330, maxN * Math.max(26, Math.min(140, 900 / maxN)) + 90);
  const spacings = columns.map((c) => Math.min(140, (height - 90) / c.length));
  const radii = spacings.map((sp) => Math.max(8, Math.min(34, sp / 2.8)));
  const width = 260 + 230 * (columns.length - 1) + 150;
  const totalEdges = trace.layers.reduce((s, l) => s + l.weights.length * l.output.length, 0);
  const edgeLabels = totalEdges <= 24;
  const focusEdges = totalEdges <= 60;

  const root = svg("svg", {
    viewBox: `0 0 ${width} ${height}`,
    class: "trace-svg",
    role: "group",
    "aria-label": `The network: ${columns.map((c) => c.length).join("–")} units; loss ${fmt(trace.loss)}`,
  });
  const colX = (c) => 90 + c * 230;
  const nodeY = (c, i) => {
    const n = columns[c].length;
    return height / 2 + (i - (n - 1) / 2) * spacings[c];
  };
  const edgeLayer = svg("g", { class: "edges" }, root);
  const labelLayer = svg("g", { class: "edge-labels" }, root);
  const nodeLayer = svg("g", { class: "nodes" }, root);
  const explain = h("p", { class: "explain", id: `explain-${Math.random().toString(36).slice(2, 8)}`, "aria-live": "polite" },
    "Hover over or focus a node or an edge to see how its gradient is computed.");

  const activate = (el, id) => {
    root.querySelectorAll(".active").forEach((a) => a.classList.remove("active"));
    el.classList.add("active");
    explain.textContent = info[id] || "";
  };
  const interactive = (el, id, label, focusable) => {
    el.dataset.id = id;
    el.setAttribute("aria-label", label);
    el.setAttribute("role", "img");
    if (focusable) el.setAttribute("tabindex", "0");
    el.addEventListener("mouseenter", () => activate(el, id));
    el.addEventListener("focus", () => activate(el, id));
    const title = svg("title", {}, el);
    title.textContent = info[id] || label;
  };

  // Edges with weight and gradient.
  trace.layers.forEach((layer, l) => {
    const nOut = layer.output.length;
    layer.weights.forEach((row, i) => {
      row.forEach((w, j) => {
        const x1 = colX(l) + radii[l];
        const y1 = nodeY(l, i);
        const x2 = colX(l + 1) - radii[l + 1];
        const y2 = nodeY(l + 1, j);
        const id = `e-${l + 1}-${i}-${j}`;
        const g = svg("g", { class: "edge" }, edgeLayer);
        svg("line", { x1, y1, x2, y2, class: "edge-line", "stroke-width": Math.min(5, 1 + Math.abs(w)) }, g);
        svg("line", { x1, y1, x2, y2, class: "edge-hit" }, g);
        const grad = layer.grad_weights[i][j];
        const wname = `${symbols.weights[l]}${i + 1}${nOut > 1 ? j + 1 : ""}`;
        interactive(g, id, `weight ${wname} = ${fmt(w)}, gradient ${fmt(grad)}`, focusEdges);
        if (edgeLabels) {
          const t = nOut > 1 && row.length > 0 && layer.weights.length > 1 ? 0.64 : 0.5;
          const lx = x1 + (x2 - x1) * t;
          const ly = y1 + (y2 - y1) * t;
          const lab = svg("g", { class: "edge-label", "aria-hidden": "true" }, labelLayer);
          text(lab, lx, ly - 4, `${wname} = ${fmt(w, 3)}`, { class: "w", "text-anchor": "middle" });
          text(lab, lx, ly + 11, `∂ ${fmt(grad, 4)}`, { class: "g", "text-anchor": "middle" });
        }
      });
    });
  });

  // Nodes with value and derivative.
  columns.forEach((values, c) => {
    values.forEach((v, i) => {
      const x = colX(c);
      const y = nodeY(c, i);
      const layer = c === 0 ? null : trace.layers[c - 1];
      const name = c === 0 ? inputs[i] : unitName(symbols, c - 1, i, values.length);
      const grad = c === 0 ? trace.grad_input[i] : layer.grad_output[i];
      const saturated = layer ? layer.saturated.includes(i) : false;
      const g = svg("g", { class: `node${c === 0 ? " input" : ""}${saturated ? " saturated" : ""}` }, nodeLayer);
      const r = radii[c];
      const showText = r >= 24;
      svg("circle", { cx: x, cy: y, r }, g);
      const short = c === 0 && name.length > 6 ? `x${i + 1}` : name;
      if (showText) {
        const raw = c === 0 ? trace.input.raw[i] : v;
        const title = c === 0 && raw !== v ? `${name.replace(/_/g, " ")} = ${fmt(raw)}` : name.replace(/_/g, " ");
        text(g, x, y - r - 8, title, { class: "node-name", "text-anchor": "middle" });
        const shown = fmt(v);
        text(g, x, y + 5, shown, { class: `node-value${shown.length > 7 ? " long" : ""}`, "text-anchor": "middle" });
        text(g, x, y + r + 16, `∂ ${fmt(grad)}`, { class: "node-grad", "text-anchor": "middle" });
        if (saturated) text(g, x, y + r + 31, "saturated", { class: "sat-tag", "text-anchor": "middle" });
      } else if (r >= 12) {
        text(g, x, y + 4, short, { class: "node-small", "text-anchor": "middle" });
      }
      const extra = saturated ? ", saturated" : "";
      interactive(g, `n-${c}-${i}`, `${name} = ${fmt(v)}, dJ/d${name} = ${fmt(grad)}${extra}`, true);
    });
  });

  // The loss node J and the target.
  const lx = colX(columns.length - 1) + 150;
  const ly = height / 2;
  const lossG = svg("g", { class: "node loss" }, nodeLayer);
  svg("rect", { x: lx - 42, y: ly - 26, width: 84, height: 52, rx: 8 }, lossG);
  text(lossG, lx, ly - 34, "J", { class: "node-name", "text-anchor": "middle" });
  text(lossG, lx, ly + 5, fmt(trace.loss), { class: "node-value", "text-anchor": "middle" });
  text(lossG, lx, ly + 44, `target ${trace.label}`, { class: "node-grad muted", "text-anchor": "middle" });
  interactive(lossG, "loss", `loss J = ${fmt(trace.loss)}`, true);
  const outX = colX(columns.length - 1) + radii[columns.length - 1];
  const lastCol = columns[columns.length - 1];
  lastCol.forEach((_, i) => {
    svg("line", { x1: outX, y1: nodeY(columns.length - 1, i), x2: lx - 42, y2: ly, class: "edge-line loss-line" }, edgeLayer);
  });

  // The legend, as on the slides.
  const legend = svg("g", { class: "trace-legend", "aria-hidden": "true" }, root);
  text(legend, 12, 18, "node value", { class: "node-value-legend" });
  text(legend, 100, 18, "∂ = dJ/d(node)", { class: "node-grad" });
  text(legend, 215, 18, "weight", { class: "w" });
  text(legend, 272, 18, "∂ = dJ/d(weight)", { class: "g" });
  const satLegend = svg("g", { class: "legend-sat" }, legend);
  svg("circle", { cx: 402, cy: 13, r: 7 }, satLegend);
  text(legend, 414, 18, "saturated unit", { class: "muted" });

  // The numbers a learner checks first, in plain text.
  const check = trace.gradient_check;
  const dJdy = trace.grad_loss_output;
  const summary = h("dl", { class: "trace-summary" },
    h("dt", {}, `loss J (${(trace.loss_name || "").replace(/_/g, " ")})`), h("dd", { class: "loss-value" }, fmt(trace.loss)),
    h("dt", {}, "output y"), h("dd", {}, trace.output.map((v) => fmt(v)).join(", ")),
    h("dt", {}, "dJ/dy"), h("dd", { class: "dj-dy" }, dJdy.map((v) => fmt(v)).join(", ")),
    h("dt", {}, "gradient check"),
    h("dd", { class: check.passed ? "ok" : "bad" },
      `${check.passed ? "✓ passed" : "✗ failed"}: max relative error ${fmt(check.max_rel_error)}, ` +
      `max absolute ${fmt(check.max_abs_error)} (central difference, ε = ${fmt(check.epsilon)})`),
    h("dt", {}, "model"), h("dd", {}, String(trace.model_version || "")),
  );
  const raw = trace.input.raw;
  if (raw.some((v, i) => v !== trace.input.network_input[i])) {
    summary.append(h("dt", {}, "input"), h("dd", {},
      `raw [${raw.map((v) => fmt(v)).join(", ")}] → standardised [${trace.input.network_input.map((v) => fmt(v)).join(", ")}] (the input nodes show the standardised values)`));
  }
  const scroller = h("div", { class: "scroll-x", tabindex: "0", role: "region", "aria-label": "network graph (scrolls sideways on narrow screens)" });
  scroller.append(root);
  container.append(summary, scroller, explain);
  container.dataset.nodes = String(root.querySelectorAll(".node").length);
  return root;
}
