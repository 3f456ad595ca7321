import { h, input, when } from "../dom.js";
import { pagedList } from "../list.js";

export async function render() {
  const f = {
    start: input("start", { type: "date", "aria-label": "From" }),
    end: input("end", { type: "date", "aria-label": "To" }),
    actor: input("actor", { placeholder: "actor (admin, key:…)", "aria-label": "Actor" }),
    target: input("target", { placeholder: "target id", "aria-label": "Target" }),
    action: input("action", { placeholder: "action (key.* for a family)", "aria-label": "Action" }),
  };
  const events = pagedList({
    path: "/audit",
    query: () => Object.fromEntries(Object.entries(f).map(([k, el]) => [k, el.value.trim()])),
    emptyText: "No audit events match.",
    columns: [
      ["Time", (e) => when(e.time)], ["Actor", (e) => e.actor], ["Action", (e) => e.action],
      ["Target", (e) => `${e.target_type}${e.target_id ? ": " + e.target_id : ""}`],
      ["Details", (e) => (e.before || e.after || e.detail ? h("details", {}, h("summary", {}, "show"),
        h("pre", {}, JSON.stringify({ before: e.before, after: e.after, detail: e.detail }, null, 2))) : "—")],
    ],
  });
  const form = h("form", { class: "toolbar" }, Object.values(f), h("button", { type: "submit" }, "Filter"));
  form.addEventListener("submit", (e) => { e.preventDefault(); events.reload(); });
  return h("section", {}, h("h1", {}, "Audit log"), form, events);
}
