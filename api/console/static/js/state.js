// What every view shares: who is signed in, and the instant the page is put at (null = live).

export const session = { identity: null, account: null, asOf: null, span: null };

// Views announce their first rows with a performance mark; the browser test reads them.
export function markRendered(name) {
  performance.mark(`view:${name}:rendered`);
}

export function setAsOf(instant) {
  session.asOf = instant;
  // the instant every view now shows, on the page itself (and for the browser tests)
  document.documentElement.dataset.asOf = instant ? instant.toISOString() : "live";
  document.dispatchEvent(new CustomEvent("asof", { detail: instant }));
}

// The instant as the API takes it (as_of=, to=), or undefined when live.
export function asOfParam() {
  return session.asOf ? session.asOf.toISOString() : undefined;
}

// Moving the page to an instant from a view (the time bar registers how: its slider follows).
let moveTo = null;
export function onInstantRequest(handler) {
  moveTo = handler;
}
export function setInstant(instant) {
  if (moveTo) moveTo(instant);
  else setAsOf(instant);
}
