// Request body inflation and answer compression with zlib (http_compression.h).
#include "server/http_compression.h"

#include <strings.h>
#include <zlib.h>

#include <cstdlib>

namespace modelgrid::server {

namespace {

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && ::strncasecmp(a.data(), b.data(), a.size()) == 0;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Bytes inflated per zlib call.
constexpr size_t kChunk = 64 << 10;

}  // namespace

struct BodyInflater::State {
  z_stream stream{};
  bool initialized = false;
  bool ended = false;         // the current member reached Z_STREAM_END
  bool extra_member = false;  // inflating bytes after the first member's end
};

BodyInflater::BodyInflater() : state_(std::make_unique<State>()) {}

BodyInflater::~BodyInflater() {
  if (state_->initialized) inflateEnd(&state_->stream);
}

Result<std::unique_ptr<BodyInflater>> BodyInflater::Create(std::string_view coding) {
  const std::string_view c = Trim(coding);
  if (!EqualsIgnoreCase(c, "gzip") && !EqualsIgnoreCase(c, "x-gzip") &&
      !EqualsIgnoreCase(c, "deflate")) {
    return Status::Unsupported("Content-Encoding '" + std::string(c.substr(0, 64)) +
                               "' is not supported (gzip, deflate or identity)");
  }
  std::unique_ptr<BodyInflater> inflater(new BodyInflater());
  // 15 + 32: a zlib or a gzip stream, told apart by its header.
  if (inflateInit2(&inflater->state_->stream, 15 + 32) != Z_OK) {
    return Status::Internal("zlib inflateInit2 failed");
  }
  inflater->state_->initialized = true;
  return inflater;
}

Status BodyInflater::Feed(std::string_view data, uint64_t max_bytes, std::string* out) {
  z_stream& z = state_->stream;
  while (!data.empty()) {
    if (state_->ended) {
      // Only another gzip member may follow (RFC 1952 §2.2); inflating it
      // from a reset stream refuses anything else.
      if (inflateReset(&z) != Z_OK) return Status::Internal("zlib inflateReset failed");
      state_->ended = false;
      state_->extra_member = true;
    }
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z.avail_in = static_cast<uInt>(std::min<size_t>(data.size(), 1u << 30));
    const size_t offered = z.avail_in;
    char buffer[kChunk];
    do {
      z.next_out = reinterpret_cast<Bytef*>(buffer);
      z.avail_out = sizeof(buffer);
      const int rc = inflate(&z, Z_NO_FLUSH);
      if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
        return Status::InvalidArgument(
            std::string("malformed gzip/deflate body: ") +
            (state_->extra_member ? "bytes after the end of the compressed stream: " : "") +
            (z.msg ? z.msg : "zlib error " + std::to_string(rc)));
      }
      const size_t produced = sizeof(buffer) - z.avail_out;
      if (out->size() + produced > max_bytes) {
        return Status::ResourceExhausted("inflated body is larger than " +
                                         std::to_string(max_bytes) + " bytes");
      }
      out->append(buffer, produced);
      if (rc == Z_STREAM_END) {
        state_->ended = true;
        break;
      }
      if (rc == Z_BUF_ERROR && produced == 0) break;  // needs more input
    } while (z.avail_in > 0 || z.avail_out == 0);
    data.remove_prefix(offered - z.avail_in);
  }
  return Status::Ok();
}

Status BodyInflater::Finish() const {
  if (!state_->ended) {
    return Status::InvalidArgument(
        "compressed body is truncated (the gzip/deflate stream has no end)");
  }
  return Status::Ok();
}

bool AcceptsGzip(std::string_view accept_encoding) {
  std::string_view rest = accept_encoding;
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    std::string_view item = Trim(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    const size_t semi = item.find(';');
    const std::string_view coding = Trim(item.substr(0, semi));
    if (!EqualsIgnoreCase(coding, "gzip") && !EqualsIgnoreCase(coding, "x-gzip") && coding != "*") {
      continue;
    }
    if (semi == std::string_view::npos) return true;
    std::string_view params = Trim(item.substr(semi + 1));
    if (params.size() >= 2 && (params[0] == 'q' || params[0] == 'Q') && params[1] == '=') {
      const std::string q(Trim(params.substr(2)));
      return std::strtod(q.c_str(), nullptr) > 0;
    }
    return true;
  }
  return false;
}

bool IsCompressibleType(std::string_view content_type) {
  const std::string_view type = Trim(content_type.substr(0, content_type.find(';')));
  return EqualsIgnoreCase(type, "application/json") ||
         (type.size() > 5 && EqualsIgnoreCase(type.substr(0, 5), "text/"));
}

Result<std::string> GzipCompress(std::string_view data) {
  z_stream z{};
  // 15 + 16: a gzip header and trailer around the deflate stream.
  if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return Status::Internal("zlib deflateInit2 failed");
  }
  std::string out;
  out.resize(deflateBound(&z, static_cast<uLong>(data.size())));
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&z, Z_FINISH);
  const size_t produced = out.size() - z.avail_out;
  deflateEnd(&z);
  if (rc != Z_STREAM_END)
    return Status::Internal("zlib deflate failed (" + std::to_string(rc) + ")");
  out.resize(produced);
  return out;
}

}  // namespace modelgrid::server
