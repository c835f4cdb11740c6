"""Ticket and reply forms: the streamed body and the resumable uploads it names, checked."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

from kb.errors import KbError
from kb.helpdesk import attachments
from kb.helpdesk.attachments import ReceivedForm, UploadTooLarge
from kb.helpdesk.tickets import TicketInvalid
from kb.helpdesk.uploads import Upload
from kb.web import multipart
from kb.web.errors import error_json, wants_json
from kb.web.formatting import error_text
from kb.web.params import whole_number
from kb.web.security import CSRF_FIELD, check_csrf
from kb.web.services import Services

MULTIPART_SLACK = 1024 * 1024  # the form's text fields and multipart framing around the files


async def receive(services: Services, request: Request) -> ReceivedForm:
    """The body, streamed: refused at once when it announces more than the limit."""
    limit = services.settings.max_upload_bytes
    declared = whole_number(request.headers.get("content-length", ""))
    if declared is not None and declared > limit + MULTIPART_SLACK:
        raise attachments.too_large(limit)
    form = await multipart.receive(
        request.stream(), request.headers.get("content-type", ""), services.store.temp_dir, limit
    )
    try:
        check_csrf(request, form.fields.get(CSRF_FIELD))
    except KbError:
        form.discard()
        raise
    return form


def uploaded(services: Services, request: Request, form: ReceivedForm) -> list[Upload]:
    """The resumable uploads the form names (each once): this account's, and complete."""
    found = []
    named = dict.fromkeys(u.strip() for u in form.lists.get("televersement", []) if u.strip())
    for upload_id in list(named)[: attachments.MAX_FILES]:
        try:
            upload = services.uploads.get(request.state.account, upload_id)
        except KbError:
            raise TicketInvalid(
                {"fichiers": "Une pièce jointe n'est plus disponible : joignez-la à nouveau."}
            ) from None
        if not upload.completed:
            raise TicketInvalid(
                {"fichiers": f"« {upload.filename} » n'est pas encore entièrement envoyé."}
            )
        found.append(upload)
    return found


def upload_paths(services: Services, found: list[Upload]) -> dict[str, Path]:
    return {u.id: services.uploads.path(u.id) for u in found}


def field_errors(exc: KbError) -> dict[str, str]:
    """A refused message's errors by field id: the form's own, or the attachments'."""
    if isinstance(exc, TicketInvalid):
        return dict(exc.errors)
    if isinstance(exc, UploadTooLarge):
        return {"fichiers": error_text(exc)}
    return {"message": error_text(exc)}


async def form_error(
    request: Request,
    exc: KbError,
    errors: dict[str, str],
    page: Callable[[], Awaitable[Response] | Response],
) -> Response:
    """A refused form: the same errors, field by field, for the page's script (the JSON
    error shape) and for the plain form (the page again)."""
    if wants_json(request):
        return error_json(exc.status, exc.code, error_text(exc), fields=errors)
    response = page()
    return await response if isinstance(response, Awaitable) else response
