"""One error family: each carries an HTTP status and a message fit to show a user."""

from __future__ import annotations


class KbError(Exception):
    """An error kb reports to a person, never as a traceback."""

    status = 500
    code = "erreur"

    def __init__(self, message: str, *, status: int | None = None) -> None:
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
