"""Resource Directory over RPC: ResourceManager 2020-03-31, the /v1 directory router's commands.

Same ledger commands (``enable_resource_directory``, ``create_folder``, ``move_account``),
the same read (the decision index's ``DirectoryView``) and the same authorisation:
``resourcemanager:<Action>`` on the node's ARN in the caller's account (a folder
``…:folder/fd-…``, a member ``…:account/<id>``; reads and the directory itself on
``acs:resourcemanager::<account>:*``), so only the management account's root, or a RAM user
of it granted the action, manages its directory. The caller's account is the management
account, as on Alibaba Cloud.

Refusals carry Resource Management's codes (``EntityNotExists.ResourceDirectory``,
``EntityNotExists.Folder``, ``EntityNotExists.Account``…: ``RM_CODES``, the engine's
refusal recoded at the same moment, nothing written). What Mandate does not model is refused,
not faked: a new management account (``EnableMode=NewManagementAccount``). UpdateFolder and
DeleteFolder run the ledger's ``rename_folder`` and ``delete_folder`` (409
``DeleteConflict.Folder.SubFolder``/``.Account`` while the folder is not empty). An account
joins only by accepting an invitation (``rm_handshakes``); MoveAccount moves members, and any
other account is 404 ``EntityNotExists.Account`` alike (no existence oracle).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar

from pydantic import Field

from mandate.api.rpc.errors import RpcError, unsupported_parameter
from mandate.api.rpc.params import NoParams, RpcInt, RpcParams
from mandate.api.rpc.recoding import recoded
from mandate.api.rpc.registry import RESOURCE_MANAGER, RpcContext, rpc_action
from mandate.domain.common.errors import Conflict
from mandate.domain.permissions.resource_directory import directory_arn, directory_id
from mandate.projections.decisions.directory_events import DirectoryView

__all__ = [
    "RM_CODES",
    "PageParams",
    "directory_of",
    "resource_directory_id",
    "unsupported",
]

T = TypeVar("T")

RM_CODES: Final[dict[str, str]] = {
    "EntityNotExist.ResourceDirectory": "EntityNotExists.ResourceDirectory",
    "EntityNotExist.Folder": "EntityNotExists.Folder",
    "EntityNotExist.Account": "EntityNotExists.Account",
    "EntityNotExist.Policy": "EntityNotExists.ControlPolicy",
    "EntityNotExist.Target": "EntityNotExists.Target",
    "EntityNotExist.Attachment": "EntityNotExists.ControlPolicyAttachment",
}
"""The engine's codes → Resource Management's (its 404s say ``EntityNotExists``)."""

_NOT_ENABLED = (
    "The resource directory for the account is not enabled. We recommend that you first "
    "enable the resource directory for the account."
)


def unsupported(action: str, why: str) -> RpcError:
    """``OperationNotSupported``: an action Resource Management has and Mandate does not."""
    return RpcError(400, "OperationNotSupported", f"{action} is not supported: {why}.")


def directory_of(ctx: RpcContext) -> DirectoryView:
    """The caller's account's directory (404 ``EntityNotExists.ResourceDirectory``)."""
    directory = ctx.runtime.index.resource_directory(ctx.account_id)
    if directory is None:
        raise RpcError(404, "EntityNotExists.ResourceDirectory", _NOT_ENABLED)
    return directory


def resource_directory_id(account_id: str) -> str:
    """``rd-…``: Resource Directory's id, derived from the management account (one each)."""
    return f"rd-{directory_id(account_id).hex[:10]}"


def _root(directory: DirectoryView) -> str:
    return next(f for f, parent in directory.parents.items() if parent is None)


