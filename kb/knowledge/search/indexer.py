"""Index generations: a new one is written beside the live one and made live once complete."""

from __future__ import annotations

import contextlib
import fcntl
import gc
import json
import multiprocessing
import multiprocessing.connection
import os
import shutil
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TypeVar

from whoosh import index as whoosh_index
from whoosh.codec.base import Segment

from kb.knowledge.search.analysis import index_terms, spelling_terms
from kb.knowledge.search.integrity import FileCheck, IndexCorrupt, checksums, verify, verify_files
from kb.knowledge.search.schema import make_schema
from kb.knowledge.search.segments import FastSegmentWriter

CURRENT = "CURRENT"
META = "build.json"
STATE = "state.bin"  # what the build learnt, for the next (kb.knowledge.build_state)
STATE_PREFIX = "state"  # STATE and its parts
GENERATION_PREFIX = "gen-"
# From this many articles to write, they are shared among processes, one per core (at most
# MAX_WORKERS), each rendering, analysing and writing its own segment: at 20,000 articles,
# a full build on 2 cores is about twice as fast. Fewer are written here, in this process.
PARALLEL_FROM = 400
MAX_WORKERS = 4

T = TypeVar("T")
R = TypeVar("R")
# An article to index -> what the index keeps of it, and what the build wants to know of it
# (problems, outline). In a forked process: what it returns is pickled back.
Prepare = Callable[[T], tuple["IndexedArticle", R]]
# What the build learnt of every prepared article -> the generation's meta; raising aborts.
Finish = Callable[[list[R]], dict[str, Any]]


@dataclass(frozen=True)
class RawJson:
    """A value of the generation's meta given as UTF-8 JSON already, in pieces written as they
    are (see `_meta_json`): the list of articles (9 MB of UTF-8 at 20,000, 17 MB as text) is
    joined once and neither encoded nor copied again (each copy of the text cost 15 to 25 ms
    of a build after one edit)."""

    pieces: Sequence[bytes]


class StaleBase(Exception):
    """The generation an incremental build started from is no longer the live one."""


@dataclass(frozen=True)
class IndexedArticle:
    """What the index keeps of one rendered article."""

    slug: str
    category: str
    title: str
    summary: str
    keywords: tuple[str, ...]
    headings: tuple[tuple[int, str, str], ...]
    html: str
    text: str
    body_text: str
    meta: dict[str, Any]
    digest: str  # changes whenever anything indexed here would change


def current_generation(index_dir: Path) -> Path | None:
    """The live generation's folder, or None when nothing was ever built (or CURRENT names
    nothing complete: the searcher tells that apart, a full build repairs it)."""
    try:
        name = (index_dir / CURRENT).read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError, ValueError):  # ValueError: not even text
        return None
    path = index_dir / name
    return path if name.startswith(GENERATION_PREFIX) and (path / META).is_file() else None


def read_meta(generation: Path) -> dict[str, Any]:
    try:
        meta = json.loads((generation / META).read_text(encoding="utf-8"))
    except ValueError as exc:  # not JSON, or not even text
        line = f":{exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise IndexCorrupt(f"{generation.name}/{META}{line} illisible") from exc
    if not isinstance(meta, dict):
        raise IndexCorrupt(f"{generation.name}/{META} illisible")
    return meta


def _next_generation(index_dir: Path) -> Path:
    numbers = [
        int(p.name[len(GENERATION_PREFIX) :])
        for p in index_dir.glob(f"{GENERATION_PREFIX}*")
        if p.name[len(GENERATION_PREFIX) :].isdigit()
    ]
    return index_dir / f"{GENERATION_PREFIX}{max(numbers, default=0) + 1:06d}"


def write_generation(
    index_dir: Path,
    items: Sequence[T],
    prepare: Prepare[T, R],
    finish: Finish[R],
    *,
    base: Path | None,
    remove: Iterable[str] = (),
    progress: Callable[[int], None] | None = None,
    known_files: Mapping[str, Sequence[int]] | None = None,
    keep: Callable[[dict[str, FileCheck]], dict[str, bytes | None]] | None = None,
) -> Path:
    """Write a new generation (from `base` when given: the slugs of `remove` go, `items`
    come), then switch CURRENT to it. Until the switch, readers keep the previous one, whole.
    `prepare` (render, in practice) may run in forked processes; `finish` gets what it said
    of every item and returns the generation's meta, or raises: then nothing is switched.
    The caller holds `build_lock` from the moment it reads the live generation.

    `known_files`: the base's files as `keep` last saw them (size, mtime, inode, CRC): those
    that still look so are not read again to check them. `keep` gets the new generation's
    files so, and returns what to write beside them (STATE and its parts, by name; None: the
    file linked from `base` stays) for the next build."""
    index_dir.mkdir(parents=True, exist_ok=True)
    return _write_generation(
        index_dir, items, prepare, finish, base, remove, progress, known_files or {}, keep
    )


