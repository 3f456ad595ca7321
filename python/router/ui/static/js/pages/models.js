import { api, enc } from "../api.js";
import { button, dialog, empty, errorBox, field, h, input, list, loading, mount, select, table, toast } from "../dom.js";

const price = (p, k) => (p && p[k] !== null && p[k] !== undefined ? `$${p[k]}` : "—");

export async function render(me) {
  const admin = me.you.role === "admin";
  const section = h("section", {}, h("h1", {}, "Models"));
  const status = h("p", { class: "muted" });
  const body = h("div", {}, loading());
  const search = input("q", { type: "search", placeholder: "Search models", "aria-label": "Search models" });
  const region = select("region", [["", "Any region"], ["eu", "EU"], ["us", "US"], ["global", "Global"]], "", { "aria-label": "Region" });
  const zdr = h("input", { type: "checkbox", id: "zdr-only" });
  const state = select("state", [["", "Approved or not"], ["yes", "Approved"], ["no", "Not approved"]], "", { "aria-label": "Approval" });
  const bar = h("div", { class: "toolbar" }, search, region, h("label", { for: "zdr-only" }, zdr, " ZDR only"), state);
  const actions = h("div", { class: "toolbar" });
  section.append(status, bar, actions, body);
  let data = null;
  const selected = new Set();

  async function load() {
    mount(body, loading());
    try {
      data = await api.get("/models");
      status.textContent = data.approval_configured
        ? "Approval is on: keys may use only approved models."
        : "Approval is off: every key may use the whole catalog (subject to its access lists).";
      draw();
    } catch (err) { mount(body, errorBox(err)); }
  }

  function matches(m) {
    const q = search.value.trim().toLowerCase();
    if (q && !m.id.toLowerCase().includes(q) && !m.provider.toLowerCase().includes(q)) return false;
    if (region.value && !(region.value === "eu" ? m.region.startsWith("eu") : m.region.startsWith(region.value))) return false;
    if (zdr.checked && !m.zdr) return false;
    if (state.value === "yes" && m.approved !== true) return false;
    if (state.value === "no" && m.approved === true) return false;
    return true;
  }

  function draw() {
    const rows = data.data.filter(matches);
    const cols = [
      ["Model", (m) => m.id], ["Provider", (m) => m.provider], ["Region", (m) => m.region],
      ["ZDR", (m) => (m.zdr ? "yes" : "no")], ["Context", (m) => (m.context_window ? m.context_window.toLocaleString("en") : "—")],
      ["Input $/M", (m) => price(m.pricing, "input")], ["Output $/M", (m) => price(m.pricing, "output")],
      ["Capabilities", (m) => list(m.capabilities)],
      ["Approved", (m) => (m.approved === null ? "(approval off)" : m.approved ? "yes" : "no")],
    ];
    if (admin) {
      cols.unshift(["Select", (m) => h("input", {
        type: "checkbox", "aria-label": `Select ${m.id}`, checked: selected.has(m.id),
        onchange: (e) => { if (e.target.checked) selected.add(m.id); else selected.delete(m.id); },
      })]);
    }
    mount(body, rows.length ? table(cols, rows) : empty("No model matches these filters."));
  }

  async function change(path, verb) {
    if (!selected.size) { toast("Select models first.", "error"); return; }
    try {
      await api.post(path, { models: [...selected] });
      toast(`${verb} ${selected.size} model(s).`);
      selected.clear();
      load();
    } catch (err) { toast(err.message, "error"); }
  }

  if (admin) {
    mount(actions,
      button("Approve selected", () => change("/models/approved", "Approved"), { class: "primary" }),
      button("Remove selected", () => change("/models/approved/remove", "Removed")),
      button("Presets…", presets),
      button("Approval on/off…", toggleApproval));
  }

  async function toggleApproval() {
    const on = !data.approval_configured;
    if (!window.confirm(on ? "Switch approval on? Keys may then use only approved models."
      : "Switch approval off? Every key gets the whole catalog back.")) return;
    try { await api.post("/models/approval", { enabled: on }); load(); } catch (err) { toast(err.message, "error"); }
  }

  async function presets() {
    const content = h("div", {}, loading());
    dialog("Approval presets", content);
    let found;
    try { found = (await api.get("/models/presets")).data; } catch (err) { mount(content, errorBox(err)); return; }
    const approved = new Set(data.data.filter((m) => m.approved).map((m) => m.id));
    const which = select("preset", found.map((p) => [p.name, `${p.name}: ${p.description}`]), found[0] && found[0].name);
    const mode = select("mode", [["add", "Add to the approved list"], ["replace", "Replace the approved list"]], "add");
    const preview = h("div", { class: "preview", "aria-live": "polite" });
    const apply = button("Apply preset", async () => {
      try {
        await api.post(`/models/presets/${enc(which.value)}`, { mode: mode.value });
        toast(`Preset ${which.value} applied.`);
        content.closest("dialog").close();
        load();
      } catch (err) { mount(preview, errorBox(err)); }
    }, { class: "primary" });
    function show() {
      const p = found.find((x) => x.name === which.value);
      const target = new Set(mode.value === "replace" ? p.models : [...approved, ...p.models]);
      const added = [...target].filter((m) => !approved.has(m));
      const removed = [...approved].filter((m) => !target.has(m));
      mount(preview,
        h("h3", {}, "Preview"),
        h("p", {}, `Would approve: ${list(added)}`),
        h("p", {}, `Would remove: ${list(removed)}`),
        h("p", {}, `Approved afterwards: ${target.size} model(s)${data.approval_configured ? "" : "; approval switches on"}.`));
    }
    which.addEventListener("change", show);
    mode.addEventListener("change", show);
    mount(content, field("Preset", which), field("Mode", mode), preview, apply);
    show();
  }

  for (const el of [search, region, zdr, state]) el.addEventListener("input", () => data && draw());
  load();
  return section;
}
