// The console's HTTP client: every call is a signed request to the same /v1 API every other
// client uses. The AccessKey lives in sessionStorage only (gone when the tab closes); the
// secret is turned into a non-extractable HMAC key and is never put on the wire.

import { makeSigner } from "./signing.js";

const STORE = "mandate.console.credentials";

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
    this.errors = (problem && problem.errors) || [];
  }
}

let signer = null;
let skew = 0; // ms to add to the page's clock to read the server's (from a refusal's Date)
const clock = () => new Date(Date.now() + skew);

export function savedCredentials() {
  const raw = sessionStorage.getItem(STORE);
  if (!raw) return null;
  try {
    return JSON.parse(raw);
  } catch {
    sessionStorage.removeItem(STORE);
    return null;
  }
}

export async function useCredentials(creds, { remember = true } = {}) {
  signer = await makeSigner(
    creds.accessKeyId,
    creds.accessKeySecret,
    creds.securityToken || null,
    clock,
  );
  if (remember) sessionStorage.setItem(STORE, JSON.stringify(creds));
}

export function signOut() {
  signer = null;
  sessionStorage.removeItem(STORE);
}

export function urlOf(path, params = {}) {
  const url = new URL(path, location.origin);
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") {
      url.searchParams.append(name, String(value));
    }
  }
  return url;
}

async function send(method, path, { params = {}, body = undefined } = {}, retried = false) {
  if (!signer) throw new ApiError(401, { detail: "not signed in" });
  const url = urlOf(path, params);
  const text = body === undefined ? "" : JSON.stringify(body);
  const headers = await signer.sign(method, url, text);
  const response = await fetch(url, {
    method,
    headers,
    body: text === "" ? undefined : text,
    credentials: "omit",
    cache: "no-store",
  });
  // A clock off by more than the 15 minutes allowed: take the server's time from the refusal
  // and sign once more (a fresh nonce; nothing was done by the refused request).
  if (response.status === 401 && !retried && response.headers.get("date")) {
    const problem = await response.clone().json().catch(() => ({}));
    if (String(problem.code || "").startsWith("InvalidTimeStamp")) {
      skew = new Date(response.headers.get("date")).getTime() - Date.now();
      return send(method, path, { params, body }, true);
    }
  }
  return response;
}

async function json(response) {
  const type = response.headers.get("content-type") || "";
  const body = type.includes("json") ? await response.json() : { detail: await response.text() };
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

export async function get(path, params = {}) {
  return json(await send("GET", path, { params }));
}

export async function post(path, body, params = {}) {
  return json(await send("POST", path, { params, body }));
}

// Every page of a list (bounded: `max` items), for the small lists (users, roles, ...).
export async function all(path, params = {}, max = 1000) {
  const items = [];
  let cursor = null;
  do {
    const page = await get(path, { ...params, limit: 100, cursor });
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && items.length < max);
  items.truncated = Boolean(cursor); // more than `max`: the view says so
  return items;
}

// A signed download: fetched, then handed to the browser as a file (a plain link could not
// carry the signature).
export async function download(path, params, filename) {
  const response = await send("GET", path, { params });
  if (!response.ok) await json(response);
  const blob = await response.blob();
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  return blob.size;
}
