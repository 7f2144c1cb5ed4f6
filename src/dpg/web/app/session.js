// The signed-in session: its token lives in sessionStorage (this tab only) and every change is
// announced as a "dpg:session" event on window.

const KEY = "dpg.session";

export function current() {
  try {
    const s = JSON.parse(sessionStorage.getItem(KEY) || "null");
    if (s && s.expires_at && s.expires_at < Date.now()) {
      sessionStorage.removeItem(KEY);
      return null;
    }
    return s;
  } catch {
    return null;
  }
}

export function save(session) {
  sessionStorage.setItem(KEY, JSON.stringify(session));
  window.dispatchEvent(new CustomEvent("dpg:session", { detail: session }));
}

export function clear() {
  if (sessionStorage.getItem(KEY) === null) return;
  sessionStorage.removeItem(KEY);
  window.dispatchEvent(new CustomEvent("dpg:session", { detail: null }));
}
