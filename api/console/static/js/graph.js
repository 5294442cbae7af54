// The delegation graph: for a resource and an action, every principal and chain that could
// reach it over a period (GET …/access-review), drawn with Cytoscape.js. Each link carries the
// intervals it held; at the slider's instant a link is live, ended (revoked or expired), or
// not yet granted, and is drawn so. Moving the slider restyles the graph without a new query.

import * as api from "./api.js";
import { clear, field, fromLocalInput, h, problemText, table } from "./dom.js";
import { markRendered } from "./state.js";

export const title = "Delegation graph";

let current = null; // { cy, edges, items, root }

function kindOf(arn) {
  const m = arn.match(/^acs:ram::\d*:([a-z-]+)/);
  if (arn === "resource") return "resource";
  return m ? m[1] : "other";
}

function accountOf(arn) {
  const m = arn.match(/^acs:[a-z]+:[^:]*:(\d+):/);
  return m ? m[1] : null;
}

function label(arn) {
  const m = arn.match(/^acs:ram::(\d*):(.*)$/);
  if (!m) return arn;
  const id = m[2].replace(/^(delegation|entrustment)\/(.{8}).*$/, "$1/$2…");
  return `${id}\n(${m[1]})`;
}

function nodeLabel(node, resource) {
  if (node.kind === "resource") return resource;
  if (node.kind === "account") return `account ${node.id.slice(8)}`;
  return label(node.id);
}

function stateAt(intervals, at) {
  const t = at.getTime();
  if (intervals.some((i) => new Date(i.from).getTime() <= t && (!i.to || t < new Date(i.to).getTime()))) {
    return "live";
  }
  return intervals.some((i) => i.to && new Date(i.to).getTime() <= t) ? "ended" : "future";
}

const STYLE = [
  {
    selector: "node",
    style: {
      label: "data(label)",
      "text-wrap": "wrap",
      "font-size": 10,
      color: "#111",
      "text-valign": "bottom",
      "text-margin-y": 4,
      "background-color": "#4a5a75",
      width: 26,
      height: 26,
    },
  },
  { selector: "node[kind = 'user'], node[kind = 'root']", style: { "background-color": "#1f5fbf", shape: "ellipse" } },
  { selector: "node[kind = 'group']", style: { "background-color": "#1f5fbf", shape: "round-rectangle" } },
  { selector: "node[kind = 'delegation']", style: { "background-color": "#8a4b00", shape: "diamond" } },
  { selector: "node[kind = 'entrustment']", style: { "background-color": "#6b2fa3", shape: "hexagon" } },
  { selector: "node[kind = 'role']", style: { "background-color": "#0b6e4f", shape: "round-rectangle" } },
  { selector: "node[kind = 'resource']", style: { "background-color": "#222", shape: "star", width: 34, height: 34 } },
  { selector: "node[kind = 'assumed-role']", style: { "background-color": "#0b6e4f", shape: "vee", width: 20, height: 20 } },
  {
    selector: "node[kind = 'account']",
    style: {
      "background-color": "#f4f5f7",
      "background-opacity": 1,
      "border-color": "#767676",
      "border-width": 1,
      shape: "round-rectangle",
      "text-valign": "top",
      "text-halign": "center",
      "font-weight": "bold",
      padding: 16,
    },
  },
  {
    selector: "edge",
    style: {
      width: 2,
      "curve-style": "bezier",
      "target-arrow-shape": "triangle",
      "line-color": "#0b6e4f",
      "target-arrow-color": "#0b6e4f",
    },
  },
  {
    selector: "edge.ended",
    style: { "line-style": "dashed", "line-color": "#b00020", "target-arrow-color": "#b00020", label: "ended", "font-size": 9, color: "#b00020" },
  },
  {
    selector: "edge.future",
    style: { "line-style": "dotted", "line-color": "#888", "target-arrow-color": "#888" },
  },
];

