// The signed-in session: its token lives in localStorage, so a new tab of the same browser is
// signed in too, and every change is announced as a "dpg:session" event on window — in this tab
// when it happens here, in every other tab of the origin through the "storage" event. A logout, or
// a 401 from the API, clears it here and so ends it in every tab.
//
// Why localStorage rather than a cookie: the API authenticates by the Authorization header (bots
// and the WebSocket's auth message use the same token), so a cookie would need a second way in and
// CSRF protection; an HttpOnly cookie would hide the token from script, but the page's content
// security policy already allows only the exchange's own scripts.

const KEY = "dpg.session";

export function current() {
  try {
    const s = JSON.parse(localStorage.getItem(KEY) || "null");
    if (s && s.expires_at && s.expires_at < Date.now()) {
      localStorage.removeItem(KEY);
      return null;
    }
    return s;
  } catch {
    return null;
  }
}

export function save(session) {
  localStorage.setItem(KEY, JSON.stringify(session));
  window.dispatchEvent(new CustomEvent("dpg:session", { detail: session }));
}

export function clear() {
  if (localStorage.getItem(KEY) === null) return;
  localStorage.removeItem(KEY);
  window.dispatchEvent(new CustomEvent("dpg:session", { detail: null }));
}

// another tab signed in or out (localStorage.clear() there gives a null key)
window.addEventListener("storage", (e) => {
  if (e.storageArea !== localStorage || (e.key !== KEY && e.key !== null)) return;
  window.dispatchEvent(Object.assign(new CustomEvent("dpg:session", { detail: current() }), { remote: true }));
});
