#include "modelgrid/ipc/frame.h"

#include <cstdio>
#include <string>

namespace modelgrid::ipc {
namespace {

void PutLe(uint8_t* out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out[i] = static_cast<uint8_t>(value >> (8 * i));
}

uint64_t GetLe(const uint8_t* in, int bytes) {
  uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) value |= static_cast<uint64_t>(in[i]) << (8 * i);
  return value;
}

}  // namespace

void EncodeFrameHeader(const FrameHeader& header, std::span<uint8_t, kFrameHeaderBytes> out) {
  uint8_t* p = out.data();
  PutLe(p + 0, header.magic, 4);
  PutLe(p + 4, header.type, 2);
  PutLe(p + 6, header.flags, 2);
  PutLe(p + 8, header.request_id, 8);
  PutLe(p + 16, header.payload_bytes, 4);
}

Result<FrameHeader> DecodeFrameHeader(std::span<const uint8_t, kFrameHeaderBytes> in,
                                      uint32_t max_payload_bytes) {
  const uint8_t* p = in.data();
  FrameHeader header;
  header.magic = static_cast<uint32_t>(GetLe(p + 0, 4));
  header.type = static_cast<uint16_t>(GetLe(p + 4, 2));
  header.flags = static_cast<uint16_t>(GetLe(p + 6, 2));
  header.request_id = GetLe(p + 8, 8);
  header.payload_bytes = static_cast<uint32_t>(GetLe(p + 16, 4));
  if (header.magic != kFrameMagic) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "bad frame magic 0x%08x (expected 0x%08x)", header.magic,
                  kFrameMagic);
    return Status::Corruption(buf);
  }
  if (header.payload_bytes > max_payload_bytes) {
    return Status::Corruption("frame payload of " + std::to_string(header.payload_bytes) +
                              " bytes exceeds the limit of " + std::to_string(max_payload_bytes) +
                              " bytes");
  }
  return header;
}

}  // namespace modelgrid::ipc