@contextlib.contextmanager
def build_lock(index_dir: Path) -> Iterator[None]:
    """One build at a time per index folder, across processes (kb build, kb serve --reload):
    held from reading the live generation to switching to the next, so none is stale."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / ".build.lock", "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _write_generation(
    index_dir: Path,
    items: Sequence[T],
    prepare: Prepare[T, R],
    finish: Finish[R],
    base: Path | None,
    remove: Iterable[str],
    progress: Callable[[int], None] | None,
    known: Mapping[str, Sequence[int]],
    keep: Callable[[dict[str, FileCheck]], dict[str, bytes | None]] | None,
) -> Path:
    if base is not None and current_generation(index_dir) != base:
        # Another build switched generations while this one was preparing: start from its.
        raise StaleBase(base)
    if base is not None:
        # Linked as they are, damage would carry over.
        if known:
            verify(base, known)
        else:
            verify_files(base, read_meta(base))
    _remove_abandoned(index_dir)
    target = _next_generation(index_dir)
    target.mkdir()
    if base is not None:
        # Whoosh never rewrites a segment file: links share them at no cost.
        for item in base.iterdir():
            if item.name != META and item.is_file() and not item.name.endswith("LOCK"):
                _link_or_copy(item, target / item.name)
        ix = whoosh_index.open_dir(str(target))
    else:
        ix = whoosh_index.create_in(str(target), make_schema())
    writer = FastSegmentWriter(ix)
    try:
        for slug in remove:
            writer.delete_by_term("slug", slug)
        workers = _workers(len(items))
        if workers > 1:
            segments, learnt = _write_in_workers(target, items, prepare, workers, progress)
            meta = finish(learnt)
            # The segments of `base`, less what was removed, and the workers' new ones. The
            # segment this writer opened stays empty: closing it writes nothing.
            kept = writer._merge_segments(None, False, False)
            writer._close_segment()
            writer._commit_toc(kept + segments)
            writer._finish()
        else:
            meta = finish(_add(writer, items, prepare, progress))
            writer.commit()
    except BaseException:
        if not writer.is_closed:
            writer.cancel()
        ix.close()
        shutil.rmtree(target, ignore_errors=True)
        raise
    ix.close()
    files = checksums(target, known, skip=(META, STATE_PREFIX))
    if keep is not None:
        # Not synced: lost or torn in a crash, it fails its CRC and the next build renders
        # everything; syncing its tens of MB would be most of a build after one edit.
        for name, data in keep(files).items():
            if data is not None:
                _write_atomically(target / name, data, durable=False)
    meta = {**meta, "files": {name: [size, crc] for name, (size, _, _, crc) in files.items()}}
    _write_atomically(target / META, _meta_json(meta))
    _write_atomically(index_dir / CURRENT, target.name + "\n")
    _prune(index_dir, keep={target.name, base.name if base else ""})
    return target


def _meta_json(meta: dict[str, Any]) -> list[bytes]:
    """As json.dumps, encoded, in pieces: a RawJson value's pieces are written as they are."""
    pieces = [b"{"]
    for key, value in meta.items():
        if len(pieces) > 1:
            pieces.append(b", ")
        pieces.append(f"{json.dumps(key)}: ".encode())
        if isinstance(value, RawJson):
            pieces.extend(value.pieces)
        else:
            pieces.append(json.dumps(value, ensure_ascii=False).encode())
    pieces.append(b"}")
    return pieces