class PageParams(RpcParams):
    """Resource Management's paging: ``PageNumber`` from 1, ``PageSize`` 1 to 100 (10)."""

    page_number: RpcInt = Field(default=1, ge=1)
    page_size: RpcInt = Field(default=10, ge=1, le=100)

    def page(
        self,
        items: Sequence[T],
        render: Callable[[T], dict[str, Any]],
        wrapper: str,
        member: str,
    ) -> dict[str, Any]:
        start = (self.page_number - 1) * self.page_size
        chunk = items[start : start + self.page_size]
        return {
            "PageNumber": self.page_number,
            "PageSize": self.page_size,
            "TotalCount": len(items),
            wrapper: {member: [render(item) for item in chunk]},
        }


# -- the directory -----------------------------------------------------------------------
class EnableParams(RpcParams):
    enable_mode: str | None = None
    ma_name: str | None = Field(default=None, alias="MAName")
    ma_secure_mobile_phone: str | None = Field(default=None, alias="MASecureMobilePhone")
    verification_code: str | None = None


def _directory_body(ctx: RpcContext, directory: DirectoryView) -> dict[str, Any]:
    management = directory.management_account
    account = ctx.runtime.index.account(management)
    body: dict[str, Any] = {
        "ResourceDirectoryId": resource_directory_id(management),
        "RootFolderId": _root(directory),
        "MasterAccountId": management,
        "ControlPolicyStatus": "Enabled" if directory.control_enabled else "Disabled",
    }
    if account is not None:
        body["MasterAccountName"] = account.name
    return body


@rpc_action("EnableResourceDirectory", RESOURCE_MANAGER, EnableParams)
def enable_resource_directory(ctx: RpcContext, p: EnableParams) -> dict[str, Any]:
    """``EnableMode=CurrentAccount`` (the default): the caller's account manages it."""
    account_id = ctx.account_id
    management = ctx.manage(
        "resourcemanager:EnableResourceDirectory", directory_arn(account_id, "*")
    )
    if p.enable_mode not in (None, "CurrentAccount"):
        raise RpcError(
            400,
            "InvalidParameter.EnableMode",
            "Only EnableMode=CurrentAccount is supported: Mandate creates no new account to "
            "manage the directory.",
        )
    for name, value in (
        ("MAName", p.ma_name),
        ("MASecureMobilePhone", p.ma_secure_mobile_phone),
        ("VerificationCode", p.verification_code),
    ):
        unsupported_parameter(name, value, "Mandate creates no new management account")
    with recoded(RM_CODES):
        management.write(lambda ledger: ledger.enable_resource_directory(account_id))
    return {"ResourceDirectory": _directory_body(ctx, directory_of(ctx))}


@rpc_action("GetResourceDirectory", RESOURCE_MANAGER, NoParams)
def get_resource_directory(ctx: RpcContext, p: NoParams) -> dict[str, Any]:
    ctx.authorize_read("resourcemanager:GetResourceDirectory", directory_arn(ctx.account_id, "*"))
    return {"ResourceDirectory": _directory_body(ctx, directory_of(ctx))}


# -- folders -------------------------------------------------------------------------------
def _folder_body(directory: DirectoryView, folder_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "FolderId": folder_id,
        "FolderName": directory.names.get(folder_id, ""),
    }
    parent = directory.parents.get(folder_id)
    if parent is not None:
        body["ParentFolderId"] = parent
    return body


def _path(directory: DirectoryView, node: str | None) -> str:
    """``r-…/fd-…/…``: Resource Directory's path from the root folder to ``node``."""
    path: list[str] = []
    while node is not None:
        path.append(node)
        node = directory.parents.get(node)
    return "/".join(reversed(path))


def _folder(directory: DirectoryView, folder_id: str) -> str:
    if folder_id not in directory.parents:
        raise RpcError(
            404, "EntityNotExists.Folder", "The resource directory folder does not exist."
        )
    return folder_id


class CreateFolderParams(RpcParams):
    folder_name: str
    parent_folder_id: str | None = None


