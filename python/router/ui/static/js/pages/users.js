import { api, enc } from "../api.js";
import { button, dialog, field, h, input, money, optNumber, select, showErrors, toast, when } from "../dom.js";
import { pagedList } from "../list.js";

export async function render(me) {
  const admin = me.you.role === "admin";
  const users = pagedList({
    path: "/user",
    emptyText: "No users yet.",
    caption: "Users",
    columns: [
      ["Email", (u) => u.email], ["Name", (u) => u.name || "—"], ["Role", (u) => u.role], ["Status", (u) => u.status],
      ["Monthly limit", (u) => money(u.monthly_limit, 2)], ["Created", (u) => when(u.created_at)],
      ["", (u) => (admin ? h("div", { class: "row-actions" },
        button(u.status === "active" ? "Deactivate" : "Activate", () => patch(u, { status: u.status === "active" ? "inactive" : "active" })),
        button("Delete", () => remove(`/user/${enc(u.id)}`, users), { class: "danger" })) : "")],
    ],
  });
  const accounts = pagedList({
    path: "/service-account",
    emptyText: "No service accounts yet.",
    caption: "Service accounts",
    columns: [
      ["Name", (s) => s.name], ["Description", (s) => s.description || "—"], ["Created", (s) => when(s.created_at)],
      ["", (s) => (admin ? button("Delete", () => remove(`/service-account/${enc(s.id)}`, accounts), { class: "danger" }) : "")],
    ],
  });

  async function patch(u, change) {
    try { await api.patch(`/user/${enc(u.id)}`, change); toast("Saved."); users.refresh(); } catch (err) { toast(err.message, "error"); }
  }
  async function remove(path, list) {
    if (!window.confirm("Delete it?")) return;
    try { await api.del(path); toast("Deleted."); list.refresh(); } catch (err) { toast(err.message, "error"); }
  }

  function createUser() {
    const email = input("email", { type: "email", required: true });
    const name = input("name");
    const role = select("role", ["standard", "analyst", "admin"], "standard");
    const limit = input("monthly_limit", { type: "number", min: "0", step: "0.01" });
    const form = h("form", {}, field("Email", email), field("Name", name), field("Role", role),
      field("Monthly limit (USD)", limit), h("p", { class: "form-error", role: "alert" }),
      h("button", { type: "submit", class: "primary" }, "Create user"));
    const d = dialog("New user", form);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        await api.post("/user", { email: email.value.trim(), name: name.value.trim() || null, role: role.value,
          monthly_limit: optNumber(limit.value) });
        d.close(); toast("User created."); users.reload();
      } catch (err) { showErrors(form, err); }
    });
  }

  function createAccount() {
    const name = input("name", { required: true });
    const description = input("description");
    const form = h("form", {}, field("Name", name), field("Description", description),
      h("p", { class: "form-error", role: "alert" }), h("button", { type: "submit", class: "primary" }, "Create service account"));
    const d = dialog("New service account", form);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        await api.post("/service-account", { name: name.value.trim(), description: description.value.trim() || null });
        d.close(); toast("Service account created."); accounts.reload();
      } catch (err) { showErrors(form, err); }
    });
  }

  return h("section", {}, h("h1", {}, "Users and service accounts"),
    admin ? h("div", { class: "toolbar" }, button("New user", createUser, { class: "primary" }),
      button("New service account", createAccount)) : null,
    users, h("h2", {}, "Service accounts"), accounts);
}
