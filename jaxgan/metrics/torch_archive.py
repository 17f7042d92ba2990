"""Reading the tensors of a PyTorch archive (``torch.save`` / TorchScript ``.pt``) without torch.

Both formats are a zip file: ``<prefix>/data.pkl`` pickles the object tree (a state dict, or a
TorchScript module's attributes), and each tensor's storage is the raw little-endian bytes of
``<prefix>/data/<key>``. :func:`read` unpickles ``data.pkl`` with a restricted unpickler that
builds only plain containers, numpy arrays for tensors and :class:`Node` objects for TorchScript
modules; any other global in the pickle is refused (unpickling arbitrary classes would run
arbitrary code).
"""

from __future__ import annotations

import collections
import pickle
import zipfile
from typing import Any

import numpy as np

_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class ArchiveError(ValueError):
  """The file is not a PyTorch archive this reader understands."""


class Node:
  """One TorchScript module of the archive: its class name and its attributes (``attrs``)."""

  qualname = "Node"   # each archive class is a subclass naming its TorchScript class

  def __new__(cls, *args):
    del args
    node = super().__new__(cls)
    node.attrs = {}
    return node

  @property
  def kind(self) -> str:
    """The class name without its module (``Conv2dLayer``, ``InceptionA``, ``MaxPool2d``)."""
    return self.qualname.rsplit(".", 1)[-1]

  def __setstate__(self, state):
    self.attrs = dict(state)

  def children(self) -> dict[str, "Node"]:
    return {k: v for k, v in self.attrs.items() if isinstance(v, Node)}

  def __repr__(self):
    return f"Node({self.kind}, {sorted(self.attrs)})"


def _node_class(qualname: str):
  return type(qualname.rsplit(".", 1)[-1], (Node,), {"qualname": qualname})


def _storage_type(name: str):
  return ("storage_type", name)


def _rebuild_tensor(storage, offset, size, stride, requires_grad=False, hooks=None, *rest):
  del requires_grad, hooks, rest
  flat, itemsize = storage, storage.itemsize
  if not size:
    return flat[offset].copy()
  return np.lib.stride_tricks.as_strided(flat[offset:], shape=tuple(size),
                                         strides=tuple(s * itemsize for s in stride)).copy()


class _Unpickler(pickle.Unpickler):
  def __init__(self, file, archive: zipfile.ZipFile, prefix: str):
    super().__init__(file)
    self._archive, self._prefix = archive, prefix
    self._storages: dict[str, np.ndarray] = {}

  def find_class(self, module: str, name: str):
    if module.startswith("__torch__"):
      return _node_class(f"{module}.{name}")
    if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
      return _rebuild_tensor
    if (module, name) == ("torch.jit._pickle", "build_intlist"):
      return list
    if (module, name) == ("torch.jit._pickle", "build_doublelist"):
      return list
    if (module, name) == ("collections", "OrderedDict"):
      return collections.OrderedDict
    if module == "torch" and name in _STORAGE_DTYPES:
      return _storage_type(name)
    raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a PyTorch archive")

  def persistent_load(self, pid):
    kind, storage_type, key = pid[0], pid[1], pid[2]
    if kind != "storage" or not (isinstance(storage_type, tuple) and storage_type[0] == "storage_type"):
      raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")
    if key not in self._storages:
      raw = self._archive.read(f"{self._prefix}/data/{key}")
      self._storages[key] = np.frombuffer(raw, dtype=np.dtype(_STORAGE_DTYPES[storage_type[1]]).newbyteorder("<"))
    return self._storages[key]


def read(path: str) -> Any:
  """The unpickled object tree of a PyTorch archive: dicts, lists, numbers, numpy arrays for
  tensors, and :class:`Node` objects for TorchScript modules."""
  try:
    archive = zipfile.ZipFile(path)
  except (OSError, zipfile.BadZipFile) as e:
    raise ArchiveError(f"{path} is not a PyTorch archive (a zip file): {e}") from None
  with archive:
    pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pickles) != 1:
      raise ArchiveError(f"{path} has no single <prefix>/data.pkl: not a PyTorch archive")
    prefix = pickles[0].split("/")[0]
    with archive.open(pickles[0]) as f:
      try:
        return _Unpickler(f, archive, prefix).load()
      except (pickle.UnpicklingError, KeyError, EOFError) as e:
        raise ArchiveError(f"cannot read {path}: {e}") from None