function build(items) {
  const nodes = new Map([["resource", { id: "resource", kind: "resource" }]]);
  const edges = new Map();
  for (const item of items) {
    for (const interval of item.intervals) {
      const path = [...interval.chain, "resource"];
      for (const arn of path) {
        if (nodes.has(arn)) continue;
        const account = arn === "resource" ? null : accountOf(arn);
        if (account && !nodes.has(`account:${account}`)) {
          nodes.set(`account:${account}`, { id: `account:${account}`, kind: "account" });
        }
        nodes.set(arn, { id: arn, kind: kindOf(arn), parent: account ? `account:${account}` : undefined });
      }
      for (let i = 0; i + 1 < path.length; i++) {
        const id = `${path[i]}→${path[i + 1]}`;
        if (!edges.has(id)) edges.set(id, { id, source: path[i], target: path[i + 1], intervals: [] });
        edges.get(id).intervals.push(interval);
      }
    }
  }
  return { nodes: [...nodes.values()], edges: [...edges.values()] };
}

function restyle(at) {
  if (!current) return;
  const instant = at || new Date();
  for (const edge of current.edges) {
    const state = stateAt(edge.intervals, instant);
    const element = current.cy && current.cy.getElementById(edge.id);
    if (element) element.classes(state);
    edge.state = state;
  }
  const rows = current.items.flatMap((item) =>
    item.intervals.map((i) => {
      const state = stateAt([i], instant);
      return [
        item.principal,
        h("span", { class: `status ${state}`, "data-state": state }, state),
        i.from,
        i.to || "open",
        i.conditional ? "yes" : "no",
        i.chain.join(" → "),
      ];
    }),
  );
  clear(
    current.table,
    table(
      ["Principal", `At ${instant.toISOString()}`, "From", "To", "Conditional", "Chain"],
      rows,
      "Who could reach it, when, and through whom",
    ),
  );
  current.root.dataset.instant = instant.toISOString();
  sessionsAt(at);
}

let asked = 0;
// The role sessions of the graph's roles at the instant (GET …/as-of/sessions): role → session,
// live or ended (with why) — those expired or revoked since the review's start too
// (ended_since), drawn ended — redrawn each time the slider rests.
async function sessionsAt(at) {
  if (!current || !current.cy) return;
  const mine = ++asked;
  const instant = at || new Date();
  const since = current.from && current.from < instant ? current.from : instant;
  let items = [];
  try {
    items = await api.all(`${current.base}/as-of/sessions`, {
      as_of: at ? at.toISOString() : undefined,
      ended_since: since.toISOString(),
    });
  } catch {
    items = []; // not allowed to list sessions: the graph shows the grants alone
  }
  if (mine !== asked || !current.cy) return;
  const cy = current.cy;
  cy.remove(".session");
  const added = [];
  for (const session of items) {
    const role = session.arn.replace(/:assumed-role\/([^/]+)\/.*$/, ":role/$1");
    if (cy.getElementById(role).empty()) continue;
    const id = `${session.arn}#${session.id}`;
    const state = session.status === "active" ? "live" : "ended";
    const why = session.ended_reason || (state === "live" ? "live" : session.status);
    added.push(
      { group: "nodes", classes: "session", data: { id, kind: "assumed-role", label: label(session.arn), parent: cy.getElementById(role).data("parent") } },
      { group: "edges", classes: `session ${state}`, data: { id: `${role}→${id}`, source: role, target: id, status: session.status, why } },
    );
  }
  if (added.length) {
    cy.add(added);
    cy.layout({ name: "breadthfirst", directed: true, spacingFactor: 1.1, padding: 20 }).run();
  }
  current.root.dataset.sessions = String(added.length / 2);
  current.root.dataset.sessionsAt = at ? at.toISOString() : "live";
}

