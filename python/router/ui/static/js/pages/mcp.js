import { api, enc } from "../api.js";
import { button, dialog, errorBox, field, h, input, loading, mount, select, showErrors, table, toast } from "../dom.js";

export async function render(me) {
  const admin = me.you.role === "admin";
  const body = h("div", {}, loading());
  async function load() {
    try {
      const found = await api.get("/mcp/servers");
      mount(body, found.data.length ? table([
        ["Name", (s) => s.name], ["URL", (s) => s.url || "—"], ["Transport", (s) => s.transport || "—"],
        ["Enabled", (s) => (s.enabled === false ? "no" : "yes")], ["Health", (s) => (s.health && s.health.status) || s.status || "—"],
        ["", (s) => h("div", { class: "row-actions" }, button("Tools", () => tools(s)),
          admin ? button("Explore", async () => {
            try { await api.post(`/mcp/servers/${enc(s.name)}/explore`); toast("Explored."); load(); } catch (err) { toast(err.message, "error"); }
          }) : null,
          admin ? button("Delete", async () => {
            if (!window.confirm(`Delete MCP server ${s.name}?`)) return;
            try { await api.del(`/mcp/servers/${enc(s.name)}`); load(); } catch (err) { toast(err.message, "error"); }
          }, { class: "danger" }) : null)],
      ], found.data) : h("p", { class: "state empty" }, "No MCP servers registered."));
    } catch (err) { mount(body, errorBox(err)); }
  }
  async function tools(s) {
    const content = h("div", {}, loading());
    dialog(`Tools of ${s.name}`, content);
    try {
      const found = await api.get(`/mcp/servers/${enc(s.name)}/tools`);
      const rows = found.data || found.tools || [];
      mount(content, rows.length ? table([["Tool", (t) => t.name], ["State", (t) => t.state || (t.whitelisted ? "whitelisted" : "—")],
        ["Description", (t) => t.description || "—"]], rows) : h("p", { class: "state empty" }, "No tools known yet: explore the server."));
    } catch (err) { mount(content, errorBox(err)); }
  }
  async function create() {
    let templates = [];
    try { templates = (await api.get("/mcp/templates")).data || []; } catch { templates = []; }
    const name = input("name", { required: true });
    const template = select("template", [["", "(custom)"], ...templates.map((t) => [t.name, t.name])], "");
    const url = input("url", { type: "url", placeholder: "https://…/mcp" });
    const transport = select("transport", [["", "(from the template)"], "streamable_http", "sse"], "");
    const form = h("form", {}, field("Name", name), field("Template", template), field("URL", url), field("Transport", transport),
      h("p", { class: "form-error", role: "alert" }), h("button", { type: "submit", class: "primary" }, "Register"));
    const d = dialog("Register an MCP server", form);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        await api.post("/mcp/servers", { name: name.value.trim(), template: template.value || null, url: url.value.trim() || null,
          transport: transport.value || null });
        d.close(); toast("Registered."); load();
      } catch (err) { showErrors(form, err); }
    });
  }
  load();
  return h("section", {}, h("h1", {}, "MCP servers"),
    h("p", { class: "muted" }, "Upstream MCP servers the gateway exposes at /mcp, with their whitelisted tools."),
    admin ? h("div", { class: "toolbar" }, button("Register server", create, { class: "primary" })) : null,
    body);
}
