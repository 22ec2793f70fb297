"""Reading ``.npz`` archives from untrusted files with bounded memory, never unpickling.

``numpy.load`` decompresses a member before its shape can be checked, so a 3 MB archive
can expand to gigabytes (a zip bomb), and a ``.npy`` header may claim 10**12 elements.
:class:`NpzReader` reads only the zip's central directory and each member's ``.npy`` header
when it opens, so callers can check names, dtypes, shapes and sizes first; then
:meth:`NpzReader.read` decompresses one member straight into a preallocated array of the
size its header declares, in 1 MiB chunks, refusing members whose zip entry declares any
other size. Object dtypes (pickles) are refused from the header, unread.
"""

from __future__ import annotations

import dataclasses
import math
import zipfile
from collections.abc import Mapping
from typing import IO, Any

import numpy as np

from behavioral.errors import CorruptDatasetError, UnsafeDatasetError

__all__ = ["NpyHeader", "NpzReader"]

_CHUNK = 1 << 20
_MAX_HEADER = 10_000  # numpy's own default cap on a .npy header
_KINDS = "biuf"  # bool, int, uint, float: all a dataset holds


@dataclasses.dataclass(frozen=True)
class NpyHeader:
    """One member's ``.npy`` header and zip entry.

    Attributes:
        name: the array's name (member name without ``.npy``).
        shape, dtype, fortran_order: as the header declares.
        offset: bytes of header before the data.
        nbytes: bytes of data the header implies.
    """

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool
    offset: int
    nbytes: int
    info: zipfile.ZipInfo = dataclasses.field(repr=False)


class NpzReader:
    """An open ``.npz`` archive whose members' headers are read and checked.

    Args:
        fileobj: the archive, opened for binary reading (seekable).
        label: how the archive is named in error messages.

    Raises:
        CorruptDatasetError: not a zip, duplicate or non-``.npy`` members, encrypted or
            unknown compression, a malformed header, or a zip entry whose declared size
            differs from what its header implies.
        UnsafeDatasetError: a member of object dtype (a pickle).
    """

    def __init__(self, fileobj: IO[bytes], *, label: str = "archive") -> None:
        self.label = label
        try:
            self._zip = zipfile.ZipFile(fileobj)
        except (zipfile.BadZipFile, EOFError, OSError, ValueError) as err:
            raise CorruptDatasetError(f"{label} is not a readable npz archive: {err}") from None
        try:
            self.headers: Mapping[str, NpyHeader] = self._read_headers()
        except BaseException:
            self._zip.close()
            raise

    def _read_headers(self) -> dict[str, NpyHeader]:
        infos = self._zip.infolist()
        names = [i.filename for i in infos]
        if len(set(names)) != len(names) or any(not n.endswith(".npy") for n in names):
            raise CorruptDatasetError(f"{self.label} holds unexpected members {names[:10]}")
        out = {}
        for info in infos:
            if info.flag_bits & 0x1:
                raise CorruptDatasetError(f"{self.label}/{info.filename} is encrypted")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise CorruptDatasetError(
                    f"{self.label}/{info.filename} uses zip compression method "
                    f"{info.compress_type}; only stored and deflated members are read"
                )
            header = self._header(info)
            out[header.name] = header
        return out

    def _header(self, info: zipfile.ZipInfo) -> NpyHeader:
        where = f"{self.label}/{info.filename}"
        try:
            with self._zip.open(info) as f:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(
                        f, max_header_size=_MAX_HEADER
                    )
                elif version == (2, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(
                        f, max_header_size=_MAX_HEADER
                    )
                else:
                    raise CorruptDatasetError(f"{where}: unsupported .npy version {version}")
                offset = f.tell()
        except CorruptDatasetError:
            raise
        except (zipfile.BadZipFile, EOFError, OSError, ValueError, SyntaxError) as err:
            raise CorruptDatasetError(f"{where}: unreadable .npy header ({err})") from None
        if dtype.hasobject:
            raise UnsafeDatasetError(
                f"{where} is a pickled object array ({dtype}); datasets never hold those, so "
                "it is refused without unpickling it"
            )
        if dtype.kind not in _KINDS or dtype.fields is not None or dtype.subdtype is not None:
            raise CorruptDatasetError(f"{where} has dtype {dtype}, which datasets do not hold")
        if not all(isinstance(d, int) and d >= 0 for d in shape):
            raise CorruptDatasetError(f"{where}: bad shape {shape!r} in its header")
        nbytes = math.prod(shape) * dtype.itemsize
        if info.file_size != offset + nbytes:
            raise CorruptDatasetError(
                f"{where}: its header describes {nbytes} bytes of {dtype} {tuple(shape)} but "
                f"the zip entry holds {info.file_size - offset} (truncated or forged)"
            )
        return NpyHeader(
            info.filename.removesuffix(".npy"),
            tuple(shape),
            dtype,
            bool(fortran),
            offset,
            nbytes,
            info,
        )

    def read(self, name: str) -> np.ndarray:
        """Decompress member ``name`` into a new array of its declared shape and dtype.

        Never holds more than the array plus one chunk: the data is streamed into the
        preallocated array. The zip's CRC is checked at the end.
        """
        h = self.headers[name]
        order = "F" if h.fortran_order and len(h.shape) > 1 else "C"
        arr = np.empty(h.shape, dtype=h.dtype, order=order)
        buf = memoryview((arr.T if order == "F" else arr).reshape(-1)).cast("B")
        where = f"{self.label}/{h.info.filename}"
        try:
            with self._zip.open(h.info) as f:
                f.read(h.offset)
                pos = 0
                while pos < h.nbytes:
                    chunk = f.read(min(_CHUNK, h.nbytes - pos))
                    if not chunk:
                        raise CorruptDatasetError(f"{where} is truncated")
                    buf[pos : pos + len(chunk)] = chunk
                    pos += len(chunk)
                if f.read(1):  # pragma: no cover - zipfile stops at the declared size
                    raise CorruptDatasetError(f"{where} holds more data than declared")
        except CorruptDatasetError:
            raise
        except (zipfile.BadZipFile, EOFError, OSError, ValueError) as err:
            raise CorruptDatasetError(f"cannot read {where}: {err}") from None
        return arr

    def close(self) -> None:
        self._zip.close()

    def __enter__(self) -> NpzReader:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
