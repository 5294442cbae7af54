// Principals and grants: the account's users, groups, roles, policies (versions side by side,
// as a diff), entrustments granted and received, and delegations. A principal's effective
// permissions, and where each statement came from, are read as of the slider's instant, and so
// are a principal's attached policies, a group's members, a role's trust policy and what a
// policy is attached to (GET …/as-of/…); a policy's versions side by side are today's.

import * as api from "./api.js";
import { clear, field, h, pretty, problemText, table } from "./dom.js";
import { asOfParam, markRendered } from "./state.js";

export const title = "Principals and grants";

const KINDS = [
  ["users", "Users", (u) => [u.user_name, u.arn, u.create_date]],
  ["groups", "Groups", (g) => [g.group_name, g.arn || "", g.create_date]],
  ["roles", "Roles", (r) => [r.role_name, r.arn, r.managed_by || ""]],
  ["policies", "Policies", (p) => [p.policy_name, p.default_version || "", p.update_date || ""]],
];

let detailNode = null;
let lastShown = null; // re-read when the slider moves

// At an instant the lists come from GET …/as-of/{kind} (the temporal index), shaped as the
// live listings' items so one renderer serves both.
const AS_LIVE = {
  users: (i) => ({ user_name: i.name, arn: i.arn, create_date: `since ${i.since}` }),
  groups: (i) => ({ group_name: i.name, arn: i.arn, create_date: `since ${i.since}` }),
  roles: (i) => ({ role_name: i.name, arn: i.arn, managed_by: i.managed_by || `since ${i.since}` }),
  policies: (i) => ({ policy_name: i.name, default_version: i.default_version, update_date: i.since }),
};

async function listOf(base, kind) {
  const at = asOfParam();
  if (!at) return api.all(`${base}/${kind}`);
  const items = await api.all(`${base}/as-of/${kind}`, { as_of: at });
  const shaped = items.map(AS_LIVE[kind]);
  shaped.truncated = items.truncated;
  return shaped;
}

async function section(base, [kind, label, row]) {
  const body = h("div", { class: "list-body" }, "Loading…");
  const node = h(
    "section",
    { class: "card", id: `list-${kind}`, "aria-labelledby": `h-${kind}` },
    h("h3", { id: `h-${kind}` }, label),
    body,
  );
  try {
    const items = await listOf(base, kind);
    clear(
      body,
      items.length
        ? h(
            "ul",
            { class: "picks" },
            items.map((item) =>
              h(
                "li",
                {},
                h(
                  "button",
                  { type: "button", onclick: () => show(base, kind, item) },
                  row(item)[0],
                ),
                h("small", {}, ` ${row(item).slice(1).join(" · ")}`),
              ),
            ),
          )
        : h("p", { class: "hint" }, "None."),
      items.truncated ? h("p", { class: "hint" }, `The first ${items.length} shown.`) : null,
    );
  } catch (error) {
    clear(body, h("p", { class: "hint" }, problemText(error)));
  }
  return node;
}

// A contract's or delegation's scope: what it grants, folded (a native <details>: keyboard-ready).
function scopeCell(scope) {
  if (!scope) return "";
  const statements = [].concat(scope.Statement || []);
  return h(
    "details",
    { class: "scope" },
    h("summary", {}, `${statements.length} statement${statements.length === 1 ? "" : "s"}`),
    h("pre", {}, pretty(scope)),
  );
}

function statusCell(status) {
  return h("span", { class: `status ${status}` }, status);
}

