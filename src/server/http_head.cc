// Request head parsing and checks (http_head.h).
#include "server/http_head.h"

#include <strings.h>

#include <algorithm>

#include "modelgrid/bytes.h"

namespace modelgrid::server {

namespace {

constexpr int kMaxLeadingEmptyLines = 8;

// RFC 9110 §5.6.2 tchar.
bool IsTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

bool IsToken(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), IsTokenChar);
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && ::strncasecmp(a.data(), b.data(), a.size()) == 0;
}

// At most `n` characters of `s`, for messages that quote client bytes.
std::string Quote(std::string_view s, size_t n = 64) {
  std::string out(s.substr(0, n));
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  if (s.size() > n) out += "...";
  return out;
}

// Splits `data` into lines ending in "\n" (a "\r" before it dropped). Calls
// `line(text, end)` with `end` the offset after the "\n"; stops when it
// returns false. Returns false when the last line has no "\n".
template <typename F>
bool ForEachLine(std::string_view data, F&& line) {
  size_t pos = 0;
  while (pos < data.size()) {
    const size_t nl = data.find('\n', pos);
    if (nl == std::string_view::npos) return false;
    std::string_view text = data.substr(pos, nl - pos);
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
    pos = nl + 1;
    if (!line(text, pos)) return true;
  }
  return false;
}

}  // namespace

size_t FindHeadEnd(std::string_view data) {
  size_t end = std::string_view::npos;
  bool seen_request_line = false;
  int leading_empty = 0;
  ForEachLine(data, [&](std::string_view text, size_t after) {
    if (!text.empty()) {
      seen_request_line = true;
      return true;
    }
    if (!seen_request_line && ++leading_empty <= kMaxLeadingEmptyLines) return true;
    end = after;
    return false;
  });
  return end;
}

Result<RequestHead> ParseRequestHead(std::string_view head) {
  RequestHead parsed;
  parsed.bytes = head.size();
  bool have_request_line = false;
  Status error;
  ForEachLine(head, [&](std::string_view text, size_t) {
    if (!have_request_line) {
      if (text.empty()) return true;  // leading empty lines
      have_request_line = true;
      const size_t sp1 = text.find(' ');
      const size_t sp2 = sp1 == std::string_view::npos ? sp1 : text.find(' ', sp1 + 1);
      if (sp2 == std::string_view::npos || text.find(' ', sp2 + 1) != std::string_view::npos ||
          !IsToken(text.substr(0, sp1)) || sp2 == sp1 + 1 || sp2 + 1 == text.size()) {
        error = Status::InvalidArgument("malformed request line '" + Quote(text) +
                                        "' (expected METHOD TARGET HTTP/1.1)");
        return false;
      }
      parsed.method = std::string(text.substr(0, sp1));
      parsed.target = std::string(text.substr(sp1 + 1, sp2 - sp1 - 1));
      parsed.version = std::string(text.substr(sp2 + 1));
      for (char c : parsed.target) {
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
          error = Status::InvalidArgument("malformed request target '" + Quote(parsed.target) +
                                          "' (control character)");
          return false;
        }
      }
      return true;
    }
    if (text.empty()) return false;  // the end of the head
    if (text.front() == ' ' || text.front() == '\t') {
      error = Status::InvalidArgument("folded header line '" + Quote(text) +
                                      "' (obs-fold is not accepted, RFC 9112 §5.2)");
      return false;
    }
    const size_t colon = text.find(':');
    if (colon == std::string_view::npos) {
      error = Status::InvalidArgument("header line '" + Quote(text) + "' has no colon");
      return false;
    }
    const std::string_view name = text.substr(0, colon);
    if (!name.empty() && (name.back() == ' ' || name.back() == '\t')) {
      error = Status::InvalidArgument("whitespace before the colon in header '" + Quote(name) +
                                      "' (RFC 9112 §5.1)");
      return false;
    }
    if (!IsToken(name)) {
      error = Status::InvalidArgument("header name '" + Quote(name) + "' is not a token");
      return false;
    }
    parsed.headers.emplace_back(std::string(name), std::string(Trim(text.substr(colon + 1))));
    return true;
  });
  if (!error.ok()) return error;
  if (!have_request_line) return Status::InvalidArgument("empty request head");
  return parsed;
}

