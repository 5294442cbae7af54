// The decision tester (POST /v1/authorize, at the slider's instant or one given) and a policy
// editor that validates as you type through POST /v1/simulate: the API's own errors, each with
// its JSON path, and the simulated decision of the document as written.

import * as api from "./api.js";
import { clear, field, fromLocalInput, h, localInput, pretty, problemText, table } from "./dom.js";
import { markRendered } from "./state.js";

export const title = "Decision tester";

const EXAMPLE = {
  Version: "1",
  Statement: [{ Effect: "Allow", Action: "oss:GetObject", Resource: "acs:oss:*:*:bucket/*" }],
};

function parseContext(text) {
  if (!text.trim()) return undefined;
  return JSON.parse(text);
}

export function decisionCard(answer, id) {
  return h(
    "div",
    { id, class: `card decision ${answer.allowed ? "allow" : "deny"}` },
    h("p", { class: "verdict" }, h("strong", { class: "decision-value" }, answer.decision)),
    answer.reason ? h("p", { class: "reason" }, answer.reason) : null,
    answer.as_of ? h("p", {}, `As of ${answer.as_of}`) : null,
    answer.matched && answer.matched.length
      ? table(
          ["Layer", "Policy", "Version", "Statement", "Effect", "Via"],
          answer.matched.map((m) => [
            m.layer,
            `${m.policy_type || ""} ${m.policy_name || ""}`.trim(),
            m.version || "",
            String(m.statement),
            m.effect,
            m.via || "",
          ]),
          "Matched statements: where the answer came from",
        )
      : null,
    answer.chain && answer.chain.length
      ? h(
          "div",
          {},
          h("h4", {}, "Chain"),
          h("ol", { class: "chain" }, answer.chain.map((arn) => h("li", {}, arn))),
        )
      : null,
  );
}

function decisionTester(session) {
  const principal = h("input", { name: "principal", placeholder: "blank: yourself" });
  const action = h("input", { name: "action", required: true, value: "ecs:RebootInstance" });
  const resource = h("input", {
    name: "resource",
    required: true,
    value: `acs:ecs:*:${session.account}:instance/*`,
  });
  const context = h("textarea", { name: "context", rows: 3, placeholder: '{"acs:SourceIp": …}' });
  const instant = h("input", { type: "datetime-local", step: 1, name: "as_of" });
  const result = h("div", { id: "tester-result", "aria-live": "polite" });
  const form = h(
    "form",
    { id: "tester", class: "card", "aria-labelledby": "tester-title" },
    h("h3", { id: "tester-title" }, "Could this be done?"),
    field("Principal (ARN or STS key id)", principal),
    field("Action", action),
    field("Resource", resource),
    field("Request context (JSON)", context),
    field("As of (UTC)", instant, "Blank: the slider's instant, or now"),
    h("button", { type: "submit" }, "Decide"),
    result,
  );
  let decided = false;
  const sync = () => {
    instant.placeholder = session.asOf ? localInput(session.asOf) : "now";
    // a shown answer follows the slider (unless an instant of its own was given)
    if (decided && !instant.value) form.requestSubmit();
  };
  sync();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const at = fromLocalInput(instant.value) || session.asOf;
    let body;
    try {
      body = {
        action: action.value.trim(),
        resource: resource.value.trim(),
        principal: principal.value.trim() || undefined,
        context: parseContext(context.value),
        as_of: at ? at.toISOString() : undefined,
      };
    } catch (error) {
      clear(result, h("p", { role: "alert" }, `Context is not JSON: ${error.message}`));
      return;
    }
    clear(result, h("p", {}, "Deciding…"));
    try {
      clear(result, decisionCard(await api.post("/v1/authorize", body), "tester-decision"));
      decided = true;
    } catch (error) {
      clear(result, errorList(error, "tester-errors"));
    }
  });
  return { form, sync };
}

function errorList(error, id) {
  return h(
    "div",
    { id, role: "alert", class: "errors" },
    h("p", {}, problemText(error)),
    error.errors && error.errors.length
      ? h(
          "ul",
          {},
          error.errors.map((e) => h("li", {}, h("code", { class: "path" }, e.field), ` ${e.reason}`)),
        )
      : null,
  );
}

function policyEditor(session) {
  const doc = h("textarea", {
    name: "policy",
    rows: 14,
    spellcheck: "false",
    class: "code",
    value: pretty(EXAMPLE),
  });
  const action = h("input", { name: "sim_action", value: "oss:GetObject" });
  const resource = h("input", {
    name: "sim_resource",
    value: `acs:oss:*:${session.account}:bucket/report.csv`,
  });
  const context = h("textarea", { name: "sim_context", rows: 2 });
  const out = h("div", { id: "policy-result", "aria-live": "polite" });
  let timer = null;
  let seq = 0;

  async function check() {
    const mine = ++seq;
    let document;
    let ctx;
    try {
      document = JSON.parse(doc.value);
    } catch (error) {
      doc.setAttribute("aria-invalid", "true");
      clear(out, h("div", { id: "policy-errors", role: "alert" }, `Not JSON: ${error.message}`));
      return;
    }
    try {
      ctx = parseContext(context.value);
    } catch (error) {
      clear(out, h("p", { role: "alert" }, `Context is not JSON: ${error.message}`));
      return;
    }
    const body = {
      policies: [document],
      action: action.value.trim(),
      resource: resource.value.trim(),
      context: ctx,
    };
    try {
      const answer = await api.post("/v1/simulate", body);
      if (mine !== seq) return;
      doc.removeAttribute("aria-invalid");
      clear(out, h("p", { id: "policy-valid", class: "ok" }, "Valid."), decisionCard(answer, "policy-decision"));
    } catch (error) {
      if (mine !== seq) return;
      doc.setAttribute("aria-invalid", "true");
      // the API's paths name policies[0]; the editor holds that one document
      for (const e of error.errors || []) e.field = e.field.replace(/^policies\[0\]\.?/, "$.");
      clear(out, errorList(error, "policy-errors"));
    }
  }
  const soon = () => {
    clearTimeout(timer);
    timer = setTimeout(check, 250);
  };
  for (const input of [doc, action, resource, context]) input.addEventListener("input", soon);
  const section = h(
    "section",
    { id: "policy-editor", class: "card", "aria-labelledby": "editor-title" },
    h("h3", { id: "editor-title" }, "Policy editor (validated as you type, simulated)"),
    field("Policy document (JSON)", doc),
    field("Action to simulate", action),
    field("Resource to simulate", resource),
    field("Request context (JSON)", context),
    out,
  );
  check();
  return section;
}

let tester = null;

export async function render(root, session) {
  tester = decisionTester(session);
  clear(
    root,
    h("h2", {}, title),
    h("div", { class: "split" }, tester.form, policyEditor(session)),
  );
  markRendered("tester");
}

export function onAsOf() {
  if (tester) tester.sync();
}
