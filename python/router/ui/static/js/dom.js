// Small DOM helpers. Text goes in through textContent only (never innerHTML), so nothing the API returns can
// become markup.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "class") el.className = value;
    else if (name === "value" && "value" in el) el.value = value;
    else if (name === "checked") el.checked = Boolean(value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export const loading = () => h("p", { class: "state", role: "status" }, "Loading…");
export const empty = (text) => h("p", { class: "state empty" }, text);
export function errorBox(err) {
  const code = err && err.code ? ` (${err.code})` : "";
  return h("p", { class: "state error", role: "alert" }, `${err && err.message ? err.message : err}${code}`);
}

export function money(v, digits = 6) {
  if (v === null || v === undefined) return "—";
  return "$" + Number(v).toFixed(v !== 0 && Math.abs(v) < 0.01 ? digits : 2);
}
export const num = (v) => (v === null || v === undefined ? "—" : Number(v).toLocaleString("en"));
export const ms = (v) => (v === null || v === undefined ? "—" : `${Number(v).toFixed(1)} ms`);
export const when = (iso) => (iso ? String(iso).replace("T", " ").replace("Z", " UTC") : "—");
export const list = (items) => (items && items.length ? items.join(", ") : "—");

// A table: columns are [header, row => cell content] pairs.
export function table(columns, rows, caption) {
  return h("div", { class: "table-wrap" },
    h("table", {},
      caption ? h("caption", {}, caption) : null,
      h("thead", {}, h("tr", {}, columns.map(([name]) => h("th", { scope: "col" }, name)))),
      h("tbody", {}, rows.map((row) => h("tr", {}, columns.map(([, cell]) => h("td", {}, cell(row))))))));
}

// A labelled form field; `input` is an element whose id the label points to.
let fieldCounter = 0;
export function field(label, input, hint) {
  const id = input.id || `f${++fieldCounter}`;
  input.id = id;
  const hintEl = h("small", { class: "hint" }, hint || "");
  const errEl = h("small", { class: "field-error", role: "alert" });
  if (input.name) errEl.dataset.for = input.name;
  return h("div", { class: "field" }, h("label", { for: id }, label), input, hint ? hintEl : null, errEl);
}

export const input = (name, attrs = {}) => h("input", { name, type: "text", ...attrs });
export function select(name, options, value, attrs = {}) {
  return h("select", { name, ...attrs },
    options.map((o) => {
      const [v, label] = Array.isArray(o) ? o : [o, o];
      return h("option", { value: v, selected: v === value ? true : null }, label);
    }));
}
export const button = (label, onclick, attrs = {}) => h("button", { type: "button", onclick, ...attrs }, label);

// Shows an API error next to the field its `param` names (e.g. "targets[1].model" → the field named so), else
// in the form's error line.
export function showErrors(form, err) {
  for (const el of form.querySelectorAll(".field-error")) el.textContent = "";
  const line = form.querySelector(".form-error");
  if (line) line.textContent = "";
  if (!err) return;
  const param = err.param || "";
  // The most specific field the parameter names: "targets[1].model" → the field "targets[1]" before "targets".
  const target = [...form.querySelectorAll(".field-error")]
    .filter((el) => el.dataset.for && param && (param === el.dataset.for ||
      param.startsWith(el.dataset.for + "[") || param.startsWith(el.dataset.for + ".")))
    .sort((a, b) => b.dataset.for.length - a.dataset.for.length)[0];
  if (target) target.textContent = err.message;
  else if (line) line.textContent = err.message;
}

// A modal dialog (native <dialog>: focus trapped, Escape closes).
export function dialog(title, body, { onclose } = {}) {
  const d = h("dialog", { "aria-labelledby": "dlg-title" },
    h("div", { class: "dialog-head" }, h("h2", { id: "dlg-title" }, title),
      button("Close", () => d.close(), { class: "ghost", "aria-label": "Close dialog" })),
    body);
  d.addEventListener("close", () => { d.remove(); if (onclose) onclose(); });
  document.body.append(d);
  d.showModal();
  return d;
}

export function toast(text, kind = "ok") {
  for (const old of document.querySelectorAll(".toast")) old.remove();  // one message at a time, the latest
  const el = h("div", { class: `toast ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
  document.body.append(el);
  setTimeout(() => el.remove(), 4000);
}

export function confirmAction(text) {
  return window.confirm(text);
}

// "a=b" lines ↔ {a: "b"}
export function parsePairs(text) {
  const out = {};
  for (const line of String(text || "").split(/[\n,]/)) {
    const t = line.trim();
    if (!t) continue;
    const at = t.indexOf("=");
    if (at < 1) throw new Error(`"${t}" is not name=value`);
    out[t.slice(0, at).trim()] = t.slice(at + 1).trim();
  }
  return out;
}
export const splitList = (text) => String(text || "").split(/[\s,]+/).map((s) => s.trim()).filter(Boolean);
export const optNumber = (v) => (v === "" || v === null || v === undefined ? null : Number(v));
