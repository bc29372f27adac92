// Calls to the service (same origin only) and errors that name the rejected field.

export class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : JSON.stringify(detail));
    this.status = status;
    this.detail = detail;
  }

  /** Every name in a 422's locations, e.g. ["body", "learning_rate"]: inputs to mark. */
  get fields() {
    if (!Array.isArray(this.detail)) return [];
    return this.detail.flatMap((d) => (d.loc || []).filter((p) => typeof p === "string"));
  }

  /** One line per problem: "learning_rate: Input should be greater than 0". */
  describe() {
    const prefix = this.status === 401 || this.status === 403 ? `${this.status}: ` : "";
    if (Array.isArray(this.detail)) {
      return this.detail
        .map((d) => {
          const loc = (d.loc || []).filter((p) => p !== "body" && p !== "query");
          return loc.length ? `${loc.join(".")}: ${d.msg}` : d.msg;
        })
        .join("; ");
    }
    return prefix + (typeof this.detail === "string" ? this.detail : JSON.stringify(this.detail));
  }
}

/** JSON from the service; throws ApiError with the server's `detail` on a 4xx/5xx. */
export async function api(path, { method = "GET", body, token, signal } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
    credentials: "omit",
  });
  const type = response.headers.get("content-type") || "";
  const data = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) {
    const detail = data && typeof data === "object" && "detail" in data ? data.detail : data || response.statusText;
    throw new ApiError(response.status, detail);
  }
  return data;
}

/** Show `error` in `box`, and mark the inputs of `form` that it names as invalid. */
export function showError(box, error, form = null) {
  const message = error instanceof ApiError ? error.describe() : String(error.message || error);
  box.textContent = message;
  box.hidden = false;
  if (form) {
    clearInvalid(form);
    const fields = error instanceof ApiError ? error.fields : [];
    for (const name of fields) {
      for (const input of form.querySelectorAll(`[name="${CSS.escape(name)}"]`)) {
        input.setAttribute("aria-invalid", "true");
        if (box.id) input.setAttribute("aria-describedby", box.id);
      }
    }
  }
}

export function clearError(box, form = null) {
  box.hidden = true;
  box.textContent = "";
  if (form) clearInvalid(form);
}

function clearInvalid(form) {
  for (const input of form.querySelectorAll("[aria-invalid]")) {
    input.removeAttribute("aria-invalid");
    input.removeAttribute("aria-describedby");
  }
}
