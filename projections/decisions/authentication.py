"""Authentication and the subjects decisions are made for.

An AccessKey's secret is checked against its keyed hash (an unknown id costs the same
comparison, no timing oracle); STS credentials against the token's signature, the secret's
hash and then the session's lineage, remembered per token until the lineage epoch moves.
A credential becomes a ``Subject`` (its compiled layers) and is decided with the memo.
``secret_for`` opens a key's or session's sealed secret, for a request signature to be
verified with (the API's ``SecretLookup``).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from uuid import UUID

from mandate.domain.common.arns import PrincipalKind, parse_principal_arn, root_arn, user_arn
from mandate.domain.identity.sealing import SealRefused
from mandate.domain.policy.decisions import Answer, Subject, SubjectKind
from mandate.domain.policy.evaluation import AccessRequest
from mandate.domain.sts.assume_role import AssumingCaller, ParentSession
from mandate.domain.sts.session_lineage import SessionInvalid, SessionRecord
from mandate.domain.sts.session_tokens import InvalidSessionToken
from mandate.projections.decisions.credentials import (
    KEY_REFUSED,
    AuthenticationFailed,
    Credential,
    Refusal,
    SecretNotSealed,
)
from mandate.projections.decisions.read_port import LedgerReadPort

__all__ = ["Authentication"]

_SESSION_CACHE_LIMIT = 100_000
log = logging.getLogger("mandate.secrets")


class Authentication(LedgerReadPort):
    """Credentials verified, turned into subjects, and decided for."""

    def authenticate(self, access_key_id: str, secret: str) -> Credential:
        """The AccessKey's owner, or why not — in words that tell nothing to a guesser.

        An unknown id, a dead key and a wrong secret all cost one keyed-hash comparison and
        answer ``KEY_REFUSED``; why a key is dead or inactive (naming its user) is said only
        to whoever presents its right secret.
        """
        key = self.keys.get(access_key_id)
        if key is None:
            dead = self._dead_keys.get(access_key_id)
            stored = dead[1] if dead is not None else self._dummy_hash
            if self.hasher.verify(secret, stored) and dead is not None:
                raise AuthenticationFailed(dead[0], reason=Refusal.KEY_DEAD)
            raise AuthenticationFailed(KEY_REFUSED, reason=Refusal.KEY_REFUSED)
        if not self.hasher.verify(secret, key.secret_hash):
            raise AuthenticationFailed(KEY_REFUSED, reason=Refusal.KEY_REFUSED)
        return self._key_owner(access_key_id)

    def authenticate_signed(self, access_key_id: str, security_token: str | None) -> Credential:
        """The owner of a key or session whose request signature has just been verified
        with its secret (``secret_for``'s): ``authenticate``'s and ``authenticate_session``'s
        refusals, without hashing the secret again — the HMAC already proved possession.

        Only for that: a caller that has not verified a signature made with the secret
        ``secret_for(access_key_id)`` answers must call ``authenticate``/``authenticate_session``.
        """
        if security_token is not None:
            return self._session_credential(access_key_id, None, security_token)
        if access_key_id not in self.keys:
            dead = self._dead_keys.get(access_key_id)  # deleted since its secret was looked up
            if dead is not None:
                raise AuthenticationFailed(dead[0], reason=Refusal.KEY_DEAD)
            raise AuthenticationFailed(KEY_REFUSED, reason=Refusal.KEY_REFUSED)
        return self._key_owner(access_key_id)

    def _key_owner(self, access_key_id: str) -> Credential:
        """Who a live AccessKey whose secret was proven belongs to, or why it cannot act."""
        key = self.keys[access_key_id]
        if key.status != "Active":
            raise AuthenticationFailed("the AccessKey is Inactive", reason=Refusal.KEY_INACTIVE)
        account = self.accounts.get(key.account_id)
        if account is None or not account.is_open:
            raise AuthenticationFailed(
                f"account {key.account_id} is closed", reason=Refusal.ACCOUNT_CLOSED
            )
        if key.user_id is None:
            return Credential(
                key.account_id, root_arn(key.account_id), SubjectKind.ROOT, access_key_id, None
            )
        user = self.users.get(key.user_id)
        if user is None:
            raise AuthenticationFailed(
                "the AccessKey's user was deleted", reason=Refusal.USER_DELETED
            )
        return Credential(
            key.account_id,
            user_arn(key.account_id, user.user_name),
            SubjectKind.USER,
            access_key_id,
            user.id,
        )

    def secret_for(self, access_key_id: str) -> str | None:
        """The secret of a key or session the index knows, unsealed to verify a signature.

        None when no key or remembered session has the id (a deleted key, a session
        forgotten an hour after it expired). An Inactive key, a revoked or expired session
        still answer: their signature is checked first, then ``authenticate`` refuses them
        with their own reason. ``SecretNotSealed`` for one issued before secrets were sealed,
        or whose sealed secret does not open here. The keyring remembers what it opened
        (``Keyring.open_secret``, keyed by the sealed value): only a key or session found here
        is looked up at all, and the index judges it on every request all the same.
        """
        key = self.keys.get(access_key_id)
        if key is not None:
            sealed, what = key.secret_sealed, "AccessKey"
        else:
            session = self.sessions.get(access_key_id)
            if session is None:
                return None
            sealed, what = session.secret_sealed, "session"
        if sealed is None:
            again = "create a new one" if what == "AccessKey" else "assume the role again"
            created = "created" if what == "AccessKey" else "issued"
            raise SecretNotSealed(f"this {what} was {created} before request signing; {again}")
        if self.keyring is None:
            raise SecretNotSealed("this process holds no keyring to open sealed secrets")
        try:
            return self.keyring.open_secret(sealed, bound_to=access_key_id)
        except SealRefused as refused:
            log.warning("the sealed secret of %s does not open: %s", access_key_id, refused)
            raise SecretNotSealed(
                f"the {what}'s secret cannot be opened with this server's keys"
            ) from None

    # -- subjects and decisions --------------------------------------------------------
    def subject_of(self, credential: Credential) -> Subject:
        if credential.subject is not None:
            return credential.subject
        if credential.kind is SubjectKind.ROOT or credential.user_id is None:
            return Subject(credential.account_id, credential.arn, SubjectKind.ROOT)
        return self.user_subject(credential.user_id)

    def user_subject(self, user_id: UUID) -> Subject:
        user = self.users[user_id]
        return Subject(
            user.account_id,
            user_arn(user.account_id, user.user_name),
            SubjectKind.USER,
            self.policy_set_of_user(user_id),
            named_at=user.named_at,
        )

    def root_subject(self, account_id: str) -> Subject:
        return Subject(account_id, root_arn(account_id), SubjectKind.ROOT)

    def verify_session_credentials(
        self, access_key_id: str, secret: str, security_token: str
    ) -> SessionRecord:
        """The session STS credentials belong to — signature and secret only, not liveness.

        For questions about the past: a session revoked since still proves who it was.
        """
        return self._session_record(access_key_id, secret, security_token)

    def _session_record(
        self, access_key_id: str, secret: str | None, security_token: str
    ) -> SessionRecord:
        """``verify_session_credentials``; ``secret`` None: possession already proven by a
        verified request signature (``authenticate_signed`` only)."""
        if self.token_signer is None:
            raise AuthenticationFailed(
                "this process cannot verify security tokens", reason=Refusal.TOKEN_UNVERIFIABLE
            )
        try:
            token = self.token_signer.verify(security_token)
        except InvalidSessionToken as invalid:
            raise AuthenticationFailed(str(invalid), reason=Refusal.TOKEN_MALFORMED) from None
        if token.access_key_id != access_key_id:
            raise AuthenticationFailed(
                "the security token was issued for another AccessKey",
                reason=Refusal.TOKEN_MISMATCH,
            )
        view = self.sessions.get(access_key_id)
        if view is None:
            raise AuthenticationFailed(
                "the session does not exist or expired long ago", reason=Refusal.SESSION_UNKNOWN
            )
        if secret is not None and not self.hasher.verify(secret, view.secret_hash):
            raise AuthenticationFailed(
                "the AccessKey secret does not match", reason=Refusal.SECRET_MISMATCH
            )
        return view.record

    def authenticate_session(
        self, access_key_id: str, secret: str, security_token: str, now: datetime | None = None
    ) -> Credential:
        """STS credentials: the token's signature, the secret's hash, then the lineage."""
        return self._session_credential(access_key_id, secret, security_token, now)

    def _session_credential(
        self,
        access_key_id: str,
        secret: str | None,
        security_token: str,
        now: datetime | None = None,
    ) -> Credential:
        """``authenticate_session``; ``secret`` None: possession already proven by a verified
        request signature (``authenticate_signed`` only)."""
        at = now or datetime.now(UTC)
        epoch = self._lineage_epoch
        cached = self._verified_sessions.get(security_token)
        if cached is not None and cached[0] == epoch:
            _, credential, secret_hash = cached
            record = credential.session
            if (
                record is not None
                and credential.access_key_id == access_key_id
                and at < credential.valid_until
            ):
                if secret is not None and not self.hasher.verify(secret, secret_hash):
                    raise AuthenticationFailed(
                        "the AccessKey secret does not match", reason=Refusal.SECRET_MISMATCH
                    )
                return credential
        record = self._session_record(access_key_id, secret, security_token)
        try:
            subject, generation, valid_until = self._resolve_live(access_key_id, at)
        except SessionInvalid as dead:
            expired = at >= record.expiration
            why = Refusal.SESSION_EXPIRED if expired else Refusal.SESSION_INVALID
            raise AuthenticationFailed(str(dead), reason=why) from None
        credential = Credential(
            subject.account_id,
            subject.arn,
            SubjectKind.SESSION,
            access_key_id,
            None,
            subject,
            generation,
            record,
            valid_until,
        )
        verified = self._verified_sessions
        if len(verified) >= _SESSION_CACHE_LIMIT:
            self._verified_sessions = verified = {}
        view = self.sessions.get(access_key_id)
        if view is not None:
            verified[security_token] = (epoch, credential, view.secret_hash)
        return credential

    def assuming_caller(self, credential: Credential) -> AssumingCaller:
        """Who calls AssumeRole, as ``domain.sts.assume_role`` needs it: subject and lineage."""
        if credential.kind is SubjectKind.SESSION:
            assert credential.subject is not None
            assert credential.session is not None
            record = credential.session
            role = self.roles.get(record.role_id)
            return AssumingCaller(
                credential.subject,
                record.source_user_id,
                ParentSession(
                    record.access_key_id,
                    record.role_arn,
                    record.expiration,
                    role.named_at if role is not None else None,
                ),
            )
        return AssumingCaller(self.subject_of(credential), credential.user_id)

    def decide_for(self, credential: Credential, request: AccessRequest) -> Answer:
        """Decide for an authenticated credential, with the memo that fits its kind."""
        if credential.kind is SubjectKind.SESSION:
            assert credential.subject is not None
            return self.decide(
                credential.subject,
                request,
                memo_key=credential.access_key_id,
                generation=credential.generation,
            )
        return self.decide(
            lambda: self.subject_of(credential),
            request,
            memo_key=credential.user_id or credential.access_key_id,
        )

    def principal_for_arn(self, arn: str) -> tuple[UUID | str, Subject] | None:
        """The memo key and subject of the live principal an ARN names, or None."""
        parsed = parse_principal_arn(arn)
        account = self.accounts.get(parsed.account_id)
        if account is None or not account.is_open:
            return None
        if parsed.kind == "root":
            return f"root:{parsed.account_id}", self.root_subject(parsed.account_id)
        if parsed.kind is PrincipalKind.USER:
            user = self.user_by_name(parsed.account_id, parsed.name or "")
            return (user.id, self.user_subject(user.id)) if user else None
        return None

    def subject_for_arn(self, arn: str) -> Subject | None:
        """The subject an ARN names now, or None when no live principal has it."""
        found = self.principal_for_arn(arn)
        return found[1] if found else None
