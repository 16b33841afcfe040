"""Opening a CSV file the way people actually produce them: UTF-8 with or without a BOM, comma,
semicolon, tab or pipe delimited; plus the FILE.errors.csv companion that explains rejected rows.

`inspect_csv` decides up front whether the file is usable at all (exists, is text in the expected
encoding, has a header), so a file that turns out to be binary or wrongly encoded halfway through is
refused before anything is written.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import ValidationError

DELIMITERS = (",", ";", "\t", "|")
_BLOCK = 1 << 20
# Long free-text cells (notes pasted from a CRM) are legitimate; the stdlib default is 128 KiB.
csv.field_size_limit(16 << 20)


@dataclass(frozen=True)
class CsvSource:
    path: Path
    encoding: str
    delimiter: str
    header: list[str]
    size: int


def _codec(encoding: str) -> str:
    """UTF-8 reads through `utf-8-sig`, so a BOM (Excel's "CSV UTF-8") is dropped, not glued to a header."""
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise ValidationError("--encoding", f"unknown encoding {encoding!r}") from None
    return "utf-8-sig" if name in ("utf-8", "utf-8-sig") else name


def _check_text(path: Path, codec: str) -> None:
    """Refuse binary files and text that does not decode, naming the line of the first bad byte."""
    decoder = codecs.getincrementaldecoder(codec)()
    offset = 0
    newlines = 0
    with path.open("rb") as fh:
        head = fh.read(8)
        if head.startswith(b"PK\x03\x04") or head.startswith(b"\xd0\xcf\x11\xe0"):
            raise ValidationError(str(path), "not a CSV file (looks like a spreadsheet); save it as CSV UTF-8")
        fh.seek(0)
        while block := fh.read(_BLOCK):
            if b"\x00" in block and "16" not in codec and "32" not in codec:
                line = newlines + block.count(b"\n", 0, block.index(b"\x00")) + 1
                raise ValidationError(f"{path}:{line}", "not a CSV file (binary content)")
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                line = newlines + block.count(b"\n", 0, max(exc.start, 0)) + 1
                raise ValidationError(
                    f"{path}:{line}",
                    f"not {codec.replace('-sig', '')} text (byte {block[exc.start:exc.start + 1]!r}); "
                    "save the file as CSV UTF-8 or pass --encoding",
                ) from None
            newlines += block.count(b"\n")
            offset += len(block)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise ValidationError(f"{path}:{newlines + 1}", "file ends in the middle of a character") from None


def sniff_delimiter(header_line: str) -> str:
    """The delimiter is the candidate that occurs most often in the header line outside quotes
    (header names rarely contain delimiters, unlike data cells such as "Acme, Inc.")."""
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for ch in header_line:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def inspect_csv(path: Path, encoding: str = "utf-8") -> CsvSource:
    if not path.exists():
        raise ValidationError(str(path), "file not found")
    if not path.is_file():
        raise ValidationError(str(path), "not a file")
    codec = _codec(encoding)
    _check_text(path, codec)
    with path.open("r", encoding=codec, newline="") as fh:
        first = ""
        for line in fh:
            if line.strip():
                first = line
                break
        if not first:
            raise ValidationError(str(path), "empty file (no header row)")
        delimiter = sniff_delimiter(first)
        header = next(csv.reader([first], delimiter=delimiter))
    return CsvSource(path=path, encoding=codec, delimiter=delimiter, header=[h.strip() for h in header],
                     size=path.stat().st_size)


@dataclass(slots=True)
class Record:
    line: int  # physical line the record starts on (1-based)
    cells: list[str]
    error: str | None = None  # the csv module could not parse this record


class RecordReader:
    """Iterates the data records after the header, with their starting line numbers; blank lines are
    skipped. `position()` is the byte offset read so far (for progress)."""

    def __init__(self, src: CsvSource) -> None:
        self._raw = src.path.open("rb")
        self._fh = io.TextIOWrapper(self._raw, encoding=src.encoding, newline="")
        self._reader = csv.reader(self._fh, delimiter=src.delimiter)

    def position(self) -> int:
        return self._raw.tell()

    def __iter__(self) -> Iterator[Record]:
        reader = self._reader
        last = 0
        header_seen = False
        while True:  # re-entered after a record the csv module cannot parse
            try:
                for cells in reader:
                    start, last = last + 1, reader.line_num
                    if len(cells) < 2 and not (cells and cells[0].strip()):
                        continue  # blank line
                    if header_seen:
                        yield Record(start, cells)
                    else:
                        header_seen = True
                return
            except csv.Error as exc:
                start, last = last + 1, reader.line_num
                yield Record(start, [], f"unreadable CSV record ({exc})")

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> RecordReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def errors_path(path: Path) -> Path:
    """people.csv → people.errors.csv"""
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    return path.with_name(f"{stem}.errors.csv")


class ErrorsFile:
    """FILE.errors.csv: `_line`, `_error`, then the rejected row as it was, so it can be fixed and
    re-imported as is. Created on the first rejected row; a stale one from an earlier run is removed."""

    def __init__(self, path: Path, header: list[str], delimiter: str) -> None:
        self.path = path
        self.header = header
        self.delimiter = delimiter
        self.count = 0
        self._fh: io.TextIOWrapper | None = None
        self._writer: csv._writer | None = None  # type: ignore[name-defined]

    def add(self, line: int, reason: str, cells: list[str]) -> None:
        if self._writer is None:
            self._fh = self.path.open("w", encoding="utf-8", newline="")
            self._writer = csv.writer(self._fh, delimiter=self.delimiter)
            self._writer.writerow(["_line", "_error", *self.header])
        self._writer.writerow([line, reason, *cells])
        self.count += 1

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        elif self.path.exists():
            self.path.unlink()
