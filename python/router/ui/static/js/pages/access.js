import { api, enc } from "../api.js";
import { button, dialog, field, h, input, list, showErrors, splitList, toast, when } from "../dom.js";
import { pagedList } from "../list.js";

export async function render(me) {
  const admin = me.you.role === "admin";
  const lists = pagedList({
    path: "/access-list",
    emptyText: "No access lists yet.",
    columns: [
      ["Name", (a) => a.name], ["Models", (a) => list(a.models)], ["Providers", (a) => list(a.providers)],
      ["Patterns", (a) => list(a.patterns)], ["Denies", (a) => list(a.deny)], ["MCP", (a) => list(a.mcp)],
      ["Updated", (a) => when(a.updated_at)],
      ["", (a) => (admin ? h("div", { class: "row-actions" },
        button("Edit", () => edit(a)), button("Attach…", () => attach(a)),
        button("Delete", () => remove(a), { class: "danger" })) : "")],
    ],
  });

  async function remove(a) {
    if (!window.confirm(`Delete access list ${a.name}?`)) return;
    try { await api.del(`/access-list/${enc(a.id)}`); toast("Deleted."); lists.refresh(); } catch (err) { toast(err.message, "error"); }
  }

  function edit(a) {
    const f = {
      name: input("name", { value: a ? a.name : "", required: true }),
      description: input("description", { value: a ? a.description || "" : "" }),
      models: input("models", { value: a ? a.models.join(", ") : "" }),
      providers: input("providers", { value: a ? a.providers.join(", ") : "" }),
      patterns: input("patterns", { value: a ? a.patterns.join(", ") : "" }),
      deny: input("deny", { value: a ? a.deny.join(", ") : "" }),
    };
    const form = h("form", {},
      field("Name", f.name), field("Description", f.description),
      field("Models", f.models, "Approved model ids, comma-separated"),
      field("Providers", f.providers, "Every model of these providers"),
      field("Patterns", f.patterns, "Globs such as mock/gpt-4o*"),
      field("Deny", f.deny, "Model ids or globs removed from what the rest allows"),
      h("p", { class: "form-error", role: "alert" }),
      h("button", { type: "submit", class: "primary" }, a ? "Save" : "Create"));
    const d = dialog(a ? `Edit ${a.name}` : "New access list", form);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const spec = { name: f.name.value.trim(), description: f.description.value.trim() || null,
        models: splitList(f.models.value), providers: splitList(f.providers.value),
        patterns: splitList(f.patterns.value), deny: splitList(f.deny.value), mcp: a ? a.mcp : [] };
      try {
        if (a) await api.put(`/access-list/${enc(a.id)}`, spec); else await api.post("/access-list", spec);
        d.close(); toast("Saved."); lists.refresh();
      } catch (err) { showErrors(form, err); }
    });
  }

  function attach(a) {
    const keys = input("key_ids"); const groups = input("group_ids");
    const form = h("form", {}, field("Key ids", keys, "Comma-separated"), field("Group ids", groups, "Comma-separated"),
      h("p", { class: "form-error", role: "alert" }),
      h("div", { class: "toolbar" }, h("button", { type: "submit", class: "primary" }, "Attach"),
        button("Detach", () => go("detach"))));
    const d = dialog(`Attach ${a.name} to keys and groups`, form);
    async function go(how) {
      try {
        await api.post(`/access-list/${enc(a.id)}/${how}`, { key_ids: splitList(keys.value), group_ids: splitList(groups.value) });
        d.close(); toast(how === "attach" ? "Attached." : "Detached.");
      } catch (err) { showErrors(form, err); }
    }
    form.addEventListener("submit", (e) => { e.preventDefault(); go("attach"); });
  }

  return h("section", {}, h("h1", {}, "Access lists"),
    h("p", { class: "muted" }, "Which models keys and groups may use: models, providers, patterns, minus denies."),
    admin ? h("div", { class: "toolbar" }, button("New access list", () => edit(null), { class: "primary" })) : null,
    lists);
}
