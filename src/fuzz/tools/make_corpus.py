#!/usr/bin/env python3
"""Writes the hostile-input corpora of src/fuzz/ (README.md there).

    python3 src/fuzz/tools/make_corpus.py            # rewrites src/fuzz/corpus/

corpus/http/: one raw HTTP/1.1 request per file, bytes exactly as sent on the
wire, and MANIFEST.tsv (file, expect, flags, what) that hostile_corpus_test.cc
reads. Every request is wrong in a way that must give a client error whatever
HTTP library the server uses: where libraries may legitimately differ (400
vs 431 for a huge header, 404 vs 405 for a wrong method, an HTTP-library
answer that is not JSON) the manifest accepts a class or lists alternatives.
Each request is built so that no lenient reading of it is a valid request
(e.g. a malformed header goes to an unknown path, a strange framing carries
a malformed JSON body), and none changes the server's state (no successful
load, unload, reconfiguration or shared-memory registration).

corpus/<target>/: seed inputs of the fuzz harnesses (a few valid, many
invalid); the replay test (fuzz_replay_test) runs every file through them.
Files there whose names this script does not use (crash-*, regress-*: inputs a
fuzzer found) are kept.

The server the corpus is written for: `modelgrid serve` over a copy of the
small zoo's `digits` (input "input" FP32 [-1,64], output "logits" FP32
[-1,10], max_batch_size 64) with --max-body-bytes 1048576.
"""

import gzip
import json
import os
import struct
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(os.path.dirname(HERE), "corpus")
MAX_BODY = 1 << 20

INFER = "/v2/models/digits/infer"
GOOD_INPUT = {"name": "input", "shape": [1, 64], "datatype": "FP32", "data": [0.5] * 64}


def dumps(value):
    return json.dumps(value, separators=(",", ":")).encode()


def good_body(**top):
    body = {"inputs": [dict(GOOD_INPUT)]}
    body.update(top)
    return dumps(body)


def with_input(**fields):
    """An infer body whose single input is GOOD_INPUT with `fields` replaced;
    a field set to DROP is removed."""
    t = dict(GOOD_INPUT)
    for k, v in fields.items():
        if v is DROP:
            t.pop(k, None)
        else:
            t[k] = v
    return dumps({"inputs": [t]})


DROP = object()


def raw_input_body(fragment):
    """An infer body whose input object is the raw JSON text `fragment`."""
    return b'{"inputs":[' + fragment + b"]}"


def request(method, path, body=b"", headers=(), version="HTTP/1.1", length=True, host=True,
            close=True, content_type=None):
    """Raw request bytes. `length`: add Content-Length (when there is a body or
    the method is POST). `headers`: (name, value) pairs, values str or bytes."""
    lines = [f"{method} {path} {version}".encode() if isinstance(path, str)
             else method.encode() + b" " + path + b" " + version.encode()]
    if host:
        lines.append(b"Host: 127.0.0.1")
    if content_type is None and method in ("POST", "PUT", "PATCH") and body:
        content_type = "application/json"
    if content_type:
        lines.append(b"Content-Type: " + content_type.encode())
    for name, value in headers:
        if isinstance(value, str):
            value = value.encode()
        lines.append(name.encode() + b": " + value)
    if length and (body or method in ("POST", "PUT", "PATCH")):
        lines.append(b"Content-Length: " + str(len(body)).encode())
    if close:
        lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def post(path, body, **kw):
    return request("POST", path, body, **kw)


def get(path, **kw):
    return request("GET", path, **kw)


def chunked(body, size=None):
    """`body` as one chunk (with its real size unless `size` is given) and the last chunk."""
    size = size if size is not None else f"{len(body):x}"
    return size.encode() + b"\r\n" + body + b"\r\n0\r\n\r\n"


# --------------------------------------------------------------------------
# The HTTP corpus: (file stem, raw bytes, expect, flags, what).
# expect: alternatives separated by "|": an exact status ("400"), a class
#   ("4xx"), or "close" (the server may close the connection without an
#   answer: only for requests a server cannot answer before the client ends
#   them, sent with the "shut" flag).
# flags: "-" or a comma list of: "shut" (the client half-closes after
#   sending), "nojson" (the answer may come from the HTTP library itself and
#   need not be a JSON error), "head" (an answer without a body).

HTTP = []


def add(stem, raw, expect, what, flags="-"):
    HTTP.append((stem, raw, expect, flags, what))


def infer_400(stem, body, what, path=INFER, expect="400"):
    add(stem, post(path, body), expect, what)


