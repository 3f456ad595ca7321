import { api, enc } from "../api.js";
import { button, dialog, errorBox, field, h, input, list, mount, select, showErrors, table, toast } from "../dom.js";

export async function render(me) {
  const admin = me.you.role === "admin";
  const body = h("div", {});
  async function load() {
    try {
      const found = await api.get("/policy");
      mount(body, found.data.length ? table([
        ["Name", (p) => p.name], ["Type", (p) => p.type], ["Source", (p) => p.source],
        ["Targets", (p) => list(p.targets.map((t) => `${t.model || "policy/" + t.policy}${p.type === "load_balance" ? ` (${t.weight})` : ""}`))],
        ["Key", (p) => p.key_id || "org-wide"],
        ["", (p) => (admin && p.source !== "config" ? h("div", { class: "row-actions" }, button("Edit", () => edit(p)),
          button("Delete", () => remove(p), { class: "danger" })) : "")],
      ], found.data) : h("p", { class: "state empty" }, "No routing policies."));
    } catch (err) { mount(body, errorBox(err)); }
  }
  async function remove(p) {
    if (!window.confirm(`Delete policy ${p.name}?`)) return;
    try { await api.del(`/policy/${enc(p.name)}`); toast("Deleted."); load(); } catch (err) { toast(err.message, "error"); }
  }

  function edit(p) {
    const targets = p ? p.targets.map((t) => ({ ...t })) : [{ model: "", weight: 1, retries: 0 }];
    const name = input("name", { value: p ? p.name : "", required: true, readonly: p ? true : null });
    const type = select("type", [["fallback", "Fallback chain"], ["load_balance", "Load balancing"], ["latency", "Lowest latency"]], p ? p.type : "fallback");
    const keyId = input("key_id", { value: p ? p.key_id || "" : "", placeholder: "optional: usable only by this key" });
    const rows = h("div", { class: "targets" });
    function drawTargets() {
      const total = targets.reduce((s, t) => s + (Number(t.weight) || 0), 0);
      mount(rows, h("div", { class: "field-error", "data-for": "targets", role: "alert" }),
        targets.map((t, i) => {
          const model = input(`targets[${i}].model`, { value: t.model || "", "aria-label": `Target ${i + 1} model`, oninput: (e) => { t.model = e.target.value; } });
          const weight = input(`targets[${i}].weight`, { type: "number", min: "0", step: "any", value: t.weight, "aria-label": `Target ${i + 1} weight`,
            oninput: (e) => { t.weight = Number(e.target.value); drawShare(); } });
          const share = h("span", { class: "share" });
          const drawShare = () => { const sum = targets.reduce((s, x) => s + (Number(x.weight) || 0), 0); share.textContent = sum ? `${Math.round((Number(t.weight) || 0) / sum * 100)}%` : ""; };
          drawShare();
          return h("div", { class: "target" },
            h("span", { class: "pos" }, `${i + 1}.`), model,
            type.value === "load_balance" ? [weight, share] : null,
            button("↑", () => { if (i) { [targets[i - 1], targets[i]] = [targets[i], targets[i - 1]]; drawTargets(); } }, { "aria-label": `Move target ${i + 1} up`, disabled: i === 0 }),
            button("↓", () => { if (i < targets.length - 1) { [targets[i + 1], targets[i]] = [targets[i], targets[i + 1]]; drawTargets(); } }, { "aria-label": `Move target ${i + 1} down`, disabled: i === targets.length - 1 }),
            button("Remove", () => { targets.splice(i, 1); drawTargets(); }, { "aria-label": `Remove target ${i + 1}` }),
            h("small", { class: "field-error", "data-for": `targets[${i}]`, role: "alert" }));
        }),
        total === 0 && type.value === "load_balance" ? h("p", { class: "warn" }, "All weights are zero.") : null);
    }
    type.addEventListener("change", drawTargets);
    drawTargets();
    const form = h("form", {}, field("Name", name), field("Type", type), field("Key", keyId),
      h("fieldset", {}, h("legend", {}, "Targets, in order"), rows,
        button("Add target", () => { targets.push({ model: "", weight: 1, retries: 0 }); drawTargets(); })),
      h("p", { class: "form-error", role: "alert" }), h("button", { type: "submit", class: "primary" }, "Save policy"));
    const d = dialog(p ? `Edit ${p.name}` : "New routing policy", form);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const spec = { name: name.value.trim(), type: type.value, key_id: keyId.value.trim() || null,
        targets: targets.map((t) => ({ model: t.model || null, policy: t.policy || null, weight: Number(t.weight) || 0, retries: t.retries || 0 })) };
      try {
        if (p) await api.put(`/policy/${enc(p.name)}`, spec); else await api.post("/policy", spec);
        d.close(); toast("Policy saved."); load();
      } catch (err) { showErrors(form, err); }
    });
  }

  load();
  return h("section", {}, h("h1", {}, "Routing policies"),
    h("p", { class: "muted" }, "Call a policy as the model policy/<name>. Policies from the configuration file are read-only here."),
    admin ? h("div", { class: "toolbar" }, button("New policy", () => edit(null), { class: "primary" })) : null, body);
}
