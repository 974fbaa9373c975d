#include "modelgrid/bytes.h"

#include <cmath>
#include <cstdio>
#include <limits>
#include <utility>

namespace modelgrid {

namespace {

struct Unit {
  std::string_view name;
  uint64_t factor;
};

constexpr Unit kUnits[] = {
    {"", 1},          {"B", 1},
    {"K", kKiB},      {"KiB", kKiB},          {"kB", 1000},          {"KB", 1000},
    {"M", kMiB},      {"MiB", kMiB},          {"MB", 1000000},
    {"G", kGiB},      {"GiB", kGiB},          {"GB", 1000000000ULL},
    {"T", kGiB * 1024}, {"TiB", kGiB * 1024}, {"TB", 1000000000000ULL},
};

}  // namespace

Result<uint64_t> ParseBytes(std::string_view text) {
  const std::string original(text);
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument("invalid byte quantity '" + original + "': " + why +
                                   " (expected e.g. 1024, 512MiB, 80GiB, 1.5GB)");
  };
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  size_t i = 0;
  bool seen_digit = false, seen_dot = false;
  while (i < text.size() && ((text[i] >= '0' && text[i] <= '9') || text[i] == '.')) {
    if (text[i] == '.') {
      if (seen_dot) return bad("two decimal points");
      seen_dot = true;
    } else {
      seen_digit = true;
    }
    ++i;
  }
  if (!seen_digit) return bad("no number");
  std::string number(text.substr(0, i));
  std::string_view unit = text.substr(i);
  while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  for (const Unit& u : kUnits) {
    if (u.name != unit) continue;
    if (!seen_dot) {
      uint64_t value = 0;
      for (char c : number) {
        uint64_t digit = static_cast<uint64_t>(c - '0');
        if (value > (std::numeric_limits<uint64_t>::max() - digit) / 10) return bad("too large");
        value = value * 10 + digit;
      }
      if (u.factor != 0 && value > std::numeric_limits<uint64_t>::max() / u.factor) {
        return bad("too large");
      }
      return value * u.factor;
    }
    long double value = std::strtold(number.c_str(), nullptr) * static_cast<long double>(u.factor);
    if (value >= static_cast<long double>(std::numeric_limits<uint64_t>::max())) {
      return bad("too large");
    }
    return static_cast<uint64_t>(std::llround(value));
  }
  return bad("unknown unit '" + std::string(unit) + "'");
}

std::string FormatBytes(uint64_t bytes) {
  static constexpr std::pair<uint64_t, const char*> kSteps[] = {
      {kGiB * 1024, "TiB"}, {kGiB, "GiB"}, {kMiB, "MiB"}, {kKiB, "KiB"}};
  char buf[64];
  for (const auto& [factor, name] : kSteps) {
    if (bytes >= factor) {
      std::snprintf(buf, sizeof buf, "%.2f %s",
                    static_cast<double>(bytes) / static_cast<double>(factor), name);
      return buf;
    }
  }
  std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  return buf;
}

}  // namespace modelgrid
