// The pages and their paths. A page module exports mount(root, params) and returns a function that
// unmounts it (unsubscribing its feeds). To add a page: add a route here and a nav link in
// index.html (data-nav names the route's nav entry); the server already answers the shell for
// the path prefixes in dpg/api/web.py PAGES.

const ROUTES = [
  { path: /^\/$/, nav: "trade", load: () => import("./pages/trade.js") },
  { path: /^\/trade\/(?<market>[A-Za-z0-9]+-[A-Za-z0-9]+)$/, nav: "trade", load: () => import("./pages/trade.js") },
  { path: /^\/account\/login$/, nav: "account", load: () => import("./pages/login.js") },
  { path: /^\/account\/signup$/, nav: "account", load: () => import("./pages/signup.js") },
  { path: /^\/account\/security$/, nav: "account", load: () => import("./pages/security.js") },
  { path: /^\/account\/api-keys$/, nav: "account", load: () => import("./pages/apikeys.js") },
  { path: /^\/account\/forgot$/, nav: "account", params: { kind: "forgot" }, load: () => import("./pages/email.js") },
  { path: /^\/verify-email$/, nav: "account", params: { kind: "verify" }, load: () => import("./pages/email.js") },
  { path: /^\/reset-password$/, nav: "account", params: { kind: "reset" }, load: () => import("./pages/email.js") },
  { path: /^\/account$/, nav: "account", load: () => import("./pages/account.js") },
  { path: /^\/wallet$/, nav: "wallet", load: () => import("./pages/wallet.js") },
  { path: /^\/proof$/, nav: "proof", load: () => import("./pages/proof.js") },
];

let unmount = null;
let seq = 0;

export async function route() {
  const path = location.pathname.replace(/\/+$/, "") || "/";
  const r = ROUTES.find((x) => x.path.test(path));
  const root = document.getElementById("page");
  for (const a of document.querySelectorAll("#nav a")) {
    a.classList.toggle("active", !!r && a.dataset.nav === r.nav);
  }
  const mine = ++seq;
  if (unmount) { unmount(); unmount = null; }
  root.replaceChildren();
  if (!r) {
    root.textContent = "Page not found.";
    return;
  }
  const mod = await r.load();
  if (mine !== seq) return;
  const params = { ...(r.params || {}), ...(r.path.exec(path).groups || {}) };
  unmount = (await mod.mount(root, params)) || null;
  document.body.dataset.page = `${r.nav}${path === "/" ? "" : path.replace(/\//g, "-")}`;
}

export function go(path) {
  if (path !== location.pathname) history.pushState(null, "", path);
  route();
}

export function start() {
  window.addEventListener("popstate", route);
  document.addEventListener("click", (e) => {
    const a = e.target.closest?.("a[href]");
    if (!a || a.target || e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
    const url = new URL(a.href, location.href);
    if (url.origin !== location.origin || url.pathname.startsWith("/static/") || url.pathname.startsWith("/api/")) return;
    e.preventDefault();
    go(url.pathname);
  });
  route();
}
