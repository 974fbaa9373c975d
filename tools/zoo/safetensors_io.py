"""A small, strict safetensors writer and reader.

The writer stores F32 by default (the zoo's files); `dtypes` selects F16, BF16 or
I64 per tensor (BF16 is rounded from float32 to nearest even, like torch's
conversion). The reader returns BF16 tensors as their raw uint16 bits unless
asked to decode them to float32.

Format (see ../../shared/reference/formats.md, "safetensors"):
  bytes 0..8   N, little-endian u64: the header size
  bytes 8..8+N UTF-8 JSON object, padded with spaces so that 8+N is a multiple of 8:
               {"__metadata__": {"format": "pt"},
                "<name>": {"dtype": "F32", "shape": [...], "data_offsets": [BEGIN, END]}, ...}
  the rest     the byte buffer; offsets are relative to its start (file offset 8+N),
               END exclusive, tensors contiguous without gaps, row-major, little-endian.

Only numpy and the standard library are used, so check_zoo.py can use the reader
without torch.
"""

import json
import os
import struct

import numpy as np

MAX_HEADER = 100_000_000

# dtype name -> (numpy little-endian dtype, bytes per element)
_DTYPES = {
    "F64": ("<f8", 8), "F32": ("<f4", 4), "F16": ("<f2", 2),
    "I64": ("<i8", 8), "I32": ("<i4", 4), "I16": ("<i2", 2), "I8": ("i1", 1),
    "U64": ("<u8", 8), "U32": ("<u4", 4), "U16": ("<u2", 2), "U8": ("u1", 1),
    "BOOL": ("?", 1), "BF16": ("<u2", 2),
}
# what write_safetensors can store: dtype name -> numpy little-endian dtype
_WRITE = {"F32": "<f4", "F16": "<f2", "I64": "<i8", "BF16": "<u2"}


class SafetensorsError(ValueError):
    pass


def float32_to_bf16_bits(array):
    """float32 values -> bfloat16 bit patterns (uint16), rounding to nearest even."""
    bits = np.ascontiguousarray(array, dtype="<f4").view("<u4").astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype("<u2")
    nan = np.isnan(np.asarray(array, dtype=np.float32))
    if nan.any():
        rounded[nan] = 0x7FC0
    return rounded


def bf16_bits_to_float32(bits):
    """bfloat16 bit patterns (uint16) -> float32 values (exact)."""
    return (np.asarray(bits, dtype="<u2").astype("<u4") << 16).view("<f4")


def write_safetensors(path, tensors, metadata=None, dtypes=None):
    """Writes `tensors` (an ordered mapping name -> numpy array) to `path`.

    Every tensor is stored as F32 unless `dtypes` (name -> "F32", "F16", "BF16",
    "I64") says otherwise; values are converted to that dtype (BF16 from float32,
    rounded to nearest even). The data are laid out in the mapping's order.
    Returns the number of tensor bytes written (headers excluded).
    """
    meta = {"format": "pt"}
    if metadata:
        meta.update({str(k): str(v) for k, v in metadata.items()})
    header = {"__metadata__": meta}
    arrays = []
    offset = 0
    for name, array in tensors.items():
        if name == "__metadata__":
            raise SafetensorsError("tensor name __metadata__ is reserved")
        dtype = (dtypes or {}).get(name, "F32")
        if dtype not in _WRITE:
            raise SafetensorsError(f"tensor {name}: cannot write dtype {dtype}")
        if dtype == "BF16":
            a = float32_to_bf16_bits(array)
        else:
            a = np.ascontiguousarray(array, dtype=_WRITE[dtype])
        size = a.size * a.itemsize
        header[name] = {"dtype": dtype, "shape": [int(d) for d in a.shape],
                        "data_offsets": [offset, offset + size]}
        arrays.append(a)
        offset += size
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for a in arrays:
            f.write(memoryview(a).cast("B"))
    return offset


