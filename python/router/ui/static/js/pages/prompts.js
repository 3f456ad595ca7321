import { api, enc } from "../api.js";
import { button, dialog, errorBox, field, h, input, list, loading, mount, select, showErrors, splitList, table, toast, when } from "../dom.js";
import { pagedList } from "../list.js";

export async function render(me) {
  const admin = me.you.role === "admin";
  const tag = input("tag", { placeholder: "filter by tag", "aria-label": "Tag" });
  const prompts = pagedList({
    path: "/prompts",
    query: () => ({ tag: tag.value.trim() }),
    emptyText: "The prompt library is empty.",
    columns: [
      ["Name", (p) => p.name], ["Kind", (p) => p.kind], ["Tags", (p) => list(p.tags)],
      ["Version", (p) => p.latest_version ?? p.version ?? "—"], ["Updated", (p) => when(p.updated_at)],
      ["", (p) => h("div", { class: "row-actions" }, button("Open", () => open(p)),
        admin ? button("Delete", async () => {
          if (!window.confirm(`Delete prompt ${p.name}?`)) return;
          try { await api.del(`/prompts/${enc(p.name)}`); prompts.refresh(); } catch (err) { toast(err.message, "error"); }
        }, { class: "danger" }) : null)],
    ],
  });
  async function open(p) {
    const content = h("div", {}, loading());
    dialog(`Prompt ${p.name}`, content);
    try {
      const full = await api.get(`/prompts/${enc(p.name)}`);
      const versions = await api.get(`/prompts/${enc(p.name)}/versions`);
      const text = h("textarea", { name: "content", rows: 10, class: "code" }, full.content || "");
      const form = h("form", {}, field("Text (saving makes a new version)", text), h("p", { class: "form-error", role: "alert" }),
        admin ? h("button", { type: "submit", class: "primary" }, "Save as new version") : null);
      form.addEventListener("submit", async (e) => {
        e.preventDefault();
        try { await api.post(`/prompts/${enc(p.name)}/versions`, { content: text.value }); toast("New version saved."); prompts.refresh(); } catch (err) { showErrors(form, err); }
      });
      mount(content, form, table([["Version", (v) => v.version], ["Created", (v) => when(v.created_at)], ["By", (v) => v.created_by || "—"]],
        versions.data || [], "Versions"));
    } catch (err) { mount(content, errorBox(err)); }
  }
  function create() {
    const name = input("name", { required: true });
    const kind = select("kind", ["system", "vibe"], "system");
    const tags = input("tags");
    const text = h("textarea", { name: "content", rows: 8, class: "code", required: true });
    const form = h("form", {}, field("Name", name), field("Kind", kind), field("Tags", tags, "Comma-separated"), field("Text", text),
      h("p", { class: "form-error", role: "alert" }), h("button", { type: "submit", class: "primary" }, "Create prompt"));
    const d = dialog("New prompt", form);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        await api.post("/prompts", { name: name.value.trim(), kind: kind.value, tags: splitList(tags.value), content: text.value });
        d.close(); toast("Prompt created."); prompts.reload();
      } catch (err) { showErrors(form, err); }
    });
  }
  const bar = h("form", { class: "toolbar" }, admin ? button("New prompt", create, { class: "primary" }) : null, tag, h("button", { type: "submit" }, "Filter"));
  bar.addEventListener("submit", (e) => { e.preventDefault(); prompts.reload(); });
  return h("section", {}, h("h1", {}, "Prompt library"), bar, prompts);
}
