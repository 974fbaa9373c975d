// SelectVisibleGpus: CUDA_VISIBLE_DEVICES applied to the GPUs NVML reports.

#include <algorithm>
#include <sstream>

#include "modelgrid/device/nvml.h"

namespace modelgrid {

namespace {

std::string Trim(const std::string& s) {
  const size_t begin = s.find_first_not_of(" \t");
  if (begin == std::string::npos) return "";
  const size_t end = s.find_last_not_of(" \t");
  return s.substr(begin, end - begin + 1);
}

// The NVML index an entry names, or why it names none.
Result<uint32_t> Resolve(const std::string& entry, const std::vector<std::string>& uuids) {
  if (!entry.empty() && entry.find_first_not_of("0123456789") == std::string::npos) {
    if (entry.size() > 9 || std::stoul(entry) >= uuids.size()) {
      return Status::NotFound("index " + entry + " is out of range (" +
                              std::to_string(uuids.size()) + " GPU(s) found)");
    }
    return static_cast<uint32_t>(std::stoul(entry));
  }
  if (entry.rfind("GPU-", 0) != 0) {
    return Status::InvalidArgument("'" + entry +
                                   "' is neither an index nor a UUID starting with GPU-");
  }
  std::vector<uint32_t> matches;
  for (size_t i = 0; i < uuids.size(); ++i) {
    if (!uuids[i].empty() && uuids[i].rfind(entry, 0) == 0)
      matches.push_back(static_cast<uint32_t>(i));
  }
  if (matches.empty()) return Status::NotFound("no GPU has a UUID starting with '" + entry + "'");
  if (matches.size() > 1) {
    return Status::InvalidArgument("'" + entry + "' matches " + std::to_string(matches.size()) +
                                   " GPUs");
  }
  return matches.front();
}

}  // namespace

VisibleGpus SelectVisibleGpus(const std::optional<std::string>& value,
                              const std::vector<std::string>& uuids) {
  VisibleGpus out;
  if (!value) {
    for (size_t i = 0; i < uuids.size(); ++i) out.nvml_indices.push_back(static_cast<uint32_t>(i));
    return out;
  }
  if (Trim(*value).empty()) return out;
  std::stringstream list(*value);
  std::string raw;
  while (std::getline(list, raw, ',')) {
    const std::string entry = Trim(raw);
    Result<uint32_t> index = Resolve(entry, uuids);
    std::string why;
    if (!index.ok()) {
      why = index.status().message();
    } else if (std::find(out.nvml_indices.begin(), out.nvml_indices.end(), *index) !=
               out.nvml_indices.end()) {
      why = "GPU " + std::to_string(*index) + " is listed twice";
    }
    if (!why.empty()) {
      out.warnings.push_back("CUDA_VISIBLE_DEVICES='" + *value + "': entry '" + entry +
                             "' ends the list: " + why);
      break;
    }
    out.nvml_indices.push_back(*index);
  }
  return out;
}

}  // namespace modelgrid
