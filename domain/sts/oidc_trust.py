"""Whether a role's trust policy admits a verified OIDC token (AssumeRoleWithOIDC's rule).

RAM's form of such a trust (a role whose trusted entity is an OIDC IdP): a statement whose
``Action`` admits ``sts:AssumeRole``, whose ``Principal.Federated`` names the provider's ARN
(``acs:ram::<account>:oidc-provider/<name>``) and whose ``Condition`` tests the token's
claims as ``oidc:iss``, ``oidc:aud`` and ``oidc:sub``. The condition block is the very
``ConditionSet`` every other decision evaluates; the context holds the verified claims (and
whatever the request adds: ``acs:SourceIp``…). Any applying Deny refuses; else an applying
Allow admits. A statement naming RAM principals or services never admits a token.
"""

from __future__ import annotations

from collections.abc import Mapping

from mandate.domain.policy.document import PolicyDocument
from mandate.domain.policy.evaluation import Effect
from mandate.domain.policy.patterns import PatternSet

__all__ = ["federated_trust_admits"]

_ASSUME_ROLE = "sts:AssumeRole"


def federated_trust_admits(
    trust: PolicyDocument, provider_arn: str, context: Mapping[str, object]
) -> tuple[bool, str]:
    """(admitted, why) for a token of ``provider_arn`` whose claims are in ``context``."""
    admitted = False
    condition_failed = False
    for index, statement in enumerate(trust.statements):
        named = PatternSet(statement.actions, case_sensitive=False).matches(_ASSUME_ROLE)
        if named is statement.negated:
            continue
        principal = statement.principal
        names = principal.federated if principal is not None and principal.federated else ()
        if not names or not PatternSet(names, case_sensitive=True).matches(provider_arn):
            continue
        conditions = statement.conditions
        if conditions is not None and not conditions.holds(context):
            condition_failed = True
            continue
        if statement.effect is Effect.DENY:
            return False, f"statement {index} of the role's trust policy denies {provider_arn}"
        admitted = True
    if admitted:
        return True, "the role's trust policy admits the provider's token"
    if condition_failed:
        return False, (
            f"the role's trust policy names {provider_arn} but its Condition "
            "(oidc:sub, oidc:aud, oidc:iss) is not met by the token"
        )
    return False, f"the role's trust policy does not name {provider_arn} as Federated"
