// Small DOM helpers. Text is always set as text (never innerHTML): names, statements and
// reasons come from the ledger and are shown, never interpreted.

export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name === "value") node.value = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function clear(node, ...children) {
  node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined));
  return node;
}

let ids = 0;
// A labelled field: <label for> tied to its input, so every control has an accessible name.
export function field(label, input, hint = null) {
  if (!input.id) input.id = `f${++ids}`;
  const parts = [h("label", { for: input.id }, label), input];
  if (hint) {
    const hintNode = h("small", { id: `${input.id}-hint`, class: "hint" }, hint);
    input.setAttribute("aria-describedby", hintNode.id);
    parts.push(hintNode);
  }
  return h("div", { class: "field" }, parts);
}

export function table(columns, rows, caption = null) {
  return h(
    "table",
    {},
    caption ? h("caption", {}, caption) : null,
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c)))),
    h(
      "tbody",
      {},
      rows.map((r) => h("tr", {}, r.map((cell) => h("td", {}, cell)))),
    ),
  );
}

export function problemText(error) {
  if (error && error.status === 403) return `Not visible to you (403): ${error.message}`;
  return error && error.message ? error.message : String(error);
}

export function pretty(value) {
  return JSON.stringify(value, null, 2);
}

// "2026-12-07T10:00:00.000Z" from a Date, or "" for none.
export function iso(date) {
  return date ? date.toISOString() : "";
}

// The value a datetime-local input shows for an instant (UTC: the ledger's clock).
export function localInput(date) {
  return date ? date.toISOString().slice(0, 19) : "";
}

export function fromLocalInput(text) {
  if (!text) return null;
  const date = new Date(text.length === 16 ? `${text}:00Z` : `${text}Z`);
  return Number.isNaN(date.getTime()) ? null : date;
}