std::optional<HeadRefusal> CheckVersion(std::string_view version) {
  if (version == "HTTP/1.1" || version == "HTTP/1.0") return std::nullopt;
  return HeadRefusal{
      505, "HTTP version '" + Quote(version, 16) + "' is not supported (HTTP/1.1 or HTTP/1.0)"};
}

std::optional<HeadRefusal> CheckHeadSize(size_t header_count, uint64_t head_bytes,
                                         const HeadLimits& limits) {
  if (header_count > static_cast<size_t>(limits.max_headers)) {
    return HeadRefusal{431, "request has " + std::to_string(header_count) +
                                " header fields, more than the limit of " +
                                std::to_string(limits.max_headers) + " (--http-max-headers)"};
  }
  if (head_bytes > limits.max_header_bytes) {
    return HeadRefusal{
        431, "request line and headers are " + std::to_string(head_bytes) +
                 " bytes, more than the limit of " + std::to_string(limits.max_header_bytes) +
                 " bytes (" + FormatBytes(limits.max_header_bytes) + ", --http-max-header-bytes)"};
  }
  return std::nullopt;
}

HeadRefusal HeadTooLarge(uint64_t limit) {
  return HeadRefusal{431, "request line and headers are more than the limit of " +
                              std::to_string(limit) + " bytes (" + FormatBytes(limit) +
                              ", --http-max-header-bytes)"};
}

std::optional<HeadRefusal> CheckFraming(
    const std::vector<std::pair<std::string, std::string>>& headers) {
  std::optional<std::string> length;
  std::string transfer_encoding;
  bool has_transfer_encoding = false;
  for (const auto& [name, value] : headers) {
    if (EqualsIgnoreCase(name, "Content-Length")) {
      if (value.empty() || value.size() > 19 ||
          !std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return HeadRefusal{
            400, "Content-Length '" + Quote(value) + "' is not a byte count (a decimal number)"};
      }
      if (!length) {
        length = value;
      } else if (*length != value) {
        return HeadRefusal{
            400, "conflicting Content-Length headers: '" + *length + "' and '" + value + "'"};
      }
    } else if (EqualsIgnoreCase(name, "Transfer-Encoding")) {
      transfer_encoding += (has_transfer_encoding ? ", " : "") + value;
      has_transfer_encoding = true;
    }
  }
  if (length && has_transfer_encoding) {
    return HeadRefusal{400, "both Content-Length and Transfer-Encoding are set; send one of them"};
  }
  if (has_transfer_encoding && !EqualsIgnoreCase(Trim(transfer_encoding), "chunked")) {
    return HeadRefusal{501, "Transfer-Encoding '" + Quote(transfer_encoding) +
                                "' is not supported (only chunked)"};
  }
  return std::nullopt;
}

std::optional<std::string> FindHeader(
    const std::vector<std::pair<std::string, std::string>>& headers, std::string_view name) {
  for (const auto& [key, value] : headers) {
    if (EqualsIgnoreCase(key, name)) return value;
  }
  return std::nullopt;
}

std::string BodyTooLargeMessage(uint64_t max_body_bytes) {
  return "request body is larger than the limit of " + std::to_string(max_body_bytes) + " bytes (" +
         FormatBytes(max_body_bytes) + ", --max-body-bytes)";
}

const char* ReasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    case 507:
      return "Insufficient Storage";
    default:
      return "Unknown";
  }
}

std::string SerializeClosingResponse(
    int status, std::string_view body,
    const std::vector<std::pair<std::string, std::string>>& extra) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + ReasonPhrase(status) + "\r\n";
  out += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\nConnection: close\r\n";
  for (const auto& [name, value] : extra) out += name + ": " + value + "\r\n";
  out += "\r\n";
  out.append(body);
  return out;
}

}  // namespace modelgrid::server