@rpc_action("CreateFolder", RESOURCE_MANAGER, CreateFolderParams)
def create_folder(ctx: RpcContext, p: CreateFolderParams) -> dict[str, Any]:
    """Under ``ParentFolderId``, or the root folder when it is not given (as RM does)."""
    account_id = ctx.account_id
    parent = p.parent_folder_id
    if parent is None:
        parent = _root(directory_of(ctx))
    management = ctx.manage("resourcemanager:CreateFolder", directory_arn(account_id, parent))
    made = _named(
        lambda: management.write(
            lambda ledger: ledger.create_folder(account_id, parent, p.folder_name)
        )
    )
    return {"Folder": _folder_body(directory_of(ctx), made.node_id)}


class FolderParams(RpcParams):
    folder_id: str


@rpc_action("GetFolder", RESOURCE_MANAGER, FolderParams)
def get_folder(ctx: RpcContext, p: FolderParams) -> dict[str, Any]:
    arn = directory_arn(ctx.account_id, p.folder_id)
    ctx.authorize_read("resourcemanager:GetFolder", arn)
    directory = directory_of(ctx)
    folder = _folder(directory, p.folder_id)
    return {
        "Folder": {
            **_folder_body(directory, folder),
            "ResourceDirectoryPath": _path(directory, folder),
        }
    }


class ListFoldersParams(PageParams):
    parent_folder_id: str | None = None
    query_keyword: str | None = None


@rpc_action("ListFoldersForParent", RESOURCE_MANAGER, ListFoldersParams)
def list_folders_for_parent(ctx: RpcContext, p: ListFoldersParams) -> dict[str, Any]:
    """The folders directly under ``ParentFolderId`` (the root when not given), by name;
    ``QueryKeyword`` keeps those whose name contains it."""
    ctx.authorize_read("resourcemanager:ListFoldersForParent", directory_arn(ctx.account_id, "*"))
    directory = directory_of(ctx)
    parent = _folder(directory, p.parent_folder_id or _root(directory))
    keyword = p.query_keyword
    children = sorted(
        (
            folder
            for folder, above in directory.parents.items()
            if above == parent and (keyword is None or keyword in directory.names.get(folder, ""))
        ),
        key=lambda folder: (directory.names.get(folder, ""), folder),
    )
    return p.page(children, lambda f: _folder_body(directory, f), "Folders", "Folder")


@rpc_action("DeleteFolder", RESOURCE_MANAGER, FolderParams)
def delete_folder(ctx: RpcContext, p: FolderParams) -> dict[str, Any]:
    """Refused 409 ``DeleteConflict.Folder.SubFolder``/``.Account`` while not empty; the root
    folder 400 ``InvalidParameter.FolderId`` (it goes only with its directory)."""
    account_id = ctx.account_id
    management = ctx.manage("resourcemanager:DeleteFolder", directory_arn(account_id, p.folder_id))
    with recoded(RM_CODES):
        management.write(lambda ledger: ledger.delete_folder(account_id, p.folder_id))
    return {}


class UpdateFolderParams(FolderParams):
    new_folder_name: str


_FOLDER_NAME_CODES: Final[dict[str, str]] = {
    **RM_CODES,
    "InvalidParameter.Name": "InvalidParameter.Folder.Name.Length",
}


def _named(write: Callable[[], T]) -> T:
    """CreateFolder's and UpdateFolder's name codes: past 24 characters
    ``InvalidParameter.Folder.Name.Length``, other characters than RM's
    ``InvalidParameter.Folder.Name``, a name in use 400
    ``InvalidParameter.Folder.Name.AlreadyUsed``."""
    try:
        with recoded(_FOLDER_NAME_CODES):
            return write()
    except Conflict as taken:
        if taken.code != "Duplicate.FolderName":
            raise
        raise RpcError(
            400,
            "InvalidParameter.Folder.Name.AlreadyUsed",
            "The name already exists in the resource directory. Please change to another name.",
        ) from None


