import { api, enc } from "../api.js";
import { button, errorBox, field, h, input, loading, mount, select, showErrors, table, toast } from "../dom.js";

// Settings are edited as the JSON the API takes (its documented shape), with the simple switches as form fields.
function jsonArea(name, value) {
  return h("textarea", { name, rows: 12, class: "code", spellcheck: "false" }, JSON.stringify(value, null, 2));
}

// The "test a text" box: what a request carrying the text would get, under the organisation's settings or a key's or
// group's effective ones. The server answers types and offsets; the values stay in the textarea.
const VERDICTS = { allow: "Allowed: nothing found", mask: "Masked: the request goes on with placeholders", block: "Blocked: the request is refused (400 guardrail_violation)" };

function testBox() {
  const text = h("textarea", { name: "text", rows: 6, spellcheck: "false", required: true, maxlength: 65536 });
  const scope = select("scope", [["org", "Organisation"], ["apikey", "API key"], ["group", "Group"]], "org");
  const id = input("id", { placeholder: "key_… or group id or name", disabled: true });
  const run = h("button", { type: "submit", class: "primary" }, "Test");
  const result = h("div", { class: "guardrail-test-result", "aria-live": "polite" });
  const form = h("form", { class: "guardrail-test" },
    field("Text to test", text, "Ctrl+Enter tests it. At most 64 KiB; nothing is stored or logged."),
    h("div", { class: "inline" }, field("Settings of", scope), field("Key or group to test with", id)),
    h("p", { class: "form-error", role: "alert" }),
    h("div", { class: "toolbar" }, run), result);
  scope.addEventListener("change", () => { id.disabled = scope.value === "org"; if (id.disabled) id.value = ""; });
  text.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); form.requestSubmit(); }
  });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    showErrors(form, null);
    const body = { text: text.value };
    const ident = id.value.trim();
    if (scope.value !== "org") {
      if (!ident) { showErrors(form, { param: "id", message: "Give the key's or the group's id." }); id.focus(); return; }
      body[scope.value === "apikey" ? "key_id" : "group_id"] = ident;
    }
    run.disabled = true;
    form.setAttribute("aria-busy", "true");
    mount(result, h("p", { class: "state", role: "status" }, "Testing…"));
    try {
      const answer = await api.post("/guardrails/test", body);
      mount(result,
        h("p", { class: `verdict verdict-${answer.action}` }, h("strong", {}, answer.action.toUpperCase()), " — ", VERDICTS[answer.action] || ""),
        answer.scanned ? null : h("p", { class: "muted" }, "This policy does not scan requests (guardrails off, or scan_requests false)."),
        h("h3", {}, "Masked text"), h("pre", { class: "code masked-text" }, answer.masked_text),
        answer.findings.length
          ? table([["Type", (f) => f.type], ["Category", (f) => f.category], ["Characters", (f) => `${f.start}–${f.end}`],
            ["Action", (f) => f.action]], answer.findings, "Findings")
          : h("p", { class: "state empty" }, "No findings."));
    } catch (err) {
      mount(result);
      showErrors(form, err.param === "key_id" || err.param === "group_id" ? { ...err, message: err.message, param: "id" } : err);
    } finally {
      run.disabled = false;
      form.removeAttribute("aria-busy");
    }
  });
  return form;
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
    org, h("h2", {}, "Test a text"), testBox(), h("h2", {}, "Group and key overrides"), open, scoped);
}