// The review as the auditor files it: one row per principal and interval, with its chain.
function csvCell(value) {
  const text = String(value ?? "");
  // a cell a spreadsheet would read as a formula is quoted as text (as the trail's export does)
  const safe = /^[=+\-@\t\r]/.test(text) ? `'${text}` : text;
  return /[",\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

function downloadReview(drawn, resource, action) {
  const lines = [["principal", "principal_type", "from", "to", "conditional", "chain"].join(",")];
  for (const item of drawn.items) {
    for (const i of item.intervals) {
      lines.push(
        [item.principal, item.principal_type, i.from, i.to || "", i.conditional, i.chain.join(" > ")]
          .map(csvCell)
          .join(","),
      );
    }
  }
  const blob = new Blob([lines.join("\n") + "\n"], { type: "text/csv" });
  const name = `access-review-${action}-${resource}-at-${drawn.review.position}.csv`;
  const link = h("a", { href: URL.createObjectURL(blob), download: name.replace(/[^A-Za-z0-9._-]+/g, "_") });
  document.body.append(link);
  link.click();
  link.remove();
}

export async function render(root, session) {
  const base = `/v1/accounts/${session.account}`;
  const resource = h("input", { name: "resource", required: true, value: `acs:ecs:*:${session.account}:instance/*` });
  const action = h("input", { name: "action", required: true, value: "ecs:RebootInstance" });
  const status = h("p", { id: "graph-status", "aria-live": "polite" });
  const canvas = h("div", { id: "graph-canvas", role: "img", "aria-label": "Delegation graph; the table below holds the same chains" });
  const tableNode = h("div", { id: "graph-table" });
  const legend = h(
    "ul",
    { class: "legend", "aria-label": "Legend" },
    h("li", { class: "live" }, "solid green: live at the instant"),
    h("li", { class: "ended" }, "dashed red: ended (revoked or expired)"),
    h("li", { class: "future" }, "dotted grey: not yet granted"),
  );
  // the review's period: by default the account's whole history (a quarter: set From)
  const from = h("input", { type: "datetime-local", step: 1, name: "review_from" });
  const to = h("input", { type: "datetime-local", step: 1, name: "review_to" });
  const exportButton = h("button", { type: "button", id: "graph-export", disabled: true }, "Download review (CSV)");
  const form = h(
    "form",
    { id: "graph-form", class: "filters" },
    field("Resource (ARN)", resource),
    field("Action", action),
    field("Review from (UTC)", from, "Blank: the account's first event"),
    field("Review to (UTC)", to, "Blank: now"),
    h("button", { type: "submit" }, "Draw"),
    exportButton,
  );
  exportButton.addEventListener("click", () => {
    if (current) downloadReview(current, resource.value.trim(), action.value.trim());
  });
  async function draw() {
    status.textContent = "Reading the access review…";
    try {
      const start = fromLocalInput(from.value) || session.span.start;
      const review = await api.get(`${base}/access-review`, {
        resource: resource.value.trim(),
        action: action.value.trim(),
        from: start.toISOString(),
        to: fromLocalInput(to.value)?.toISOString(),
      });
      const { nodes, edges } = build(review.items);
      if (current && current.cy) current.cy.destroy();
      const cy = window.cytoscape({
        container: canvas,
        elements: [
          ...nodes.map((n) => ({ data: { ...n, label: nodeLabel(n, resource.value) } })),
          ...edges.map((e) => ({ data: { id: e.id, source: e.source, target: e.target } })),
        ],
        style: STYLE,
        layout: { name: "breadthfirst", directed: true, spacingFactor: 1.1, padding: 20 },
        wheelSensitivity: 0.3,
      });
      current = { cy, edges, items: review.items, root, table: tableNode, base, review, from: start };
      exportButton.disabled = false;
      window.mandateGraph = cy; // for the browser tests and the curious
      restyle(session.asOf);
      status.textContent = `${review.items.length} principals, ${nodes.length} nodes, ${edges.length} links.`;
      markRendered("graph");
      performance.mark("graph:drawn");
    } catch (error) {
      status.textContent = problemText(error);
    }
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    draw();
  });
  clear(root, h("h2", {}, title), form, status, legend, canvas, tableNode);
  const hash = new URLSearchParams(location.hash.split("?")[1] || "");
  if (hash.get("action")) action.value = hash.get("action");
  if (hash.get("resource")) {
    // a link to a review (#/graph?resource=…&action=…) draws it at once
    resource.value = hash.get("resource");
    await draw();
  } else {
    // a review reads the account's history: drawn when asked for, never on arrival
    status.textContent = "Name a resource and an action, then Draw.";
    markRendered("graph");
  }
}

export function onAsOf(_root, session) {
  restyle(session.asOf);
}