async function contracts(base) {
  const at = asOfParam();
  const body = h("div", {}, "Loading…");
  const node = h(
    "section",
    { class: "card wide", id: "list-contracts", "aria-labelledby": "h-contracts" },
    h("h3", { id: "h-contracts" }, at ? `Contracts and sessions as of ${at}` : "Contracts and sessions"),
    body,
  );
  const parts = [];
  const attempt = async (what, read) => {
    try {
      parts.push(await read());
    } catch (error) {
      parts.push(h("p", { class: "hint" }, `${what}: ${problemText(error)}`));
    }
  };
  await attempt("Entrustments granted", async () => {
    const items = at
      ? await api.all(`${base}/as-of/entrustments`, { as_of: at })
      : await api.all(`${base}/entrustments`, { direction: "granted" });
    return table(
      ["Contract", "Trustee", "Status", "Managed role / id", "Scope", "Term"],
      items.map((e) => [
        e.contract_ref,
        e.trustee_account_id,
        statusCell(e.status),
        e.role_arn || e.arn,
        scopeCell(e.scope),
        at
          ? `${e.starts_at || "from its grant"} – ${e.ends_at || "open"} (as now since ${e.since})`
          : `${e.starts_at || e.create_date} – ${e.ends_at || "open"}`,
      ]),
      "Entrustments granted",
    );
  });
  await attempt("Entrustments received", async () => {
    const items = at
      ? await api.all(`${base}/as-of/entrustments`, { as_of: at, direction: "received" })
      : await api.all(`${base}/entrustments`, { direction: "received" });
    return table(
      ["Contract", "Grantor", "Status", "Role / id", "Scope", "Delegations"],
      items.map((e) => [
        e.contract_ref,
        e.grantor_account_id || e.account_id,
        statusCell(e.status),
        e.role_arn || e.arn,
        scopeCell(e.scope),
        e.delegations
          ? e.delegations.map((d) => `${d.grantee} (${d.status})`).join(", ") || "none"
          : "see Delegations",
      ]),
      "Entrustments received",
    );
  });
  await attempt("Delegations", async () => {
    const items = at
      ? await api.all(`${base}/as-of/delegations`, { as_of: at })
      : await api.all(`${base}/delegations`);
    return table(
      ["Delegation", "Grantee", "Under entrustment", "Status", "Scope", "Ends"],
      items.map((d) => [
        d.arn,
        d.grantee || d.grantee_arn,
        d.entrustment_arn || d.entrustment_id,
        statusCell(d.status),
        scopeCell(d.scope),
        d.ends_at || "",
      ]),
      "Delegations made by this account",
    );
  });
  await attempt("Sessions", async () => {
    const items = await api.all(`${base}/as-of/sessions`, { as_of: at });
    return table(
      ["Session", "Key", "Status", "Assumed by", "Issued", "Expires"],
      items.map((x) => [
        x.arn,
        x.id,
        h("span", {}, statusCell(x.status), x.ended_reason ? ` ${x.ended_reason}` : ""),
        x.source_arn || "",
        x.issued_at || "",
        x.expiration || "",
      ]),
      "Role sessions of this account's roles (never a secret or token)",
    );
  });
  clear(body, parts);
  return node;
}

async function permissions(base, arn) {
  const answer = await api.get(`${base}/effective-permissions`, {
    principal: arn,
    as_of: asOfParam(),
  });
  return h(
    "div",
    { id: "effective" },
    h("p", {}, `Effective permissions of ${answer.principal} as of ${answer.as_of}`),
    answer.root ? h("p", {}, "The account's root: every action on its resources.") : null,
    table(
      ["Effect", "Action", "Resource", "Layer", "Policy", "Version", "Via", "#"],
      answer.statements.map((s) => [
        s.statement.Effect,
        [].concat(s.statement.Action || s.statement.NotAction || []).join(", "),
        [].concat(s.statement.Resource || s.statement.NotResource || []).join(", "),
        s.layer,
        `${s.policy_type || ""} ${s.policy_name || ""}`.trim(),
        s.version || "",
        s.via || "",
        String(s.statement_index),
      ]),
      "Each statement and where it came from",
    ),
    answer.assumable_roles && answer.assumable_roles.length
      ? h("p", {}, `May assume: ${answer.assumable_roles.map((r) => r.role_arn || r).join(", ")}`)
      : null,
  );
}

