import { api } from "../api.js";
import { h, money } from "../dom.js";

export async function render(me) {
  const org = await api.get("/org");
  const c = org.counts || {};
  const tiles = [
    ["Approved models", org.approval_configured ? `${org.approved_models} of ${org.catalog_models}` : `all ${org.catalog_models} (approval off)`],
    ["API keys", c.api_keys], ["Users", c.users], ["Groups", c.groups], ["Access lists", c.access_lists],
    ["Service accounts", c.service_accounts],
  ];
  const month = await api.get("/usage").catch(() => null);
  const total = month && month.data && month.data[0];
  if (total) {
    tiles.push(["Requests this month", total.requests], ["Spend this month", money(total.cost)]);
  }
  return h("section", {},
    h("h1", {}, "Overview"),
    h("p", {}, `Organisation ${org.name}. Signed in as ${me.you.actor} (${me.you.role}).`),
    h("dl", { class: "tiles" }, tiles.map(([k, v]) => h("div", { class: "tile" }, h("dt", {}, k), h("dd", {}, v ?? "—")))));
}
