"""Test set-up: an account joins a resource directory as Resource Directory requires, by an
invitation it accepts (``HandshakeCommands``), then is moved to ``folder`` when that is not
the root folder."""

from __future__ import annotations

from mandate.domain.ledger.application import Ledger
from mandate.domain.permissions.resource_directory import ResourceDirectory, directory_id


def join(ledger: Ledger, management: str, member: str, folder: str | None = None) -> int:
    """Invite ``member``, accept as ``member``, move it to ``folder``; the last position."""
    handshake = ledger.invite_account(management, member).node_id
    position = ledger.accept_handshake(member, handshake).position
    directory = ledger.repository.get(directory_id(management))
    assert isinstance(directory, ResourceDirectory)
    if folder is not None and folder != directory.root_folder_id:
        position = ledger.move_account(management, member, folder).position
    return position
