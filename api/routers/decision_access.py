"""Who may ask ``/v1/authorize`` about whom, and which request context a caller may supply.

Deciding for someone else needs the admin, the subject's root or ``ram:Authorize``; an
outsider hears "could P" only through its own account's roles, on its own resources, and
every other question about another account's principal gets one constant refusal — so that
no answer tells whether a principal exists. A path through a role of another account than
the caller's (one a resource policy names) is never shown to a caller who is not the admin:
it would tell the caller that account's users and its role's trust (``through_other_role``);
nor, to a caller of P's own account, one through a third account's role
(``named_roles_shown``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mandate.api.deps import Caller, authorize_management
from mandate.api.problems import Forbidden
from mandate.api.runtime import Runtime
from mandate.domain.common.arns import account_of_resource
from mandate.domain.common.errors import FieldError, InvalidInput
from mandate.domain.policy.decisions import Answer
from mandate.domain.policy.evaluation import Decision, DecisionKind
from mandate.domain.policy.resource_tags import REQUEST_TAG, RESOURCE_TAG

__all__ = [
    "SELF_PREFIXES",
    "VOUCHABLE_KEYS",
    "VOUCHABLE_PREFIXES",
    "asks_through_own_roles",
    "may_ask_about",
    "named_roles_shown",
    "outsider",
    "supplied_context",
    "through_other_role",
    "withheld",
    "withheld_unless_own",
]

# What an enforcement point may vouch for about its client; acs:CurrentTime never.
VOUCHABLE_KEYS = frozenset(
    {
        "acs:sourceip",
        "acs:securetransport",
        "acs:mfapresent",
        "acs:sourcevpc",
        "acs:useragent",
        "acs:referer",
    }
)
# Tag keys by prefix: an enforcement point vouches for a resource's tags (a RAM user's or
# role's the index supplies itself) and for the request's; a caller deciding for itself may
# name the tags of what it asks to do (acs:RequestTag), never a resource's.
VOUCHABLE_PREFIXES = (RESOURCE_TAG, REQUEST_TAG)
SELF_PREFIXES = (REQUEST_TAG,)


def supplied_context(context: dict[str, Any] | None, *, vouching: bool) -> dict[str, Any]:
    supplied = {key.lower(): value for key, value in (context or {}).items()}
    errors = []
    for key in supplied:
        if not key.startswith("acs:"):
            continue
        if vouching and (key in VOUCHABLE_KEYS or key.startswith(VOUCHABLE_PREFIXES)):
            continue
        if not vouching and key.startswith(SELF_PREFIXES):
            continue
        if key == "acs:currenttime":
            reason = "Mandate sets acs:CurrentTime from its own clock"
        elif key.startswith(RESOURCE_TAG):
            reason = (
                "a resource's tags are vouched for by an enforcement point (credentials or "
                "signed) or known to Mandate (RAM users and roles), never by the caller itself"
            )
        else:
            reason = (
                "acs: keys are set by Mandate from the connection; only an enforcement point "
                "may vouch for acs:SourceIp, acs:SecureTransport, acs:MFAPresent, "
                "acs:SourceVpc, acs:UserAgent, acs:Referer and acs:ResourceTag/<key> "
                "(a caller deciding for itself may pass acs:RequestTag/<key>)"
            )
        errors.append(FieldError(f"context.{key}", reason))
    if errors:
        raise InvalidInput(errors, code="InvalidParameter.Context")
    return supplied


def outsider(caller: Caller) -> Forbidden:
    """The one refusal for a question about another account's principal or an unknown one.

    It names neither the principal nor its account, so its body is the same byte for byte
    whether the principal exists or not: "could P" always depends on P's account's own
    facts (whether P exists, its policies, its groups), which an outsider may not learn —
    except through its own roles, on its own resources (``asks_through_own_roles``).
    """
    return Forbidden(
        f"{caller.arn} may ask only about principals of its own account, about another "
        "account's only on its own account's resources (through its roles), "
        "or decide for credentials it was given"
    )


def asks_through_own_roles(
    runtime: Runtime, caller: Caller, account_id: str, arn: str, resource: str
) -> str | None:
    """The caller's account when it may hear "could P" only through that account's roles.

    None: the caller may hear the whole answer (``may_ask_about``). An outsider — the
    root of the resource's account O, or a caller of O allowed ``ram:ReviewAccess`` on the
    resource, as an access review needs — about a principal of another account A, on O's
    own resource, is answered only through O's roles: an Allow shows what A granted
    towards O (P, its ``sts:AssumeRole`` on O's role, a delegation reaching P), which an
    access review of O shows too; anything else is one constant body (``withheld``).
    Any other resource is the one 403, decided before P is looked up.
    """
    if caller.is_admin or caller.account_id == account_id:
        may_ask_about(runtime, caller, account_id, arn, resource)
        return None
    owner = account_of_resource(resource)
    if owner is None or owner != caller.account_id:
        raise outsider(caller)
    authorize_management(runtime, caller, owner, "ram:ReviewAccess", resource)
    return owner


_WITHHELD = Decision(DecisionKind.IMPLICIT_DENY, (), False)


def through_other_role(chain: Sequence[str], account_id: str) -> bool:
    """Whether a chain passes, after its principal, through a role of another account than
    ``account_id`` (a role a resource policy of ``account_id`` names by ARN).

    Such a path tells which of that account's users its role admits — its trust, its users'
    ``sts:AssumeRole`` — which RAM never shows ``account_id``, and ``account_id`` may name any
    role in its own policy. So a caller who is not the admin and not of the role's account
    hears of it only as the role's own item (an access review's ``principal_type`` ``role``,
    ``conditional``): the answers keep computing it, the API withholds it.
    """
    return any(
        link.startswith("acs:ram::") and ":role/" in link and link.split(":")[3] != account_id
        for link in chain[1:]
    )


def named_roles_shown(caller: Caller) -> frozenset[str] | None:
    """Whose roles, named by the resource's policy, "could P" may answer the caller through
    (``role_reach.answer_through_roles``' ``named_of``): any for the admin, else only the
    caller's own account's.

    A caller of P's account A asking about P on O's resource may hear a path through O's own
    roles (what O granted towards A: its trust of P, its role's grant on its resource) and
    through A's roles O's policy names (A's own, and O's grant towards A). A role of a third
    account B that O's policy names is another matter: the path tells A that O's policy names
    B's role, B's trust and what B's role may do on O's resource — O's and B's facts towards
    each other, which RAM never shows A. So it is not tried: A hears exactly what it would if
    O's policy did not name B's role (P's own decision, or a path through a role it may see),
    so that nothing tells A such a path exists. An outsider (O) never sees a path through
    another account's role (``withheld_unless_own``).
    """
    if caller.is_admin:
        return None
    return frozenset(() if caller.account_id is None else (caller.account_id,))


def withheld_unless_own(owner: str, principal: str, through: Answer | None) -> Answer:
    """An outsider's answer through ``owner``'s roles: ``through`` if it allows through one
    of them, else the one constant body (``withheld``) — also when the role that allows is
    another account's (``through_other_role``)."""
    if through is None or through_other_role(through.chain, owner):
        return withheld(owner, principal)
    return through


def withheld(owner: str, principal: str) -> Answer:
    """The outsider's one non-Allow answer: the same whether P exists, may not assume any
    role of ``owner``, is refused by an explicit Deny, or its account is unknown (no
    statement, no chain; ``principal`` as the caller wrote it)."""
    reason = f"no role of account {owner} that {principal} could assume allows it"
    return Answer(_WITHHELD, (), None, reason)


def may_ask_about(
    runtime: Runtime,
    caller: Caller,
    account_id: str,
    arn: str,
    resource: str,
    *,
    proven: bool = False,
) -> None:
    """Deciding for someone else needs the admin, the subject's root, or ram:Authorize.

    ``proven``: the caller presented the subject's credentials (an enforcement point), so
    the root of the resource's account may have them decided too — that tells nothing the
    credentials did not. A bare ARN of another account is refused (``outsider``).
    """
    if caller.is_admin:
        return
    if caller.account_id == account_id:
        if caller.kind != "root":
            authorize_management(runtime, caller, account_id, "ram:Authorize", arn)
        return
    if proven and caller.kind == "root" and caller.account_id == account_of_resource(resource):
        return
    raise outsider(caller)
