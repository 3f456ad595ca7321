import { api, enc, qs } from "../api.js";
import { button, empty, errorBox, field, h, input, loading, money, ms, mount, num, select, table } from "../dom.js";

const day = (d) => d.toISOString().slice(0, 10);

export async function render() {
  const today = new Date();
  const f = {
    start: input("start", { type: "date", value: day(new Date(today.getTime() - 6 * 86400000)) }),
    end: input("end", { type: "date", value: day(new Date(today.getTime() + 86400000)) }),
    bucket: select("bucket", [["hour", "By hour"], ["day", "By day"]], "day"),
    group_by: select("group_by", [["key", "API key"], ["user", "User"], ["model", "Model"], ["provider", "Provider"],
      ["endpoint", "Endpoint"], ["status", "Status"]], "model"),
    group: input("group", { placeholder: "group id (optional)" }),
  };
  const chart = h("div", { class: "chart", role: "img", "aria-label": "Requests and cost over time" });
  const totals = h("div", {});
  const grouped = h("div", {});
  const budgets = h("div", {});
  const exportLink = h("a", { class: "button", download: "usage.csv" }, "Export CSV");
  const form = h("form", { class: "toolbar wrap" },
    field("From", f.start), field("To", f.end), field("Time", f.bucket), field("Group by", f.group_by), field("Group", f.group),
    h("button", { type: "submit", class: "primary" }, "Show"), exportLink);

  function filters() {
    return { start: f.start.value, end: f.end.value, group: f.group.value.trim() };
  }

  async function load() {
    const base = filters();
    exportLink.href = `/v1/manage/usage/export${qs({ ...base, format: "csv" })}`;
    for (const el of [totals, grouped, budgets]) mount(el, loading());
    try {
      const [series, all, by] = await Promise.all([
        api.get("/usage", { ...base, bucket: f.bucket.value }),
        api.get("/usage", base),
        api.get("/usage", { ...base, group_by: f.group_by.value }),
      ]);
      await drawChart(series.data);
      const t = all.data[0];
      mount(totals, t ? h("dl", { class: "tiles" }, [
        ["Requests", num(t.requests)], ["Errors", `${num(t.errors)} (${(t.error_rate * 100).toFixed(1)}%)`],
        ["Tokens in / out", `${num(t.prompt_tokens)} / ${num(t.completion_tokens)}`], ["Cost", money(t.cost)],
        ["Cache savings", money(t.cache_savings)], ["Latency p50 / p95", `${ms(t.latency_ms.p50)} / ${ms(t.latency_ms.p95)}`],
      ].map(([k, v]) => h("div", { class: "tile" }, h("dt", {}, k), h("dd", {}, v)))) : empty("No requests in this range."));
      const dim = f.group_by.value;
      mount(grouped, by.data.length ? table([
        [dim, (r) => r[dim] ?? "—"], ["Requests", (r) => num(r.requests)], ["Errors", (r) => num(r.errors)],
        ["Prompt tokens", (r) => num(r.prompt_tokens)], ["Completion tokens", (r) => num(r.completion_tokens)],
        ["Cost", (r) => money(r.cost)], ["Cache savings", (r) => money(r.cache_savings)],
        ["p50", (r) => ms(r.latency_ms.p50)], ["p95", (r) => ms(r.latency_ms.p95)], ["p99", (r) => ms(r.latency_ms.p99)],
      ], by.data, `Grouped by ${dim}`) : empty("No requests in this range."));
    } catch (err) {
      for (const el of [totals, grouped]) mount(el, errorBox(err));
      mount(chart);
    }
    loadBudgets();
  }

  async function loadBudgets() {
    try {
      const keys = await api.get("/apikey", { limit: 500 });
      const limited = keys.data.filter((k) => k.monthly_limit !== null);
      // This month's spend of just these keys, 50 at a time: grouping every key of a large organisation would
      // send thousands of rows to show a few.
      const spent = {};
      for (let i = 0; i < limited.length; i += 50) {
        const ids = limited.slice(i, i + 50).map((k) => k.id).join(",");
        const spend = await api.get("/usage", { group_by: "key", key: ids });
        for (const r of spend.data) spent[r.key] = r.cost || 0;
      }
      mount(budgets, limited.length ? table([
        ["Key", (k) => k.name], ["Monthly limit", (k) => money(k.monthly_limit, 2)], ["Spent this month", (k) => money(spent[k.id] || 0)],
        ["Used", (k) => {
          const pct = Math.min(100, ((spent[k.id] || 0) / k.monthly_limit) * 100 || 0);
          return h("meter", { min: 0, max: 100, value: pct, "aria-label": `${pct.toFixed(1)}% used` }, `${pct.toFixed(1)}%`);
        }],
      ], limited, "Key budgets this month") : empty("No key among the first 500 has a monthly limit."));
    } catch (err) { mount(budgets, errorBox(err)); }
  }

  let plot = null;
  async function drawChart(rows) {
    if (plot) { plot.destroy(); plot = null; }
    mount(chart);
    if (!rows.length) { mount(chart, empty("No requests in this range.")); return; }
    // Every bucket of the range, empty ones as zero: a time axis, not just the buckets that had requests.
    const step = f.bucket.value === "hour" ? 3600 : 86400;
    const byTime = new Map(rows.map((r) => [Date.parse(r.bucket) / 1000, r]));
    const first = Math.floor(Date.parse(f.start.value) / 1000 / step) * step;
    const last = Math.min(Date.parse(f.end.value) / 1000, Date.now() / 1000);
    const xs = [];
    for (let t = first; t <= last && xs.length < 2000; t += step) xs.push(t);
    for (const t of byTime.keys()) if (!xs.includes(t)) xs.push(t);
    xs.sort((a, b) => a - b);
    // Loaded on first use: the other pages never wait for the chart library, and still work without it.
    let uPlot;
    try { uPlot = (await import("../../vendor/uPlot.esm.js")).default; } catch (err) {
      mount(chart, errorBox({ message: `The chart library did not load: ${err.message}` }));
      return;
    }
    const width = Math.max(280, Math.min((chart.clientWidth || 900) - 16, 1100));
    plot = new uPlot({
      width, height: 260,
      series: [{}, { label: "Requests", stroke: "#2563eb", width: 2, scale: "n" },
        { label: "Cost (USD)", stroke: "#b45309", width: 2, scale: "usd", value: (u, v) => (v === null ? "—" : "$" + v.toFixed(6)) }],
      axes: [{}, { scale: "n" }, { scale: "usd", side: 1, grid: { show: false }, size: 70,
        values: (u, vals) => vals.map((v) => "$" + Number(v.toPrecision(2))) }],
    }, [xs, xs.map((t) => (byTime.get(t) || {}).requests || 0), xs.map((t) => (byTime.get(t) || {}).cost || 0)], chart);
  }

  // A trace's requests in order, and the feedback given on one request.
  const traceId = input("trace", { placeholder: "trace id (requesty.trace_id)", "aria-label": "Trace id" });
  const requestId = input("request", { placeholder: "request id", "aria-label": "Request id" });
  const traceOut = h("div", {});
  const traceForm = h("form", { class: "toolbar" }, traceId, h("button", { type: "submit" }, "Show trace"), requestId,
    button("Show feedback", async () => {
      mount(traceOut, loading());
      try {
        const found = await api.get(`/feedback/${enc(requestId.value.trim())}`);
        mount(traceOut, found.data.length ? h("pre", {}, JSON.stringify(found.data, null, 2)) : empty("No feedback on this request."));
      } catch (err) { mount(traceOut, errorBox(err)); }
    }));
  traceForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    mount(traceOut, loading());
    try {
      const found = await api.get(`/traces/${enc(traceId.value.trim())}`);
      mount(traceOut, table([
        ["Time", (r) => new Date(r.ts * 1000).toISOString().replace("T", " ").slice(0, 19)], ["Request", (r) => r.request_id],
        ["Model", (r) => r.model || "—"], ["Status", (r) => r.status], ["Tokens", (r) => `${num(r.prompt_tokens)} / ${num(r.completion_tokens)}`],
        ["Cost", (r) => money(r.cost)], ["Latency", (r) => ms(r.latency_ms)],
      ], found.requests, `Trace ${found.trace_id}`));
    } catch (err) { mount(traceOut, errorBox(err)); }
  });

  form.addEventListener("submit", (e) => { e.preventDefault(); load(); });
  load();
  return h("section", {}, h("h1", {}, "Usage and spend"), form, chart, totals, h("h2", {}, "Breakdown"), grouped,
    h("h2", {}, "Budgets"), budgets, h("h2", {}, "Traces and feedback"), traceForm, traceOut);
}
