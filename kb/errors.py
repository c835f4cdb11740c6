"""One error family: each carries an HTTP status and a message fit to show a user."""

from __future__ import annotations

from collections.abc import Mapping


class KbError(Exception):
    """An error kb reports to a person, never as a traceback.

    A message may name sizes, `{limit}`, given in bytes in `sizes`: the domain keeps numbers, and
    the layer that shows the message writes them in its reader's units (kb/web/formatting.py's
    `error_text`); `message` itself says them in bytes."""

    status = 500
    code = "erreur"

    def __init__(
        self, message: str, *, status: int | None = None, sizes: Mapping[str, int] | None = None
    ) -> None:
        self.template = message
        self.sizes = dict(sizes or {})
        if self.sizes:
            message = message.format(**{name: f"{n} octets" for name, n in self.sizes.items()})
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class BadRequest(KbError):
    status = 400
    code = "requete_invalide"


class NotFound(KbError):
    status = 404
    code = "introuvable"
