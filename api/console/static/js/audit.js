// The audit timeline: the account's trail, filtered and paged through the API's cursor, drawn
// as a virtualised list (only the rows in view are in the page, whatever the trail's size),
// exported as NDJSON or CSV, with the chain's verification and its last signed checkpoint.

import * as api from "./api.js";
import { clear, field, fromLocalInput, h, localInput, pretty, problemText } from "./dom.js";
import { asOfParam, markRendered, setInstant } from "./state.js";

export const title = "Audit timeline";

const ROW = 30; // px, fixed: the list computes which rows are in view from the scroll offset
const PAGE = 200;
const COLUMNS = ["#", "Time (UTC)", "Event", "Actor", "Target", "Reason"];

function cells(record) {
  return [
    String(record.position),
    record.time.slice(0, 23).replace("T", " "),
    record.event_type,
    record.actor || "",
    record.target || "",
    record.reason || "",
  ];
}

export async function render(root, session) {
  const base = `/v1/accounts/${session.account}`;
  const inputs = {
    from: h("input", { type: "datetime-local", step: 1, name: "from" }),
    to: h("input", { type: "datetime-local", step: 1, name: "to" }),
    principal: h("input", { name: "principal", placeholder: "acs:ram::…:user/…" }),
    type: h("input", { name: "type", placeholder: "EntrustmentRevoked" }),
    target: h("input", { name: "target", placeholder: "ARN prefix" }),
  };
  if (session.asOf) inputs.to.value = localInput(session.asOf);
  const filters = () => ({
    from: fromLocalInput(inputs.from.value)?.toISOString(),
    // the slider's instant to the millisecond (the field shows whole seconds)
    to:
      session.asOf && inputs.to.value === localInput(session.asOf)
        ? session.asOf.toISOString()
        : fromLocalInput(inputs.to.value)?.toISOString() || asOfParam(),
    principal: inputs.principal.value.trim(),
    type: inputs.type.value.trim(),
    target: inputs.target.value.trim(),
  });

  const status = h("p", { id: "audit-status", "aria-live": "polite" });
  const spacer = h("div", { class: "spacer" });
  const rows = h("div", { class: "rows", role: "rowgroup" });
  const viewport = h(
    "div",
    {
      id: "audit-list",
      class: "viewport",
      role: "grid",
      tabindex: 0,
      "aria-label": "Audit records, oldest first",
      "aria-rowcount": -1,
    },
    h(
      "div",
      { class: "row head", role: "row" },
      COLUMNS.map((c) => h("span", { role: "columnheader" }, c)),
    ),
    spacer,
  );
  spacer.append(rows);
  const detail = h("pre", { id: "audit-detail", class: "detail", "aria-live": "polite" });
  // what a selected record leads to: its principals' trails, the state at its instant
  const follow = h("div", { id: "audit-follow", class: "actions" });
  const followUp = (record) => {
    const by = (who) => () => {
      inputs.principal.value = who;
      load(true);
    };
    clear(
      follow,
      record.actor && record.actor.startsWith("acs:")
        ? h("button", { type: "button", onclick: by(record.actor) }, "Trail of its actor")
        : null,
      record.target
        ? h("button", { type: "button", onclick: by(record.target) }, "Trail of its target")
        : null,
      h(
        "button",
        { type: "button", onclick: () => setInstant(new Date(record.time)) },
        "Put the page at its instant",
      ),
    );
  };
  const more = h("button", { type: "button", id: "audit-more" }, "Load more");
  const chain = h("div", { id: "audit-chain", class: "card" }, h("h3", {}, "Chain"), "Verifying…");

  let records = [];
  let cursor = null;
  let loading = false;
  let selected = -1;
  let generation = 0;

  function draw() {
    const top = viewport.scrollTop;
    const first = Math.max(0, Math.floor(top / ROW) - 5);
    const last = Math.min(records.length, Math.ceil((top + viewport.clientHeight) / ROW) + 5);
    spacer.style.height = `${records.length * ROW}px`;
    rows.style.transform = `translateY(${first * ROW}px)`;
    clear(
      rows,
      records.slice(first, last).map((record, i) =>
        h(
          "div",
          {
            class: first + i === selected ? "row selected" : "row",
            role: "row",
            "aria-rowindex": first + i + 1,
            "aria-selected": first + i === selected ? "true" : "false",
            onclick: () => select(first + i),
          },
          cells(record).map((text) => h("span", { role: "gridcell", title: text }, text)),
        ),
      ),
    );
    if (cursor && !loading && last >= records.length - 20) load();
  }

  function select(index) {
    if (index < 0 || index >= records.length) return;
    selected = index;
    const top = index * ROW;
    if (top < viewport.scrollTop) viewport.scrollTop = top;
    else if (top + ROW > viewport.scrollTop + viewport.clientHeight - ROW) {
      viewport.scrollTop = top + 2 * ROW - viewport.clientHeight;
    }
    detail.textContent = pretty(records[index]);
    followUp(records[index]);
    draw();
  }

  async function load(reset = false) {
    const mine = reset ? ++generation : generation;
    if (reset) {
      records = [];
      cursor = null;
      selected = -1;
      viewport.scrollTop = 0;
    }
    loading = true;
    status.textContent = "Loading…";
    try {
      const page = await api.get(`${base}/audit-events`, { ...filters(), limit: PAGE, cursor });
      if (mine !== generation) return;
      records = records.concat(page.items);
      cursor = page.next_cursor;
      status.textContent = `${records.length} records shown${cursor ? " (more on scroll)" : ""}.`;
      more.hidden = !cursor;
      draw();
      if (reset || records.length === page.items.length) markRendered("audit");
    } catch (error) {
      status.textContent = problemText(error);
    } finally {
      loading = false;
    }
  }

  async function exportAs(format) {
    status.textContent = `Exporting ${format.toUpperCase()}…`;
    try {
      const stamp = new Date().toISOString().replace(/[:.]/g, "-");
      const size = await api.download(
        `${base}/audit-events/export`,
        { ...filters(), format },
        `audit-${session.account}-${stamp}.${format}`,
      );
      status.textContent = `Exported ${size} bytes as ${format.toUpperCase()}.`;
    } catch (error) {
      status.textContent = problemText(error);
    }
  }

  async function verify() {
    try {
      const result = await api.get(`${base}/audit/verify`);
      const cp = result.last_checkpoint;
      clear(
        chain,
        h("h3", {}, "Chain"),
        h(
          "p",
          { id: "audit-verify", class: result.ok ? "ok" : "bad" },
          result.ok
            ? `Verified: ${result.checked} records, unbroken.`
            : `BROKEN at position ${result.first_bad_position}: ${result.reason}`,
        ),
        cp
          ? h(
              "p",
              { id: "audit-checkpoint" },
              `Last signed checkpoint: position ${cp.position} at ${cp.time}, head `,
              h("code", {}, cp.head.slice(0, 16) + "…"),
              `, key ${cp.key_id}.`,
            )
          : h("p", { id: "audit-checkpoint" }, "No signed checkpoint yet."),
      );
    } catch (error) {
      clear(chain, h("h3", {}, "Chain"), h("p", { id: "audit-verify" }, problemText(error)));
    }
  }

  viewport.addEventListener("scroll", () => requestAnimationFrame(draw), { passive: true });
  viewport.addEventListener("keydown", (event) => {
    const step = { ArrowDown: 1, ArrowUp: -1, PageDown: 10, PageUp: -10 }[event.key];
    if (step) {
      event.preventDefault();
      select(Math.max(0, Math.min(records.length - 1, (selected < 0 ? -1 : selected) + step)));
    } else if (event.key === "Home") {
      event.preventDefault();
      select(0);
    } else if (event.key === "End") {
      event.preventDefault();
      select(records.length - 1);
    }
  });
  more.addEventListener("click", () => load());

  const form = h(
    "form",
    { id: "audit-filters", class: "filters", "aria-label": "Filter the trail" },
    field("From (UTC)", inputs.from),
    field("To (UTC)", inputs.to, "Defaults to the slider's instant"),
    field("Principal (actor or target)", inputs.principal),
    field("Event type", inputs.type),
    field("Target prefix", inputs.target),
    h("button", { type: "submit" }, "Apply"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    load(true);
  });

  clear(
    root,
    h("h2", {}, title),
    form,
    h(
      "div",
      { class: "actions" },
      h("button", { type: "button", onclick: () => exportAs("ndjson") }, "Export NDJSON"),
      h("button", { type: "button", onclick: () => exportAs("csv") }, "Export CSV"),
    ),
    status,
    h("div", { class: "split" }, h("div", {}, viewport, more), h("div", {}, chain, follow, detail)),
  );
  await load(true);
  verify();
}

export function onAsOf(root, session) {
  const to = root.querySelector("input[name=to]");
  to.value = session.asOf ? localInput(session.asOf) : "";
  root.querySelector("#audit-filters").requestSubmit();
}
