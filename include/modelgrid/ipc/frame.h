// Frames: the unit of every frontend <-> worker control message.
//
// On the wire a frame is a fixed 20-byte little-endian header followed by
// `payload_bytes` bytes of payload (JSON text, see messages.h, or small binary):
//
//   offset size field
//   0      4    magic          kFrameMagic ("MGRD" as bytes)
//   4      2    type           a MessageType (messages.h); opaque at this layer
//   6      2    flags          bit 0 (kFrameFlagFds) is owned by Channel
//   8      8    request_id     correlates a reply with its request; 0 = none
//   16     4    payload_bytes  length of the payload that follows
//
// The header is encoded byte by byte, so the layout is the same on every host
// and no struct packing is involved.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "modelgrid/status.h"

namespace modelgrid::ipc {

// The first four bytes of every frame: 'M' 'G' 'R' 'D' read as a little-endian u32.
inline constexpr uint32_t kFrameMagic = 0x4452474DU;
// Size of the encoded header, in bytes.
inline constexpr uint64_t kFrameHeaderBytes = 20;
// Default and upper bound of a frame's payload, in bytes (16 MiB). Tensors
// never travel in frames (they live in the shared arena, see arena.h), so a
// bigger payload is a bug or a corrupt stream, never a reason to allocate.
inline constexpr uint32_t kMaxPayloadBytes = 16U * 1024U * 1024U;
// Flag bit set by Channel::Send when file descriptors ride along with the
// frame (SCM_RIGHTS). Callers' own flags must leave this bit alone.
inline constexpr uint16_t kFrameFlagFds = 1U << 0;

// One message: a type, flags, a request id and an owned payload. Plain data,
// copyable; the payload may hold any bytes (including NUL).
struct Frame {
  uint16_t type = 0;
  uint16_t flags = 0;
  uint64_t request_id = 0;
  std::string payload;

  bool operator==(const Frame&) const = default;
};

// The decoded fixed header.
struct FrameHeader {
  uint32_t magic = kFrameMagic;
  uint16_t type = 0;
  uint16_t flags = 0;
  uint64_t request_id = 0;
  uint32_t payload_bytes = 0;

  bool operator==(const FrameHeader&) const = default;
};

// Writes `header` into `out` in the little-endian layout above.
void EncodeFrameHeader(const FrameHeader& header, std::span<uint8_t, kFrameHeaderBytes> out);

// Reads a header from `in`. Errors: kCorruption when the magic is wrong or
// payload_bytes exceeds `max_payload_bytes` (the message gives both figures).
Result<FrameHeader> DecodeFrameHeader(std::span<const uint8_t, kFrameHeaderBytes> in,
                                      uint32_t max_payload_bytes = kMaxPayloadBytes);

}  // namespace modelgrid::ipc
