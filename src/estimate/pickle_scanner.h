// A minimal, bounded scanner for Python pickles (protocols 0–5) that finds
// the storage persistent ids of PyTorch archives without unpickling them.
//
// TorchScript's data.pkl and constants.pkl (torch.jit.save, pickle protocol
// 2) and torch.save's data.pkl name each tensor storage with a persistent id
//   ("storage", torch.<Scalar>Storage, key, location, numel)
// pushed as MARK … TUPLE then BINPERSID (formats.md, "TorchScript .pt";
// torch/csrc/jit/serialization/pickler.cpp). The scanner simulates the
// pickle stack coarsely: strings, ints, globals and small tuples are kept,
// everything else is an opaque value. Memo slots (BINPUT/BINGET and friends)
// are followed so that memoized globals and strings resolve.
//
// Safety: every read is bounds-checked; the work is linear in the input
// size (each opcode is visited once; values are 16-byte handles into pools;
// only tuples of at most 16 items and strings of at most 4096 bytes are
// kept, others become opaque); the stack, the memo and the tuple pool are
// capped at 2^21 entries and kept string bytes at 64 MiB, past which the
// scan fails (real data.pkl files stay orders of magnitude below). It never
// throws. Any malformed input gives kCorruption, never a crash or a hang.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "modelgrid/status.h"

namespace modelgrid::estimate {

// One persistent id ("storage", type, key, location, numel) found in a pickle.
struct PickleStorageRef {
  std::string storage_type;  // the global, e.g. "torch.FloatStorage"
  std::string key;           // record name under data/ (or constants/), e.g. "0"
  std::string location;      // "cpu", "cuda:0", ...
  uint64_t numel = 0;        // elements of the storage (not bytes)
};

// Scans `pickle` up to its STOP opcode and returns the storage persistent ids
// in order of first appearance, each key once (a storage shared by several
// tensors is listed once). Persistent ids of other shapes are ignored.
// Errors: kCorruption naming the byte offset and the problem (unknown
// opcode, truncated argument, stack underflow, missing STOP, a key seen twice
// with different type or size).
Result<std::vector<PickleStorageRef>> ScanPickleStorages(std::string_view pickle);

}  // namespace modelgrid::estimate
