// Building the page: h() makes elements, plus small pieces every page shares (tables, notices).

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A table with a header row and rows of cells; `empty` when there are no rows. Each cell gets its
 * column's name as data-label (inside a `.cards` box, a phone shows one card per row with them). */
export function table(head, rows, empty = "Nothing yet") {
  for (const tr of rows) {
    // a cell that names its own column (even as "") keeps it; a header that is an element names none
    [...tr.children].forEach((td, i) => {
      if (head[i] && td.dataset.label === undefined) td.dataset.label = typeof head[i] === "string" ? head[i] : "";
    });
  }
  return h("table", { class: "grid" },
    h("thead", {}, h("tr", {}, head.map((c) => h("th", {}, c)))),
    h("tbody", {}, rows.length ? rows : h("tr", { class: "empty" }, h("td", { colspan: head.length }, empty))));
}

/** Show a message (error or success) in a notice element. */
export function notify(el, text, kind = "error") {
  el.className = `notice ${kind}`;
  el.textContent = text;
  el.hidden = !text;
}

export function errorText(e) {
  return e?.code ? `${e.reason || e.message} (${e.code})` : String(e?.message || e);
}

export function time(ms) {
  const d = new Date(Number(ms));
  return d.toLocaleTimeString([], { hour12: false });
}

export function dateTime(ms) {
  const d = new Date(Number(ms));
  return `${d.toISOString().slice(0, 10)} ${d.toLocaleTimeString([], { hour12: false })}`;
}

/** A button that copies `text` (an address, a secret, recovery codes) to the clipboard; `what`
 * names it for its accessible name and for tests (data-copy). */
export function copyButton(text, what) {
  const b = h("button", { type: "button", class: "btn small", "aria-label": `Copy the ${what}`, title: `copy the ${what}`,
    "data-copy": what }, "Copy");
  b.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text);
      b.textContent = "Copied";
    } catch {
      b.textContent = "Select and copy";
    }
    setTimeout(() => { b.textContent = "Copy"; }, 1500);
  });
  return b;
}

// ---- toasts: one short message per result, gone by itself after a few seconds (or when dismissed)
let toastBox = null;
const TOASTS_SHOWN = 4;

/** Show `text` as a toast ("ok", "info" or "error"); it removes itself after `ms`. */
export function toast(text, kind = "ok", ms = kind === "error" ? 9000 : 6000) {
  if (!toastBox?.isConnected) {
    toastBox = h("div", { class: "toasts", role: "status", "aria-live": "polite", "data-testid": "toasts" });
    document.body.append(toastBox);
  }
  const el = h("div", { class: `toast ${kind}`, "data-testid": "toast", dataset: { kind } }, h("span", {}, text));
  const close = () => el.remove();
  el.append(h("button", { type: "button", class: "close", "aria-label": "Dismiss", onclick: close }, "×"));
  toastBox.append(el);
  while (toastBox.children.length > TOASTS_SHOWN) toastBox.firstElementChild.remove();
  setTimeout(close, ms);
  return el;
}
