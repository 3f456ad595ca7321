import { api, enc } from "../api.js";
import { button, dialog, errorBox, field, h, input, loading, money, mount, optNumber, select, showErrors, table, toast } from "../dom.js";
import { pagedList } from "../list.js";

export async function render(me) {
  const admin = me.you.role === "admin";
  const groups = pagedList({
    path: "/group",
    emptyText: "No groups yet.",
    columns: [
      ["Name", (g) => g.name], ["Description", (g) => g.description || "—"],
      ["Access list", (g) => g.access_list_id || "—"], ["Monthly budget", (g) => money(g.monthly_budget, 2)],
      ["Members", (g) => (g.members ? g.members.length : "—")],
      ["", (g) => h("div", { class: "row-actions" }, button("Open", () => open(g)),
        admin ? button("Delete", () => remove(g), { class: "danger" }) : null)],
    ],
  });

  async function remove(g) {
    if (!window.confirm(`Delete group ${g.name}?`)) return;
    try { await api.del(`/group/${enc(g.id)}`); toast("Deleted."); groups.refresh(); } catch (err) { toast(err.message, "error"); }
  }

  async function accessListOptions() {
    try {
      const page = await api.get("/access-list", { limit: 500 });
      return [["", "(none)"], ...page.data.map((a) => [a.id, a.name])];
    } catch { return [["", "(none)"]]; }
  }

  async function create() {
    const name = input("name", { required: true });
    const description = input("description");
    const budget = input("monthly_budget", { type: "number", min: "0", step: "0.01" });
    const al = select("access_list", await accessListOptions(), "");
    const form = h("form", {}, field("Name", name), field("Description", description), field("Access list", al),
      field("Monthly budget (USD)", budget), h("p", { class: "form-error", role: "alert" }),
      h("button", { type: "submit", class: "primary" }, "Create group"));
    const d = dialog("New group", form);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        await api.post("/group", { name: name.value.trim(), description: description.value.trim() || null,
          access_list: al.value || null, monthly_budget: optNumber(budget.value) });
        d.close(); toast("Group created."); groups.reload();
      } catch (err) { showErrors(form, err); }
    });
  }

  async function open(g) {
    const content = h("div", {}, loading());
    dialog(`Group ${g.name}`, content);
    async function draw() {
      try {
        const full = await api.get(`/group/${enc(g.id)}`);
        const user = input("user_id", { placeholder: "usr_… or email" });
        const role = select("role", ["member", "admin"], "member");
        const form = h("form", { class: "inline" }, field("User", user), field("Role", role),
          h("button", { type: "submit" }, "Add member"), h("p", { class: "form-error", role: "alert" }));
        form.addEventListener("submit", async (e) => {
          e.preventDefault();
          try { await api.post(`/group/${enc(g.id)}/members`, { user_id: user.value.trim(), role: role.value }); draw(); } catch (err) { showErrors(form, err); }
        });
        const budget = input("monthly_budget", { type: "number", min: "0", step: "0.01", value: full.monthly_budget ?? "" });
        const al = select("access_list", await accessListOptions(), full.access_list_id || "");
        const settings = h("form", { class: "inline" }, field("Access list", al), field("Monthly budget (USD)", budget),
          h("button", { type: "submit" }, "Save settings"), h("p", { class: "form-error", role: "alert" }));
        settings.addEventListener("submit", async (e) => {
          e.preventDefault();
          try {
            await api.patch(`/group/${enc(g.id)}`, { access_list: al.value || null, monthly_budget: optNumber(budget.value) });
            toast("Saved."); groups.refresh();
          } catch (err) { showErrors(settings, err); }
        });
        mount(content,
          h("p", {}, full.description || ""),
          table([
            ["User", (m) => m.email || m.user_id], ["Role", (m) => m.role],
            ["", (m) => (admin || me.you.role !== "analyst" ? h("div", { class: "row-actions" },
              button(m.role === "admin" ? "Make member" : "Make admin", async () => {
                try { await api.patch(`/group/${enc(g.id)}/members/${enc(m.user_id)}`, { role: m.role === "admin" ? "member" : "admin" }); draw(); } catch (err) { toast(err.message, "error"); }
              }),
              button("Remove", async () => {
                try { await api.del(`/group/${enc(g.id)}/members/${enc(m.user_id)}`); draw(); } catch (err) { toast(err.message, "error"); }
              }, { class: "danger" })) : "")],
          ], full.members || [], "Members"),
          form, admin ? settings : null);
      } catch (err) { mount(content, errorBox(err)); }
    }
    draw();
  }

  return h("section", {}, h("h1", {}, "Groups"),
    h("p", { class: "muted" }, "Teams of users: their keys share the group's access list and budget."),
    admin ? h("div", { class: "toolbar" }, button("New group", create, { class: "primary" })) : null,
    groups);
}
