"""The catalogue of Mandate's domain events, pinned: what is stored must never move.

Stored events are named by their ``TOPIC`` and carry their dataclass fields as JSON in field
order; a read model dispatches on the event class. So every event class reachable from the
aggregates is pinned here — its ``__qualname__``, its ``TOPIC`` and its field names in
order — with each aggregate's ``TOPIC``, and one sample of every concrete event is mapped
through the ledger's own mapper and its stored state compared with a digest taken before the
events were declared as explicit classes. Changing any of these is a migration (an upcast or
a new ``.vN`` topic), not an edit of this table.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid5

import pytest
from eventsourcing.domain import Aggregate, CanInitAggregate, CanMutateAggregate
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import resolve_topic

from mandate.domain import events
from mandate.domain.common.audit import AuditContext, acting_as
from mandate.domain.contracts.entrustments import Delegation, Entrustment
from mandate.domain.identity.accounts import Account
from mandate.domain.identity.name_claims import NameClaim
from mandate.domain.identity.principals import Group, User
from mandate.domain.identity.secrets import SecretHasher
from mandate.domain.ledger.application import Ledger
from mandate.domain.permissions.handshakes import Handshake
from mandate.domain.permissions.managed_policies import ManagedPolicy
from mandate.domain.permissions.resource_directory import ResourceDirectory
from mandate.domain.permissions.resource_policies import ResourcePolicy
from mandate.domain.sts.oidc_providers import OIDCProvider
from mandate.domain.sts.roles import Role
from mandate.domain.sts.sessions import Session
from mandate.projections.store.bulk_decoding import BulkDecoder

AGGREGATES: tuple[type[Any], ...] = (
    Account,
    User,
    Group,
    ManagedPolicy,
    Role,
    Session,
    Entrustment,
    Delegation,
    NameClaim,
    OIDCProvider,
    ResourcePolicy,
    ResourceDirectory,
    Handshake,
)

# Generated from the aggregates as they were before the events became explicit classes.
AGGREGATE_TOPICS = {
    "Account": "mandate:Account.v1",
    "User": "mandate:User.v1",
    "Group": "mandate:Group.v1",
    "ManagedPolicy": "mandate:ManagedPolicy.v1",
    "Role": "mandate:Role.v1",
    "Session": "mandate:Session.v1",
    "Entrustment": "mandate:Entrustment.v1",
    "Delegation": "mandate:Delegation.v1",
    "NameClaim": "mandate:NameClaim.v1",
    "OIDCProvider": "mandate:OIDCProvider.v1",
    "ResourcePolicy": "mandate:ResourcePolicy.v1",
    "ResourceDirectory": "mandate:ResourceDirectory.v1",
    "Handshake": "mandate:Handshake.v1",
}
EVENT_CLASSES = [
    (
        "Account.Event",
        "mandate:Account.Event.v1",
        ("originator_id", "originator_version", "timestamp", "audit"),
    ),
    (
        "Account.AccountOpened",
        "mandate:AccountOpened.v1",
        (
            "originator_id",
            "originator_version",
            "timestamp",
            "originator_topic",
            "audit",
            "account_id",
            "name",
            "root_access_key_id",
            "root_secret_hash",
            "root_secret_sealed",
        ),
    ),
    (
        "Account.AccountClosed",
        "mandate:AccountClosed.v1",
        ("originator_id", "originator_version", "timestamp", "audit"),
    ),
    (
        "Account.RootAccessKeyRotated",
        "mandate:RootAccessKeyRotated.v1",
        (
            "originator_id",
            "originator_version",
            "timestamp",
            "audit",
            "access_key_id",
            "secret_hash",
            "previous_access_key_id",
            "secret_sealed",
        ),
    ),
    (
        "Account.PersonalDataErased",
        "mandate:PersonalDataErased.v1",
        (
            "originator_id",
            "originator_version",
            "timestamp",
            "audit",
            "account_id",
            "destroyed_key_ids",
        ),
    ),
    (
        "Account.Created",
        "mandate:Account.Event.v1",
        ("originator_id", "originator_version", "timestamp", "originator_topic", "audit"),
    ),
    (
        "User.Event",
        "mandate:User.Event.v1",
        ("originator_id", "originator_version", "timestamp", "audit"),
    ),
    (
        "User.UserCreated",
        "mandate:UserCreated.v1",
        (
            "originator_id",
            "originator_version",
            "timestamp",
            "originator_topic",
            "audit",
            "account_id",
            "user_name",
            "display_name",
            "display_name_sealed",
        ),
    ),
    (
        "User.UserUpdated",
        "mandate:UserUpdated.v1",
        (
            "originator_id",
            "originator_version",
            "timestamp",
            "audit",
            "user_name",
            "display_name",
            "previous_user_name",
            "display_name_sealed",
        ),
    ),
    (
        "User.UserDeleted",
        "mandate:UserDeleted.v1",
        ("originator_id", "originator_version", "timestamp", "audit"),
    ),
    (
        "User.AccessKeyCreated",
        "mandate:AccessKeyCreated.v1",
        (
            "originator_id",
            "originator_version",
            "timestamp",
            "audit",
            "access_key_id",
            "secret_hash",
            "secret_sealed",
        ),
    ),
    (
        "User.AccessKeyDisabled",
        "mandate:AccessKeyDisabled.v1",
        ("originator_id", "originator_version", "timestamp", "audit", "access_key_id"),
    ),
    (
        "User.AccessKeyEnabled",
        "mandate:AccessKeyEnabled.v1",
        ("originator_id", "originator_version", "timestamp", "audit", "access_key_id"),
    ),
    (
        "User.AccessKeyDeleted",
        "mandate:AccessKeyDeleted.v1",
        ("originator_id", "originator_version", "timestamp", "audit", "access_key_id"),
    ),
    (
        "User.UserAddedToGroup",
        "mandate:UserAddedToGroup.v1",
        ("originator_id", "originator_version", "timestamp", "audit", "group_id", "group_name"),
    ),
    (
        "User.UserRemovedFromGroup",
        "mandate:UserRemovedFromGroup.v1",
        ("originator_id", "originator_version", "timestamp", "audit", "group_id", "group_name"),
    ),
    (
        "User.TagsChanged",
        "mandate:User.TagsChanged.v1",
        ("originator_id", "originator_version", "timestamp", "audit", "tags"),
    ),
    (
        "User.PolicyAttached",
        "mandate:User.PolicyAttached.v1",
        (
            "originator_id",
            "originator_version",
            "timestamp",
            "audit",
            "policy_type",
            "policy_name",
            "policy_id",
        ),
    ),
    (
        "User.PolicyDetached",
        "mandate:User.PolicyDetached.v1",
        (
            "originator_id",
            "originator_version",
            "timestamp",
            "audit",
            "policy_type",
            "policy_name",
            "policy_id",
        ),
    ),
    (
        "User.Created",
        "mandate:User.Event.v1",
        ("originator_id", "originator_version", "timestamp", "originator_topic", "audit"),
    ),
    (
        "Group.Event",
        "mandate:Group.Event.v1",
        ("originator_id", "originator_version", "timestamp", "audit"),
    ),
    (
        "Group.GroupCreated",
        "mandate:GroupCreated.v1",
        (
            "originator_id",
            "originator_version",
            "timestamp",
            "originator_topic",
            "audit",
            "account_id",
            "group_name",
            "comments",
        ),
    ),
    (
        "Group.GroupDeleted",
        "mandate:GroupDeleted.v1",
        ("originator_id", "originator_version", "timestamp", "audit"),
    ),
    (
        "Group.PolicyAttached",
        "mandate:Group.PolicyAttached.v1",
        (
            "originator_id",
            "originator_version",
            "timestamp",
            "audit",
            "policy_type",
            "policy_name",
            "policy_id",
        ),
    ),
    (
        "Group.PolicyDetached",
        "mandate:Group.PolicyDetached.v1",
        (
            "originator_id",
            "originator_version",
            "timestamp",
            "audit",
            "policy_type",
            "policy_name",
            "policy_id",
        ),
    ),
    (
        "Group.Created",
        "mandate:Group.Event.v1",
        ("originator_id", "originator_version", "timestamp", "originator_topic", "audit"),
    ),
    (
        "ManagedPolicy.Event",
        "mandate:ManagedPolicy.Event.v1",
        ("originator_id", "originator_version", "timestamp", "audit"),
    ),
    (
        "ManagedPolicy.PolicyCreated",
        "mandate:PolicyCreated.v1",
        (
            "originator_id",
            "originator_version",
            "timestamp",
            "originator_topic",
            "audit",
            "account_id",
            "policy_name",
            "description",
            "document",
        ),
    ),
    (
        "ManagedPolicy.PolicyVersionCreated",
        "mandate:PolicyVersionCreated.v1",
        (
            "originator_id",
            "originator_version",
            "timestamp",
            "audit",
            "version_id",
            "document",
            "set_as_default",
        ),
    ),
    (
        "ManagedPolicy.DefaultPolicyVersionSet",
        "mandate:DefaultPolicyVersionSet.v1",
        (
            "originator_id",
            "originator_version",
            "timestamp",
            "audit",
            "version_id",
            "previous_version_id",
        ),
    ),
    (
        "ManagedPolicy.PolicyVersionDeleted",
        "mandate:PolicyVersionDeleted.v1",
        ("originator_id", "originator_version", "timestamp", "audit", "version_id"),
    ),
    (
        "ManagedPolicy.PolicyDeleted",
        "mandate:PolicyDeleted.v1",
        ("originator_id", "originator_version", "timestamp", "audit"),
    ),
    (
        "ManagedPolicy.Created",
        "mandate:ManagedPolicy.Event.v1",
        ("originator_id", "originator_version", "timestamp", "originator_topic", "audit"),
    ),
    (
        "Role.Event",
        "mandate:Role.Event.v1",
        ("originator_id", "originator_version", "timestamp", "audit"),
    ),
    (
        "Role.RoleCreated",
        "mandate:RoleCreated.v1",
        (
            "originator_id",
            "originator_version",
            "timestamp",
            "originator_topic",
            "audit",
            "account_id",
            "role_name",
            "description",
            "trust_policy",
            "max_session_duration",
        ),
    ),
    (
        "Role.RoleUpdated",
        "mandate:RoleUpdated.v1",
        (
            "originator_id",
            "originator_version",
            "timestamp",
            "audit",
            "description",
            "max_session_duration",
        ),
    ),
    (
        "Role.RoleTrustPolicyUpdated",
        "mandate:RoleTrustPolicyUpdated.v1",
        ("originator_id", "originator_version", "timestamp", "audit", "trust_policy"),
    ),
    (
        "Role.RoleSessionsRevoked",
        "mandate:RoleSessionsRevoked.v1",
        ("originator_id", "originator_version", "timestamp", "audit", "issued_before"),
    ),
    (
        "Role.TagsChanged",
        "mandate:Role.TagsChanged.v1",
        ("originator_id", "originator_version", "timestamp", "audit", "tags"),
    ),
    (
        "Role.RoleDeleted",
        "mandate:RoleDeleted.v1",
        ("originator_id", "originator_version", "timestamp", "audit"),
    ),
    (
        "Role.PolicyAttached",
        "mandate:Role.PolicyAttached.v1",
        (
            "originator_id",
            "originator_version",
            "timestamp",
            "audit",
            "policy_type",
            "policy_name",
            "policy_id",
        ),
    ),
    (
        "Role.PolicyDetached",
        "mandate:Role.PolicyDetached.v1",
        (
            "originator_id",
            "originator_version",
            "timestamp",
            "audit",
            "policy_type",
            "policy_name",
            "policy_id",
        ),
    ),
    (
        "Role.Created",
        "mandate:Role.Event.v1",
        ("originator_id", "originator_version", "timestamp", "originator_topic", "audit"),
    ),
    (
        "Session.Event",
        "mandate:Session.Event.v1",
        ("originator_id", "originator_version", "timestamp", "audit"),
    ),
    (
        "Session.SessionIssued",
        "mandate:SessionIssued.v1",
        (
            "originator_id",
            "originator_version",
            "timestamp",
            "originator_topic",
            "audit",
            "access_key_id",
            "secret_hash",
            "account_id",
            "role_id",
            "role_name",
            "role_session_name",
            "source_arn",
            "source_account_id",
            "source_user_id",
            "parent_access_key_id",
            "session_policy",
            "issued_at",
            "expiration",
            "secret_sealed",
        ),
    ),
    (
        "Session.SessionRevoked",
        "mandate:SessionRevoked.v1",
        ("originator_id", "originator_version", "timestamp", "audit"),
    ),
    (
        "Session.Created",
        "mandate:Session.Event.v1",
        ("originator_id", "originator_version", "timestamp", "originator_topic", "audit"),
    ),
    (
        "Entrustment.Event",
        "mandate:Entrustment.Event.v1",
        ("originator_id", "originator_version", "timestamp", "audit"),
    ),
    (
        "Entrustment.EntrustmentGranted",
        "mandate:EntrustmentGranted.v1",
        (
            "originator_id",
            "originator_version",
            "timestamp",
            "originator_topic",
            "audit",
            "account_id",
            "trustee_account_id",
            "role_name",
            "scope",
            "scope_policies",
            "contract_ref",
            "starts_at",
            "ends_at",
            "description",
        ),
    ),
    (
        "Entrustment.EntrustmentAmended",
        "mandate:EntrustmentAmended.v1",
        ("originator_id", "originator_version", "timestamp", "audit", "scope", "scope_policies"),
    ),
    (
        "Entrustment.EntrustmentRevoked",
        "mandate:EntrustmentRevoked.v1",
        ("originator_id", "originator_version", "timestamp", "audit"),
    ),
    (
        "Entrustment.EntrustmentEnded",
        "mandate:EntrustmentEnded.v1",
        ("originator_id", "originator_version", "timestamp", "audit"),
    ),
    (
        "Entrustment.Created",
        "mandate:Entrustment.Event.v1",
        ("originator_id", "originator_version", "timestamp", "originator_topic", "audit"),
    ),
    (
        "Delegation.Event",
        "mandate:Delegation.Event.v1",
        ("originator_id", "originator_version", "timestamp", "audit"),
    ),
    (
        "Delegation.DelegationGranted",
        "mandate:DelegationGranted.v1",
        (
            "originator_id",
            "originator_version",
            "timestamp",
            "originator_topic",
            "audit",
            "delegation_id",
            "account_id",
            "entrustment_id",
            "entrustment_account_id",
            "grantee_arn",
            "grantee_kind",
            "grantee_id",
            "scope",
            "ends_at",
        ),
    ),
    (
        "Delegation.DelegationRevoked",
        "mandate:DelegationRevoked.v1",
        ("originator_id", "originator_version", "timestamp", "audit"),
    ),
    (
        "Delegation.Created",
        "mandate:Delegation.Event.v1",
        ("originator_id", "originator_version", "timestamp", "originator_topic", "audit"),
    ),
    (
        "NameClaim.Event",
        "mandate:NameClaim.Event.v1",
        ("originator_id", "originator_version", "timestamp", "audit"),
    ),
    (
        "NameClaim.NameClaimed",
        "mandate:NameClaimed.v1",
        (
            "originator_id",
            "originator_version",
            "timestamp",
            "originator_topic",
            "audit",
            "account_id",
            "kind",
            "name",
            "entity_id",
        ),
    ),
    (
        "NameClaim.NameReclaimed",
        "mandate:NameReclaimed.v1",
        ("originator_id", "originator_version", "timestamp", "audit", "entity_id"),
    ),
    (
        "NameClaim.NameReleased",
        "mandate:NameReleased.v1",
        ("originator_id", "originator_version", "timestamp", "audit", "entity_id"),
    ),
    (
        "NameClaim.Created",
        "mandate:NameClaim.Event.v1",
        ("originator_id", "originator_version", "timestamp", "originator_topic", "audit"),
    ),
    # OIDC identity providers (AssumeRoleWithOIDC), declared after the digests below were
    # first taken: their own digests are pinned from their first version
    (
        "OIDCProvider.Event",
        "mandate:OIDCProvider.Event.v1",
        ("originator_id", "originator_version", "timestamp", "audit"),
    ),
    (
        "OIDCProvider.OIDCProviderCreated",
        "mandate:OIDCProviderCreated.v1",
        (
            "originator_id",
            "originator_version",
            "timestamp",
            "originator_topic",
            "audit",
            "account_id",
            "provider_name",
            "issuer_url",
            "client_ids",
            "fingerprints",
            "issuance_limit_time",
            "description",
            "jwks",
            "jwks_url",
            "slot",
        ),
    ),
    (
        "OIDCProvider.OIDCProviderUpdated",
        "mandate:OIDCProviderUpdated.v1",
        (
            "originator_id",
            "originator_version",
            "timestamp",
            "audit",
            "account_id",
            "provider_name",
            "client_ids",
            "fingerprints",
            "issuance_limit_time",
            "description",
            "jwks",
            "jwks_url",
        ),
    ),
    (
        "OIDCProvider.OIDCProviderDeleted",
        "mandate:OIDCProviderDeleted.v1",
        (
            "originator_id",
            "originator_version",
            "timestamp",
            "audit",
            "account_id",
            "provider_name",
        ),
    ),
    (
        "OIDCProvider.Created",
        "mandate:OIDCProvider.Event.v1",
        ("originator_id", "originator_version", "timestamp", "originator_topic", "audit"),
    ),
    # resource-based policies (issue 16 item 2), pinned from their first version
    (
        "ResourcePolicy.Event",
        "mandate:ResourcePolicy.Event.v1",
        ("originator_id", "originator_version", "timestamp", "audit"),
    ),
    (
        "ResourcePolicy.ResourcePolicyCreated",
        "mandate:ResourcePolicyCreated.v1",
        (
            "originator_id",
            "originator_version",
            "timestamp",
            "originator_topic",
            "audit",
            "account_id",
            "resource_arn",
            "document",
            "version",
        ),
    ),
    (
        "ResourcePolicy.ResourcePolicySet",
        "mandate:ResourcePolicySet.v1",
        (
            "originator_id",
            "originator_version",
            "timestamp",
            "audit",
            "account_id",
            "resource_arn",
            "document",
            "version",
        ),
    ),
    (
        "ResourcePolicy.ResourcePolicyDeleted",
        "mandate:ResourcePolicyDeleted.v1",
        (
            "originator_id",
            "originator_version",
            "timestamp",
            "audit",
            "account_id",
            "resource_arn",
            "version",
        ),
    ),
    (
        "ResourcePolicy.Created",
        "mandate:ResourcePolicy.Event.v1",
        ("originator_id", "originator_version", "timestamp", "originator_topic", "audit"),
    ),
    # Resource Directory and control policies (issue 16 item 3), pinned from their first version
    (
        "ResourceDirectory.Event",
        "mandate:ResourceDirectory.Event.v1",
        ("originator_id", "originator_version", "timestamp", "audit"),
    ),
    (
        "ResourceDirectory.DirectoryEnabled",
        "mandate:ResourceDirectoryEnabled.v1",
        (
            "originator_id",
            "originator_version",
            "timestamp",
            "originator_topic",
            "audit",
            "management_account",
            "root_folder_id",
        ),
    ),
    (
        "ResourceDirectory.FolderCreated",
        "mandate:ResourceDirectoryFolderCreated.v1",
        (
            "originator_id",
            "originator_version",
            "timestamp",
            "audit",
            "management_account",
            "folder_id",
            "parent_id",
            "name",
        ),
    ),
    (
        "ResourceDirectory.AccountMoved",
        "mandate:ResourceDirectoryAccountMoved.v1",
        (
            "originator_id",
            "originator_version",
            "timestamp",
            "audit",
            "management_account",
            "account_id",
            "folder_id",
        ),
    ),
    (
        "ResourceDirectory.ControlPolicyCreated",
        "mandate:ControlPolicyCreated.v1",
        (
            "originator_id",
            "originator_version",
            "timestamp",
            "audit",
            "management_account",
            "policy_name",
            "document",
            "description",
        ),
    ),
    (
        "ResourceDirectory.ControlPolicyAttached",
        "mandate:ControlPolicyAttached.v1",
        (
            "originator_id",
            "originator_version",
            "timestamp",
            "audit",
            "management_account",
            "policy_name",
            "target",
        ),
    ),
    (
        "ResourceDirectory.ControlPolicyDetached",
        "mandate:ControlPolicyDetached.v1",
        (
            "originator_id",
            "originator_version",
            "timestamp",
            "audit",
            "management_account",
            "policy_name",
            "target",
        ),
    ),
    # a folder renamed or deleted, a control policy updated or deleted
    (
        "ResourceDirectory.FolderRenamed",
        "mandate:ResourceDirectoryFolderRenamed.v1",
        (
            "originator_id",
            "originator_version",
            "timestamp",
            "audit",
            "management_account",
            "folder_id",
            "name",
        ),
    ),
    (
        "ResourceDirectory.FolderDeleted",
        "mandate:ResourceDirectoryFolderDeleted.v1",
        (
            "originator_id",
            "originator_version",
            "timestamp",
            "audit",
            "management_account",
            "folder_id",
        ),
    ),
    (
        "ResourceDirectory.ControlPolicyUpdated",
        "mandate:ControlPolicyUpdated.v1",
        (
            "originator_id",
            "originator_version",
            "timestamp",
            "audit",
            "management_account",
            "policy_name",
            "new_policy_name",
            "document",
            "description",
        ),
    ),
    (
        "ResourceDirectory.ControlPolicyDeleted",
        "mandate:ControlPolicyDeleted.v1",
        (
            "originator_id",
            "originator_version",
            "timestamp",
            "audit",
            "management_account",
            "policy_name",
        ),
    ),
    # the Control Policy feature switched off (every policy detached) and on again
    (
        "ResourceDirectory.ControlPolicyFeatureDisabled",
        "mandate:ControlPolicyFeatureDisabled.v1",
        ("originator_id", "originator_version", "timestamp", "audit", "management_account"),
    ),
    (
        "ResourceDirectory.ControlPolicyFeatureEnabled",
        "mandate:ControlPolicyFeatureEnabled.v1",
        ("originator_id", "originator_version", "timestamp", "audit", "management_account"),
    ),
    # RemoveCloudAccount: a member leaves
    (
        "ResourceDirectory.AccountRemoved",
        "mandate:ResourceDirectoryAccountRemoved.v1",
        (
            "originator_id",
            "originator_version",
            "timestamp",
            "audit",
            "management_account",
            "account_id",
        ),
    ),
    (
        "ResourceDirectory.Created",
        "mandate:ResourceDirectory.Event.v1",
        ("originator_id", "originator_version", "timestamp", "originator_topic", "audit"),
    ),
    # an invitation to a resource directory, and how it ends (accepted: the member joins)
    (
        "Handshake.Invited",
        "mandate:HandshakeInvited.v1",
        (
            "originator_id",
            "originator_version",
            "timestamp",
            "originator_topic",
            "audit",
            "handshake",
            "management_account",
            "target_account",
            "note",
        ),
    ),
    (
        "Handshake.Accepted",
        "mandate:HandshakeAccepted.v1",
        (
            "originator_id",
            "originator_version",
            "timestamp",
            "audit",
            "handshake",
            "management_account",
            "target_account",
        ),
    ),
    (
        "Handshake.Declined",
        "mandate:HandshakeDeclined.v1",
        (
            "originator_id",
            "originator_version",
            "timestamp",
            "audit",
            "handshake",
            "management_account",
            "target_account",
        ),
    ),
    (
        "Handshake.Cancelled",
        "mandate:HandshakeCancelled.v1",
        (
            "originator_id",
            "originator_version",
            "timestamp",
            "audit",
            "handshake",
            "management_account",
            "target_account",
        ),
    ),
    (
        "Handshake.Event",
        "mandate:Handshake.Event.v1",
        ("originator_id", "originator_version", "timestamp", "audit"),
    ),
    (
        "Handshake.Created",
        "mandate:Handshake.Event.v1",
        ("originator_id", "originator_version", "timestamp", "originator_topic", "audit"),
    ),
]

# The first 128 bits of the sha256 of the stored state of ``sample(cls)``, taken before the
# events became explicit classes. Changed deliberately since, each by one field appended
# (the issued secret sealed, optional: ``SEALED_SINCE`` pins the state before it):
# AccountOpened, RootAccessKeyRotated, AccessKeyCreated, SessionIssued, ControlPolicyCreated,
# OIDCProviderCreated (its slot).
STORED_STATE_SHA256: dict[str, str] = {
    "mandate:AccountOpened.v1": "64c9b48af29fdf756e978f419970b5bc",
    "mandate:AccountClosed.v1": "5a89751197dfe2f9ca925d99c83f5385",
    "mandate:RootAccessKeyRotated.v1": "907e996d9eb98e687b30b6bbea9a531e",
    "mandate:PersonalDataErased.v1": "ccf322e4f9a4cd746fa4ab2ff68f863f",
    "mandate:UserCreated.v1": "3c067307bce7ce9a73b04b1192e7bfb9",
    "mandate:UserUpdated.v1": "c41032b3bc2c0e2c1ad8e5479acd146f",
    "mandate:UserDeleted.v1": "5a89751197dfe2f9ca925d99c83f5385",
    "mandate:AccessKeyCreated.v1": "73aa67e3d2dde222d55315773736cc7b",
    "mandate:AccessKeyDisabled.v1": "d9688507a6982fe87fd7b76d62f50c91",
    "mandate:AccessKeyEnabled.v1": "d9688507a6982fe87fd7b76d62f50c91",
    "mandate:AccessKeyDeleted.v1": "d9688507a6982fe87fd7b76d62f50c91",
    "mandate:UserAddedToGroup.v1": "94c6b21de5688cdb8695b7bb3bb376e0",
    "mandate:UserRemovedFromGroup.v1": "94c6b21de5688cdb8695b7bb3bb376e0",
    "mandate:User.PolicyAttached.v1": "673bef2ce844d5736f1821c97a101170",
    "mandate:User.PolicyDetached.v1": "673bef2ce844d5736f1821c97a101170",
    "mandate:GroupCreated.v1": "483f02ea863d0c46105a456376e38538",
    "mandate:GroupDeleted.v1": "5a89751197dfe2f9ca925d99c83f5385",
    "mandate:Group.PolicyAttached.v1": "673bef2ce844d5736f1821c97a101170",
    "mandate:Group.PolicyDetached.v1": "673bef2ce844d5736f1821c97a101170",
    "mandate:PolicyCreated.v1": "070a0bc4bc879c87e203edabeed46600",
    "mandate:PolicyVersionCreated.v1": "ffddf5d1b8ab935c2dc53380323077ab",
    "mandate:DefaultPolicyVersionSet.v1": "3ea2c64bef9cd0b62a7c90d05d022c9e",
    "mandate:PolicyVersionDeleted.v1": "5b22dc359ca83eb172d1d1febd624b63",
    "mandate:PolicyDeleted.v1": "5a89751197dfe2f9ca925d99c83f5385",
    "mandate:RoleCreated.v1": "58e3cfa5c924c58de1e924a4d40cc31e",
    "mandate:RoleUpdated.v1": "d5c5e4aceae0cf4f5cf441eb5add03b1",
    "mandate:RoleTrustPolicyUpdated.v1": "05114b3593cb6d192b5120013677eb10",
    "mandate:RoleSessionsRevoked.v1": "cad7b7cf52464cf99eec9b981c7cb25c",
    "mandate:RoleDeleted.v1": "5a89751197dfe2f9ca925d99c83f5385",
    "mandate:User.TagsChanged.v1": "10c1d3cef16688f542d3a8bee5935baf",
    "mandate:Role.TagsChanged.v1": "10c1d3cef16688f542d3a8bee5935baf",
    "mandate:Role.PolicyAttached.v1": "673bef2ce844d5736f1821c97a101170",
    "mandate:Role.PolicyDetached.v1": "673bef2ce844d5736f1821c97a101170",
    "mandate:SessionIssued.v1": "336c1dbe4373864b98f5faedae56dd87",
    "mandate:SessionRevoked.v1": "5a89751197dfe2f9ca925d99c83f5385",
    "mandate:EntrustmentGranted.v1": "14f496cc25f863ff0dfad5dfe9d8a6d1",
    "mandate:EntrustmentAmended.v1": "ca201e99f69315d295411244c5372c4f",
    "mandate:EntrustmentRevoked.v1": "5a89751197dfe2f9ca925d99c83f5385",
    "mandate:EntrustmentEnded.v1": "5a89751197dfe2f9ca925d99c83f5385",
    "mandate:DelegationGranted.v1": "0c8b289b5691babf6d82f8b6e1ed6694",
    "mandate:DelegationRevoked.v1": "5a89751197dfe2f9ca925d99c83f5385",
    "mandate:NameClaimed.v1": "0d46ca54af844ca8fe4461f9e7df19c1",
    "mandate:NameReclaimed.v1": "63343ac8ae1e3d88605ddd5660f9dc80",
    "mandate:NameReleased.v1": "63343ac8ae1e3d88605ddd5660f9dc80",
    "mandate:OIDCProviderCreated.v1": "72682fa63c163ffbe5e9f53b475e834a",
    "mandate:OIDCProviderUpdated.v1": "cd2fcf95496f28269b00b01cc221f86a",
    "mandate:OIDCProviderDeleted.v1": "0b8ab713dfb560a6eeefa4623bb2f48c",
    "mandate:ResourcePolicyCreated.v1": "476fc88a9ca0f67f9ee513dc479aaa0e",
    "mandate:ResourcePolicySet.v1": "1426c7faa46a64f6ec7816962199390e",
    "mandate:ResourcePolicyDeleted.v1": "9c418ca16d5ef1bdfce6e4955f4c078e",
    "mandate:ResourceDirectoryEnabled.v1": "0d6d9bd7b24c843df88c901f2f6d0afc",
    "mandate:ResourceDirectoryFolderCreated.v1": "d5b24ae4854182d2afbc6bf7e5b902cf",
    "mandate:ResourceDirectoryAccountMoved.v1": "ce66c39ff0b89fd57a2874439dcf0652",
    "mandate:ControlPolicyCreated.v1": "1a3bcaf3da73dd76acdbde4df63240a1",
    "mandate:ControlPolicyAttached.v1": "b4759c37caf84f1dfcea836d34cbce5d",
    "mandate:ControlPolicyDetached.v1": "b4759c37caf84f1dfcea836d34cbce5d",
    "mandate:ResourceDirectoryFolderRenamed.v1": "9a54db88520f59f938a46cee4554f66d",
    "mandate:ResourceDirectoryFolderDeleted.v1": "d1d2287a9a913a3b94b33b48a2643632",
    "mandate:ControlPolicyUpdated.v1": "7eb9aac2eaaed323471b63e1b1e3f0b9",
    "mandate:ControlPolicyDeleted.v1": "cd914f52f6215f267f010b267790481e",
    "mandate:ControlPolicyFeatureDisabled.v1": "8cf4878c30dfa6d11cff7411246b23b8",
    "mandate:ControlPolicyFeatureEnabled.v1": "8cf4878c30dfa6d11cff7411246b23b8",
    "mandate:ResourceDirectoryAccountRemoved.v1": "4322e8d5c989b3515eb4c928d84fdd6a",
    "mandate:HandshakeInvited.v1": "632dd01ef996ed438433091baba58ee0",
    "mandate:HandshakeAccepted.v1": "e8cc113ba56ade31e4dc81674e34cb6f",
    "mandate:HandshakeDeclined.v1": "e8cc113ba56ade31e4dc81674e34cb6f",
    "mandate:HandshakeCancelled.v1": "e8cc113ba56ade31e4dc81674e34cb6f",
}

SEALED_SINCE: dict[str, tuple[tuple[str, str], ...]] = {
    "mandate:AccountOpened.v1": (("root_secret_sealed", "f59b4f0def157292cb71aad2f41d87b1"),),
    "mandate:RootAccessKeyRotated.v1": (("secret_sealed", "55acd0b85f3b1b842bb215c4489be200"),),
    "mandate:AccessKeyCreated.v1": (("secret_sealed", "138ce3020f28cc3723fa0ad0bd3630fb"),),
    "mandate:SessionIssued.v1": (("secret_sealed", "c4be786afe508accf640c62eeeba9cf7"),),
    # display names sealed under the account's personal-data key (crypto-shredding)
    "mandate:UserCreated.v1": (("display_name_sealed", "0cc55ccd5de607cf371ccadd4eb4b904"),),
    "mandate:UserUpdated.v1": (("display_name_sealed", "977091140e998295482040e3c496b27b"),),
    # an OIDC provider's keys by URL (fetched at each exchange) besides inline
    # … and, later, the quota slot claim it holds (so its deletion releases it directly)
    "mandate:OIDCProviderCreated.v1": (
        ("jwks_url", "22fde039f613f7238edb0fcf6ab405e9"),
        ("slot", "6388c01554a4ecf8e464769c07a71f72"),
    ),
    "mandate:OIDCProviderUpdated.v1": (("jwks_url", "b370cebe9b6faed952fdeb0f792ccac2"),),
    # a control policy's description (UpdateControlPolicy's NewDescription, given on create)
    "mandate:ControlPolicyCreated.v1": (("description", "cc4ba6ca7bc6b1c67e23fbb2ad5c4dee"),),
}
"""The fields each of these events gained (appended, in that order), each with the digest of
its state before it."""


def event_classes(aggregate: type[Aggregate]) -> Iterator[type[Any]]:
    for value in vars(aggregate).values():
        if isinstance(value, type) and issubclass(value, CanMutateAggregate):
            yield value


def named_event_classes() -> Iterator[type[Any]]:
    """The concrete events (what is stored), not the ``Event``/``Created`` bases."""
    for aggregate in AGGREGATES:
        for cls in event_classes(aggregate):
            if cls.__name__ not in ("Event", "Created"):
                yield cls


def test_every_aggregate_keeps_its_topic() -> None:
    assert {a.__qualname__: vars(a)["TOPIC"] for a in AGGREGATES} == AGGREGATE_TOPICS
    for aggregate in AGGREGATES:
        assert resolve_topic(aggregate.TOPIC) is aggregate


def test_every_event_class_keeps_its_name_topic_and_fields_in_order() -> None:
    found = [
        (cls.__qualname__, cls.TOPIC, tuple(f.name for f in dataclasses.fields(cls)))
        for aggregate in AGGREGATES
        for cls in event_classes(aggregate)
    ]
    assert sorted(found) == sorted(EVENT_CLASSES)
    assert len(found) == len(EVENT_CLASSES)


@pytest.mark.parametrize("cls", list(named_event_classes()), ids=lambda c: c.__qualname__)
def test_each_concrete_event_resolves_from_its_topic(cls: type[Any]) -> None:
    assert resolve_topic(cls.TOPIC) is cls


# --- the stored state ------------------------------------------------------------------------

_NS = UUID("6d0f7c52-2f1e-4c0e-9a57-3f5b8c1d2e40")
_AT = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
_AUDIT = AuditContext(
    actor="acs:ram::1837465920374651:root",
    credential="LTAIsample",
    request_id="req-1",
    source_ip="192.0.2.7",
    reason="pinned",
)


def _aggregate_of(cls: type[Any]) -> type[Any]:
    return next(a for a in AGGREGATES if a.__qualname__ == cls.__qualname__.split(".")[0])


def _value(cls: type[Any], field: dataclasses.Field[Any]) -> Any:
    """A deterministic value for ``field``, chosen by its declared type."""
    if field.name == "originator_version":
        return 1
    if field.name == "originator_topic":
        return _aggregate_of(cls).TOPIC
    kind = str(field.type).removesuffix(" | None")
    samples: dict[str, Any] = {
        "UUID": uuid5(_NS, field.name),
        "str": f"{field.name}-sample",
        "list[str]": [f"{field.name}-a", f"{field.name}-b"],
        "dict[str, str]": {f"{field.name}-k": f"{field.name}-v", "Team": ""},
        "datetime": _AT,
        "int": 3_600,
        "bool": True,
    }
    return samples[kind]


def sample(cls: type[Any]) -> Any:
    """One instance of the event class with every field set, audit included."""
    kwargs = {f.name: _value(cls, f) for f in dataclasses.fields(cls) if f.init}
    with acting_as(_AUDIT):
        return cls(**kwargs)


_LEDGER = Ledger(
    {"PERSISTENCE_MODULE": "eventsourcing.popo"}, hasher=SecretHasher("k", {"k": b"k" * 32})
)


def stored(event: Any) -> tuple[str, bytes]:
    record = _LEDGER.mapper.to_stored_event(event)
    assert isinstance(record, StoredEvent)
    return record.topic, record.state


def digest(state: bytes) -> str:
    return hashlib.sha256(state).hexdigest()[:32]


@pytest.mark.parametrize("cls", list(named_event_classes()), ids=lambda c: c.__qualname__)
def test_each_event_is_stored_exactly_as_before_and_reads_back(cls: type[Any]) -> None:
    event = sample(cls)
    assert event.audit == _AUDIT.as_dict()
    topic, state = stored(event)
    assert topic == cls.TOPIC
    assert digest(state) == STORED_STATE_SHA256[topic], state.decode()
    back: Any = _LEDGER.mapper.to_domain_event(StoredEvent(event.originator_id, 1, topic, state))
    assert type(back) is cls
    assert back == event
    if issubclass(cls, CanInitAggregate):
        assert resolve_topic(back.originator_topic) is _aggregate_of(cls)


@pytest.mark.parametrize("topic", sorted(SEALED_SINCE))
def test_an_event_stored_before_secrets_were_sealed_still_reads_with_none(topic: str) -> None:
    """The state without an appended field is the state pinned before it (fields are only
    appended), and reads back — through the mapper and the bulk decoder — with None there."""
    cls = events.EVENT_CLASSES[topic]
    event = sample(cls)
    state = json.loads(stored(event)[1])
    missing: dict[str, None] = {}
    for name, before in reversed(SEALED_SINCE[topic]):
        assert list(state)[-1] == name
        del state[name]
        missing[name] = None
        old = json.dumps(state, separators=(",", ":")).encode()
        assert digest(old) == before, old.decode()
        back: Any = _LEDGER.mapper.to_domain_event(StoredEvent(event.originator_id, 1, topic, old))
        assert all(getattr(back, field) is None for field in missing)
        with acting_as(_AUDIT):
            assert back == dataclasses.replace(event, **missing)
        decoder = BulkDecoder.for_mapper(_LEDGER.mapper)
        assert decoder is not None
        bulk: Any = decoder.decode(event.originator_id, 1, topic, old)
        assert bulk == back


def test_an_old_account_replays_without_a_sealed_root_secret() -> None:
    with acting_as(_AUDIT):
        account = Account(
            account_id="1837465920374651",
            name="Acme",
            root_access_key_id="LTAIold",
            root_secret_hash="k1$00",
        )
    (opened,) = account.collect_events()
    state = json.loads(stored(opened)[1])
    del state["root_secret_sealed"]
    old = json.dumps(state, separators=(",", ":")).encode()
    back: Any = _LEDGER.mapper.to_domain_event(
        StoredEvent(opened.originator_id, 1, opened.TOPIC, old)
    )
    replayed = back.mutate(None)
    assert replayed.root_secret_sealed is None
    assert replayed.root_access_key_id == "LTAIold"


def test_an_old_user_replays_with_its_clear_display_name() -> None:
    """A user created and renamed before display names were sealed keeps its clear one."""
    with acting_as(_AUDIT):
        user = User(account_id="1837465920374651", user_name="alice", display_name="Alice")
        user.update(new_user_name="alice2", new_display_name=None)
    created, updated = user.collect_events()
    replayed: Any = None
    for version, event in enumerate((created, updated), start=1):
        state = json.loads(stored(event)[1])
        assert state.pop("display_name_sealed") is None
        old = json.dumps(state, separators=(",", ":")).encode()
        back: Any = _LEDGER.mapper.to_domain_event(
            StoredEvent(event.originator_id, version, event.TOPIC, old)
        )
        assert back.display_name_sealed is None
        replayed = back.mutate(replayed)
    assert (replayed.user_name, replayed.display_name) == ("alice2", "Alice")
    assert replayed.display_name_sealed is None


def test_the_stored_table_covers_every_concrete_event() -> None:
    assert sorted(STORED_STATE_SHA256) == sorted(c.TOPIC for c in named_event_classes())


# --- the catalogue read models check their handlers against ----------------------------------


def test_the_catalogue_lists_every_concrete_event_by_its_topic() -> None:
    assert set(events.AGGREGATES) == set(AGGREGATES)
    assert sorted(events.EVENT_CLASSES) == sorted(STORED_STATE_SHA256)
    for topic, cls in events.EVENT_CLASSES.items():
        assert resolve_topic(topic) is cls
        assert getattr(_aggregate_of(cls), cls.__name__) is cls


def test_a_triggered_event_is_its_catalogue_class() -> None:
    """Dispatch on ``type(event)`` finds the class listed, for triggered and stored events."""
    with acting_as(_AUDIT):
        user = User(account_id="1837465920374651", user_name="alice", display_name=None)
        user.create_access_key("LTAIkey", "k1$00")
    created, key = user.collect_events()
    created_class: type[Any] = type(created)
    assert created_class is events.EVENT_CLASSES["mandate:UserCreated.v1"] is User.UserCreated
    key_class: type[Any] = type(key)
    assert key_class is events.EVENT_CLASSES["mandate:AccessKeyCreated.v1"]
    topic, state = stored(key)
    back = _LEDGER.mapper.to_domain_event(StoredEvent(key.originator_id, 2, topic, state))
    assert type(back) is User.AccessKeyCreated
