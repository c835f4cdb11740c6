"""The tus 1.0 endpoints: core, creation, termination, checksum, expiration."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from email.utils import format_datetime

import anyio
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from kb.errors import BadRequest, KbError
from kb.helpdesk.accounts import Account
from kb.helpdesk.uploads import (
    CHECKSUMS,
    ChecksumMismatch,
    OffsetConflict,
    QuotaExceeded,
    Upload,
    UploadBusy,
    Uploads,
    parse_metadata,
)
from kb.web.body import batches, pipelined
from kb.web.limits import BodyTimeout
from kb.web.params import whole_number
from kb.web.security import CSRF_COOKIE, same_token
from kb.web.services import Services, bind

TUS_VERSION = "1.0.0"
ENDPOINT = "/api/uploads"


class NotLoggedIn(KbError):
    status = 401
    code = "non_connecte"


class TusVersionUnsupported(KbError):
    status = 412
    code = "version_tus"


# The statuses the tus 1.0 protocol gives the uploads' own errors (460: its checksum
# extension's "Checksum Mismatch").
TUS_STATUS: dict[type[KbError], int] = {
    OffsetConflict: 409,
    UploadBusy: 423,
    ChecksumMismatch: 460,
    QuotaExceeded: 403,
}


def with_tus_statuses(
    route: Callable[..., Awaitable[Response]],
) -> Callable[..., Awaitable[Response]]:
    """The domain's upload errors answered with their tus status (then the error handler)."""

    @functools.wraps(route)
    async def answer(services: Services, request: Request) -> Response:
        try:
            return await route(services, request)
        except tuple(TUS_STATUS) as exc:
            exc.status = TUS_STATUS[type(exc)]
            raise

    return answer


def routes(services: Services) -> list[Route]:
    return [
        Route(ENDPOINT, bind(services, collection), methods=["OPTIONS", "POST"], name="uploads"),
        Route(
            ENDPOINT + "/{upload_id}",
            bind(services, resource),
            methods=["OPTIONS", "HEAD", "PATCH", "DELETE"],
            name="upload",
        ),
    ]


def _headers(upload: Upload | None = None) -> dict[str, str]:
    headers = {"tus-resumable": TUS_VERSION, "cache-control": "no-store"}
    if upload is not None:
        headers["upload-offset"] = str(upload.offset)
        headers["upload-length"] = str(upload.length)
        headers["upload-expires"] = format_datetime(upload.expires_at, usegmt=True)
    return headers


def _options(services: Services) -> Response:
    store: Uploads = services.uploads
    return Response(
        status_code=204,
        headers={
            "tus-resumable": TUS_VERSION,
            "tus-version": TUS_VERSION,
            "tus-extension": "creation,termination,checksum,expiration",
            "tus-max-size": str(store.limit),
            "tus-checksum-algorithm": ",".join(CHECKSUMS),
        },
    )


def _account(request: Request) -> Account:
    """Logged in, tus 1.0.0, and for anything that writes, the CSRF token in a header."""
    if request.headers.get("tus-resumable") != TUS_VERSION:
        raise TusVersionUnsupported("Version du protocole tus non prise en charge : 1.0.0.")
    account: Account | None = request.state.account
    if account is None:
        raise NotLoggedIn("Connectez-vous pour envoyer des fichiers.")
    if request.method != "HEAD":
        cookie = request.cookies.get(CSRF_COOKIE, "")
        sent = request.headers.get("x-csrf-token", "")
        if not same_token(cookie, sent):
            raise KbError("Jeton CSRF manquant ou invalide : rechargez la page.", status=403)
    return account


def _int_header(request: Request, name: str) -> int:
    value = whole_number(request.headers.get(name, ""))
    if value is None:
        raise BadRequest(f"En-tête {name} manquant ou invalide : un nombre entier est attendu.")
    return value


@with_tus_statuses
async def collection(services: Services, request: Request) -> Response:
    if request.method == "OPTIONS":
        return _options(services)
    account = _account(request)
    if "upload-defer-length" in request.headers:
        raise BadRequest("La taille de l'envoi doit être annoncée (Upload-Length).")
    length = _int_header(request, "upload-length")
    metadata = parse_metadata(request.headers.get("upload-metadata", ""))
    store: Uploads = services.uploads
    upload = await anyio.to_thread.run_sync(store.create, account, length, metadata)
    headers = _headers(upload)
    headers["location"] = f"{ENDPOINT}/{upload.id}"
    return Response(status_code=201, headers=headers)


@with_tus_statuses
async def resource(services: Services, request: Request) -> Response:
    if request.method == "OPTIONS":
        return _options(services)
    account = _account(request)
    store: Uploads = services.uploads
    upload = await anyio.to_thread.run_sync(store.get, account, request.path_params["upload_id"])
    if request.method == "HEAD":
        settled = await anyio.to_thread.run_sync(store.settled, upload)
        return Response(status_code=200, headers=_headers(settled))
    if request.method == "DELETE":
        await anyio.to_thread.run_sync(store.delete, upload)
        return Response(status_code=204, headers={"tus-resumable": TUS_VERSION})
    if request.headers.get("content-type") != "application/offset+octet-stream":
        raise KbError("Content-Type attendu : application/offset+octet-stream.", status=415)
    offset = _int_header(request, "upload-offset")
    checksum = request.headers.get("upload-checksum")
    appender = await anyio.to_thread.run_sync(store.begin_append, upload, offset, checksum)
    try:
        await pipelined(batches(request.stream()), appender.write_all)
    except (ClientDisconnect, BodyTimeout):
        pass  # what arrived is kept: the client resumes from the new offset
    finally:
        await anyio.to_thread.run_sync(store.end_append, upload, appender)
    done = await anyio.to_thread.run_sync(store.finish_if_complete, upload)
    return Response(status_code=204, headers=_headers(done))
