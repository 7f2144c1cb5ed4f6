// REST calls to the DPG API with the session token; errors arrive as ApiError with the API's
// stable code and reason.
import * as session from "./session.js";

export class ApiError extends Error {
  constructor(status, code, reason) {
    super(reason || code);
    this.status = status;
    this.code = code;
    this.reason = reason;
  }
}

export async function api(method, path, body) {
  const headers = { accept: "application/json" };
  const s = session.current();
  if (s) headers.authorization = `Bearer ${s.token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  let r;
  try {
    r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, "NETWORK", "the exchange cannot be reached");
  }
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!r.ok) {
    const code = data?.code || `HTTP_${r.status}`;
    let reason = data?.reason || data?.msg || r.statusText;
    if (Array.isArray(data?.detail)) reason = data.detail.map((d) => d.msg).join("; ");
    if (r.status === 401 && (code === "SESSION_EXPIRED" || code === "SESSION_INVALID")) session.clear();
    throw new ApiError(r.status, code, reason);
  }
  return data;
}

export const get = (path) => api("GET", path);
export const post = (path, body) => api("POST", path, body ?? {});
export const put = (path, body) => api("PUT", path, body ?? {});
export const del = (path) => api("DELETE", path);

let marketsCache = null;

/** Markets with their arithmetic and the assets' decimals (fetched once). */
export async function markets() {
  if (!marketsCache) {
    marketsCache = Promise.all([get("/api/v1/markets"), get("/api/v1/assets")]).then(([ms, as]) => ({
      markets: ms,
      assets: Object.fromEntries(as.map((a) => [a.asset, a.decimals])),
    }));
    marketsCache.catch(() => { marketsCache = null; });
  }
  return marketsCache;
}
