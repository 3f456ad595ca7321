// A server-side paginated list (the management API's limit/offset/has_more/next_offset), with loading, empty and
// error states, previous/next buttons and an optional client-side row filter over the page shown.
import { api } from "./api.js";
import { button, empty, errorBox, h, loading, mount, table } from "./dom.js";

export function pagedList({ path, query = () => ({}), columns, emptyText, filter, pageSize = 50, caption }) {
  const body = h("div", { class: "list" });
  const pager = h("nav", { class: "pager", "aria-label": "Pages" });
  const root = h("div", {}, body, pager);
  const offsets = [0];
  let rows = [];

  async function load(offset = offsets[offsets.length - 1]) {
    mount(body, loading());
    try {
      const page = await api.get(path, { ...query(), limit: pageSize, offset });
      rows = page.data || [];
      render();
      const prev = button("Previous", () => { offsets.pop(); load(); }, { disabled: offsets.length < 2 });
      const next = button("Next", () => { offsets.push(page.next_offset); load(); }, { disabled: !page.has_more });
      mount(pager, prev, h("span", {}, `Rows ${offset + 1}–${offset + rows.length}`), next);
    } catch (err) {
      mount(body, errorBox(err));
      mount(pager);
    }
  }

  function render() {
    const shown = filter ? rows.filter(filter) : rows;
    mount(body, shown.length ? table(columns, shown, caption) : empty(emptyText || "Nothing here yet."));
  }

  root.reload = () => { offsets.length = 1; return load(0); };
  root.refresh = () => load();
  root.rerender = render;
  load(0);
  return root;
}
