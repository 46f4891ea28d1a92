"""Owner-only local state: the state folder holds landed records (dlt), event and compute logs (Dagster),
the embedded server's data and password, and the demo's sources, so no other user may read any of it.

Two measures, so that it holds whatever the operator's umask: every process of the platform (the CLI,
and Dagster's processes through the definitions) creates files with the umask 0o077 (folders 0700,
files 0600), and the folders the platform owns are set to 0700 when it starts, which also closes
whatever an older version left readable inside them.

The one exception is the embedded server when the platform runs as root: PostgreSQL refuses to run as
root, so it runs as its own account, which must pass through the state folder to reach its data. Then
the folders on that path are 0710 and belong to that account's group: it may pass, nobody may list.
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path

PRIVATE_UMASK = 0o077
FOLDER_MODE, FILE_MODE, PASSAGE_MODE = 0o700, 0o600, 0o710


def private_umask() -> None:
    """Files and folders this process (and every process it starts) creates are its owner's only."""
    os.umask(PRIVATE_UMASK)


def private_folder(path: Path, *, passage_for: pwd.struct_passwd | None = None) -> Path:
    """Create `path` (and its missing parents) owner-only, and make it so if it already existed.

    With `passage_for`, the folder is 0710 and group-owned by that account's group: it may traverse
    the folder (the embedded server's account reaching its data), but not list or read it.
    """
    path.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    if passage_for is not None:
        os.chown(path, -1, passage_for.pw_gid)
        path.chmod(PASSAGE_MODE)
    elif not (os.geteuid() == 0 and path.stat().st_mode & 0o7777 == PASSAGE_MODE):
        path.chmod(FOLDER_MODE)  # (a passage granted to the embedded server's account, as root, is kept)
    return path


def secure_state_dir(home: Path) -> Path:
    """The state folder, owner-only, with its umask set for this process."""
    private_umask()
    return private_folder(home)