def http_cases():
    good = good_body()

    # ---- malformed JSON bodies on infer -------------------------------------
    j = "json-"
    infer_400(j + "empty-body", b"", "empty infer body (Content-Length: 0)")
    infer_400(j + "whitespace-only", b" \r\n\t ", "body of whitespace only")
    infer_400(j + "truncated-object", b'{"inputs": [', "truncated after an opening bracket")
    infer_400(j + "truncated-string", b'{"inputs": [{"name": "inp', "truncated inside a string")
    infer_400(j + "truncated-in-data", good[: len(good) // 2], "valid body cut in the middle of data")
    infer_400(j + "truncated-last-brace", good[:-1], "valid body without its last brace")
    infer_400(j + "truncated-number", good[:-7] + b"0.", "truncated after '0.'")
    infer_400(j + "truncated-escape", b'{"id": "a\\', "truncated after a backslash in a string")
    infer_400(j + "truncated-unicode-escape", b'{"id": "\\u12', "truncated \\u escape")
    infer_400(j + "trailing-garbage", good + b" x", "valid body followed by garbage")
    infer_400(j + "two-documents", good + good, "two JSON documents back to back")
    infer_400(j + "trailing-comma-array",
              raw_input_body(b'{"name":"input","shape":[1,64],"datatype":"FP32","data":['
                             + b"0.5," * 64 + b"]}"), "trailing comma in an array")
    infer_400(j + "trailing-comma-object", good[:-1] + b",}", "trailing comma in an object")
    infer_400(j + "single-quotes", good.replace(b'"', b"'"), "strings in single quotes")
    infer_400(j + "unquoted-keys", b'{inputs: []}', "unquoted key")
    infer_400(j + "comment", b'/* c */' + good, "a C comment before the document")
    infer_400(j + "line-comment", good[:-1] + b"// c\n}", "a // comment inside the document")
    # NaN / Infinity / -Infinity are read only as (elements of) a tensor's "data"
    # (infer_codec.h); anywhere else, or spelled otherwise, they are malformed.
    infer_400(j + "nan-in-parameters", good[:-1] + b',"parameters":{"x":NaN}}',
              "NaN as a request parameter")
    infer_400(j + "infinity-in-shape", with_input(shape="X").replace(b'"X"', b"[1,Infinity]"),
              "Infinity in a shape")
    infer_400(j + "nan-as-id", good[:-1] + b',"id":NaN}', "NaN as the id")
    infer_400(j + "nan-as-body", b"NaN", "the body is NaN")
    infer_400(j + "nan-in-output-parameters",
              good[:-1] + b',"outputs":[{"name":"logits","parameters":{"binary_data":NaN}}]}',
              "NaN in an output's parameters")
    for name, token in [("nan-lowercase", b"nan"), ("nan-negative", b"-NaN"),
                        ("infinity-plus", b"+Infinity"), ("inf-short", b"Inf"),
                        ("infinity-lowercase", b"infinity"), ("nan-glued", b"NaNx"),
                        ("nan-digit-glued", b"NaN1"), ("nan-quoted-as-fp32", b'"NaN"')]:
        infer_400(j + name + "-in-data", good.replace(b"0.5,", token + b",", 1),
                  f"{token.decode()} as an FP32 data element")
    infer_400(j + "nan-in-int32-data",
              with_input(datatype="INT32", data=[1] * 63 + ["XX"]).replace(b'"XX"', b"NaN"),
              "NaN in INT32 data")
    infer_400(j + "infinity-in-bytes-data",
              with_input(datatype="BYTES", data=["a"] * 63 + ["XX"]).replace(b'"XX"', b"Infinity"),
              "Infinity in BYTES data")
    infer_400(j + "nan-in-fp32-data-wrong-count",
              with_input(data=[0.5] * 62 + ["XX"]).replace(b'"XX"', b"NaN"),
              "NaN in FP32 data of 63 elements for [1,64]")
    infer_400(j + "hex-number", good.replace(b"0.5,", b"0x10,", 1), "hexadecimal number")
    infer_400(j + "leading-zero", good.replace(b"0.5,", b"01,", 1), "number with a leading zero")
    infer_400(j + "plus-sign", good.replace(b"0.5,", b"+1,", 1), "number with a plus sign")
    infer_400(j + "bare-minus", good.replace(b"0.5,", b"-,", 1), "a lone minus sign")
    infer_400(j + "dot-number", good.replace(b"0.5,", b".5,", 1), "number starting with a dot")
    infer_400(j + "exponent-without-digits", good.replace(b"0.5,", b"1e,", 1), "'1e'")
    infer_400(j + "control-char-in-string", b'{"id": "a\x01b", "inputs": []}',
              "raw control character in a string")
    infer_400(j + "raw-newline-in-string", b'{"id": "a\nb", "inputs": []}',
              "raw newline in a string")
    infer_400(j + "lone-surrogate-escape", raw_input_body(b'{"name":"\\ud800"}'),
              "\\ud800 without its low surrogate")
    infer_400(j + "bad-escape", b'{"id": "\\q", "inputs": []}', "unknown escape \\q")
    infer_400(j + "utf8-invalid-ff", b'{"id": "\xff", "inputs": []}', "byte 0xFF in a string")
    infer_400(j + "utf8-overlong", b'{"id": "\xc0\xaf", "inputs": []}', "overlong UTF-8 (C0 AF)")
    infer_400(j + "utf8-surrogate", b'{"id": "\xed\xa0\x80", "inputs": []}',
              "UTF-8 encoded surrogate (ED A0 80)")
    infer_400(j + "utf8-truncated-sequence", b'{"id": "\xe2\x82", "inputs": []}',
              "UTF-8 sequence cut short")
    infer_400(j + "utf8-past-10ffff", b'{"id": "\xf4\x90\x80\x80", "inputs": []}',
              "code point past U+10FFFF")
    infer_400(j + "utf8-invalid-in-name", raw_input_body(
        b'{"name":"in\x80put","shape":[1,64],"datatype":"FP32","data":[' +
        b",".join([b"0.5"] * 64) + b"]}"), "continuation byte alone in an input name")
    infer_400(j + "utf8-invalid-outside-string", b'{\xff"inputs": []}', "0xFF between tokens")
    infer_400(j + "utf16-body", good.decode().encode("utf-16-le"), "the body in UTF-16LE")
    infer_400(j + "bom-then-wrong-type", b'\xef\xbb\xbf{"inputs": 5}',
              "UTF-8 BOM, then a body with a wrong type")
    infer_400(j + "nul-byte-between-tokens", good[:1] + b"\x00" + good[1:], "NUL between tokens")
    infer_400(j + "deep-array-100000", b"[" * 100000, "10^5 nested '[' (stack exhaustion)")
    infer_400(j + "deep-object-25000", b'{"a":' * 25000, "25000 nested objects")
    infer_400(j + "deep-balanced-100000", b"[" * 100000 + b"]" * 100000,
              "10^5 nested arrays, balanced")
    infer_400(j + "deep-in-data-100000", raw_input_body(
        b'{"name":"input","shape":[1,64],"datatype":"FP32","data":' + b"[" * 100000 +
        b"0.5"), "10^5 nested arrays as an input's data (unterminated)")
    infer_400(j + "deep-in-parameters-100000",
              good[:-1] + b',"parameters":{"x":' + b"[" * 100000,
              "10^5 nested arrays in the request parameters (unterminated)")
    infer_400(j + "deep-65", raw_input_body(
        b'{"name":"input","shape":[1,64],"datatype":"FP32","data":' + b"[" * 62 + b"0.5" +
        b"]" * 62 + b"}"), "nesting one level past the limit of 64")
    infer_400(j + "huge-exponent-fp32", good.replace(b"0.5,", b"1e400,", 1),
              "1e400 (past double) in FP32 data")
    infer_400(j + "huge-exponent-fp64",
              with_input(datatype="FP64", data=[0.5] * 63 + ["XX"]).replace(b'"XX"', b"1e400"),
              "1e400 in FP64 data")
    infer_400(j + "huge-exponent-digits", good.replace(b"0.5,", b"1e99999999999999999999,", 1),
              "an exponent of 20 digits")
    infer_400(j + "huge-integer-literal", good.replace(b"0.5,", b"9" * 400 + b",", 1),
              "a 400-digit integer in FP32 data")
    infer_400(j + "fp32-overflow", good.replace(b"0.5,", b"3.5e38,", 1),
              "3.5e38 rounds past FP32's largest value")
    infer_400(j + "float-in-shape", with_input(shape=[1, 64.0]), "shape [1, 64.0]")
    infer_400(j + "exponent-in-shape", with_input(shape="X").replace(b'"X"', b"[1,6.4e1]"),
              "shape [1, 6.4e1]")
    infer_400(j + "long-string-id", dumps({"id": "x" * 100000}),
              "a 100 kB id and no inputs")
    infer_400(j + "many-keys", dumps({"parameters": {f"k{i}": i for i in range(5000)}}),
              "5000 parameters and no inputs")
    infer_400(j + "many-inputs", dumps({"inputs": [dict(GOOD_INPUT, name=f"in{i}", data=[0.5],
                                                         shape=[1]) for i in range(1000)]}),
              "1000 inputs the model does not have")
    infer_400(j + "dup-key-inputs", b'{"inputs": 5, "inputs": "x"}',
              "duplicate key \"inputs\", both values wrong")
    infer_400(j + "dup-key-shape", raw_input_body(
        b'{"name":"input","shape":[-1],"shape":"x","datatype":"FP32","data":[0.5]}'),
        "duplicate key \"shape\", both values wrong")
    infer_400(j + "dup-key-datatype", raw_input_body(
        b'{"name":"input","shape":[1,64],"datatype":"FP128","datatype":"INT4","data":[0.5]}'),
        "duplicate key \"datatype\", both unknown")
    infer_400(j + "dup-key-data", raw_input_body(
        b'{"name":"input","shape":[1,64],"datatype":"FP32","data":[1],"data":[1,2]}'),
        "duplicate key \"data\", both with the wrong count")
    infer_400(j + "dup-key-escaped", b'{"inputs": 5, "\\u0069nputs": "x"}',
              "duplicate key spelled with an escape")
    infer_400(j + "dup-key-id-no-inputs", b'{"id": "a", "id": "b"}', "duplicate id, no inputs")

    # ---- the body is not an object; wrong types of top-level fields ---------
    t = "type-"
    for name, body in [("body-array", b"[]"), ("body-null", b"null"), ("body-string", b'"x"'),
                       ("body-number", b"5"), ("body-true", b"true")]:
        infer_400(t + name, body, f"the body is {body.decode()}, not an object")
    for name, value in [("number", 5), ("float", 1.5), ("array", []), ("object", {}),
                        ("null", None), ("bool", True)]:
        infer_400(t + "id-" + name, good_body(id=value), f"\"id\": {json.dumps(value)}")
    for name, value in [("array", []), ("string", "x"), ("number", 5), ("null", None),
                        ("bool", False)]:
        infer_400(t + "parameters-" + name, good_body(parameters=value),
                  f"\"parameters\": {json.dumps(value)}")
    infer_400(t + "inputs-missing", dumps({"id": "x"}), "no \"inputs\"")
    for name, value in [("object", {}), ("string", "x"), ("number", 5), ("null", None),
                        ("bool", True), ("empty", []), ("of-number", [5]), ("of-null", [None]),
                        ("of-array", [[]]), ("of-string", ["input"]), ("of-empty-object", [{}])]:
        infer_400(t + "inputs-" + name, dumps({"inputs": value}), f"\"inputs\": {json.dumps(value)}")
    for name, value in [("object", {}), ("string", "x"), ("number", 5), ("null", None),
                        ("of-number", [5]), ("of-null", [None]), ("of-empty-object", [{}]),
                        ("name-number", [{"name": 5}]),
                        ("parameters-array", [{"name": "logits", "parameters": []}]),
                        ("binary-data-string",
                         [{"name": "logits", "parameters": {"binary_data": "yes"}}]),
                        ("binary-data-number", [{"name": "logits", "parameters": {"binary_data": 1}}]),
                        ("duplicate", [{"name": "logits"}, {"name": "logits"}]),
                        ("unknown", [{"name": "probabilities"}]),
                        ("shared-memory-unknown-region", [{"name": "logits", "parameters": {
                            "shared_memory_region": "nosuch", "shared_memory_byte_size": 40}}])]:
        infer_400(t + "outputs-" + name, good_body(outputs=value),
                  f"\"outputs\": {json.dumps(value)}",
                  expect="4xx" if name.startswith("shared-memory") else "400")
    for name, value in [("number", 5), ("null", None), ("array", ["input"]), ("missing", DROP),
                        ("empty", ""), ("unknown", "pixels"), ("wrong-case", "INPUT"),
                        ("trailing-space", "input ")]:
        infer_400(t + "input-name-" + name, with_input(name=value), f"input name {name}")
    infer_400(t + "input-name-duplicate", dumps({"inputs": [GOOD_INPUT, GOOD_INPUT]}),
              "two inputs named \"input\"")
    infer_400(t + "input-extra-unknown",
              dumps({"inputs": [GOOD_INPUT, dict(GOOD_INPUT, name="extra")]}),
              "the model's input and one it does not have")
    infer_400(t + "input-not-object-after-good", dumps({"inputs": [GOOD_INPUT, 5]}),
              "a good input then a number")
    for name, value in [("missing", DROP), ("null", None), ("string", "1,64"), ("number", 64),
                        ("object", {}), ("string-dim", [1, "64"]), ("null-dim", [1, None]),
                        ("bool-dim", [1, True]), ("nested", [[1, 64]])]:
        infer_400(t + "shape-" + name, with_input(shape=value), f"shape {name}")
    for name, value in [("missing", DROP), ("number", 5), ("null", None), ("array", ["FP32"]),
                        ("empty", ""), ("lowercase", "fp32"), ("unknown", "FP128"),
                        ("triton-style", "TYPE_FP32"), ("numpy-style", "float32"),
                        ("trailing-space", "FP32 "), ("int4", "INT4")]:
        infer_400(t + "datatype-" + name, with_input(datatype=value), f"datatype {name}")
    for name, value in [("missing", DROP), ("null", None), ("string", "0.5"), ("number", 0.5),
                        ("object", {}), ("bool", True), ("of-null", [None] * 64),
                        ("of-string", ["0.5"] * 64), ("of-bool", [True] * 64),
                        ("of-object", [{}] * 64), ("empty", []), ("too-few", [0.5] * 63),
                        ("too-many", [0.5] * 65), ("ragged-short", [[0.5] * 32, [0.5] * 31]),
                        ("of-empty-arrays", [[]] * 64)]:
        infer_400(t + "data-" + name, with_input(data=value), f"data {name}")

    # ---- shapes -------------------------------------------------------------
    s = "shape-"
    for name, shape in [("negative-batch", [-1, 64]), ("negative-dim", [1, -64]),
                        ("int64-min", [-(2 ** 63), 64]), ("int64-max", [2 ** 63 - 1, 64]),
                        ("2pow63", [2 ** 63, 64]), ("2pow64-minus-1", [2 ** 64 - 1, 1]),
                        ("2pow64", [2 ** 64, 1]), ("below-int64-min", [-(2 ** 63) - 1, 64]),
                        ("product-overflows", [2 ** 32, 2 ** 32, 64]),
                        ("over-element-limit", [2 ** 40 + 1]),
                        ("at-element-limit", [2 ** 20, 2 ** 20]),
                        ("rank-3", [1, 64, 1]), ("rank-1", [64]), ("scalar", []),
                        ("count-mismatch-2x64", [2, 64]), ("wrong-features", [1, 63]),
                        ("10000-dims", [1] * 10000)]:
        data = [0.5] * (63 if name == "wrong-features" else 1 if name in ("scalar", "10000-dims")
                        else 64)
        infer_400(s + name, with_input(shape=shape, data=data), f"shape {json.dumps(shape)[:60]}")

    # ---- datatypes and elements ---------------------------------------------
    d = "dtype-"

    def element(dtype, bad, good_value=0, count=64):
        return with_input(datatype=dtype, data=[good_value] * (count - 1) + ["XX"]).replace(
            b'"XX"', bad)

    for name, dtype, bad, ok in [
            ("fp32-1e39", "FP32", b"1e39", 0.5), ("fp32-neg-1e39", "FP32", b"-1e39", 0.5),
            ("fp32-string", "FP32", b'"1"', 0.5), ("fp32-null", "FP32", b"null", 0.5),
            ("fp32-bool", "FP32", b"true", 0.5), ("fp32-object", "FP32", b'{"v":1}', 0.5),
            ("int32-fraction", "INT32", b"1.5", 0), ("int32-string", "INT32", b'"1"', 0),
            ("int32-overflow", "INT32", b"2147483648", 0), ("uint8-300", "UINT8", b"300", 0),
            ("uint8-negative", "UINT8", b"-1", 0), ("int8-128", "INT8", b"128", 0),
            ("int16-40000", "INT16", b"40000", 0), ("uint16-65536", "UINT16", b"65536", 0),
            ("uint32-negative", "UINT32", b"-1", 0),
            ("int64-2pow63", "INT64", b"9223372036854775808", 0),
            ("int64-float-form", "INT64", b"1.0", 0), ("uint64-negative", "UINT64", b"-1", 0),
            ("uint64-2pow64", "UINT64", b"18446744073709551616", 0),
            ("bool-2", "BOOL", b"2", False), ("bool-string", "BOOL", b'"true"', False),
            ("bool-zero", "BOOL", b"0", False), ("fp16-70000", "FP16", b"70000", 0.5),
            ("bf16-1e39", "BF16", b"1e39", 0.5), ("fp64-string", "FP64", b'"x"', 0.5),
            ("bytes-number", "BYTES", b"5", "a"), ("bytes-null", "BYTES", b"null", "a"),
            ("bytes-object", "BYTES", b'{"a":1}', "a"), ("bytes-bool", "BYTES", b"false", "a"),
            ("bytes-lone-surrogate", "BYTES", b'"\\udc00"', "a"),
            ("bytes-invalid-utf8", "BYTES", b'"\xc3\x28"', "a")]:
        infer_400(d + name, element(dtype, bad, ok), f"{dtype} data with element {bad[:20]!r}")
    # Known datatypes, well-formed data, but not the model's FP32.
    for dtype, value in [("FP64", 0.5), ("FP16", 0.5), ("BF16", 0.5), ("INT64", 1), ("UINT8", 1),
                         ("BOOL", True), ("BYTES", "a"), ("INT8", -1)]:
        infer_400(d + "model-wants-fp32-got-" + dtype.lower(),
                  with_input(datatype=dtype, data=[value] * 64),
                  f"well-formed {dtype} data for an FP32 input")
    infer_400(d + "bytes-nul-elements", with_input(datatype="BYTES", data=["a\u0000b"] * 64),
              "BYTES elements holding NUL, for an FP32 input")

    # ---- Triton's binary data extension -------------------------------------
    b = "binary-"
    fp32_row = struct.pack("<64f", *([0.5] * 64))
    bin_json = with_input(data=DROP, parameters={"binary_data_size": 256})

    def binary(json_part, tail, header=None, path=INFER, extra=()):
        h = str(len(json_part)) if header is None else header
        hdrs = ([("Inference-Header-Content-Length", h)] if h is not False else []) + list(extra)
        return post(path, json_part + tail, headers=hdrs, content_type="application/octet-stream")

    for name, value in [("not-a-number", "abc"), ("negative", "-1"), ("empty", ""),
                        ("fraction", "1.5"), ("hex", "0x10"), ("plus", "+10"),
                        ("overflow", "99999999999999999999999"), ("2pow64", "18446744073709551616"),
                        ("inner-space", "1 0"), ("past-body", "5000"),
                        ("past-body-2pow32", "4294967296")]:
        add(b + "header-" + name, binary(bin_json, fp32_row, header=value), "400",
            f"Inference-Header-Content-Length: {value!r}")
    add(b + "header-zero", binary(bin_json, fp32_row, header="0"), "400",
        "header length 0: the JSON part is empty")
    add(b + "header-cuts-json", binary(bin_json, fp32_row, header=str(len(bin_json) - 5)), "400",
        "header length 5 bytes short of the JSON")
    add(b + "header-covers-binary", binary(bin_json, fp32_row, header=str(len(bin_json) + 256)),
        "400", "header length covers the binary part too: no binary bytes left")
    add(b + "header-twice", binary(bin_json, fp32_row, header=False,
                                   extra=[("Inference-Header-Content-Length", "x"),
                                          ("Inference-Header-Content-Length", "-2")]), "400",
        "two Inference-Header-Content-Length headers, both bad")
    for name, size in [("255", 255), ("257", 257), ("zero", 0), ("negative", -1),
                       ("string", "256"), ("float", 256.0), ("exponent", "XX"), ("null", None),
                       ("bool", True), ("array", [256]), ("2pow64-minus-1", 2 ** 64 - 1)]:
        js = with_input(data=DROP, parameters={"binary_data_size": size})
        if size == "XX":
            js = js.replace(b'"XX"', b"2.56e2")
        add(b + "size-" + name, binary(js, fp32_row), "400",
            f"binary_data_size {json.dumps(size)} for 256 bytes of FP32 [1,64]")
    add(b + "size-without-header", post(INFER, bin_json + fp32_row), "400",
        "binary_data_size but no Inference-Header-Content-Length")
    add(b + "size-without-header-json-only", post(INFER, bin_json), "400",
        "binary_data_size, JSON only, no header")
    add(b + "leftover-bytes", binary(bin_json, fp32_row + b"\0" * 44), "400",
        "44 bytes after the tensor's 256")
    add(b + "missing-part", binary(bin_json, b""), "400", "binary_data_size 256, no binary part")
    add(b + "short-part", binary(bin_json, fp32_row[:100]), "400", "100 of 256 binary bytes")
    add(b + "data-and-size", binary(with_input(parameters={"binary_data_size": 256}), fp32_row),
        "400", "both \"data\" and binary_data_size")
    add(b + "unused-binary-part", binary(good, fp32_row), "400",
        "a binary part that no input claims")
    add(b + "bool-byte-2", binary(with_input(datatype="BOOL", data=DROP,
                                             parameters={"binary_data_size": 64}),
                                  b"\x00" * 63 + b"\x02"), "400", "BOOL binary byte 2")
    bytes_json = with_input(datatype="BYTES", shape=[1, 2], data=DROP,
                            parameters={"binary_data_size": 12})
    add(b + "bytes-length-past-end", binary(bytes_json, struct.pack("<I", 1) + b"a" +
                                            struct.pack("<I", 1000) + b"abc"), "400",
        "BYTES element length running past the data")
    add(b + "bytes-length-ffffffff", binary(bytes_json, struct.pack("<I", 0xFFFFFFFF) + b"\0" * 8),
        "400", "BYTES element length 0xFFFFFFFF")
    add(b + "bytes-cut-prefix", binary(bytes_json, struct.pack("<I", 1) + b"a" + b"\0" * 7), "400",
        "BYTES second length prefix cut short")
    add(b + "bytes-too-few-elements", binary(
        with_input(datatype="BYTES", shape=[1, 3], data=DROP, parameters={"binary_data_size": 10}),
        struct.pack("<I", 1) + b"a" + struct.pack("<I", 1) + b"b"), "400",
        "BYTES [1,3] with 2 elements")
    add(b + "header-on-index", binary(b'{"ready": ', b"xx", path="/v2/repository/index"), "400",
        "binary header on a repository index with malformed JSON")
    add(b + "json-part-invalid-utf8", binary(b'{"id":"\xff"}', fp32_row), "400",
        "invalid UTF-8 in the JSON part")

    # ---- unknown model / version / task -------------------------------------
    m = "model-"
    for name, path in [("unknown", "/v2/models/nosuch/infer"),
                       ("unknown-version-path", "/v2/models/nosuch/versions/1/infer"),
                       ("version-2", "/v2/models/digits/versions/2/infer"),
                       ("version-0", "/v2/models/digits/versions/0/infer"),
                       ("version-negative", "/v2/models/digits/versions/-1/infer"),
                       ("version-text", "/v2/models/digits/versions/latest/infer"),
                       ("version-leading-zero", "/v2/models/digits/versions/01/infer"),
                       ("version-huge", "/v2/models/digits/versions/" + "9" * 40 + "/infer"),
                       ("version-encoded-space", "/v2/models/digits/versions/1%20/infer"),
                       ("name-wrong-case", "/v2/models/Digits/infer"),
                       ("name-long", "/v2/models/" + "m" * 4000 + "/infer"),
                       ("name-utf8", "/v2/models/%C3%A9%E2%82%AC/infer"),
                       ("name-dot-dot-encoded", "/v2/models/%2E%2E/infer")]:
        add(m + name, post(path, good), "404", f"good body to {path[:70]}")
    add(m + "version-empty", post("/v2/models/digits/versions//infer", good), "4xx",
        "empty version segment")
    for name, path in [("metadata-unknown", "/v2/models/nosuch"),
                       ("ready-unknown", "/v2/models/nosuch/ready"),
                       ("stats-unknown", "/v2/models/nosuch/stats"),
                       ("metadata-version-9", "/v2/models/digits/versions/9"),
                       ("ready-version-9", "/v2/models/digits/versions/9/ready"),
                       ("stats-version-9", "/v2/models/digits/versions/9/stats")]:
        add(m + name, get(path), "404", f"GET {path}")
    for name, task, expect in [("unknown", "summarize", "404"), ("wrong-case", "INFER", "404"),
                               ("generate-on-mlp", "generate", "4xx"),
                               ("encode-on-mlp", "encode", "4xx"), ("number", 5, "400"),
                               ("empty", "", "400"), ("null", None, "400"), ("array", [], "400"),
                               ("object", {"x": 1}, "400")]:
        add("task-" + name, post(INFER, good_body(parameters={"task": task})), expect,
            f"task {json.dumps(task)}")

    # ---- request parameters -------------------------------------------------
    p = "param-"
    for name, key, value in [
            ("priority-string", "priority", "high"), ("priority-float", "priority", 1.5),
            ("priority-over-int", "priority", 2 ** 31), ("priority-under-int", "priority", -2 ** 31 - 1),
            ("priority-exponent", "priority", "XX"), ("priority-bool", "priority", True),
            ("priority-null", "priority", None), ("priority-array", "priority", [1]),
            ("priority-object", "priority", {}), ("priority-uint64", "priority", 2 ** 64 - 1),
            ("timeout-negative", "timeout", -1), ("timeout-string", "timeout", "1s"),
            ("timeout-float", "timeout", 1.5), ("timeout-null", "timeout", None),
            ("timeout-bool", "timeout", True), ("timeout-array", "timeout", []),
            ("timeout-int64-min", "timeout", -(2 ** 63)), ("timeout-exponent", "timeout", "XX"),
            ("binary-data-output-string", "binary_data_output", "yes"),
            ("binary-data-output-number", "binary_data_output", 1),
            ("binary-data-output-null", "binary_data_output", None)]:
        body = good_body(parameters={key: value})
        if value == "XX":
            body = body.replace(b'"XX"', b"1e10")
        add(p + name, post(INFER, body), "400", f"parameter {key}: {json.dumps(value)}")

    # ---- repository extension -----------------------------------------------
    r = "repo-"
    add(r + "load-unknown", post("/v2/repository/models/nosuch/load", b""), "404", "load nosuch")
    add(r + "unload-unknown", post("/v2/repository/models/nosuch/unload", b""), "404",
        "unload nosuch")
    add(r + "load-dot-dot", post("/v2/repository/models/%2E%2E/load", b""), "404",
        "load model '..' (percent-encoded)")
    add(r + "load-long-name", post("/v2/repository/models/" + "n" * 3000 + "/load", b""), "4xx",
        "load a 3000-character name")
    add(r + "load-encoded-slash", post("/v2/repository/models/..%2F..%2Fetc/load", b""), "4xx",
        "load '../../etc' (encoded slashes)")
    add(r + "load-malformed-json", post("/v2/repository/models/digits/load", b'{"parameters": '),
        "400", "load digits, malformed body")
    add(r + "load-body-array", post("/v2/repository/models/digits/load", b"[]"), "400",
        "load digits, body []")
    add(r + "load-parameters-string",
        post("/v2/repository/models/digits/load", dumps({"parameters": "x"})), "400",
        "load parameters \"x\"")
    add(r + "load-parameters-array",
        post("/v2/repository/models/digits/load", dumps({"parameters": []})), "400",
        "load parameters []")
    add(r + "load-config-override",
        post("/v2/repository/models/digits/load", dumps({"parameters": {"config": "{}"}})), "501",
        "Triton's load config override: unsupported")
    add(r + "unload-malformed-json", post("/v2/repository/models/digits/unload", b"{"), "400",
        "unload digits, malformed body (must not unload)")
    add(r + "unload-body-number", post("/v2/repository/models/digits/unload", b"5"), "400",
        "unload digits, body 5 (must not unload)")
    add(r + "unload-get", get("/v2/repository/models/digits/unload"), "4xx",
        "GET on unload (must not unload)")
    add(r + "unload-delete", request("DELETE", "/v2/repository/models/digits/unload"), "4xx",
        "DELETE on unload (must not unload)")
    for name, body in [("ready-string", b'{"ready": "yes"}'), ("ready-number", b'{"ready": 1}'),
                       ("ready-null", b'{"ready": null}'), ("body-array", b"[]"),
                       ("body-number", b"5"), ("malformed", b'{"ready": '),
                       ("deep", b"[" * 100000)]:
        add(r + "index-" + name, post("/v2/repository/index", body), "400", f"index body {body[:20]!r}")
    add(r + "index-get", get("/v2/repository/index"), "4xx", "GET on the POST-only index")

    # ---- system shared memory -----------------------------------------------
    h = "shm-"
    reg = "/v2/systemsharedmemory/region/fuzz_r/register"
    # Keys under the prefix a server may require (modelgrid serve --shm-key-prefix,
    # default /modelgrid_), so that the checks after that policy are reached.
    nokey = "/modelgrid_fuzz_corpus_no_such_object"
    for name, body, expect in [
            ("missing-key", {"byte_size": 16}, "400"), ("key-number", {"key": 5, "byte_size": 16}, "400"),
            ("key-null", {"key": None, "byte_size": 16}, "400"),
            ("key-array", {"key": [nokey], "byte_size": 16}, "400"),
            ("key-empty", {"key": "", "byte_size": 16}, "4xx"),
            ("missing-byte-size", {"key": nokey}, "400"),
            ("byte-size-string", {"key": nokey, "byte_size": "16"}, "400"),
            ("byte-size-negative", {"key": nokey, "byte_size": -1}, "400"),
            ("byte-size-float", {"key": nokey, "byte_size": 1.5}, "400"),
            ("byte-size-null", {"key": nokey, "byte_size": None}, "400"),
            ("byte-size-zero", {"key": nokey, "byte_size": 0}, "400"),
            ("byte-size-2pow64", {"key": nokey, "byte_size": 2 ** 64}, "400"),
            ("offset-negative", {"key": nokey, "offset": -1, "byte_size": 16}, "400"),
            ("offset-string", {"key": nokey, "offset": "0", "byte_size": 16}, "400"),
            ("offset-float", {"key": nokey, "offset": 0.5, "byte_size": 16}, "400"),
            ("offset-null", {"key": nokey, "offset": None, "byte_size": 16}, "400"),
            ("offset-plus-size-overflows", {"key": nokey, "offset": 2 ** 64 - 1, "byte_size": 16},
             "400"),
            ("byte-size-huge", {"key": nokey, "byte_size": 2 ** 64 - 1}, "4xx"),
            ("unknown-key", {"key": nokey, "byte_size": 16}, "404"),
            ("unknown-key-extra-field", {"key": nokey, "byte_size": 16, "bogus": 1}, "4xx"),
            ("key-no-slash", {"key": "modelgrid_fuzz_no_slash", "byte_size": 16}, "4xx"),
            ("key-outside-prefix", {"key": "/mg_fuzz_no_such_object", "byte_size": 16}, "4xx"),
            ("key-traversal", {"key": "/modelgrid_/../../etc/passwd", "byte_size": 16}, "4xx"),
            ("key-dot-dot", {"key": "/..", "byte_size": 16}, "4xx"),
            ("key-nested", {"key": "/modelgrid_a/b", "byte_size": 16}, "4xx"),
            ("key-nul", {"key": "/modelgrid_\u0000fuzz", "byte_size": 16}, "4xx"),
            ("key-long", {"key": "/modelgrid_" + "k" * 5000, "byte_size": 16}, "4xx")]:
        add(h + "register-" + name, post(reg, dumps(body)), expect, f"register {json.dumps(body)[:70]}")
    add(h + "register-body-array", post(reg, b"[]"), "400", "register body []")
    add(h + "register-malformed", post(reg, b'{"key": '), "400", "register, malformed JSON")
    add(h + "register-empty-body", post(reg, b""), "400", "register, empty body (no key)")
    add(h + "register-get", get(reg), "4xx", "GET on register")
    add(h + "unregister-unknown", post("/v2/systemsharedmemory/region/nosuch/unregister", b""),
        "404", "unregister a region never registered")
    add(h + "status-unknown", get("/v2/systemsharedmemory/region/nosuch/status"), "404",
        "status of a region never registered")
    add(h + "status-long-name", get("/v2/systemsharedmemory/region/" + "r" * 3000 + "/status"),
        "4xx", "status of a 3000-character region name")
    add(h + "register-empty-name", post("/v2/systemsharedmemory/region//register",
                                        dumps({"key": nokey, "byte_size": 16})), "4xx",
        "register with an empty region name")
    add(h + "cuda-register", post("/v2/cudasharedmemory/region/r/register",
                                  dumps({"raw_handle": {"b64": "AA=="}, "device_id": 0,
                                         "byte_size": 16})), "4xx",
        "CUDA shared memory is not offered")
    for name, params, expect in [
            ("region-unknown", {"shared_memory_region": "nosuch", "shared_memory_byte_size": 256}, "404"),
            ("region-number", {"shared_memory_region": 5, "shared_memory_byte_size": 256}, "400"),
            ("byte-size-string", {"shared_memory_region": "nosuch", "shared_memory_byte_size": "x"},
             "4xx"),
            ("offset-negative", {"shared_memory_region": "nosuch", "shared_memory_byte_size": 256,
                                 "shared_memory_offset": -1}, "4xx"),
            ("with-binary-size", {"shared_memory_region": "nosuch", "shared_memory_byte_size": 256,
                                  "binary_data_size": 256}, "400")]:
        add(h + "infer-" + name, post(INFER, with_input(data=DROP, parameters=params)), expect,
            f"infer input parameters {json.dumps(params)[:70]}")
    add(h + "infer-data-and-region", post(INFER, with_input(parameters={
        "shared_memory_region": "nosuch", "shared_memory_byte_size": 256})), "400",
        "both data and shared_memory_region")

    # ---- ModelGrid's reconfiguration routes (bodies refused before applying) -
    g = "modelgrid-"
    cfg = "/v2/modelgrid/models/digits/config"
    add(g + "config-unknown-model", post("/v2/modelgrid/models/nosuch/config", b'{"pinned": true}'),
        "404", "reconfigure nosuch")
    for name, body in [("unknown-field", {"bogus": 1}), ("priority-string", {"priority": "x"}),
                       ("priority-float", {"priority": 1.5}), ("request-negative", {"request": "-1GiB"}),
                       ("request-negative-number", {"request": -5}),
                       ("limit-words", {"limit": "lots"}), ("limit-null", {"limit": None}),
                       ("resolver-unknown", {"resolver": "nope"}), ("resolver-number", {"resolver": 1}),
                       ("load-unknown", {"load": "later"}), ("pinned-string", {"pinned": "yes"}),
                       ("good-then-unknown", {"pinned": False, "zzz": 1})]:
        add(g + "config-" + name, post(cfg, dumps(body)), "400", f"reconfigure {json.dumps(body)}")
    add(g + "config-body-array", post(cfg, b"[]"), "400", "reconfigure, body []")
    add(g + "config-malformed", post(cfg, b'{"priority": 1'), "400", "reconfigure, malformed JSON")
    for name, body in [("unknown", b'{"strategy": "nope"}'), ("empty-object", b"{}"),
                       ("number", b'{"strategy": 5}'), ("extra-field", b'{"strategy": "balance", "x": 1}'),
                       ("malformed", b'{"strategy"')]:
        add(g + "strategy-" + name, post("/v2/modelgrid/strategy", body), "400",
            f"strategy body {body.decode()}")
    add(g + "strategy-get", get("/v2/modelgrid/strategy"), "4xx", "GET on the POST-only strategy")

    # ---- paths ----------------------------------------------------------------
    a = "path-"
    bad = b'{"inputs": 5}'
    for name, path in [("empty-model", "/v2/models//infer"), ("double-leading-slash", "//v2/models/digits/infer"),
                       ("trailing-slash", "/v2/models/digits/infer/"),
                       ("bad-percent-query", "/v2/models/digits/infer?%zz=%zz&%"),
                       ("encoded-model-name", "/v2/models/dig%69ts/infer"),
                       ("encoded-slash", "/v2/models/digits%2Finfer"),
                       ("encoded-nul", "/v2/models/%00/infer"), ("lone-percent", "/v2/models/%/infer"),
                       ("percent-one-digit", "/v2/models/%4/infer"),
                       ("encoded-traversal", "/v2/models/..%2F..%2Fetc/infer"),
                       ("dot-segments", "/v2/models/./digits/../digits/infer"),
                       ("upper-case", "/V2/MODELS/DIGITS/INFER"), ("fragment", "/v2/models/digits/infer#x"),
                       ("semicolon-params", "/v2/models/digits;v=1/infer"),
                       ("many-segments", "/v2/models/digits/infer" + "/a" * 2000),
                       ("backslashes", "/v2\\models\\digits\\infer")]:
        add(a + name, post(path, bad), "4xx", f"POST {path[:60]} with a wrong body")
    add(a + "raw-utf8", post(b"/v2/models/d\xc3\xafgits/infer", bad), "4xx",
        "raw UTF-8 bytes in the path", flags="nojson")
    add(a + "raw-invalid-utf8", post(b"/v2/models/\xff\xfe/infer", bad), "4xx",
        "raw invalid UTF-8 in the path", flags="nojson")
    add(a + "traversal-get", get("/v2/models/../../../../etc/passwd"), "4xx", "GET ../../etc/passwd")
    add(a + "traversal-after-live", get("/v2/health/live/../../../../etc/passwd"), "4xx",
        "dot segments after a real route")
    add(a + "long-8000", get("/v2/nosuch/" + "a" * 8000), "4xx", "an 8 kB path", flags="nojson")
    add(a + "long-100000", get("/v2/nosuch/" + "a" * 100000), "4xx", "a 100 kB path",
        flags="nojson")
    add(a + "long-query", get("/v2/nosuch?" + "q=1&" * 10000), "4xx", "a 40 kB query",
        flags="nojson")
    add(a + "raw-space", request("GET", b"/v2/no such", b""), "4xx", "a raw space in the path",
        flags="nojson")
    add(a + "asterisk", get("*"), "4xx", "GET *", flags="nojson")
    add(a + "no-leading-slash", get("v2/nosuch"), "4xx", "target without a leading slash",
        flags="nojson")
    add(a + "absolute-form", get("http://127.0.0.1/v2/nosuch"), "4xx", "absolute-form target",
        flags="nojson")
    add(a + "authority-form", request("CONNECT", "127.0.0.1:80"), "4xx", "CONNECT authority-form",
        flags="nojson")
    add(a + "unknown", get("/v2/nothing/here"), "404", "GET an unknown path")
    add(a + "v3", post("/v3/infer", bad), "404", "POST an unknown path")

    # ---- methods ----------------------------------------------------------------
    e = "method-"
    add(e + "get-infer", get(INFER), "4xx", "GET on infer")
    add(e + "put-infer", request("PUT", INFER, bad), "4xx", "PUT on infer")
    add(e + "patch-infer", request("PATCH", INFER, bad), "4xx", "PATCH on infer")
    add(e + "delete-model", request("DELETE", "/v2/models/digits"), "4xx", "DELETE a model")
    add(e + "post-live", post("/v2/health/live", bad), "4xx", "POST on live")
    add(e + "post-server-metadata", post("/v2", bad), "4xx", "POST on /v2")
    add(e + "post-metrics", post("/metrics", bad), "4xx", "POST on /metrics")
    add(e + "head-unknown", request("HEAD", "/v2/nosuch"), "4xx", "HEAD an unknown path",
        flags="head")
    add(e + "unknown-token", request("FOO", "/v2/nosuch"), "4xx", "method FOO", flags="nojson")
    add(e + "lowercase", request("get", "/v2/nosuch"), "4xx", "method get (lowercase)",
        flags="nojson")
    add(e + "long", request("X" * 5000, "/v2/nosuch"), "4xx", "a 5000-character method",
        flags="nojson")
    add(e + "non-token", request("G(T", "/v2/nosuch"), "4xx", "method with '('", flags="nojson")
    add(e + "trace", request("TRACE", "/v2/nosuch"), "4xx", "TRACE", flags="nojson")

    # ---- request line and headers -----------------------------------------------
    q = "line-"
    add(q + "no-version", b"GET /v2/nosuch\r\n\r\n", "4xx|close", "HTTP/0.9-style request line",
        flags="shut,nojson")
    for name, version in [("http-2", "HTTP/2.0"), ("http-9", "HTTP/9.9"), ("http-1-1-1", "HTTP/1.1.1"),
                          ("lowercase", "http/1.1"), ("wrong-protocol", "HTTX/1.1"),
                          ("http-0-9", "HTTP/0.9")]:
        add(q + "version-" + name, get("/v2/nosuch", version=version), "4xx|505|close",
            f"version {version}", flags="shut,nojson")
    add(q + "extra-token", b"GET /v2/nosuch HTTP/1.1 extra\r\nHost: 127.0.0.1\r\n\r\n", "4xx",
        "a fourth token in the request line", flags="nojson")
    add(q + "double-spaces", b"GET  /v2/nosuch  HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", "4xx",
        "two spaces between the parts", flags="nojson")
    add(q + "tabs", b"GET\t/v2/nosuch\tHTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", "4xx|close",
        "tabs between the parts", flags="shut,nojson")
    add(q + "nul", b"GET /v2/no\x00such HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", "4xx|close",
        "NUL in the request line", flags="shut,nojson")
    add(q + "only-crlf", b"\r\n\r\n\r\n", "4xx|close", "empty lines only", flags="shut,nojson")
    add(q + "garbage", bytes(range(256)) * 2 + b"\r\n\r\n", "4xx|close", "512 bytes of binary",
        flags="shut,nojson")
    add(q + "tls-client-hello",
        bytes.fromhex("16030100a5010000a10303") + b"\x00" * 32 + bytes.fromhex("000020c02bc02f") +
        b"\x00" * 120, "4xx|close", "a TLS ClientHello on the plain port", flags="shut,nojson")
    add(q + "http2-preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "4xx|505|close",
        "the HTTP/2 connection preface", flags="shut,nojson")
    add(q + "bare-lf", b"GET /v2/nosuch HTTP/1.1\nHost: 127.0.0.1\nConnection: close\n\n", "4xx|close",
        "LF line endings", flags="shut,nojson")
    add(q + "bare-cr", b"GET /v2/nosuch HTTP/1.1\rHost: 127.0.0.1\r\r", "4xx|close",
        "CR line endings", flags="shut,nojson")
    k = "header-"
    add(k + "no-colon", get("/v2/nosuch", headers=[("X-Bad", "x")]).replace(b"X-Bad: x", b"X-Bad x"),
        "4xx", "a header line without a colon", flags="nojson")
    add(k + "space-in-name", get("/v2/nosuch", headers=[("Bad Name", "x")]), "4xx",
        "a space inside a header name", flags="nojson")
    add(k + "space-before-colon", get("/v2/nosuch").replace(b"Host: ", b"Host : "), "4xx",
        "whitespace between the name and the colon", flags="nojson")
    add(k + "obs-fold", get("/v2/nosuch", headers=[("X-A", "a\r\n b")]), "4xx",
        "an obsolete line folding", flags="nojson")
    add(k + "nul-in-value", get("/v2/nosuch", headers=[("X-A", b"a\x00b")]), "4xx",
        "NUL in a header value", flags="nojson")
    add(k + "cr-in-value", get("/v2/nosuch", headers=[("X-A", b"a\rb")]), "4xx",
        "a lone CR in a header value", flags="nojson")
    add(k + "empty-name", get("/v2/nosuch", headers=[("", "x")]), "4xx", "': x'", flags="nojson")
    add(k + "value-64k", get("/v2/nosuch", headers=[("X-Big", "v" * 65536)]), "4xx|close",
        "a 64 kB header value", flags="shut,nojson")
    add(k + "name-10k", get("/v2/nosuch", headers=[("X" * 10000, "v")]), "4xx|close",
        "a 10 kB header name", flags="shut,nojson")
    add(k + "count-2000", get("/v2/nosuch", headers=[(f"X-H{i}", "v") for i in range(2000)]),
        "4xx|close", "2000 headers", flags="shut,nojson")
    add(k + "no-host", get("/v2/nosuch", host=False), "4xx", "HTTP/1.1 without Host",
        flags="nojson")
    add(k + "two-hosts", get("/v2/nosuch", headers=[("Host", "example.com")]), "4xx",
        "two Host headers", flags="nojson")
    add(k + "expect-unknown", post(INFER, bad, headers=[("Expect", "999-weird")]), "4xx",
        "an unknown Expect", flags="nojson")
    add(k + "expect-100-continue", post(INFER, bad, headers=[("Expect", "100-continue")]), "400",
        "Expect: 100-continue with a wrong body")

    # ---- body framing -----------------------------------------------------------
    f = "framing-"
    idx = "/v2/repository/index"
    mal = b'{"ready": '  # malformed JSON: 400 whatever the framing
    ready = b'{"ready": true}'

    def framed(headers, body, path=idx, version="HTTP/1.1"):
        return request("POST", path, body, headers=headers, length=False, version=version)

    add(f + "two-content-lengths", framed([("Content-Length", str(len(ready))),
                                           ("Content-Length", "3")], ready), "400",
        "two different Content-Length headers", flags="nojson")
    add(f + "content-length-list", framed([("Content-Length", f"{len(ready)}, 3")], ready), "400",
        "Content-Length: 15, 3", flags="nojson")
    add(f + "content-length-negative", framed([("Content-Length", "-1")], ready), "400",
        "Content-Length: -1", flags="nojson")
    add(f + "content-length-suffix", framed([("Content-Length", "12abc")], ready), "400",
        "Content-Length: 12abc", flags="nojson")
    add(f + "content-length-plus", framed([("Content-Length", "+15")], ready), "4xx",
        "Content-Length: +15", flags="nojson")
    add(f + "content-length-hex", framed([("Content-Length", "0xf")], ready), "4xx",
        "Content-Length: 0xf", flags="nojson")
    add(f + "content-length-inner-space", framed([("Content-Length", "1 5")], ready), "4xx",
        "Content-Length: 1 5", flags="nojson")
    add(f + "content-length-empty", framed([("Content-Length", "")], mal), "4xx",
        "an empty Content-Length (RFC 9110: 1*DIGIT)", flags="nojson")
    add(f + "content-length-20-digits", framed([("Content-Length", "9" * 20)], ready), "4xx|close",
        "Content-Length of 20 digits (overflows 64 bits)", flags="shut,nojson")
    add(f + "content-length-and-chunked",
        framed([("Content-Length", "5"), ("Transfer-Encoding", "chunked")], chunked(mal)), "4xx",
        "Content-Length next to Transfer-Encoding: chunked (malformed JSON inside)", flags="nojson")
    add(f + "content-length-over-limit", framed([("Content-Length", str(2 * MAX_BODY))], mal, path=INFER),
        "413|4xx|close", "Content-Length of 2 MiB, 10 bytes sent", flags="shut,nojson")
    add(f + "content-length-past-body", framed([("Content-Length", "40")], mal), "4xx|close",
        "Content-Length 40, 10 bytes sent, then the client ends", flags="shut,nojson")
    add(f + "content-length-short", framed([("Content-Length", "8")], ready), "400",
        "Content-Length 8 of a 15-byte body: truncated JSON, the rest a bogus next request")
    add(f + "content-length-zero-body-follows", framed([("Content-Length", "0")], ready, path=INFER),
        "400", "Content-Length 0 on infer, a body after it")
    add(f + "no-length-body-follows", framed([], b'{"inputs": 5}', path=INFER), "400",
        "neither Content-Length nor chunked: empty infer body, then stray bytes")
    add(f + "http10-no-length", framed([], good, path=INFER, version="HTTP/1.0").replace(
        b"Connection: close\r\n", b""), "4xx|close", "HTTP/1.0 POST without Content-Length",
        flags="shut,nojson")
    te = [("Transfer-Encoding", "chunked")]
    add(f + "chunked-bad-size", framed(te, b"zz\r\n" + mal + b"\r\n0\r\n\r\n"), "4xx|close",
        "chunk size 'zz'", flags="shut,nojson")
    add(f + "chunked-size-overflow", framed(te, b"f" * 20 + b"\r\n" + mal + b"\r\n0\r\n\r\n"),
        "4xx|close", "chunk size of 20 hex digits", flags="shut,nojson")
    add(f + "chunked-negative-size", framed(te, b"-5\r\n" + mal + b"\r\n0\r\n\r\n"), "4xx|close",
        "chunk size -5", flags="shut,nojson")
    add(f + "chunked-data-past-size", framed(te, b"2\r\n" + mal + b"\r\n0\r\n\r\n"), "4xx|close",
        "chunk data longer than its size", flags="shut,nojson")
    add(f + "chunked-no-last-chunk", framed(te, b"a\r\n" + mal + b"\r\n"), "4xx|close",
        "no last chunk, then the client ends", flags="shut,nojson")
    add(f + "chunked-over-limit", framed(te, b"200000\r\n" + mal), "413|4xx|close",
        "a 2 MiB chunk announced, 10 bytes sent", flags="shut,nojson")
    add(f + "chunked-malformed-json", framed(te, chunked(mal)), "400",
        "well-framed chunked body, malformed JSON")
    add(f + "chunked-extension", framed(te, b"a;ext=1\r\n" + mal + b"\r\n0\r\n\r\n"), "400",
        "a chunk extension, malformed JSON")
    add(f + "chunked-trailer", framed(te, b"a\r\n" + mal + b"\r\n0\r\nX-T: 1\r\n\r\n"), "400",
        "a trailer field, malformed JSON")
    add(f + "chunked-many-tiny", framed(te, b"".join(b"1\r\n" + bytes([c]) + b"\r\n" for c in mal * 50)
                                        + b"0\r\n\r\n"), "400", "500 one-byte chunks, malformed JSON")
    for name, value in [("gzip-chunked", "gzip, chunked"), ("chunked-gzip", "chunked, gzip"),
                        ("unknown", "xchunked"), ("identity", "identity")]:
        add(f + "te-" + name, framed([("Transfer-Encoding", value), ("Content-Length", str(len(mal)))]
                                     if name == "identity" else [("Transfer-Encoding", value)],
                                     chunked(mal) if "chunked" in value else mal),
            "4xx|501|close", f"Transfer-Encoding: {value}", flags="shut,nojson")
    add(f + "pipelined-bad-then-good", post(INFER, bad, close=False) + get("/v2/health/live"), "400",
        "a wrong infer, then a good request on the same connection (first answer)")

    # ---- compressed bodies --------------------------------------------------------
    c = "encoding-"

    def encoded(encoding, body, path=INFER):
        return post(path, body, headers=[("Content-Encoding", encoding)])

    gz_bad = gzip.compress(b'{"inputs": 5}', mtime=0)
    add(c + "gzip-corrupt", encoded("gzip", b"\x1f\x8b\x08\x00" + b"\xde\xad\xbe\xef" * 16), "4xx",
        "gzip header then garbage", flags="nojson")
    add(c + "gzip-truncated", encoded("gzip", gzip.compress(good, mtime=0)[:40]), "4xx",
        "a gzip stream cut short", flags="nojson")
    add(c + "gzip-not-gzip", encoded("gzip", good), "4xx", "plain JSON labelled gzip",
        flags="nojson")
    add(c + "gzip-bad-crc", encoded("gzip", gz_bad[:-8] + b"\0\0\0\0" + gz_bad[-4:]), "4xx",
        "gzip with a wrong CRC", flags="nojson")
    add(c + "gzip-wrong-json", encoded("gzip", gz_bad), "4xx", "valid gzip of a wrong body",
        flags="nojson")
    add(c + "gzip-bomb", encoded("gzip", gzip.compress(b'{"inputs": [' + b" " * (4 * MAX_BODY) + b"]}",
                                                      9, mtime=0)), "413|4xx",
        "4 kB of gzip that inflates to 4 MiB (over the body limit)", flags="nojson")
    add(c + "deflate-corrupt", encoded("deflate", b"\x78\x9c" + b"\xff" * 40), "4xx",
        "zlib header then garbage", flags="nojson")
    add(c + "deflate-raw-wrong-json", encoded("deflate", zlib.compress(b'{"inputs": 5}')), "4xx",
        "valid deflate of a wrong body", flags="nojson")
    add(c + "br-corrupt", encoded("br", b"\xff" * 64), "4xx", "garbage labelled br", flags="nojson")
    add(c + "unknown", encoded("zstd", bad), "4xx", "Content-Encoding: zstd", flags="nojson")
    add(c + "gzip-twice-declared", encoded("gzip, gzip", gzip.compress(bad, mtime=0)), "4xx",
        "gzip declared twice, applied once", flags="nojson")
    add(c + "identity", encoded("identity", bad), "4xx", "Content-Encoding: identity, wrong body",
        flags="nojson")

    # ---- content types ------------------------------------------------------------
    ct = "content-type-"
    boundary = "XyZ"
    multipart = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n"
                 f"{{\"inputs\": 5}}\r\n--{boundary}--\r\n").encode()
    add(ct + "multipart", post(INFER, multipart, content_type=f"multipart/form-data; boundary={boundary}"),
        "4xx", "a multipart body", flags="nojson")
    add(ct + "multipart-no-boundary", post(INFER, multipart, content_type="multipart/form-data"),
        "4xx", "multipart without a boundary", flags="nojson")
    add(ct + "form-urlencoded", post(INFER, b"inputs=5&id=x",
                                     content_type="application/x-www-form-urlencoded"), "4xx",
        "a form body", flags="nojson")
    add(ct + "text-plain", post(INFER, bad, content_type="text/plain"), "400", "text/plain, wrong body")


# --------------------------------------------------------------------------
# Seed corpora of the fuzz harnesses.

def seeds_infer_request():
    """Harness input: byte 0 selects the mode (see infer_request_fuzzer.cc):
    even = JSON only; odd = binary, bytes 1..2 (little-endian) the JSON
    header length; the rest is the body."""
    out = {}

    def js(name, body):
        out[name] = b"\x00" + body

    def bn(name, json_part, tail):
        out[name] = b"\x01" + struct.pack("<H", len(json_part)) + json_part + tail

    js("valid-fp32", good_body())
    js("valid-nested", dumps({"inputs": [{"name": "x", "shape": [2, 2], "datatype": "INT32",
                                          "data": [[1, 2], [3, 4]]}]}))
    js("valid-all-fields", dumps({"id": "42", "parameters": {"task": "infer", "priority": 1},
                                  "inputs": [{"name": "a", "shape": [2], "datatype": "BYTES",
                                              "data": ["x", "yz"]},
                                             {"name": "b", "shape": [1], "datatype": "BOOL",
                                              "data": [True]},
                                             {"name": "c", "shape": [1, 1], "datatype": "FP16",
                                              "data": [1.5]}],
                                  "outputs": [{"name": "o", "parameters": {"binary_data": True}}]}))
    js("valid-shm", with_input(data=DROP, parameters={"shared_memory_region": "r",
                                                     "shared_memory_byte_size": 256}))
    for dt, v in [("UINT8", 255), ("UINT16", 65535), ("UINT32", 1), ("UINT64", 2 ** 64 - 1),
                  ("INT8", -128), ("INT16", -1), ("INT64", -(2 ** 63)), ("FP64", 1e308),
                  ("BF16", 3.0)]:
        js("valid-" + dt.lower(), dumps({"inputs": [{"name": "t", "shape": [1], "datatype": dt,
                                                     "data": [v]}]}))
    bn("valid-binary", with_input(data=DROP, parameters={"binary_data_size": 256}),
       struct.pack("<64f", *([0.5] * 64)))
    bn("valid-binary-bytes", with_input(datatype="BYTES", shape=[2], data=DROP,
                                        parameters={"binary_data_size": 11}),
       struct.pack("<I", 1) + b"a" + struct.pack("<I", 2) + b"bc")
    # Invalid: every body of the HTTP corpus that goes to infer, as JSON and binary.
    for stem, raw, _, _, _ in HTTP:
        head, _, body = raw.partition(b"\r\n\r\n")
        if not head.startswith(b"POST /v2/models/digits/infer ") or len(body) > 4096:
            continue
        if b"Inference-Header-Content-Length" in head:
            line = [l for l in head.split(b"\r\n") if l.startswith(b"Inference-Header")][0]
            try:
                n = int(line.split(b": ", 1)[1])
            except ValueError:
                n = 0xFFFF
            out["http-" + stem] = b"\x01" + struct.pack("<H", max(0, min(n, 0xFFFF))) + body
        else:
            js("http-" + stem, body)
    js("deep-1000", b"[" * 1000)
    js("empty", b"")
    return out


def seeds_triton_config():
    out = {}
    out["valid-digits"] = b'''name: "digits"
platform: "pytorch_libtorch"
max_batch_size: 64
input [ { name: "input" data_type: TYPE_FP32 dims: [ 64 ] } ]
output [ { name: "logits" data_type: TYPE_FP32 dims: [ 10 ] label_filename: "labels.txt" } ]
version_policy: { specific: { versions: [ 1 ] } }
instance_group [ { count: 1 kind: KIND_CPU } ]
dynamic_batching { preferred_batch_size: [ 16, 64 ] max_queue_delay_microseconds: 200 }
parameters: { key: "INFERENCE_MODE" value: { string_value: "true" } }
optimization { execution_accelerators { cpu_execution_accelerator : [ { name : "openvino" } ] } }
'''
    out["valid-resnet"] = b'''name: "resnet"
backend: "pytorch"
max_batch_size: 8
version_policy: { latest: { num_versions: 2 } }
input [ { name: "INPUT__0" data_type: TYPE_FP32 format: FORMAT_NCHW dims: [ 3, 224, 224 ] reshape: { shape: [ 1, 3, 224, 224 ] } } ]
output [ { name: "OUTPUT__0" data_type: TYPE_FP32 dims: [ 1000 ] } ]
instance_group [ { count: 2 kind: KIND_GPU gpus: [ 0, 1 ] } ]
dynamic_batching {
  preferred_batch_size: [ 4, 8 ]
  max_queue_delay_microseconds: 100
  default_queue_policy { timeout_action: REJECT default_timeout_microseconds: 5000000 max_queue_size: 64 }
}
model_warmup [ { name: "w" batch_size: 1 inputs { key: "INPUT__0" value: { data_type: TYPE_FP32 dims: [ 3, 224, 224 ] zero_data: true } } } ]
'''
    out["valid-minimal"] = b'platform: "pytorch_libtorch"\n'
    out["valid-empty"] = b""
    out["valid-all-policy"] = b"version_policy: { all: {} }\nmax_batch_size: 0\n"
    bad = {
        "platform-onnx": b'platform: "onnxruntime_onnx"\n',
        "backend-python": b'backend: "python"\n',
        "negative-batch": b"max_batch_size: -1\n",
        "batch-overflow": b"max_batch_size: 99999999999999999999\n",
        "batch-string": b'max_batch_size: "8"\n',
        "dims-zero": b'input [ { name: "a" data_type: TYPE_FP32 dims: [ 0 ] } ]\n',
        "dims-minus-two": b'input [ { name: "a" data_type: TYPE_FP32 dims: [ -2 ] } ]\n',
        "dims-int64-min": b'input [ { name: "a" data_type: TYPE_FP32 dims: [ -9223372036854775808 ] } ]\n',
        "dims-overflow": b'input [ { name: "a" data_type: TYPE_FP32 dims: [ 9223372036854775808 ] } ]\n',
        "no-name": b"input [ { data_type: TYPE_FP32 dims: [ 1 ] } ]\n",
        "no-type": b'input [ { name: "a" dims: [ 1 ] } ]\n',
        "unknown-type": b'input [ { name: "a" data_type: TYPE_FP128 dims: [ 1 ] } ]\n',
        "type-number": b'input [ { name: "a" data_type: 99 dims: [ 1 ] } ]\n',
        "dup-input": b'input [ { name: "a" data_type: TYPE_FP32 dims: [ 1 ] }, { name: "a" data_type: TYPE_FP32 dims: [ 1 ] } ]\n',
        "negative-count": b"instance_group [ { count: -1 kind: KIND_CPU } ]\n",
        "negative-gpu": b"instance_group [ { count: 1 kind: KIND_GPU gpus: [ -1 ] } ]\n",
        "unknown-kind": b"instance_group [ { kind: KIND_TPU } ]\n",
        "negative-version": b"version_policy: { specific: { versions: [ -1 ] } }\n",
        "zero-num-versions": b"version_policy: { latest: { num_versions: 0 } }\n",
        "unterminated-string": b'name: "abc\n',
        "unbalanced-brace": b"dynamic_batching { \n",
        "unbalanced-bracket": b"input [ { name: \"a\" \n",
        "unknown-field": b"no_such_field: 1\n",
        "deep-nesting": b"optimization " + b"{ x " * 5000,
        "deep-unknown-message": b"unknown_field " + b"{ a " * 200 + b"}" * 200 + b"\n",
        "invalid-utf8-name": b'name: "\xff\xfe"\n',
        "nul-in-text": b'name: "a"\x00 max_batch_size: 1\n',
        "escape-octal": b'name: "\\777"\n',
        "escape-bad": b'name: "\\q"\n',
        "long-name": b'name: "' + b"n" * 100000 + b'"\n',
        "many-inputs": b"".join(b'input [ { name: "i%d" data_type: TYPE_FP32 dims: [ 1 ] } ]\n' % i
                                for i in range(2000)),
        "huge-delay": b"dynamic_batching { max_queue_delay_microseconds: 18446744073709551615 }\n",
        "negative-delay": b"dynamic_batching { max_queue_delay_microseconds: -1 }\n",
        "preferred-negative": b"dynamic_batching { preferred_batch_size: [ -4 ] }\n",
        "label-no-output": b'output [ { label_filename: "x" } ]\n',
        "parameters-no-value": b'parameters: { key: "A" }\n',
        "parameters-dup": b'parameters: { key: "A" value: { string_value: "1" } }\nparameters: { key: "A" value: { string_value: "2" } }\n',
        "comment-only": b"# just a comment\n",
        "colon-only": b":\n",
        "binary-garbage": bytes(range(256)),
        "float-batch": b"max_batch_size: 1.5\n",
        "hex-batch": b"max_batch_size: 0x10\n",
        "any-type-url": b"[type.googleapis.com/x] { }\n",
        "extension-syntax": b"[ext.field]: 1\n",
        "reshape-empty": b'input [ { name: "a" data_type: TYPE_FP32 dims: [ 1 ] reshape: { } } ]\n',
        "sequence-batching": b"sequence_batching { max_sequence_idle_microseconds: 5 }\n",
        "ensemble": b'platform: "ensemble"\nensemble_scheduling { step [ { model_name: "a" } ] }\n',
    }
    for k, v in bad.items():
        out["bad-" + k] = v
    return out


def seeds_model_config():
    out = {}
    out["valid-digits"] = b"""platform: pytorch_torchscript
max_batch_size: 64
inputs:
  - name: input
    datatype: FP32
    dims: [64]
outputs:
  - name: logits
    datatype: FP32
    dims: [10]
"""
    out["valid-full"] = b"""platform: huggingface
max_batch_size: 8
sequence_length: 32
inputs:
  - {name: input_ids, datatype: INT64, dims: [-1]}
outputs:
  - {name: logits, datatype: FP32, dims: [-1, 1000]}
memory: {request: 2GiB, limit: 3GiB}
devices: [cuda:1, cpu]
replicas: 2
priority: 5
resolver: swap
load: on_demand
pinned: true
latency_sensitive: true
expected_load: 12.5
dynamic_batching:
  enabled: true
  max_queue_delay_us: 500
  preferred_batch_sizes: [4, 8]
  max_queue_size: 128
  default_timeout_us: 1000000
tasks:
  encode: encode
  generate: generate
"""
    out["valid-empty"] = b""
    out["valid-comment"] = b"# nothing\n"
    bad = {
        "unknown-field": b"bogus: 1\n",
        "negative-batch": b"max_batch_size: -1\n",
        "batch-string": b"max_batch_size: eight\n",
        "batch-overflow": b"max_batch_size: 99999999999999999999999\n",
        "batch-float": b"max_batch_size: 1.5\n",
        "batch-list": b"max_batch_size: [1]\n",
        "unknown-datatype": b"inputs:\n  - {name: a, datatype: FP128, dims: [1]}\n",
        "dims-string": b"inputs:\n  - {name: a, datatype: FP32, dims: x}\n",
        "dims-nested": b"inputs:\n  - {name: a, datatype: FP32, dims: [[1]]}\n",
        "dims-huge": b"inputs:\n  - {name: a, datatype: FP32, dims: [99999999999999999999]}\n",
        "dims-minus-two": b"inputs:\n  - {name: a, datatype: FP32, dims: [-2]}\n",
        "input-no-name": b"inputs:\n  - {datatype: FP32, dims: [1]}\n",
        "inputs-map": b"inputs: {a: 1}\n",
        "inputs-scalar": b"inputs: 5\n",
        "memory-negative": b"memory: {request: -1GiB}\n",
        "memory-zero": b"memory: {request: 0}\n",
        "memory-words": b"memory: {request: lots}\n",
        "memory-limit-below": b"memory: {request: 2GiB, limit: 1GiB}\n",
        "memory-overflow": b"memory: {request: 99999999999EiB}\n",
        "memory-unknown": b"memory: {swap: 1GiB}\n",
        "resolver-unknown": b"resolver: teleport\n",
        "load-unknown": b"load: later\n",
        "pinned-string": b"pinned: maybe\n",
        "replicas-zero": b"replicas: 0\n",
        "replicas-huge": b"replicas: 9999999999999\n",
        "priority-huge": b"priority: 99999999999\n",
        "expected-load-nan": b"expected_load: .nan\n",
        "expected-load-negative": b"expected_load: -1\n",
        "expected-load-inf": b"expected_load: .inf\n",
        "devices-map": b"devices: {a: b}\n",
        "tasks-list": b"tasks: [a]\n",
        "tasks-nested": b"tasks: {a: {b: c}}\n",
        "batching-unknown": b"dynamic_batching: {speed: 1}\n",
        "batching-negative": b"dynamic_batching: {max_queue_delay_us: -1}\n",
        "preferred-strings": b"dynamic_batching: {preferred_batch_sizes: [a]}\n",
        "top-level-list": b"- a\n- b\n",
        "top-level-scalar": b"hello\n",
        "tab-indent": b"inputs:\n\t- name: a\n",
        "bad-indent": b"inputs:\n  - name: a\n   datatype: FP32\n",
        "unclosed-flow": b"inputs: [{name: a\n",
        "unclosed-quote": b"platform: \"pytorch\n",
        "duplicate-key": b"max_batch_size: 1\nmax_batch_size: 2\n",
        "anchor-alias": b"a: &x 1\nmax_batch_size: *x\n",
        "unknown-alias": b"max_batch_size: *nope\n",
        "billion-laughs": b"a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                          b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                          b"tasks: [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n",
        "deep-flow": b"tasks: " + b"[" * 10000 + b"]" * 10000 + b"\n",
        "deep-block": b"".join(b"  " * i + b"k:\n" for i in range(300)),
        "deep-map-flow": b"tasks: " + b"{a: " * 10000 + b"}" * 10000 + b"\n",
        "multi-document": b"max_batch_size: 1\n---\nmax_batch_size: 2\n",
        "tag": b"max_batch_size: !!str 5\n",
        "binary-tag": b"platform: !!binary AAAA\n",
        "invalid-utf8": b"platform: \xff\xfe\n",
        "nul": b"platform: a\x00b\n",
        "utf16-bom": b"\xff\xfep\x00l\x00",
        "merge-key": b"<<: {max_batch_size: 1}\n",
        "complex-key": b"? [a, b]\n: c\n",
        "platform-unknown": b"platform: onnx\n",
        "platform-list": b"platform: [a]\n",
        "sequence-length-negative": b"sequence_length: -5\n",
        "binary-garbage": bytes(range(256)),
        "long-scalar": b"platform: " + b"p" * 100000 + b"\n",
    }
    for k, v in bad.items():
        out["bad-" + k] = v
    return out


def seeds_device_spec():
    """Harness input: newline-separated specs (see device_spec_fuzzer.cc)."""
    out = {}
    valid = ["cpu", "cpu=8GiB", "sim:a100=80GiB", "sim:a100=80GiB,context=1GiB,used=2GiB",
             "sim:t4=16000000000", "sim:x=1", "sim:a.b-c_d=1KiB", "sim:h100=80GB,used=0"]
    for i, v in enumerate(valid):
        out[f"valid-{i}"] = v.encode()
    out["valid-list"] = b"cpu\nsim:a=1GiB\nsim:a=2GiB\nsim:b=1GiB"
    bad = ["", "gpu", "CPU", "cpu=", "cpu=0", "cpu=-1", "cpu=1XB", "cpu=99999999999999999999",
           "cpu=18446744073709551616", "cpu=16EiB", "cpu=1.5GiB", "cpu=nan", "cpu=inf", "sim:",
           "sim:=1GiB", "sim:a", "sim:a=", "sim:a=0", "sim:a b=1GiB", "sim:a=1GiB,", "sim:a=1GiB,,",
           "sim:a=1GiB,context", "sim:a=1GiB,context=", "sim:a=1GiB,context=x", "sim:a=1GiB,used=2GiB",
           "sim:a=1GiB,bogus=1", "sim:a=1GiB,=1", "sim:a==1GiB", "sim:a=1GiB=2", "sim:\xff=1",
           "cuda:", "cuda:x", "cuda:-1", "cuda:99999999999999999999999", "cuda:0x1", "cuda: 0",
           "cuda:00000000000000000000000000000000000000007", " cpu", "cpu ", "sim:a=1 GiB",
           "sim:a=1GiBB", "sim:a=1gib", "sim:a=1e9", "sim:a=-0", "sim:a=0x10", "sim:a=+5",
           "cpu\ncpu", "sim:a=1GiB\nsim:a=1GiB", "sim:a=1\nsim:a#0=1", "\n\n", "sim:" + "n" * 10000 + "=1",
           "sim:a=" + "9" * 1000, "sim:a=1" + ",used=1" * 1000]
    for i, v in enumerate(bad):
        out[f"bad-{i:02d}"] = v.encode("utf-8", "surrogateescape") if "\xff" not in v else \
            v.encode("latin-1")
    return out


GENERATED_PREFIXES = ("valid-", "bad-", "http-", "deep-", "empty")


def write_dir(path, files):
    """Writes `files` into `path`, first removing what an earlier run of this
    script wrote there (names with GENERATED_PREFIXES); other files, such as
    the crash-* or regress-* inputs a fuzzer found, are kept."""
    os.makedirs(path, exist_ok=True)
    for old in os.listdir(path):
        if old.startswith(GENERATED_PREFIXES):
            os.remove(os.path.join(path, old))
    written = set()
    for name, data in files.items():
        with open(os.path.join(path, name), "wb") as fh:
            fh.write(data)
        written.add(name)
    return written


def main():
    http_cases()
    names = [stem for stem, *_ in HTTP]
    dups = {n for n in names if names.count(n) > 1}
    if dups:
        sys.exit(f"duplicate corpus names: {sorted(dups)}")
    http_dir = os.path.join(CORPUS, "http")
    os.makedirs(http_dir, exist_ok=True)
    for old in os.listdir(http_dir):
        if old.endswith(".http"):
            os.remove(os.path.join(http_dir, old))
    files = {stem + ".http": raw for stem, raw, *_ in HTTP}
    write_dir(http_dir, files)
    with open(os.path.join(http_dir, "MANIFEST.tsv"), "w") as fh:
        fh.write("# Written by src/fuzz/tools/make_corpus.py; read by hostile_corpus_test.cc.\n")
        fh.write("# file\texpect\tflags\twhat\n")
        for stem, raw, expect, flags, what in HTTP:
            assert "\t" not in what and "\n" not in what, stem
            fh.write(f"{stem}.http\t{expect}\t{flags}\t{what}\n")
    for target, seeds in [("infer_request", seeds_infer_request()),
                          ("triton_config", seeds_triton_config()),
                          ("model_config", seeds_model_config()),
                          ("device_spec", seeds_device_spec())]:
        write_dir(os.path.join(CORPUS, target), seeds)
    print(f"{len(HTTP)} HTTP requests; seeds written under {CORPUS}")


if __name__ == "__main__":
    main()