def read_header(path):
    """Parses and validates the header of a safetensors file.

    Returns (header dict without __metadata__, metadata dict or None, data start offset).
    Raises SafetensorsError on any violation of the format rules.
    """
    file_size = os.path.getsize(path)
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise SafetensorsError(f"{path}: shorter than 8 bytes")
        (n,) = struct.unpack("<Q", raw)
        if n > MAX_HEADER:
            raise SafetensorsError(f"{path}: header size {n} > {MAX_HEADER}")
        if 8 + n > file_size:
            raise SafetensorsError(f"{path}: header size {n} past end of file")
        text = f.read(n)
    if not text.startswith(b"{"):
        raise SafetensorsError(f"{path}: header does not start with '{{'")
    try:
        header = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SafetensorsError(f"{path}: header is not UTF-8 JSON: {e}") from e
    if not isinstance(header, dict):
        raise SafetensorsError(f"{path}: header is not a JSON object")
    metadata = header.pop("__metadata__", None)
    if metadata is not None:
        if not isinstance(metadata, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise SafetensorsError(f"{path}: __metadata__ is not a string->string map")
    spans = []
    for name, info in header.items():
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise SafetensorsError(f"{path}: tensor {name}: bad entry {info!r}")
        if info["dtype"] not in _DTYPES:
            raise SafetensorsError(f"{path}: tensor {name}: unsupported dtype {info['dtype']}")
        shape = info["shape"]
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise SafetensorsError(f"{path}: tensor {name}: bad shape {shape!r}")
        begin, end = info["data_offsets"]
        numel = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if end - begin != numel * _DTYPES[info["dtype"]][1] or begin < 0:
            raise SafetensorsError(
                f"{path}: tensor {name}: data_offsets {begin},{end} do not match "
                f"shape {shape} of {info['dtype']}")
        spans.append((begin, end, name))
    spans.sort()
    pos = 0
    for begin, end, name in spans:
        if begin != pos:
            raise SafetensorsError(f"{path}: tensor {name}: gap or overlap at offset {begin} "
                                   f"(expected {pos})")
        pos = end
    if 8 + n + pos != file_size:
        raise SafetensorsError(f"{path}: buffer ends at {8 + n + pos}, file size is {file_size}")
    return header, metadata, 8 + n


def read_safetensors(path, decode_bf16=False):
    """Reads every tensor of a safetensors file: returns (dict name -> numpy array, metadata).

    BF16 tensors come back as uint16 bit patterns, or as float32 with decode_bf16.
    """
    header, metadata, start = read_header(path)
    data = np.memmap(path, dtype=np.uint8, mode="r")
    out = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        np_dtype = _DTYPES[info["dtype"]][0]
        out[name] = np.frombuffer(data[start + begin:start + end], dtype=np_dtype).reshape(
            info["shape"])
        if decode_bf16 and info["dtype"] == "BF16":
            out[name] = bf16_bits_to_float32(out[name])
    return out, metadata


def read_index(index_path):
    """Reads and validates a sharded checkpoint's model.safetensors.index.json.

    Checks that every shard exists, that every tensor of every shard is listed
    under that shard and vice versa, and that metadata.total_size equals the sum
    of tensor bytes. Returns (weight_map, sorted shard paths).
    """
    folder = os.path.dirname(index_path)
    with open(index_path, encoding="utf-8") as f:
        index = json.load(f)
    if set(index) != {"metadata", "weight_map"}:
        raise SafetensorsError(f"{index_path}: keys {sorted(index)} != metadata, weight_map")
    weight_map = index["weight_map"]
    shards = sorted(set(weight_map.values()))
    total = 0
    seen = {}
    for shard in shards:
        path = os.path.join(folder, shard)
        if not os.path.isfile(path):
            raise SafetensorsError(f"{index_path}: shard {shard} does not exist")
        header, _, _ = read_header(path)
        for name, info in header.items():
            if name in seen:
                raise SafetensorsError(f"{index_path}: tensor {name} in {seen[name]} and {shard}")
            seen[name] = shard
            begin, end = info["data_offsets"]
            total += end - begin
    if seen != weight_map:
        missing = sorted(set(weight_map) ^ set(seen))[:5]
        wrong = sorted(k for k in set(weight_map) & set(seen) if weight_map[k] != seen[k])[:5]
        raise SafetensorsError(f"{index_path}: weight_map does not match the shards "
                               f"(listed/present mismatch: {missing}, wrong shard: {wrong})")
    if index["metadata"].get("total_size") != total:
        raise SafetensorsError(f"{index_path}: metadata.total_size "
                               f"{index['metadata'].get('total_size')} != tensor bytes {total}")
    return weight_map, [os.path.join(folder, s) for s in shards]
