// The time slider: puts every view at one past instant (as_of), and shows the account's events
// around it on a strip under the slider (what changed just before and just after).

import * as api from "./api.js";
import { clear, field, fromLocalInput, h, localInput } from "./dom.js";
import { onInstantRequest } from "./state.js";

const AROUND = 12; // events listed around the instant

async function accountSpan(session) {
  const now = new Date();
  try {
    const first = await api.get(`/v1/accounts/${session.account}/audit-events`, { limit: 1 });
    if (first.items.length) return { start: new Date(first.items[0].time), end: now };
  } catch {
    // a caller who may not list the trail still gets a slider (the last 90 days)
  }
  return { start: new Date(now.getTime() - 90 * 86400e3), end: now };
}

export async function mountTimeBar(root, session, setAsOf) {
  session.span = await accountSpan(session);
  const { start } = session.span;
  const slider = h("input", {
    type: "range",
    id: "asof-slider",
    min: Math.floor(start.getTime() / 1000),
    max: Math.ceil(Date.now() / 1000),
    step: 1,
    value: Math.ceil(Date.now() / 1000),
    "aria-valuetext": "now (live)",
  });
  const exact = h("input", { type: "datetime-local", id: "asof-input", step: 1 });
  const live = h("button", { type: "button", id: "asof-live" }, "Now (live)");
  const status = h("p", { id: "asof-status", "aria-live": "polite" }, "Live: the current state.");
  const strip = h("ol", { id: "asof-events", class: "events", "aria-label": "Events around" });
  // the window around the instant drawn to scale: a tick per event, the instant in the middle
  // (decorative: the list above says the same to a screen reader)
  const ticks = h("div", { id: "asof-ticks", class: "ticks", "aria-hidden": "true" });
  let pending = null;

  function apply(instant, { fromSlider = false } = {}) {
    const isLive = instant === null;
    const now = Date.now();
    slider.max = Math.ceil(now / 1000);
    if (!fromSlider) slider.value = isLive ? slider.max : Math.floor(instant.getTime() / 1000);
    slider.setAttribute("aria-valuetext", isLive ? "now (live)" : instant.toISOString());
    exact.value = isLive ? "" : localInput(instant);
    status.textContent = isLive
      ? "Live: the current state."
      : `Every view shows the state as of ${instant.toISOString()}.`;
    // while the slider is dragged the views wait for it to rest (one read per stop, not per px)
    clearTimeout(pending);
    pending = setTimeout(
      () => {
        setAsOf(instant);
        around(instant);
      },
      fromSlider ? 200 : 0,
    );
  }

  async function around(instant) {
    const at = instant || new Date();
    const half = Math.max(60e3, (Date.now() - start.getTime()) / 40);
    let items = [];
    try {
      const before = await api.get(`/v1/accounts/${session.account}/audit-events`, {
        from: new Date(at.getTime() - half).toISOString(),
        to: new Date(at.getTime() + half).toISOString(),
        limit: 200,
      });
      items = before.items;
    } catch (error) {
      clear(strip, h("li", {}, `Events not visible: ${error.message}`));
      return;
    }
    // the AROUND events nearest the instant, in order
    const after = items.findIndex((e) => new Date(e.time) > at);
    const cut = after < 0 ? items.length : after;
    const shown = items.slice(Math.max(0, cut - AROUND / 2), cut + AROUND / 2);
    const span = 2 * half;
    const offsetOf = (time) => ((time.getTime() - (at.getTime() - half)) / span) * 100;
    clear(
      ticks,
      h("span", { class: "now" }),
      items.map((event) => {
        const time = new Date(event.time);
        const tick = h("span", { class: time > at ? "tick later" : "tick earlier", title: event.event_type });
        tick.style.left = `${offsetOf(time).toFixed(2)}%`;
        return tick;
      }),
      h("small", { class: "from" }, new Date(at.getTime() - half).toISOString().slice(0, 19)),
      h("small", { class: "to" }, new Date(at.getTime() + half).toISOString().slice(0, 19)),
    );
    clear(
      strip,
      shown.map((event) => {
        const time = new Date(event.time);
        const later = time > at;
        const item = h(
          "li",
          { class: later ? "later" : "earlier" },
          h(
            "button",
            {
              type: "button",
              class: "event",
              title: `${event.time} ${event.event_type} ${event.target || ""}`,
              onclick: () => apply(time),
            },
            h("span", { class: "etype" }, event.event_type),
            h("span", { class: "etarget" }, event.target || ""),
            h("time", { datetime: event.time }, event.time.slice(0, 19).replace("T", " ")),
          ),
        );
        return item;
      }),
      shown.length ? null : h("li", { class: "none" }, "No event near this instant."),
    );
  }

  slider.addEventListener("input", () => {
    const value = Number(slider.value);
    apply(value >= Number(slider.max) ? null : new Date(value * 1000), { fromSlider: true });
  });
  exact.addEventListener("change", () => apply(fromLocalInput(exact.value)));
  live.addEventListener("click", () => apply(null));

  clear(
    root,
    h(
      "div",
      { class: "timebar" },
      field("Point in time (UTC)", slider, `From ${start.toISOString()} to now; arrows step 1 s`),
      field("Exact instant (UTC)", exact),
      live,
    ),
    status,
    ticks,
    strip,
  );
  root.hidden = false;
  around(null);
  onInstantRequest((instant) => apply(instant));
  return apply;
}
