"""multipart/form-data bodies parsed as they arrive: text fields in memory (bounded), files
straight to the store's temp dir, hashed and counted on the way, the size limit held while
streaming. The domain gets a ReceivedForm; on any failure no file is left behind."""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from python_multipart.exceptions import ParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from kb.errors import BadRequest, KbError
from kb.helpdesk.attachments import (
    MAX_FILES,
    ReceivedFile,
    ReceivedForm,
    no_space_left,
    safe_filename,
    storage_full,
    too_large,
)
from kb.helpdesk.file_writer import FileWriter
from kb.web.body import batches, pipelined

FIELD_LIMIT = 256 * 1024  # a text field larger than this is not a form a person typed
TEXT_LIMIT = 1024 * 1024  # all the text fields of one form together
MAX_TEXT_FIELDS = 100


class _Receiver:
    """python-multipart callbacks: text fields in memory (bounded), files straight to disk."""

    def __init__(self, temp_dir: Path, limit: int) -> None:
        self.temp_dir, self.limit = temp_dir, limit
        self.form = ReceivedForm()
        self.total = 0
        self.parser: MultipartParser | None = None
        self._headers: dict[str, str] = {}
        self._header_name = b""
        self._header_value = b""
        self._field: str | None = None
        self._value = bytearray()
        self._text_fields = 0
        self._text_bytes = 0
        self._file: ReceivedFile | None = None
        self._fd: int | None = None
        self._writer: FileWriter | None = None
        self._hash: Any = None

    def callbacks(self) -> Any:  # python-multipart's MultipartCallbacks, a TypedDict
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value_data,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def _part_begin(self) -> None:
        self._headers, self._header_name, self._header_value = {}, b"", b""

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        name = self._header_name.decode("latin-1").lower()
        # Latin-1 maps bytes to characters one for one: parse_options_header gets the raw
        # bytes back, and the file name is then decoded as the UTF-8 browsers send.
        self._headers[name] = self._header_value.decode("latin-1")
        self._header_name, self._header_value = b"", b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get("content-disposition", ""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        self._field, self._value = name, bytearray()
        if filename is None:
            return
        if not filename:  # an empty file input: nothing chosen
            self._field = None
            return
        if len(self.form.files) >= MAX_FILES:
            raise BadRequest(f"{MAX_FILES} pièces jointes au plus par message.")
        path = self.temp_dir / uuid.uuid4().hex
        self._file = ReceivedFile(
            field=name,
            filename=safe_filename(filename.decode("utf-8", "replace")),
            content_type=self._headers.get("content-type", "application/octet-stream")[:255],
            temp_path=path,
        )
        self.form.files.append(self._file)
        # Closed in _part_end or close(); unbuffered: the parser's slices go straight down.
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        self._hash = hashlib.sha256()
        self._writer = FileWriter(self._fd, 0, [self._hash])

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._file is not None and self._writer is not None:
            self.total += end - start
            if self.total > self.limit:
                raise too_large(self.limit)
            self._writer.write(memoryview(data)[start:end])  # a view: no copy of the bytes
            self._file.size += end - start
        elif self._field is not None:
            self._value += data[start:end]
            if len(self._value) > FIELD_LIMIT:
                raise BadRequest("Un champ du formulaire est trop long.")

    def _part_end(self) -> None:
        if self._file is not None and self._writer is not None:
            # On disk before the ticket's row says it is there: a crash cannot leave a row
            # pointing at a file the kernel had not written yet.
            self._writer.finish()
            self.close()
            self._file.sha256 = self._hash.hexdigest()
            self._file, self._writer = None, None
        elif self._field is not None:
            value = self._value.decode("utf-8", "replace")
            self._text_fields += 1
            self._text_bytes += len(self._value)
            if self._text_fields > MAX_TEXT_FIELDS or self._text_bytes > TEXT_LIMIT:
                raise BadRequest("Le formulaire contient trop de champs ou trop de texte.")
            if "\x00" in value:
                raise BadRequest("Caractère nul interdit dans le formulaire.")
            self.form.fields.setdefault(self._field, value)
            self.form.lists.setdefault(self._field, []).append(value)
        self._field = None

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def write(self, batch: list[bytes]) -> None:
        assert self.parser is not None
        for chunk in batch:
            self.parser.write(chunk)


async def receive(
    stream: AsyncIterator[bytes], content_type: str, temp_dir: Path, limit: int
) -> ReceivedForm:
    """Parse a multipart body as it arrives; on any failure, no file is left behind."""
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise BadRequest("Le formulaire doit être envoyé en multipart/form-data.")
    temp_dir.mkdir(parents=True, exist_ok=True)
    receiver = _Receiver(temp_dir, limit)
    receiver.parser = parser = MultipartParser(boundary, receiver.callbacks())
    try:
        await pipelined(batches(stream), receiver.write)
        parser.finalize()
    except BaseException as exc:
        receiver.close()
        receiver.form.discard()
        if no_space_left(exc):
            error: BaseException = storage_full()
        elif isinstance(exc, ParseError):
            error = BadRequest("Le formulaire reçu est mal formé : envoyez-le à nouveau.")
        else:
            error = exc
        if isinstance(error, KbError):
            error.fields = dict(receiver.form.fields)  # type: ignore[attr-defined]
        if error is exc:
            raise
        raise error from exc
    receiver.close()
    return receiver.form
