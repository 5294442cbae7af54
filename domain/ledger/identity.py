"""Identity commands: accounts (and their root key), users, access keys, groups, memberships.

Each is one ``@command``: load, let the aggregates' guards refuse or change, save together.
A user's or group's name is held by a ``NameClaim``, saved with the entity it names.
"""

from __future__ import annotations

from eventsourcing.domain import Aggregate

from mandate.domain.common.errors import FieldError, InvalidInput, NotFound
from mandate.domain.common.identifiers import account_aggregate_id, new_account_id
from mandate.domain.common.validation import check_entity_name, check_optional_text
from mandate.domain.identity.accounts import Account
from mandate.domain.identity.principals import (
    AccessKeyStatus,
    Group,
    User,
    display_name_binding,
)
from mandate.domain.ledger.commands import command
from mandate.domain.ledger.core import LedgerCore
from mandate.domain.ledger.ports import PersonalDataSealer
from mandate.domain.ledger.results import Created, IssuedKey, OpenedAccount, Written

__all__ = ["IdentityCommands"]


class IdentityCommands(LedgerCore):
    """Accounts, users, access keys, groups and group memberships."""

    @property
    def personal_sealer(self) -> PersonalDataSealer | None:
        """The ledger's sealer when it seals personal data too (the runtime's keyring): then
        display names are recorded only sealed under the account's personal-data key
        (crypto-shredding); without one (unit tests' ledgers), in clear as before."""
        sealer = self.sealer
        return sealer if isinstance(sealer, PersonalDataSealer) else None

    def _display_name(self, account_id: str, value: str | None) -> tuple[str | None, str | None]:
        """``(clear, sealed)``: what the event records of a display name."""
        if value is None or self.personal_sealer is None:
            return value, None
        bound_to = display_name_binding(account_id)
        return None, self.personal_sealer.seal_personal(account_id, value, bound_to=bound_to)

    # -- accounts ------------------------------------------------------------------------
    @command
    def open_account(self, name: str) -> OpenedAccount:
        # A clash of random account ids is an IntegrityError too: a re-run draws a new id.
        if not isinstance(name, str) or not 1 <= len(name.strip()) <= 128:
            raise InvalidInput(FieldError("name", "must be 1 to 128 characters"))
        account_id = new_account_id()
        key_id, secret, secret_hash, sealed = self._issue_key()
        account = Account(
            account_id=account_id,
            name=name.strip(),
            root_access_key_id=key_id,
            root_secret_hash=secret_hash,
            root_secret_sealed=sealed,
        )
        position = self._commit(account)
        return OpenedAccount(account_id, IssuedKey(key_id, secret, position))

    @command
    def close_account(self, account_id: str) -> Written:
        account = self._open_account(account_id)
        account.close()
        return Written(self._commit(account))

    @command
    def record_personal_data_erasure(
        self, account_id: str, destroyed_key_ids: list[str]
    ) -> Written:
        """``PersonalDataErased`` after ``Keyring.erase_personal`` destroyed some keys: who
        erased is the caller's audit context. An open or a closed account (404 if none)."""
        try:
            account = self._get(account_aggregate_id(account_id), Account)
        except NotFound:
            raise NotFound(
                f"account {account_id} does not exist", code="EntityNotExist.Account"
            ) from None
        account.record_personal_data_erased(destroyed_key_ids)
        return Written(self._commit(account))

    @command
    def rotate_root_access_key(self, account_id: str) -> IssuedKey:
        account = self._open_account(account_id)
        key_id, secret, secret_hash, sealed = self._issue_key()
        account.rotate_root_access_key(key_id, secret_hash, sealed)
        return IssuedKey(key_id, secret, self._commit(account))

    # -- users ---------------------------------------------------------------------------
    @command
    def create_user(self, account_id: str, user_name: str, display_name: str | None) -> Created:
        check_entity_name("user_name", user_name)
        check_optional_text("display_name", display_name, 128)
        self._open_account(account_id)
        clear, sealed = self._display_name(account_id, display_name)
        user = User(
            account_id=account_id,
            user_name=user_name,
            display_name=clear,
            display_name_sealed=sealed,
        )
        return self._create_named(account_id, "user", user_name, user)

    @command
    def update_user(
        self,
        account_id: str,
        user_name: str,
        *,
        new_user_name: str | None,
        new_display_name: str | None,
    ) -> Written:
        if new_user_name is not None:
            check_entity_name("new_user_name", new_user_name)
        check_optional_text("new_display_name", new_display_name, 128)
        self._open_account(account_id)
        claim, user = self._live(account_id, "user", user_name, User)
        changed: list[Aggregate] = [user]
        if new_user_name is not None and new_user_name != user_name:
            claim.release()
            changed += [claim, self._new_claim(account_id, "user", new_user_name, user.id)]
        clear, sealed = self._display_name(account_id, new_display_name)
        user.update(
            new_user_name=new_user_name, new_display_name=clear, new_display_name_sealed=sealed
        )
        return Written(self._commit(*changed))

    @command
    def delete_user(
        self,
        account_id: str,
        user_name: str,
        *,
        detach: bool = False,
        require_detached: bool = False,
    ) -> Written:
        """Delete a user with its AccessKeys (``detach``: its policies and groups too);
        ``require_detached``: RAM's DeleteUser, refused while it has any of the three."""
        self._open_account(account_id)
        claim, user = self._live(account_id, "user", user_name, User)
        user.delete(detach=detach, require_detached=require_detached)
        claim.release()
        return Written(self._commit(user, claim))

    # -- access keys ---------------------------------------------------------------------
    @command
    def create_access_key(self, account_id: str, user_name: str) -> IssuedKey:
        self._open_account(account_id)
        _, user = self._live(account_id, "user", user_name, User)
        key_id, secret, secret_hash, sealed = self._issue_key()
        user.create_access_key(key_id, secret_hash, sealed)
        return IssuedKey(key_id, secret, self._commit(user))

    @command
    def set_access_key_status(
        self, account_id: str, user_name: str, access_key_id: str, status: str
    ) -> Written:
        try:
            wanted = AccessKeyStatus(status)
        except ValueError:
            raise InvalidInput(
                FieldError("status", "must be 'Active' or 'Inactive'"),
                code="InvalidParameter.Status",
            ) from None
        self._open_account(account_id)
        _, user = self._live(account_id, "user", user_name, User)
        user.set_access_key_status(access_key_id, wanted)
        return Written(self._commit(user))

    @command
    def delete_access_key(self, account_id: str, user_name: str, access_key_id: str) -> Written:
        self._open_account(account_id)
        _, user = self._live(account_id, "user", user_name, User)
        user.delete_access_key(access_key_id)
        return Written(self._commit(user))

    # -- groups --------------------------------------------------------------------------
    @command
    def create_group(
        self, account_id: str, group_name: str, comments: str | None = None
    ) -> Created:
        check_entity_name("group_name", group_name)
        check_optional_text("comments", comments, 128)
        self._open_account(account_id)
        group = Group(account_id=account_id, group_name=group_name, comments=comments)
        return self._create_named(account_id, "group", group_name, group)

    @command
    def delete_group(
        self,
        account_id: str,
        group_name: str,
        *,
        detach: bool = False,
        require_detached: bool = False,
    ) -> Written:
        """Delete a group (``detach``: its members leave it and its policies go with it);
        ``require_detached``: RAM's DeleteGroup, refused while it has members, then policies."""
        self._open_account(account_id)
        claim, group = self._live(account_id, "group", group_name, Group)
        members = [
            self._get(user_id, User) for user_id in self.read_port.group_member_ids(group.id)
        ]
        members = [m for m in members if not m.deleted and group.id in m.groups]
        group.delete(member_count=len(members), detach=detach, require_detached=require_detached)
        for member in members:
            member.remove_from_group(group.id)
        claim.release()
        return Written(self._commit(*members, group, claim))

    @command
    def add_user_to_group(self, account_id: str, group_name: str, user_name: str) -> Written:
        self._open_account(account_id)
        _, group = self._live(account_id, "group", group_name, Group)
        _, user = self._live(account_id, "user", user_name, User)
        user.add_to_group(group.id, group.group_name)
        return Written(self._commit(user))

    @command
    def remove_user_from_group(self, account_id: str, group_name: str, user_name: str) -> Written:
        self._open_account(account_id)
        _, group = self._live(account_id, "group", group_name, Group)
        _, user = self._live(account_id, "user", user_name, User)
        user.remove_from_group(group.id)
        return Written(self._commit(user))