// A line diff (longest common subsequence) of two pretty-printed documents.
export function diffLines(a, b) {
  const x = a.split("\n");
  const y = b.split("\n");
  const n = x.length;
  const m = y.length;
  const lcs = Array.from({ length: n + 1 }, () => new Uint16Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i][j] = x[i] === y[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const out = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && x[i] === y[j]) out.push([" ", x[i++], y[j++]]);
    else if (j < m && (i === n || lcs[i][j + 1] >= lcs[i + 1][j])) out.push(["+", "", y[j++]]);
    else out.push(["-", x[i++], ""]);
  }
  return out;
}

async function versions(base, policy) {
  const items = (await api.get(`${base}/policies/${policy.policy_name}/versions`)).items;
  const left = h("select", { name: "left" }, items.map((v) => h("option", { value: v.version_id }, v.version_id)));
  const right = h("select", { name: "right" }, items.map((v) => h("option", { value: v.version_id }, v.version_id)));
  if (items.length > 1) left.value = items[items.length - 2].version_id;
  right.value = (items.find((v) => v.is_default_version) || items[items.length - 1]).version_id;
  const out = h("div", { id: "version-diff" });
  const draw = () => {
    const a = items.find((v) => v.version_id === left.value);
    const b = items.find((v) => v.version_id === right.value);
    const rows = diffLines(pretty(a.policy_document), pretty(b.policy_document));
    clear(
      out,
      h(
        "table",
        { class: "diff" },
        h("caption", {}, `${a.version_id} (${a.create_date}) beside ${b.version_id} (${b.create_date})`),
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, a.version_id), h("th", { scope: "col" }, b.version_id))),
        h(
          "tbody",
          {},
          rows.map(([op, l, r]) =>
            h(
              "tr",
              { class: op === "+" ? "added" : op === "-" ? "removed" : "" },
              h("td", {}, h("code", {}, (op === "-" ? "− " : "  ") + l)),
              h("td", {}, h("code", {}, (op === "+" ? "+ " : "  ") + r)),
            ),
          ),
        ),
      ),
    );
  };
  left.addEventListener("change", draw);
  right.addEventListener("change", draw);
  draw();
  const note = asOfParam()
    ? h("p", { class: "hint" }, "Versions as kept now (a version's document never changes; one deleted since is not here).")
    : null;
  return h("div", {}, note, h("div", { class: "row-fields" }, field("Version", left), field("beside", right)), out);
}

// The users, groups and roles a policy is attached to, at the slider's instant (or now), each
// leading to that principal's detail.
async function attachedTo(base, policy) {
  const at = asOfParam();
  const held = await api.get(`${base}/as-of/policies/${policy.policy_name}/entities`, { as_of: at });
  const kinds = [
    ["users", "user_name", held.users],
    ["groups", "group_name", held.groups],
    ["roles", "role_name", held.roles],
  ];
  const count = held.users.length + held.groups.length + held.roles.length;
  return h(
    "div",
    { id: "policy-entities" },
    h("h4", {}, `Attached to ${at ? `(as of ${at})` : "(now)"}: ${count}`),
    h(
      "p",
      { class: "hint" },
      `Default version ${at ? "then" : "now"}: ${held.default_version}; versions: ${held.versions.join(", ")}`,
    ),
    count
      ? h(
          "ul",
          { class: "picks" },
          kinds.flatMap(([kind, key, entries]) =>
            entries.map((entry) =>
              h(
                "li",
                {},
                h(
                  "button",
                  { type: "button", onclick: () => show(base, kind, { [key]: entry.name, arn: entry.arn }) },
                  entry.name,
                ),
                h("small", {}, ` ${kind.slice(0, -1)} · ${entry.arn}`),
              ),
            ),
          ),
        )
      : h("p", { class: "hint" }, "Attached to nothing."),
  );
}

let showing = 0;

