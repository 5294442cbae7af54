"""Federation commands: OIDC providers (create, update, delete) and AssumeRoleWithOIDC.

AssumeRoleWithOIDC has no caller to authorise: the token is the credential. Its order is
STS's: the parameters (``check_parameters``, shared with AssumeRole), the provider (read
from the log by its name claim), the token (``domain.sts.oidc_tokens``), the role of the
provider's account and its trust (``domain.sts.oidc_trust``: the same condition evaluator
as every decision, over ``oidc:iss``/``oidc:aud``/``oidc:sub``), the duration; then the
same ``SessionIssued`` AssumeRole records, its source being the provider (no user, no
parent): such a session acts within its role's policies ∩ its session policy, dies with
its role, its account or a revocation, and is answered as of any instant like any other.
Every refusal raises before an event exists, so it writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from eventsourcing.application import AggregateNotFoundError

from mandate.domain.common.arns import assumed_role_arn, parse_principal_arn
from mandate.domain.common.audit import acting_as, current_audit_context
from mandate.domain.common.errors import (
    Conflict,
    FieldError,
    InvalidInput,
    LimitExceeded,
    NotFound,
    NotPermitted,
)
from mandate.domain.common.identifiers import name_claim_id
from mandate.domain.identity.name_claims import NameClaim
from mandate.domain.ledger.commands import command
from mandate.domain.ledger.core import LedgerCore
from mandate.domain.ledger.results import Created, IssuedSession, Written
from mandate.domain.policy.document import DocumentKind, parse_policy_document
from mandate.domain.sts.assume_role import check_parameters
from mandate.domain.sts.oidc_providers import (
    CLAIM_KIND,
    ISSUER_CLAIM_KIND,
    MAX_PROVIDERS_PER_ACCOUNT,
    SLOT_CLAIM_KIND,
    OIDCProvider,
    ProviderFacts,
    check_provider,
    issuer_key,
    parse_oidc_provider_arn,
    slot_order,
)
from mandate.domain.sts.oidc_tokens import (
    JwksSource,
    JwksUnavailable,
    TokenRefused,
    VerifiedToken,
    verify_token,
)
from mandate.domain.sts.oidc_trust import federated_trust_admits
from mandate.domain.sts.roles import Role
from mandate.domain.sts.sessions import Session

__all__ = ["FederatedSession", "FederationCommands", "read_oidc_provider"]

_ALL_SLOTS = tuple(map(str, range(MAX_PROVIDERS_PER_ACCOUNT)))


@dataclass(frozen=True, slots=True)
class FederatedSession:
    """An issued session and the token it was exchanged for (STS's ``OIDCTokenInfo``)."""

    issued: IssuedSession
    token: VerifiedToken
    provider_arn: str

    @property
    def position(self) -> int:
        return self.issued.position


class FederationCommands(LedgerCore):
    """OIDC identity providers and the exchange of their tokens for sessions."""

    jwks_source: JwksSource | None = None
    """Fetches the keys of providers that give a ``jwks_url`` (set by the composition root;
    without one, such providers' tokens are refused)."""

    @command
    def create_oidc_provider(
        self,
        account_id: str,
        provider_name: object,
        *,
        issuer_url: object,
        client_ids: object,
        jwks: object = None,
        fingerprints: object = None,
        issuance_limit_time: object = None,
        description: object = None,
        jwks_url: object = None,
    ) -> Created:
        """RAM's CreateOIDCProvider; the keys inline as a public JWKS, or by ``jwks_url``."""
        fields = check_provider(
            provider_name=provider_name,
            issuer_url=issuer_url,
            client_ids=client_ids,
            jwks=jwks,
            fingerprints=fingerprints,
            issuance_limit_time=issuance_limit_time,
            description=description,
            jwks_url=jwks_url,
        )
        self._open_account(account_id)
        claim = self._claim(account_id, CLAIM_KIND, fields["provider_name"])
        if claim is not None and claim.entity_id is not None:
            raise Conflict(
                f"OIDC provider {fields['provider_name']!r} already exists",
                code="EntityAlreadyExists.OIDCProvider",
            )
        issuer = issuer_key(fields["issuer_url"])
        taken = self._claim(account_id, ISSUER_CLAIM_KIND, issuer)
        if taken is not None and taken.entity_id is not None:
            raise Conflict(
                f"an OIDC provider of this account already has issuer URL {issuer!r}",
                code="EntityAlreadyExists.OIDCProvider.IssuerUrl",
            )
        slot, free = self._free_slot(account_id, fields["provider_name"])
        provider = OIDCProvider(account_id=account_id, **fields, slot=slot)
        # the claims first, each a collision point for a concurrent create: same name, same
        # issuer, or same slot (the 100th), and the loser's re-run is refused or moves on.
        # Each is taken as read above (not read again): a claim taken since then makes the
        # save conflict, and the re-run refuses with the right code
        claims = (
            _take(claim, account_id, CLAIM_KIND, fields["provider_name"], provider),
            _take(taken, account_id, ISSUER_CLAIM_KIND, issuer, provider),
            _take(free, account_id, SLOT_CLAIM_KIND, slot, provider),
        )
        return Created(provider.id, self._commit(*claims, provider))

    def _free_slot(self, account_id: str, provider_name: str) -> tuple[str, NameClaim | None]:
        """The first of the account's ``MAX_PROVIDERS_PER_ACCOUNT`` provider slots, in the
        name's ``slot_order``, that no live provider holds; none free is RAM's quota (409
        ``LimitExceeded.OIDCProvider``). A claim read a slot tried: about MAX / free ones."""
        for slot in slot_order(provider_name):
            claim = self._claim(account_id, SLOT_CLAIM_KIND, slot)
            if claim is None or claim.entity_id is None:
                return slot, claim
        raise LimitExceeded(
            f"an account has at most {MAX_PROVIDERS_PER_ACCOUNT} OIDC providers",
            code="LimitExceeded.OIDCProvider",
        )

    def _provider_claims(self, account_id: str, provider: OIDCProvider) -> list[NameClaim]:
        """The issuer and slot claims ``provider`` holds (none if it predates them): the slot
        its creation recorded, or — created before the slot was recorded — looked up."""
        held = []
        issuer = self._claim(account_id, ISSUER_CLAIM_KIND, issuer_key(provider.issuer_url))
        if issuer is not None and issuer.entity_id == provider.id:
            held.append(issuer)
        slots = (provider.slot,) if provider.slot is not None else _ALL_SLOTS
        for slot in slots:
            claim = self._claim(account_id, SLOT_CLAIM_KIND, slot)
            if claim is not None and claim.entity_id == provider.id:
                held.append(claim)
                break
        return held

    @command
    def update_oidc_provider(
        self,
        account_id: str,
        provider_name: str,
        *,
        client_ids: object = None,
        jwks: object = None,
        fingerprints: object = None,
        issuance_limit_time: object = None,
        description: object = None,
        jwks_url: object = None,
    ) -> Written:
        """RAM's UpdateOIDCProvider: each given field replaces the provider's (whole lists:
        one member at a time is ``add_oidc_client_id``… instead); ``jwks`` rotates its keys.
        Tokens are verified with the new state from the next exchange; sessions already
        issued live on."""
        self._open_account(account_id)
        _, provider = self._live(account_id, CLAIM_KIND, provider_name, OIDCProvider)
        if jwks is None and jwks_url is None:  # the keys stay where they are
            jwks, jwks_url = (provider.jwks or None), provider.jwks_url
        fields = check_provider(
            provider_name=provider.provider_name,
            issuer_url=provider.issuer_url,
            client_ids=provider.client_ids if client_ids is None else client_ids,
            jwks=jwks,
            jwks_url=jwks_url,
            fingerprints=provider.fingerprints if fingerprints is None else fingerprints,
            issuance_limit_time=(
                provider.issuance_limit_time if issuance_limit_time is None else issuance_limit_time
            ),
            description=provider.description if description is None else description,
        )
        provider.update(fields)
        return Written(self._commit(provider))

    @command
    def add_oidc_client_id(self, account_id: str, provider_name: str, client_id: object) -> Written:
        """RAM's AddClientIdToOIDCProvider: one client id more, on the provider as it is."""
        return self._change_list(account_id, provider_name, "client_ids", client_id, add=True)

    @command
    def remove_oidc_client_id(
        self, account_id: str, provider_name: str, client_id: object
    ) -> Written:
        """RAM's RemoveClientIdFromOIDCProvider: one client id fewer."""
        return self._change_list(account_id, provider_name, "client_ids", client_id, add=False)

    @command
    def add_oidc_fingerprint(
        self, account_id: str, provider_name: str, fingerprint: object
    ) -> Written:
        """RAM's AddFingerprintToOIDCProvider."""
        return self._change_list(account_id, provider_name, "fingerprints", fingerprint, add=True)

    @command
    def remove_oidc_fingerprint(
        self, account_id: str, provider_name: str, fingerprint: object
    ) -> Written:
        """RAM's RemoveFingerprintFromOIDCProvider."""
        return self._change_list(account_id, provider_name, "fingerprints", fingerprint, add=False)

    def _change_list(
        self, account_id: str, provider_name: str, field: str, value: object, *, add: bool
    ) -> Written:
        """One member added to or removed from a list, decided on the provider read inside
        the command (``OIDCProvider.change_list``): a concurrent change saved first makes
        this save conflict, and the re-run applies the change to the list that includes it."""
        self._open_account(account_id)
        _, provider = self._live(account_id, CLAIM_KIND, provider_name, OIDCProvider)
        provider.change_list(field, value, add=add)
        return Written(self._commit(provider))

    @command
    def delete_oidc_provider(self, account_id: str, provider_name: str) -> Written:
        """Ends the exchange of its tokens; sessions already issued live on (as on RAM)."""
        self._open_account(account_id)
        claim, provider = self._live(account_id, CLAIM_KIND, provider_name, OIDCProvider)
        held = self._provider_claims(account_id, provider)
        provider.delete()
        for released in (claim, *held):
            released.release()
        return Written(self._commit(provider, claim, *held))

    @command
    def assume_role_with_oidc(
        self,
        *,
        oidc_provider_arn: object,
        role_arn: object,
        oidc_token: object,
        role_session_name: object,
        duration_seconds: object = None,
        policy: object = None,
        context: dict[str, object] | None = None,
    ) -> FederatedSession:
        """STS AssumeRoleWithOIDC: verify the token, check the trust, record ``SessionIssued``."""
        if self.token_signer is None:
            raise RuntimeError("this ledger was made without a session token signer")
        arn, name, duration, policy_text = check_parameters(
            role_arn, role_session_name, duration_seconds, policy
        )
        named = parse_oidc_provider_arn(oidc_provider_arn)
        if named is None:
            raise InvalidInput(
                FieldError(
                    "oidc_provider_arn", "must be acs:ram::<account_id>:oidc-provider/<name>"
                ),
                code="InvalidParameter.OIDCProviderArn",
            )
        account_id, provider_name = named
        now = datetime.now(UTC)
        try:
            self._open_account(account_id)
            provider = read_oidc_provider(self, account_id, provider_name).facts()
        except (NotFound, Conflict):
            # STS's words: the provider is unknown (whether the account exists, or is
            # closed, is not said to an anonymous caller)
            raise NotPermitted(
                "No such OIDC Provider registered.", code="AuthenticationFail.NoPermission"
            ) from None
        try:
            token = verify_token(self._with_keys(provider), oidc_token, now)
        except TokenRefused as refused:
            if not (refused.unknown_kid and provider.jwks_url is not None):
                raise
            # a key the cached JWKS lacks: the IdP may have rotated; read its keys afresh once
            token = verify_token(self._with_keys(provider, fresh=True), oidc_token, now)
        target = parse_principal_arn(arn)
        if target.account_id != account_id:
            raise NotPermitted(f"the role {arn} is not in the provider's account ({account_id})")
        try:
            _, role = self._live_role(account_id, target.name or "")
        except (NotFound, Conflict):
            raise NotFound(f"role {arn} does not exist", code="EntityNotExist.Role") from None
        trust = parse_policy_document(role.trust_policy, kind=DocumentKind.TRUST)
        decision_context = {k.lower(): v for k, v in (context or {}).items()}
        decision_context.update(token.context())
        admitted, why = federated_trust_admits(trust, provider.arn, decision_context)
        if not admitted:
            raise NotPermitted(f"cannot assume {arn}: {why}")
        if duration > role.max_session_duration:
            raise InvalidInput(
                FieldError(
                    "duration_seconds",
                    "must be at most the role's max_session_duration "
                    f"({role.max_session_duration})",
                ),
                code="InvalidParameter.DurationSeconds",
            )
        expiration = (now + timedelta(seconds=duration)).replace(microsecond=0)
        key_id, secret, secret_hash, sealed = self._issue_key("STS.")
        # the event's audit names who asked: the provider, and the subject it vouched for
        asked = replace(
            current_audit_context(), actor=provider.arn, credential=f"oidc-sub:{token.subject}"
        )
        with acting_as(asked):
            session = self._federated_session(
                key_id, secret_hash, sealed, role, name, provider.arn, policy_text, now, expiration
            )
        position = self._commit(session)
        issued = IssuedSession(
            access_key_id=key_id,
            access_key_secret=secret,
            security_token=self.token_signer.issue(key_id, expiration),
            expiration=expiration,
            arn=assumed_role_arn(account_id, role.role_name, name),
            assumed_role_id=f"{role.id}:{name}",
            position=position,
        )
        return FederatedSession(issued, token, provider.arn)

    def _with_keys(self, provider: ProviderFacts, *, fresh: bool = False) -> ProviderFacts:
        """The provider with its JWKS in hand: inline, or fetched from its ``jwks_url``."""
        if provider.jwks_url is None:
            return provider
        if self.jwks_source is None:
            raise TokenRefused("this server fetches no JWKS URL: give the provider's keys inline")
        try:
            keys = self.jwks_source.fetch(provider.jwks_url, fresh=fresh)
        except JwksUnavailable as failed:
            raise TokenRefused(
                f"the provider's JWKS could not be fetched: {failed}",
                code="AuthenticationFail.OIDCToken.HttpsUrlInvalid",
            ) from None
        return replace(provider, jwks=keys)

    @staticmethod
    def _federated_session(
        key_id: str,
        secret_hash: str,
        sealed: str | None,
        role: Role,
        name: str,
        provider_arn: str,
        policy_text: str | None,
        now: datetime,
        expiration: datetime,
    ) -> Session:
        """AssumeRole's ``SessionIssued``, its source the provider: no user, no parent."""
        return Session(
            access_key_id=key_id,
            secret_hash=secret_hash,
            account_id=role.account_id,
            role_id=role.id,
            role_name=role.role_name,
            role_session_name=name,
            source_arn=provider_arn,
            source_account_id=role.account_id,
            source_user_id=None,
            parent_access_key_id=None,
            session_policy=policy_text,
            issued_at=now,
            expiration=expiration,
            secret_sealed=sealed,
        )


def _take(
    claim: NameClaim | None, account_id: str, kind: str, name: str, provider: OIDCProvider
) -> NameClaim:
    """The free claim ``claim`` (as read; None if never taken) taken for ``provider``."""
    if claim is None:
        return NameClaim(account_id=account_id, kind=kind, name=name, entity_id=provider.id)
    claim.claim_again(provider.id)
    return claim


def read_oidc_provider(ledger: LedgerCore, account_id: str, provider_name: str) -> OIDCProvider:
    """The live provider ``provider_name`` names, read from the log by its name claim (404
    ``EntityNotExist.OIDCProvider`` otherwise). A read, not a command: the ledger's public
    methods are its commands only."""
    missing = NotFound(
        f"OIDC provider {provider_name!r} does not exist", code="EntityNotExist.OIDCProvider"
    )
    try:
        claim: object = ledger.repository.get(name_claim_id(account_id, CLAIM_KIND, provider_name))
        entity_id = getattr(claim, "entity_id", None)
        provider: object = ledger.repository.get(entity_id) if entity_id is not None else None
    except AggregateNotFoundError:
        raise missing from None
    if not isinstance(provider, OIDCProvider) or provider.deleted:
        raise missing
    return provider
