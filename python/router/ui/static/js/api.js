// The dashboard's only way to the gateway: the management API (/v1/manage), authenticated by the session cookie,
// with the session's CSRF token on every state-changing call. Plus the three /ui session endpoints.

let csrf = null;

export class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code || null;
    this.param = e.param || null;
    this.type = e.type || null;
  }
}

async function send(method, url, body) {
  const headers = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (method !== "GET" && csrf) headers["x-csrf-token"] = csrf;
  const res = await fetch(url, {
    method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!res.ok) {
    const err = new ApiError(res.status, data);
    if (res.status === 401 && onUnauthorized) onUnauthorized(err);
    throw err;
  }
  return data;
}

let onUnauthorized = null;
export function whenLoggedOut(callback) { onUnauthorized = callback; }

export const api = {
  get: (path, query) => send("GET", "/v1/manage" + path + qs(query)),
  post: (path, body = {}) => send("POST", "/v1/manage" + path, body),
  put: (path, body = {}) => send("PUT", "/v1/manage" + path, body),
  patch: (path, body = {}) => send("PATCH", "/v1/manage" + path, body),
  del: (path) => send("DELETE", "/v1/manage" + path),
};

export function qs(query) {
  if (!query) return "";
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== "") params.set(k, v);
  const s = params.toString();
  return s ? "?" + s : "";
}

export const enc = encodeURIComponent;

export async function session() {
  const s = await send("GET", "/ui/session");
  csrf = s.csrf_token;
  return s;
}

export async function login(key) {
  const s = await send("POST", "/ui/login", { key });
  csrf = s.csrf_token;
  return s;
}

export async function logout() {
  try { await send("POST", "/ui/logout", {}); } finally { csrf = null; }
}