async function show(base, kind, item, focus = true) {
  const mine = ++showing; // the slider moved again meanwhile: the later instant's detail wins
  lastShown = [base, kind, item];
  clear(detailNode, h("p", {}, "Loading…"));
  const parts = [h("h3", { tabindex: -1, id: "detail-title" }, item.arn || item.policy_name)];
  const attempt = async (read) => {
    try {
      parts.push(await read());
    } catch (error) {
      parts.push(h("p", { class: "hint" }, problemText(error)));
    }
  };
  const at = asOfParam();
  const when = at ? `as of ${at}` : "(live)";
  if (kind === "policies") {
    await attempt(() => attachedTo(base, item));
    await attempt(() => versions(base, item));
  } else {
    const name = item.user_name || item.group_name || item.role_name;
    await attempt(async () => {
      // at an instant, what was attached then (the temporal index); live, the live listing
      const attached = at
        ? (await api.get(`${base}/as-of/${kind}/${name}/policies`, { as_of: at })).items
        : await api.all(`${base}/${kind}/${name}/policies`);
      return h(
        "div",
        { id: "attached-policies" },
        table(
          ["Type", "Policy", at ? "Default version then" : "Default version"],
          attached.map((p) => [p.policy_type, p.policy_name, p.version || ""]),
          `Attached policies ${when}`,
        ),
      );
    });
    if (kind === "users") await attempt(() => permissions(base, item.arn));
    if (kind === "groups") {
      await attempt(async () => {
        const members = at
          ? (await api.get(`${base}/as-of/groups/${name}/members`, { as_of: at })).items.map((m) => m.name)
          : (await api.get(`${base}/groups/${name}`)).members;
        const account = base.split("/").pop();
        return h(
          "div",
          { id: "group-members" },
          h("h4", {}, `Members ${when}: ${members.length}`),
          h(
            "ul",
            { class: "picks" },
            members.map((member) =>
              h(
                "li",
                {},
                h(
                  "button",
                  {
                    type: "button",
                    onclick: () =>
                      show(base, "users", {
                        user_name: member,
                        arn: `acs:ram::${account}:user/${member}`,
                      }),
                  },
                  member,
                ),
              ),
            ),
          ),
          h("p", { class: "hint" }, "A member's effective permissions include the group's."),
        );
      });
    }
    if (kind === "roles") {
      await attempt(async () => {
        // the trust policy then: the temporal index records each rewrite (and a managed
        // role's is computed from the delegations alive then)
        const role = at
          ? await api.get(`${base}/as-of/roles/${name}`, { as_of: at })
          : await api.get(`${base}/roles/${name}`);
        return h(
          "div",
          { id: "trust-policy" },
          h("h4", {}, `Trust policy ${when}`),
          role.managed_by ? h("p", {}, `Managed by ${role.managed_by}`) : null,
          h("pre", {}, pretty(role.assume_role_policy_document)),
        );
      });
    }
  }
  if (mine !== showing) return;
  clear(detailNode, parts);
  // a pick moves the focus to its detail; the slider re-reading it leaves the focus on the slider
  if (focus) detailNode.querySelector("#detail-title").focus();
}

let rootNode = null;
let baseOf = null;

let drawing = 0;

async function lists(root) {
  const mine = ++drawing; // a later instant's lists replace an earlier one's, never mix
  const grid = root.querySelector(".grid");
  const sections = await Promise.all(KINDS.map((k) => section(baseOf, k)));
  if (mine !== drawing) return;
  clear(grid, sections);
  markRendered("principals");
  const signed = await contracts(baseOf);
  if (mine === drawing) grid.append(signed);
}

export async function render(root, session) {
  rootNode = root;
  baseOf = `/v1/accounts/${session.account}`;
  lastShown = null;
  detailNode = h(
    "section",
    { id: "principal-detail", class: "card wide", "aria-live": "polite" },
    h("p", { class: "hint" }, "Pick a principal or a policy."),
  );
  clear(root, h("h2", {}, title), h("div", { class: "grid" }), detailNode);
  await lists(root);
}

export function onAsOf() {
  if (!rootNode) return;
  lists(rootNode);
  if (lastShown) show(...lastShown, false);
}
