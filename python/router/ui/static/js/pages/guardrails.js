import { api, enc } from "../api.js";
import { button, errorBox, field, h, input, loading, mount, select, showErrors, toast } from "../dom.js";

// Settings are edited as the JSON the API takes (its documented shape), with the simple switches as form fields.
function jsonArea(name, value) {
  return h("textarea", { name, rows: 12, class: "code", spellcheck: "false" }, JSON.stringify(value, null, 2));
}

export async function render(me) {
  const admin = me.you.role === "admin";
  const org = h("div", {}, loading());
  const scoped = h("div", {});
  async function loadOrg() {
    try {
      const s = await api.get("/guardrails");
      const area = jsonArea("settings", s);
      const form = h("form", {}, field("Organisation settings (JSON)", area, "enabled, default_action, categories, custom patterns, scan_requests, scan_responses"),
        h("p", { class: "form-error", role: "alert" }),
        admin ? h("div", { class: "toolbar" }, h("button", { type: "submit", class: "primary" }, "Save"),
          button("Back to the configuration file's", async () => {
            try { await api.del("/guardrails"); toast("Stored settings dropped."); loadOrg(); } catch (err) { toast(err.message, "error"); }
          })) : null);
      form.addEventListener("submit", async (e) => {
        e.preventDefault();
        let body;
        try { body = JSON.parse(area.value); } catch (err) { showErrors(form, { message: `Not JSON: ${err.message}` }); return; }
        try { await api.put("/guardrails", body); toast("Guardrails saved."); loadOrg(); } catch (err) { showErrors(form, err); }
      });
      mount(org, form);
    } catch (err) { mount(org, errorBox(err)); }
  }

  const kind = select("scope", [["apikey", "API key"], ["group", "Group"]], "apikey", { "aria-label": "Override for" });
  const id = input("id", { placeholder: "key_… or grp_…", "aria-label": "Key or group id" });
  const open = h("form", { class: "inline" }, kind, id, h("button", { type: "submit" }, "Show override"));
  open.addEventListener("submit", async (e) => {
    e.preventDefault();
    const base = `/${kind.value}/${enc(id.value.trim())}/guardrails`;
    mount(scoped, loading());
    try {
      const found = await api.get(base);
      const area = jsonArea("override", found.override || {});
      const form = h("form", {},
        h("p", {}, "Overrides may only tighten: more categories, mask to block, extra patterns."),
        field("Override (JSON)", area), h("p", { class: "form-error", role: "alert" }),
        h("details", {}, h("summary", {}, "Settings its requests get"), h("pre", {}, JSON.stringify(found.effective ?? found, null, 2))),
        admin ? h("div", { class: "toolbar" }, h("button", { type: "submit", class: "primary" }, "Save override"),
          button("Remove override", async () => {
            try { await api.del(base); toast("Override removed."); mount(scoped); } catch (err) { toast(err.message, "error"); }
          })) : null);
      form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        let body;
        try { body = JSON.parse(area.value); } catch (err) { showErrors(form, { message: `Not JSON: ${err.message}` }); return; }
        try { await api.put(base, body); toast("Override saved."); } catch (err) { showErrors(form, err); }
      });
      mount(scoped, form);
    } catch (err) { mount(scoped, errorBox(err)); }
  });
  loadOrg();
  return h("section", {}, h("h1", {}, "Guardrails"),
    h("p", { class: "muted" }, "PII and secret masking or blocking, for the organisation, with stricter overrides per group and key."),
    org, h("h2", {}, "Group and key overrides"), open, scoped);
}