@rpc_action("UpdateFolder", RESOURCE_MANAGER, UpdateFolderParams)
def update_folder(ctx: RpcContext, p: UpdateFolderParams) -> dict[str, Any]:
    """A new name, 1 to 24 characters; a name already used in the directory (Mandate keeps
    them unique in the whole directory, as CreateFolder here) is RM's 400
    ``InvalidParameter.Folder.Name.AlreadyUsed``."""
    account_id = ctx.account_id
    management = ctx.manage("resourcemanager:UpdateFolder", directory_arn(account_id, p.folder_id))
    _named(
        lambda: management.write(
            lambda ledger: ledger.rename_folder(account_id, p.folder_id, p.new_folder_name)
        )
    )
    return {"Folder": _folder_body(directory_of(ctx), p.folder_id)}


# -- member accounts -----------------------------------------------------------------------
class MoveAccountParams(RpcParams):
    account_id: str
    destination_folder_id: str


@rpc_action("MoveAccount", RESOURCE_MANAGER, MoveAccountParams)
def move_account(ctx: RpcContext, p: MoveAccountParams) -> dict[str, Any]:
    """Move a member to a folder (an account joins by AcceptHandshake, never here)."""
    management_account = ctx.account_id
    arn = directory_arn(management_account, p.account_id)
    management = ctx.manage("resourcemanager:MoveAccount", arn)
    with recoded(RM_CODES):
        management.write(
            lambda ledger: ledger.move_account(
                management_account, p.account_id, p.destination_folder_id
            )
        )
    return {}


class RemoveParams(RpcParams):
    account_id: str


@rpc_action("RemoveCloudAccount", RESOURCE_MANAGER, RemoveParams)
def remove_cloud_account(ctx: RpcContext, p: RemoveParams) -> dict[str, Any]:
    """A member leaves the directory (it may accept another invitation); any other account is
    404 ``EntityNotExists.Account`` alike."""
    management_account = ctx.account_id
    arn = directory_arn(management_account, p.account_id)
    management = ctx.manage("resourcemanager:RemoveCloudAccount", arn)
    with recoded(RM_CODES):
        management.write(
            lambda ledger: ledger.remove_cloud_account(management_account, p.account_id)
        )
    return {}


def _account_body(ctx: RpcContext, directory: DirectoryView, account_id: str) -> dict[str, Any]:
    account = ctx.runtime.index.account(account_id)
    folder = directory.members[account_id]
    body: dict[str, Any] = {
        "AccountId": account_id,
        "FolderId": folder,
        "ResourceDirectoryId": resource_directory_id(directory.management_account),
        "ResourceDirectoryPath": f"{_path(directory, folder)}/{account_id}",
    }
    if account is not None:
        body["DisplayName"] = account.name
    return body


@rpc_action("ListAccounts", RESOURCE_MANAGER, PageParams)
def list_accounts(ctx: RpcContext, p: PageParams) -> dict[str, Any]:
    """The directory's members, by account id (the management account is no member here:
    control policies never bound it)."""
    ctx.authorize_read("resourcemanager:ListAccounts", directory_arn(ctx.account_id, "*"))
    directory = directory_of(ctx)
    members = sorted(directory.members)
    return p.page(members, lambda a: _account_body(ctx, directory, a), "Accounts", "Account")


class AccountParams(RpcParams):
    account_id: str


@rpc_action("GetAccount", RESOURCE_MANAGER, AccountParams)
def get_account(ctx: RpcContext, p: AccountParams) -> dict[str, Any]:
    arn = directory_arn(ctx.account_id, p.account_id)
    ctx.authorize_read("resourcemanager:GetAccount", arn)
    directory = directory_of(ctx)
    if p.account_id not in directory.members:
        raise RpcError(
            404, "EntityNotExists.Account", "This resource directory account does not exist."
        )
    return {"Account": _account_body(ctx, directory, p.account_id)}
