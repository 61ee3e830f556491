"""Streaming multipart/form-data: file parts go straight into the artifact store.

The body is parsed incrementally as it arrives (python-multipart's callback parser); each
file part is sniffed from its first bytes, then written to an AtomicWriter in blocks of
about WRITE_BYTES (blocking writes run in a thread, one hop per block rather than per
received chunk, which are 64 KiB or less). Nothing holds more than a block of a file in
memory and no temporary copy is made. Writers are committed only when the caller
says so, after it has validated the rest of the form; any error aborts them, so a
rejected or interrupted upload leaves no object behind.

    async with MultipartReceiver(request, store, file_key=..., max_file_bytes=...) as rx:
        form = await rx.receive()
        ...validate form.fields...
        stored = await rx.commit()
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from core.errors import BadInput, UploadTooLarge
from core.units import human_bytes
from gateway.http.media_sniff import SNIFF_BYTES, check_media
from storage.artifacts import ArtifactStore, AtomicWriter, StoredObject

# Room for the multipart framing and the small form fields around the file(s).
FORM_OVERHEAD_BYTES = 64 * 1024
MAX_FIELD_BYTES = 16 * 1024
# Text fields of one form: how many, and their bytes together (the forms have a handful).
MAX_TEXT_FIELDS = 32
MAX_TEXT_BYTES = 64 * 1024
# File data is handed to the writer's thread in blocks of this size (see the module doc).
WRITE_BYTES = 1024 * 1024

# Given a form field name and how many files that field already had, the storage key for
# the next file (raise BadInput to refuse it), or None when the field is a text field.
FileKey = Callable[[str, int], str | None]


def too_large(limit: int) -> UploadTooLarge:
    return UploadTooLarge(f"the upload is larger than the {human_bytes(limit)} limit")


def check_content_length(request: Request, max_file_bytes: int) -> None:
    """Refuse an announced oversize body before reading a byte of it."""
    raw = request.headers.get("content-length")
    if raw is None:
        return
    try:
        length = int(raw)
    except ValueError:
        raise BadInput("the Content-Length header is not a number") from None
    if length > max_file_bytes + FORM_OVERHEAD_BYTES:
        raise too_large(max_file_bytes)


@dataclass
class FilePart:
    field_name: str
    filename: str | None
    content_type: str | None
    key: str
    head: bytearray = field(default_factory=bytearray)
    size: int = 0
    container: str | None = None
    writer: AtomicWriter | None = None
    stored: StoredObject | None = None
    complete: bool = False
    # Received and not yet handed to the writer.
    pending: list[bytes] = field(default_factory=list)
    pending_bytes: int = 0


@dataclass
class ReceivedForm:
    fields: dict[str, str]
    files: list[FilePart]

    def files_in(self, name: str) -> list[FilePart]:
        return [f for f in self.files if f.field_name == name]


@dataclass
class _TextPart:
    name: str
    value: bytearray = field(default_factory=bytearray)


class MultipartReceiver:
    def __init__(
        self,
        request: Request,
        store: ArtifactStore,
        *,
        file_key: FileKey,
        max_file_bytes: int,
    ) -> None:
        self.request = request
        self.store = store
        self.file_key = file_key
        self.max_file_bytes = max_file_bytes
        self.max_body_bytes = max_file_bytes + FORM_OVERHEAD_BYTES
        self.files: list[FilePart] = []
        self.fields: dict[str, str] = {}
        self._events: list[tuple[str, Any]] = []
        self._headers: list[tuple[bytes, bytes]] = []
        self._hname = bytearray()
        self._hvalue = bytearray()
        self._ended = False
        self._current: FilePart | _TextPart | None = None
        self._committed = False
        self._text_fields = 0
        self._text_bytes = 0

    # ------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> MultipartReceiver:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None or not self._committed:
            await asyncio.shield(self.abort())

    async def abort(self) -> None:
        """Drop every writer and every object this receiver stored."""
        for part in self.files:
            try:
                if part.writer is not None and part.stored is None:
                    await asyncio.to_thread(part.writer.abort)
                elif part.stored is not None:
                    await asyncio.to_thread(self.store.delete, part.stored.key)
            except OSError:
                pass
            part.writer = None
            part.stored = None
            # A rejected upload leaves no empty folder behind either.
            with contextlib.suppress(OSError):
                await asyncio.to_thread(self.store.prune_empty, part.key)

    async def commit(self) -> list[StoredObject]:
        """Move every received file into place; returns them in form order."""
        out: list[StoredObject] = []
        for part in self.files:
            assert part.writer is not None and part.complete
            part.stored = await asyncio.to_thread(part.writer.commit)
            out.append(part.stored)
        self._committed = True
        return out

    # ------------------------------------------------------------ receiving

    async def receive(self) -> ReceivedForm:
        ctype, options = parse_options_header(self.request.headers.get("content-type"))
        boundary = options.get(b"boundary")
        if ctype != b"multipart/form-data" or not boundary:
            raise BadInput("send the request as multipart/form-data")
        try:
            parser = MultipartParser(boundary, self._callbacks())
        except FormParserError as e:  # an over-long boundary
            raise BadInput(f"malformed multipart body: {e}") from None
        received = 0
        try:
            async for chunk in self.request.stream():
                if not chunk:
                    continue
                received += len(chunk)
                if received > self.max_body_bytes:
                    raise too_large(self.max_file_bytes)
                try:
                    parser.write(chunk)
                except FormParserError as e:
                    raise BadInput(f"malformed multipart body: {e}") from None
                await self._drain()
        except ClientDisconnect:
            raise BadInput("the client disconnected before the upload finished") from None
        if not self._ended:
            raise BadInput("the multipart body ended before its closing boundary")
        return ReceivedForm(dict(self.fields), list(self.files))

    def _callbacks(self) -> Any:
        ev = self._events

        def on_part_begin() -> None:
            self._headers = []

        def on_header_field(data: bytes, start: int, end: int) -> None:
            self._hname += data[start:end]

        def on_header_value(data: bytes, start: int, end: int) -> None:
            self._hvalue += data[start:end]

        def on_header_end() -> None:
            self._headers.append((bytes(self._hname).lower(), bytes(self._hvalue)))
            self._hname.clear()
            self._hvalue.clear()

        def on_headers_finished() -> None:
            ev.append(("begin", self._headers))

        def on_part_data(data: bytes, start: int, end: int) -> None:
            ev.append(("data", data[start:end]))

        def on_part_end() -> None:
            ev.append(("end", None))

        def on_end() -> None:
            self._ended = True

        return {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
            "on_end": on_end,
        }

    async def _drain(self) -> None:
        """Act on what the parser saw in the last chunk; write a file's data once a block
        has gathered, or at the end of its part."""
        events, self._events[:] = list(self._events), []
        for kind, payload in events:
            if kind == "begin":
                self._current = self._begin_part(payload)
            elif kind == "data":
                part = self._current
                if isinstance(part, _TextPart):
                    part.value += payload
                    self._text_bytes += len(payload)
                    if len(part.value) > MAX_FIELD_BYTES:
                        raise BadInput(f"form field {part.name[:40]!r} is too long")
                    if self._text_bytes > MAX_TEXT_BYTES:
                        raise BadInput(
                            f"the form's text fields hold more than {human_bytes(MAX_TEXT_BYTES)}"
                        )
                elif isinstance(part, FilePart):
                    part.size += len(payload)
                    if part.size > self.max_file_bytes:
                        raise too_large(self.max_file_bytes)
                    if part.writer is None:
                        part.head += payload
                        if len(part.head) >= SNIFF_BYTES:
                            await self._open(part)
                    else:
                        part.pending.append(payload)
                        part.pending_bytes += len(payload)
            elif kind == "end":
                part = self._current
                if isinstance(part, FilePart):
                    if part.writer is None:
                        await self._open(part)
                    await self._flush(part)
                    part.complete = True
                elif isinstance(part, _TextPart):
                    try:
                        self.fields[part.name] = part.value.decode("utf-8")
                    except UnicodeDecodeError:
                        raise BadInput(f"form field {part.name!r} is not UTF-8 text") from None
                self._current = None
        part = self._current
        if isinstance(part, FilePart) and part.pending_bytes >= WRITE_BYTES:
            await self._flush(part)

    def _begin_part(self, headers: list[tuple[bytes, bytes]]) -> FilePart | _TextPart:
        hdrs = dict(headers)
        _, disp = parse_options_header(hdrs.get(b"content-disposition", b"").decode("latin-1"))
        name_raw = disp.get(b"name")
        if name_raw is None:
            raise BadInput("a multipart part has no field name")
        name = name_raw.decode("utf-8", errors="replace")
        filename = disp.get(b"filename")
        key = self.file_key(name, sum(1 for f in self.files if f.field_name == name))
        if key is None:
            if filename is not None:
                raise BadInput(f"unexpected file in form field {name[:40]!r}")
            self._text_fields += 1
            if self._text_fields > MAX_TEXT_FIELDS:
                raise BadInput(f"the form has more than {MAX_TEXT_FIELDS} fields")
            return _TextPart(name[:200])
        ctype = hdrs.get(b"content-type")
        part = FilePart(
            field_name=name,
            filename=_clean_filename(filename),
            content_type=ctype.decode("latin-1")[:255] if ctype else None,
            key=key,
        )
        self.files.append(part)
        return part

    async def _open(self, part: FilePart) -> None:
        """Sniff the head (raising 4xx when it is clearly not media), then start storing."""
        part.container = check_media(bytes(part.head[:SNIFF_BYTES]), part.size)
        part.writer = await asyncio.to_thread(_open_writer, self.store, part.key)
        head, part.head = bytes(part.head), bytearray()
        await asyncio.to_thread(part.writer.write, head)

    @staticmethod
    async def _flush(part: FilePart) -> None:
        if part.pending and part.writer is not None:
            data = b"".join(part.pending)
            part.pending.clear()
            part.pending_bytes = 0
            await asyncio.to_thread(part.writer.write, data)


def _open_writer(store: ArtifactStore, key: str) -> AtomicWriter:
    # AtomicWriter opens `<key>.tmp-*` directly; on file:// its folder must exist first.
    if store.is_local:
        parent = store.path(key).rsplit("/", 1)[0]
        store.fs.makedirs(parent, exist_ok=True)
    return AtomicWriter(store, key)


def _clean_filename(raw: bytes | None) -> str | None:
    """The client's file name, for display only (never part of a storage path)."""
    if raw is None:
        return None
    # parse_options_header decoded the header as latin-1; browsers send UTF-8.
    name = raw.decode("utf-8", errors="replace")
    name = "".join(c for c in name if c.isprintable())
    return name[:255] or None
