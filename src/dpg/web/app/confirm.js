// The confirmation step before money moves or something cannot be undone (a withdrawal, an
// allow-list change, an API key that can withdraw, revoking a key, cancelling all orders): a modal
// dialog that says what will happen — facts as label/value pairs, warnings — and resolves true
// only when its confirm button is pressed (Back, Esc or leaving the page: false).
import { h } from "./dom.js";

let seq = 0;

/**
 * @param {object} o
 * @param {string} o.title  the question ("Confirm the withdrawal")
 * @param {string} [o.kind]  names the step for tests and styles (data-kind)
 * @param {Array<[string, any, string?]>} [o.facts]  [label, value, data-testid of the value]
 * @param {Array<any>} [o.warnings]  shown as warnings under the facts
 * @param {any} [o.intro]  a sentence above the facts
 * @param {string} [o.confirm]  the confirm button's text
 * @param {boolean} [o.danger]  a destructive step: the confirm button in red, Back focused first
 * @returns {Promise<boolean>}
 */
export function confirmStep({ title, kind = "", facts = [], warnings = [], intro = null, confirm = "Confirm", danger = false }) {
  return new Promise((resolve) => {
    const id = `confirm-title-${++seq}`;
    const yes = h("button", { type: "submit", value: "yes", class: `btn ${danger ? "danger-fill" : "primary"}`,
      "data-testid": "confirm-yes" }, confirm);
    const no = h("button", { type: "button", class: "btn", "data-testid": "confirm-no" }, "Back");
    const dlg = h("dialog", { class: "confirm", "aria-labelledby": id, "data-testid": "confirm", "data-kind": kind },
      h("form", { method: "dialog", class: "stack" },
        h("h2", { id, class: "dialog-title" }, title),
        intro ? h("p", {}, intro) : null,
        facts.length ? h("dl", { class: "facts" }, facts.filter(Boolean).map(([label, value, testid]) =>
          [h("dt", {}, label), h("dd", { "data-testid": testid }, value)])) : null,
        warnings.filter(Boolean).map((w) => h("p", { class: "notice warn" }, w)),
        h("div", { class: "actions" }, no, yes)));
    const leave = () => dlg.close("");
    no.addEventListener("click", () => dlg.close("no"));
    dlg.addEventListener("close", () => {
      window.removeEventListener("popstate", leave);
      dlg.remove();
      resolve(dlg.returnValue === "yes");
    });
    window.addEventListener("popstate", leave);
    document.body.append(dlg);
    dlg.showModal();
    (danger ? no : yes).focus();
  });
}