def _workers(items: int) -> int:
    if items < PARALLEL_FROM:
        return 1
    return max(1, min(MAX_WORKERS, len(os.sched_getaffinity(0)), items // PARALLEL_FROM))


def _add(
    writer: FastSegmentWriter,
    items: Iterable[T],
    prepare: Prepare[T, R],
    progress: Callable[[int], None] | None,
    tell: Callable[[R], None] | None = None,
) -> list[R]:
    """Prepare and add each item; what `prepare` said of each (given to `tell` instead, when
    there is one)."""
    learnt: list[R] = []
    keep = tell or learnt.append
    for count, item in enumerate(items, 1):
        article, said = prepare(item)
        keep(said)
        writer.add_document(**_document(article))
        if progress is not None:
            progress(count)
    return learnt


# What a build process has learnt goes to the parent by this many items, as it goes: not all
# at the end, when the process also holds its whole segment's postings.
TELL_EVERY = 200


def _write_in_workers(
    target: Path,
    items: Sequence[T],
    prepare: Prepare[T, R],
    workers: int,
    progress: Callable[[int], None] | None,
) -> tuple[list[Segment], list[R]]:
    """One forked process per share of `items`, each writing one segment into `target`.

    Forked, not spawned: `prepare` (the renderer and the whole content) is inherited as it
    is, never pickled; only each segment's description and what `prepare` said come back."""
    context = multiprocessing.get_context("fork")
    done = context.Value("l", 0)
    started: list[tuple[multiprocessing.process.BaseProcess, Connection]] = []
    # What the processes inherit set aside from their garbage collector: its walks would
    # write to every inherited object and so copy each page of it into every process.
    none_frozen = gc.get_freeze_count() == 0
    gc.freeze()
    try:
        # A share is a run of consecutive items, not every n-th: the objects of the items
        # were made in their order, so each process touches (and copies from this one, a
        # reference count written on each page) only the pages of its own share.
        share = -(-len(items) // workers)
        for number in range(workers):
            receiver, sender = context.Pipe(duplex=False)
            process = context.Process(
                target=_segment_worker,
                args=(target, items[number * share : (number + 1) * share], prepare, done, sender),
                name=f"kb-index-{number}",
                daemon=True,
            )
            process.start()
            sender.close()
            started.append((process, receiver))
        if none_frozen:  # not where something is kept frozen on purpose (kb/web/garbage.py)
            gc.unfreeze()
            none_frozen = False
        segments: dict[int, Segment | None] = {}
        learnt: list[R] = []
        pending = {receiver: number for number, (_, receiver) in enumerate(started)}
        while pending:
            ready = multiprocessing.connection.wait(list(pending), timeout=0.25)
            if progress is not None:
                progress(done.value)
            for receiver, number in list(pending.items()):
                worker = started[number][0]
                if receiver not in ready:
                    if not worker.is_alive() and not receiver.poll():
                        stopped = f"{worker.name} stopped (exit status {worker.exitcode})"
                        raise RuntimeError(stopped)
                    continue
                try:
                    outcome, segment, said = receiver.recv()
                except EOFError:
                    stopped = f"{worker.name} stopped (exit status {worker.exitcode})"
                    raise RuntimeError(stopped) from None
                if outcome == "error":
                    raise RuntimeError(f"{worker.name}: {said}")
                learnt += said
                if outcome == "ok":
                    segments[number] = segment
                    del pending[receiver]
                    worker.join()
        if progress is not None:
            progress(done.value)
        return [s for _, s in sorted(segments.items()) if s is not None], learnt
    finally:
        if none_frozen:
            gc.unfreeze()
        for worker, receiver in started:
            receiver.close()
            if worker.is_alive():
                worker.terminate()
            worker.join()


def _segment_worker(
    target: Path, items: Sequence[T], prepare: Prepare[T, R], done: Any, sender: Connection
) -> None:
    """In a forked process: prepare `items` and write them as one segment of `target`; what
    `prepare` said goes to the parent as it comes."""
    try:
        ix = whoosh_index.open_dir(str(target))
        # No lock: the parent holds the index's, and commits the segments itself.
        writer = FastSegmentWriter(ix, _lk=False)

        def counted(count: int) -> None:
            with done.get_lock():
                done.value += 1

        batch: list[R] = []

        def tell(said: R) -> None:
            batch.append(said)
            if len(batch) >= TELL_EVERY:
                sender.send(("learnt", None, batch))
                batch.clear()

        _add(writer, items, prepare, counted, tell)
        # Whoosh's own multiprocessing writer finishes its sub-segments this way.
        segment = writer._finalize_segment() if writer._added else None
        if segment is None:
            writer._close_segment()
        sender.send(("ok", segment, batch))
    except BaseException as exc:  # the parent says which process failed, and why
        sender.send(("error", None, "".join(traceback.format_exception_only(exc)).strip()))
    finally:
        sender.close()


def _document(article: IndexedArticle) -> dict[str, Any]:
    heading_text = "\n".join(h[1] for h in article.headings)
    keywords = "\n".join(article.keywords)
    spelled = "\n".join((article.title, keywords, article.summary, article.text))
    # Whoosh takes a list of strings as terms already analysed: its own chain of filters,
    # a generator and a Token per word, was two thirds of a full build.
    return {
        "slug": article.slug,
        "category": article.category,
        "draft": "1" if article.meta.get("draft") else "0",
        "title": index_terms(article.title),
        "keywords": index_terms(keywords),
        "summary": index_terms(article.summary),
        "headings": index_terms(heading_text),
        "body": index_terms(article.body_text),
        "spell": spelling_terms(spelled),
        "_stored_title": article.title,
        "html": article.html,
        "text": article.text,
        "meta": article.meta,
    }


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _write_atomically(
    path: Path, data: str | bytes | Sequence[bytes], durable: bool = True
) -> None:
    """`data` whole, or nothing: text as UTF-8, or bytes in pieces written one after the other."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(tmp, "wb") as handle:
        handle.writelines([data] if isinstance(data, bytes) else data)
        if durable:
            handle.flush()
            os.fsync(handle.fileno())
    os.replace(tmp, path)
    if not durable:
        return
    with contextlib.suppress(OSError):
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _remove_abandoned(index_dir: Path) -> None:
    """Generations an interrupted build left behind, never made live."""
    live = current_generation(index_dir)
    for path in index_dir.glob(f"{GENERATION_PREFIX}*"):
        if path != live and not (path / META).exists():
            shutil.rmtree(path, ignore_errors=True)
    for tmp in index_dir.glob(".*.tmp"):
        tmp.unlink(missing_ok=True)


def _prune(index_dir: Path, keep: set[str]) -> None:
    """Keep the live generation and the one before (a reader may still have it open)."""
    for path in index_dir.glob(f"{GENERATION_PREFIX}*"):
        if path.name not in keep:
            shutil.rmtree(path, ignore_errors=True)
