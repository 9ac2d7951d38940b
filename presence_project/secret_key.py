"""Where the local secret key is kept, and making it: `python -m presence_project.secret_key`.

scripts/bootstrap.sh runs this, so the serve, test and benchmark scripts work on a fresh
clone and every process they start signs with the same key. Production sets SECRET_KEY
(or SECRET_KEY_FILE, e.g. a mounted secret) instead; then nothing is written.
"""

import os
import secrets
from pathlib import Path


def key_file() -> Path:
    default = Path(__file__).resolve().parent.parent / ".secret-key"
    return Path(os.environ.get("SECRET_KEY_FILE") or default)


def make_key_file() -> None:
    """A new random key in key_file(), readable by its owner alone, unless a key is already
    given: in the environment, or by the file."""
    if os.environ.get("SECRET_KEY", "").strip():
        return
    try:
        fd = os.open(key_file(), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_urlsafe(50) + "\n")


if __name__ == "__main__":
    make_key_file()
