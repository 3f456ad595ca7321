import { api, enc } from "../api.js";
import { button, dialog, field, h, input, list, money, optNumber, parsePairs, select, showErrors, splitList, toast, when } from "../dom.js";
import { pagedList } from "../list.js";

const SOON = 7 * 86400 * 1000;

function expiryState(k) {
  if (!k.expires_at) return "none";
  const t = Date.parse(k.expires_at);
  if (t <= Date.now()) return "expired";
  return t - Date.now() <= SOON ? "soon" : "later";
}

export async function render(me) {
  const standard = me.you.role === "standard";
  const writer = me.you.role !== "analyst";
  const show = select("status", [["", "All keys"], ["active", "Active"], ["revoked", "Revoked"],
    ["expiring", "Expiring within 7 days"], ["expired", "Expired"]], "", { "aria-label": "Filter keys" });
  const keys = pagedList({
    path: "/apikey",
    query: () => ({ status: show.value }),
    emptyText: "No API keys match.",
    columns: [
      ["Name", (k) => k.name], ["Prefix", (k) => h("code", {}, k.prefix)], ["Status", (k) => k.status],
      ["Owner", (k) => (k.owner ? `${k.owner.type}: ${k.owner.id}` : "—")], ["Groups", (k) => list(k.groups)],
      ["Labels", (k) => list(Object.entries(k.labels || {}).map(([a, b]) => `${a}=${b}`))],
      ["Limit", (k) => money(k.monthly_limit, 2)],
      ["Expires", (k) => (k.expires_at ? `${when(k.expires_at)}${expiryState(k) === "soon" ? " (soon)" : ""}` : "never")],
      ["Last used", (k) => when(k.last_used_at)],
      ["", (k) => (writer && k.status === "active" ? h("div", { class: "row-actions" },
        button("Edit", () => edit(k)),
        button("Revoke", () => revoke(k), { class: "danger", "aria-label": `Revoke ${k.name}` })) : "")],
    ],
  });
  show.addEventListener("change", () => keys.reload());

  async function revoke(k) {
    if (!window.confirm(`Revoke ${k.name}? Requests with it are refused at once.`)) return;
    try { await api.post(`/apikey/${enc(k.id)}/revoke`); toast(`Revoked ${k.name}.`); keys.refresh(); } catch (err) { toast(err.message, "error"); }
  }

  function edit(k) {
    const labels = h("textarea", { name: "labels", rows: 3 }, Object.entries(k.labels || {}).map(([a, b]) => `${a}=${b}`).join("\n"));
    const limit = input("monthly_limit", { type: "number", min: "0", step: "0.01", value: k.monthly_limit ?? "" });
    const expiry = input("expires_at", { value: k.expires_at || "", placeholder: "90d, 2027-01-31 or empty" });
    const groups = input("groups", { value: (k.groups || []).join(", ") });
    const form = h("form", {}, field("Labels", labels, "name=value, one per line"), field("Monthly limit (USD)", limit),
      field("Expires", expiry), standard ? null : field("Groups", groups, "Group ids or names, comma-separated"),
      h("p", { class: "form-error", role: "alert" }), h("button", { type: "submit", class: "primary" }, "Save"));
    const d = dialog(`Edit ${k.name}`, form);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const base = `/apikey/${enc(k.id)}`;
      try {
        await api.post(`${base}/labels`, { labels: parsePairs(labels.value) });
        if (optNumber(limit.value) !== k.monthly_limit) await api.post(`${base}/limit`, { monthly_limit: optNumber(limit.value) });
        if ((expiry.value.trim() || null) !== k.expires_at) await api.post(`${base}/expiry`, { expires_at: expiry.value.trim() || null });
        if (!standard && groups.value !== (k.groups || []).join(", ")) await api.post(`${base}/groups`, { groups: splitList(groups.value) });
        d.close(); toast("Saved."); keys.refresh();
      } catch (err) { showErrors(form, err); }
    });
  }

  async function create() {
    const name = input("name", { required: true });
    const ownerType = select("owner_type", [["", "(no owner)"], ["user", "User"], ["service_account", "Service account"]], standard ? "" : "");
    const ownerId = input("owner", { placeholder: "email, usr_…, or service account name" });
    const groups = input("groups", { placeholder: "group ids or names" });
    const accessList = input("access_list", { placeholder: "al_… (optional)" });
    const labels = h("textarea", { name: "labels", rows: 2, placeholder: "team=search" });
    const limit = input("monthly_limit", { type: "number", min: "0", step: "0.01" });
    const expiry = input("expires_at", { placeholder: "90d, 2027-01-31 or empty" });
    const form = h("form", {}, field("Name", name),
      standard ? null : [field("Owner type", ownerType), field("Owner", ownerId, "Who the key belongs to"),
        field("Groups", groups, "Comma-separated"), field("Access list", accessList)],
      field("Labels", labels, "name=value, one per line"), field("Monthly limit (USD)", limit), field("Expires", expiry),
      h("p", { class: "form-error", role: "alert" }), h("button", { type: "submit", class: "primary" }, "Create key"));
    const d = dialog("New API key", form);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        const spec = { name: name.value.trim(), labels: parsePairs(labels.value), monthly_limit: optNumber(limit.value),
          expires_at: expiry.value.trim() || null };
        if (!standard) {
          if (ownerType.value) spec.owner = { type: ownerType.value, id: ownerId.value.trim() };
          spec.groups = splitList(groups.value);
          spec.access_list = accessList.value.trim() || null;
        }
        const made = await api.post("/apikey", spec);
        d.close();
        secret(made);
        keys.reload();
      } catch (err) { showErrors(form, err); }
    });
  }

  function secret(made) {
    const value = input("secret", { value: made.key, readonly: true, class: "secret", "aria-label": "The new key" });
    const copy = button("Copy", async () => {
      try { await navigator.clipboard.writeText(made.key); copy.textContent = "Copied"; } catch { value.select(); }
    });
    dialog(`Key ${made.name} created`, h("div", {},
      h("p", { class: "warn" }, "Copy the key now: it is shown only once and cannot be recovered."),
      h("div", { class: "inline" }, value, copy)));
    value.select();
  }

  return h("section", {}, h("h1", {}, "API keys"),
    h("div", { class: "toolbar" }, writer ? button("New key", create, { class: "primary" }) : null, show),
    keys);
}
