// The shell: login, navigation by role, and a hash router (#/keys, #/usage, ...). Pages are ES modules that
// return an element; each page only calls the management API.
import { login, logout, session, whenLoggedOut } from "./api.js";
import { button, errorBox, field, h, input, mount } from "./dom.js";
import * as access from "./pages/access.js";
import * as audit from "./pages/audit.js";
import * as groups from "./pages/groups.js";
import * as guardrails from "./pages/guardrails.js";
import * as keys from "./pages/keys.js";
import * as mcp from "./pages/mcp.js";
import * as models from "./pages/models.js";
import * as overview from "./pages/overview.js";
import * as policies from "./pages/policies.js";
import * as prompts from "./pages/prompts.js";
import * as usage from "./pages/usage.js";
import * as users from "./pages/users.js";

// [route, title, module, who sees it in the navigation]. The API decides what each caller may do; the
// navigation only leaves out pages a role could not use at all.
const READERS = ["admin", "analyst"];
const PAGES = [
  ["overview", "Overview", overview, null],
  ["models", "Models", models, null],
  ["access-lists", "Access lists", access, READERS],
  ["groups", "Groups", groups, null],
  ["users", "Users & service accounts", users, READERS],
  ["keys", "API keys", keys, null],
  ["policies", "Routing policies", policies, READERS],
  ["guardrails", "Guardrails", guardrails, READERS],
  ["usage", "Usage & spend", usage, null],
  ["audit", "Audit log", audit, READERS],
  ["mcp", "MCP servers", mcp, null],
  ["prompts", "Prompt library", prompts, READERS],
];

const root = document.getElementById("root");
let me = null;

function visible(page) {
  return !page[3] || page[3].includes(me.you.role);
}

function loginView(message) {
  const key = input("key", { type: "password", autocomplete: "off", required: true, spellcheck: "false" });
  const error = h("p", { class: "form-error", role: "alert" }, message || "");
  const form = h("form", { class: "login card", "aria-labelledby": "login-title" },
    h("h1", { id: "login-title" }, "router"),
    h("p", {}, "Sign in with a gateway API key: the admin key, or your own key."),
    field("API key", key),
    error,
    h("button", { type: "submit", class: "primary" }, "Sign in"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    try {
      me = await login(key.value);
      key.value = "";
      if (!location.hash || location.hash === "#/login") location.hash = "#/overview";
      shell();
    } catch (err) {
      error.textContent = err.message;
    }
  });
  mount(root, h("main", { id: "main", class: "center" }, form));
  key.focus();
}

function shell() {
  const nav = h("nav", { class: "side", "aria-label": "Dashboard" },
    h("ul", {}, PAGES.filter(visible).map(([route, title]) =>
      h("li", {}, h("a", { href: `#/${route}`, "data-route": route }, title)))));
  const main = h("main", { id: "main", tabindex: "-1" });
  const who = `${me.you.key_name} · ${me.you.role}`;
  const header = h("header", { class: "top" },
    h("a", { class: "brand", href: "#/overview" }, "router"),
    button("Menu", () => document.body.classList.toggle("nav-open"), { class: "ghost menu", "aria-label": "Toggle navigation" }),
    h("span", { class: "who" }, who),
    button("Sign out", async () => { await logout(); me = null; loginView("Signed out."); }, { class: "ghost" }));
  mount(root, header, h("div", { class: "layout" }, nav, main));
  route();
}

// Bumped by every navigation: a page whose data arrives after the user has moved on is not shown over the newer one.
let navigation = 0;

async function route() {
  if (!me) return;
  const name = (location.hash.replace(/^#\/?/, "").split("?")[0] || "overview");
  const page = PAGES.find((p) => p[0] === name);
  const main = document.getElementById("main");
  if (!main) return;
  const current = ++navigation;
  document.body.classList.remove("nav-open");
  for (const a of document.querySelectorAll("nav.side a")) {
    if (a.dataset.route === name) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  if (!page) {
    mount(main, h("h1", {}, "Not found"), errorBox({ message: `No page called "${name}".` }));
    return;
  }
  document.title = `${page[1]} · router`;
  let content;
  try {
    content = [await page[2].render(me)];
  } catch (err) {
    content = [h("h1", {}, page[1]), errorBox(err)];
  }
  if (current !== navigation) return;
  mount(main, ...content);
  main.focus({ preventScroll: true });
}

window.addEventListener("hashchange", route);
whenLoggedOut(() => { if (me) { me = null; loginView("Your session has ended; sign in again."); } });

(async () => {
  try {
    me = await session();
    shell();
  } catch {
    loginView();
  }
})();
