// ACS3-HMAC-SHA256 in the browser (WebCrypto): the same canonical request as the server's
// api/signing/acs3.py, so the console proves it holds the secret without ever sending it.
//
//   canonical request = METHOD \n path \n sorted query \n headers \n signed-headers \n sha256(body)
//   string to sign    = "ACS3-HMAC-SHA256\n" + hex(sha256(canonical request))
//   Authorization     = ACS3-HMAC-SHA256 Credential=<id>,SignedHeaders=<h1;h2>,Signature=<hex>

export const ALGORITHM = "ACS3-HMAC-SHA256";

const encoder = new TextEncoder();

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}

export async function sha256Hex(bytes) {
  return hex(await crypto.subtle.digest("SHA-256", bytes));
}

// RFC 3986: everything but A-Za-z0-9-_.~ as %XX (encodeURIComponent leaves !'()* alone).
export function percentEncode(text) {
  return encodeURIComponent(text).replace(
    /[!'()*]/g,
    (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase(),
  );
}

function compare(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}

// The sorted, encoded query of a URL (its decoded pairs, as the server reads them).
export function canonicalQuery(url) {
  const pairs = [];
  for (const [name, value] of url.searchParams) {
    pairs.push([percentEncode(name), percentEncode(value)]);
  }
  pairs.sort((x, y) => compare(x[0], y[0]) || compare(x[1], y[1]));
  return pairs.map(([k, v]) => `${k}=${v}`).join("&");
}

// x-acs-date: UTC to the second, as tea-openapi writes it.
export function acsDate(now = new Date()) {
  return now.toISOString().replace(/\.\d{3}Z$/, "Z");
}

// A signer holding the secret as a non-extractable HMAC key: sign() never sees the secret again.
// `clock()` is the signer's now: the page's clock corrected by the server's (api.js), so a
// machine whose clock is off by more than the 15 minutes allowed can still sign.
export async function makeSigner(
  accessKeyId,
  accessKeySecret,
  securityToken = null,
  clock = () => new Date(),
) {
  const key = await crypto.subtle.importKey(
    "raw",
    encoder.encode(accessKeySecret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return {
    accessKeyId,
    // Returns the headers to send with (method, url, body): the browser adds Host itself,
    // and we sign the value it will send (the page's own host, as every request is same-origin).
    async sign(method, url, body = "") {
      const bytes = typeof body === "string" ? encoder.encode(body) : body;
      const headers = {
        host: url.host,
        "x-acs-content-sha256": await sha256Hex(bytes),
        "x-acs-date": acsDate(clock()),
        "x-acs-signature-nonce": crypto.randomUUID(),
      };
      if (bytes.length > 0) headers["content-type"] = "application/json";
      if (securityToken) headers["x-acs-security-token"] = securityToken;
      const names = Object.keys(headers).sort();
      const canonical = [
        method.toUpperCase(),
        url.pathname || "/",
        canonicalQuery(url),
        names.map((n) => `${n}:${String(headers[n]).trim()}\n`).join(""),
        names.join(";"),
        headers["x-acs-content-sha256"],
      ].join("\n");
      const stringToSign = `${ALGORITHM}\n${await sha256Hex(encoder.encode(canonical))}`;
      const signature = hex(await crypto.subtle.sign("HMAC", key, encoder.encode(stringToSign)));
      delete headers.host; // a forbidden header name: the browser sends it
      headers.authorization =
        `${ALGORITHM} Credential=${accessKeyId},SignedHeaders=${names.join(";")},` +
        `Signature=${signature}`;
      return headers;
    },
  };
}
