"""Whoosh's segment writer, with its postings kept by term in memory instead of sorted on disk.

Whoosh 2.7's writer (pinned: the project is no longer released) pickles every posting to a
run file, merges the runs back with heapq and, while writing them, reads each posting's
field length from the columns it has just written. A full build of 3,000 articles spent a
third of its time there. Here a posting is 20 bytes of arrays under its term, ordered by
construction (documents come in increasing numbers), and the lengths are read once per field.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from typing import Any

from whoosh.codec.whoosh3 import W3Codec
from whoosh.writing import SegmentWriter

Posting = tuple[str, bytes, int, float, Any]  # field, term, document, weight, value bytes
# Postings a block of the postings file (Whoosh's default: 128). A query reads every posting of
# its terms, and each block costs a seek, a decompression and an unpickling of its own: at
# 20,000 articles, blocks of 1,024 take a never-seen query from 9 to 7.6 ms of CPU and a
# suggestion from 4.8 to 3.4 ms, for an index 7 % smaller built in the same time. Readers
# take any block size: indexes written with the old one are read as they are.
POSTINGS_BLOCK = 1024


class TermPool:
    """What `SegmentWriter` needs of its posting pool, held as arrays under each term.

    A posting is its document number and the number of its (weight, value) pair: a few dozen
    pairs are met in a whole build (term frequencies), so 8 bytes a posting instead of 20 and
    an object pointer. A build's worker holds millions of postings until it writes them."""

    def __init__(self) -> None:
        self.fieldnames: set[str] = set()
        self._terms: dict[tuple[str, bytes], tuple[array[int], array[int]]] = {}
        self._pair_ids: dict[tuple[float, Any], int] = {}
        self._pairs: list[tuple[float, Any]] = []
        self._unsorted: set[tuple[str, bytes]] = set()

    def add(self, item: Posting) -> None:
        fieldname, term, docnum, weight, value = item
        key = (fieldname, term)
        postings = self._terms.get(key)
        if postings is None:
            self.fieldnames.add(fieldname)
            postings = self._terms[key] = (array("i"), array("I"))
        elif postings[0][-1] > docnum:  # a merged segment's documents may come later
            self._unsorted.add(key)
        pair = (weight, value)
        number = self._pair_ids.get(pair)
        if number is None:
            number = self._pair_ids[pair] = len(self._pairs)
            self._pairs.append(pair)
        postings[0].append(docnum)
        postings[1].append(number)

    def iter_postings(self) -> Iterator[Posting]:
        """By field, term and document: the order Whoosh's field writer expects."""
        pairs = self._pairs
        for key in sorted(self._terms):
            fieldname, term = key
            docnums, numbers = self._terms[key]
            rows = zip(docnums, numbers, strict=True)
            for docnum, number in sorted(rows) if key in self._unsorted else rows:
                weight, value = pairs[number]
                yield fieldname, term, docnum, weight, value

    def cleanup(self) -> None:
        self._terms.clear()

    def save(self) -> None:  # Whoosh's multiprocessing writer only: never used here
        raise NotImplementedError


class _Lengths:
    """A per-document reader whose field lengths are read once per field, not per posting."""

    def __init__(self, reader: Any) -> None:
        self._reader = reader
        self._fields: dict[str, list[Any]] = {}

    def doc_field_length(self, docnum: int, fieldname: str, default: int = 0) -> Any:
        lengths = self._fields.get(fieldname)
        if lengths is None:
            length_of = self._reader.doc_field_length
            count = self._reader.doc_count_all()
            lengths = self._fields[fieldname] = [
                length_of(d, fieldname, default) for d in range(count)
            ]
        return lengths[docnum]


class FastSegmentWriter(SegmentWriter):  # type: ignore[misc]
    """Whoosh's `SegmentWriter` with a `TermPool`: the same segment files, written faster."""

    def __init__(self, ix: Any, **kwargs: Any) -> None:
        kwargs.setdefault("codec", W3Codec(blocklimit=POSTINGS_BLOCK))
        super().__init__(ix, **kwargs)
        self.pool = TermPool()

    def _flush_segment(self) -> None:
        self.perdocwriter.close()
        reader = self.per_document_reader() if self.codec.length_stats else None
        lengths = _Lengths(reader) if reader is not None else None
        self.fieldwriter.add_postings(self.schema, lengths, self.pool.iter_postings())
        self.fieldwriter.close()
        if reader is not None:
            reader.close()
