// The standalone trace page (GET /backprop?format=html&...): fetches the same query
// as format=json and draws it.

import { api, showError } from "./api.js";
import { drawTrace } from "./tracegraph.js";

async function main() {
  const query = new URLSearchParams(window.location.search);
  query.set("format", "json");
  const path = `/backprop?${query.toString()}`;
  document.getElementById("json-link").href = path;
  const view = document.getElementById("trace-view");
  const errorBox = document.getElementById("trace-error");
  try {
    const trace = await api(path);
    let inputs = null;
    if (query.get("weights") !== "lecture") {
      const version = query.get("version");
      const meta = await api(version ? `/models/${encodeURIComponent(version)}` : "/model");
      inputs = meta.features;
    }
    const caption = document.getElementById("trace-caption");
    caption.textContent = `${trace.model_version === "lecture" ? "The lecture's example" : `Model ${trace.model_version}`}: ` +
      `x = [${trace.input.raw.join(", ")}], label ${trace.label}. Hover over or focus a node or an edge to see the chain rule behind its gradient.`;
    drawTrace(view, trace, { inputs });
  } catch (error) {
    showError(errorBox, error);
  }
}

main();
