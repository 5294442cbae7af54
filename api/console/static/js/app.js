// The console's shell: sign-in, the views' router (#/<view>), the shared point in time.

import * as api from "./api.js";
import { clear, field, h, problemText } from "./dom.js";
import { session, setAsOf } from "./state.js";
import { mountTimeBar } from "./timebar.js";

const views = {
  principals: () => import("./principals.js"),
  graph: () => import("./graph.js"),
  audit: () => import("./audit.js"),
  tester: () => import("./tester.js"),
};

const view = document.getElementById("view");
let rendered = null; // { name, module, root }

function signInForm(message = null) {
  const id = h("input", { name: "access_key_id", autocomplete: "username", required: true });
  const secret = h("input", {
    name: "access_key_secret",
    type: "password",
    autocomplete: "current-password",
    required: true,
  });
  const token = h("input", { name: "security_token", autocomplete: "off" });
  const status = h("p", { id: "signin-status", role: "alert" }, message || "");
  const form = h(
    "form",
    { id: "signin", class: "card narrow", "aria-labelledby": "signin-title" },
    h("h2", { id: "signin-title" }, "Sign in with an AccessKey"),
    h(
      "p",
      { class: "hint" },
      "Kept in this tab only (sessionStorage). Every request is signed with " +
        "ACS3-HMAC-SHA256 in the browser; the secret never leaves it.",
    ),
    field("AccessKeyId", id),
    field("AccessKeySecret", secret),
    field("Security token (STS credentials only)", token),
    h("button", { type: "submit" }, "Sign in"),
    status,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    status.textContent = "Signing in…";
    const creds = {
      accessKeyId: id.value.trim(),
      accessKeySecret: secret.value,
      securityToken: token.value.trim() || null,
    };
    try {
      await api.useCredentials(creds, { remember: false });
      await start(creds);
    } catch (error) {
      api.signOut();
      status.textContent = `Sign-in refused: ${problemText(error)}`;
    }
  });
  clear(view, form);
  document.getElementById("nav").hidden = true;
  document.getElementById("time").hidden = true;
  clear(document.getElementById("identity"));
  id.focus();
}

async function start(creds) {
  const identity = await api.get("/v1/sts/caller-identity");
  await api.useCredentials(creds, { remember: true });
  session.identity = identity;
  session.account = identity.account_id;
  clear(
    document.getElementById("identity"),
    h("span", { class: "who" }, identity.arn),
    h("span", { class: "kind" }, ` (${identity.identity_type}, account ${identity.account_id}) `),
    h("button", { type: "button", id: "signout", onclick: () => leave() }, "Sign out"),
  );
  document.getElementById("nav").hidden = false;
  await mountTimeBar(document.getElementById("time"), session, setAsOf);
  if (!location.hash || location.hash === "#/") location.hash = "#/principals";
  else route();
}

function leave() {
  api.signOut();
  session.identity = session.account = session.asOf = null;
  rendered = null;
  location.hash = "";
  signInForm("Signed out.");
}

async function route() {
  if (!session.identity) return;
  const name = (location.hash.match(/^#\/(\w+)/) || [])[1] || "principals";
  const load = views[name] || views.principals;
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.getAttribute("href") === `#/${name}`) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const module = await load();
  const root = h("div", { class: "view", id: `view-${name}` });
  clear(view, root);
  rendered = { name, module, root };
  document.title = `Mandate — ${module.title}`;
  await module.render(root, session, location.hash);
}

document.addEventListener("asof", () => {
  if (rendered && rendered.module.onAsOf) rendered.module.onAsOf(rendered.root, session);
});
window.addEventListener("hashchange", () => {
  if (location.hash.startsWith("#/")) route();
});
// "Skip to content" moves the focus to the view without touching the route in the hash
document.querySelector("a.skip").addEventListener("click", (event) => {
  event.preventDefault();
  view.focus();
});

async function boot() {
  const saved = api.savedCredentials();
  if (!saved) return signInForm();
  try {
    await api.useCredentials(saved);
    await start(saved);
  } catch (error) {
    api.signOut();
    signInForm(`Your saved sign-in no longer works: ${problemText(error)}`);
  }
}

boot();
