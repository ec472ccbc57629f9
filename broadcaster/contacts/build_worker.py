"""The records of a contacts file built into rows a batch at a time, here or in a worker process.

Reading and checking a row (phone, e-mail, names) costs about half of importing it: on request
(``contacts import --build-worker``) a second process builds the batches while this one stores the previous
ones. It costs more CPU in all (the batches cross a pipe), so it pays only with a second core to itself. The worker sends each batch as plain tuples, which cross a pipe far cheaper than the
dataclasses; the pipe holds one batch, so memory stays flat. A file-level error the worker meets comes back
as the same ``ContactsFileError``.
"""

from __future__ import annotations

import pickle
import struct
import subprocess
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Final

from broadcaster.contacts.phones import Phone, PhoneKind
from broadcaster.contacts.reader import DataRecords
from broadcaster.contacts.records import ContactRow, ContactsFileError, RowProblem
from broadcaster.contacts.row_builder import Built, RowBuilder
from broadcaster.i18n import current_language, set_language
from broadcaster.settings_sections import ContactsSettings

__all__ = ["built_batches"]


def built_batches(records: DataRecords, size: int, *, worker: bool) -> Iterator[list[Built]]:
    """Batches of ``size`` records of ``records``, built (without the duplicate check); ``records.progress``
    follows the reading either way."""
    if not worker:
        yield from _batches(records, size)
        return
    # A new interpreter running this module: no fork of a process holding database connections and threads,
    # and no second run of the caller's main script.
    command = [
        sys.executable,
        "-m",
        __name__,
        str(records.path),
        records.limits.model_dump_json(),
        str(size),
        current_language(),
    ]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)  # noqa: S603
    assert process.stdout is not None
    try:
        while True:
            kind, progress, payload = _read_frame(process.stdout)
            records.progress.rows, records.progress.bytes_read, records.progress.total_bytes = progress
            if kind == "batch":
                yield [_unpacked(item) for item in payload]
            elif kind == "end":
                return
            elif kind == "file-error":
                raise ContactsFileError(records.path, payload[0], fix=payload[1])
            elif kind == "os-error":
                raise OSError(*payload)
            else:
                raise RuntimeError(f"the contacts import's build worker failed:\n{payload}")
    finally:
        process.stdout.close()
        if process.poll() is None:  # this side stopped early: the worker has nothing left to do
            process.terminate()
        process.wait()


def _read_frame(stream: IO[bytes]) -> tuple[str, tuple[int, int, int | None], Any]:
    header = stream.read(_LENGTH.size)
    if len(header) < _LENGTH.size:
        raise RuntimeError("the contacts import's build worker stopped without a word (see its error above)")
    (length,) = _LENGTH.unpack(header)
    return pickle.loads(stream.read(length))  # type: ignore[no-any-return]  # noqa: S301  # our own worker's


_LENGTH: Final = struct.Struct("<Q")


def _batches(records: DataRecords, size: int) -> Iterator[list[Built]]:
    builder: RowBuilder | None = None
    batch: list[Built] = []
    for number, record in records:
        if builder is None:
            assert records.columns is not None  # known once a record is out
            builder = RowBuilder(records.columns)
        batch.append(builder.build_unchecked(number, record))
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _work(path: Path, limits: ContactsSettings, size: int, out: IO[bytes]) -> None:
    records = DataRecords(path, limits=limits)
    progress = records.progress

    def send(kind: str, payload: Any) -> None:
        state = (progress.rows, progress.bytes_read, progress.total_bytes)
        frame = pickle.dumps((kind, state, payload), protocol=pickle.HIGHEST_PROTOCOL)
        out.write(_LENGTH.pack(len(frame)) + frame)
        out.flush()

    try:
        for batch in _batches(records, size):
            send("batch", [_packed(built) for built in batch])
        send("end", None)
    except ContactsFileError as exc:
        send("file-error", (exc.problem, exc.fix))
    except OSError as exc:
        send("os-error", (exc.errno, exc.strerror))
    except Exception:  # said to the importer, which stops with it
        send("crash", traceback.format_exc())


_Packed = tuple[Any, ...]


def _packed(built: Built) -> _Packed:
    problems = [(p.row, p.column, p.value, p.reason, p.severity) for p in built.problems]
    row = built.row
    if row is None:
        return (built.number, None, problems, built.external_id, built.checked_at)
    phone = row.phone
    packed_phone = (
        None
        if phone is None
        else (phone.e164, phone.national, phone.kind.value, phone.carrier, phone.converted_from)
    )
    packed_row = (
        row.external_id,
        row.full_name,
        packed_phone,
        row.email,
        row.segment,
        row.agency,
        row.district,
        row.ward,
        row.language,
        row.tags,
        row.attributes,
        row.raw_phone,
    )
    return (built.number, packed_row, problems, built.external_id, built.checked_at)


def _unpacked(packed: _Packed) -> Built:
    number, packed_row, packed_problems, external_id, checked_at = packed
    problems = [RowProblem(*p) for p in packed_problems]
    if packed_row is None:
        return Built(number, None, problems, external_id, checked_at)
    (ext, name, packed_phone, email, segment, agency, district, ward, language, tags, attributes, raw) = (
        packed_row
    )
    phone = None
    if packed_phone is not None:
        e164, national, kind, carrier, converted_from = packed_phone
        phone = Phone(e164, national, PhoneKind(kind), carrier, converted_from)
    row = ContactRow(
        number,
        ext,
        name,
        phone,
        email,
        segment,
        agency,
        district,
        ward,
        language,
        tags,
        attributes,
        raw,
        tuple(problems),
    )
    return Built(number, row, problems, external_id, checked_at)


if __name__ == "__main__":
    _path, _limits, _size, _language = sys.argv[1:]
    set_language(_language)  # the file-level errors are said in the importer's language
    _work(Path(_path), ContactsSettings.model_validate_json(_limits), int(_size), sys.stdout.buffer)
