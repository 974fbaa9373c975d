// Helper shared by the benchmarks that call a model sequentially
// (dispatch_bench, transport_bench): a copy of a zoo model whose
// config.yaml gets its own dynamic_batching block. With one sequential
// caller there is never a partner to wait for, so the shipped queue delay
// would only hide the cost being measured. Header-only, like bench_util.h.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>

#include "modelgrid/status.h"

namespace modelgrid::bench {

// Copies the model folder `from` to `to` and appends a dynamic_batching
// block with `queue_delay_us` to its config.yaml. Errors: kNotFound when the
// copy fails, kInvalidArgument when config.yaml already declares
// dynamic_batching, kInternal when config.yaml cannot be written.
inline Status CopyWithQueueDelay(const std::filesystem::path& from, const std::filesystem::path& to,
                                 uint64_t queue_delay_us) {
  std::error_code ec;
  std::filesystem::copy(from, to, std::filesystem::copy_options::recursive, ec);
  if (ec)
    return Status::NotFound("cannot copy " + from.string() + " to " + to.string() + ": " +
                            ec.message());
  const std::filesystem::path config = to / "config.yaml";
  std::string text;
  {
    std::ifstream in(config);
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  if (text.find("dynamic_batching") != std::string::npos) {
    return Status::InvalidArgument(config.string() + " already declares dynamic_batching");
  }
  std::ofstream out(config, std::ios::app);
  out << "dynamic_batching:\n  max_queue_delay_us: " << queue_delay_us << "\n";
  if (!out) return Status::Internal("cannot write " + config.string());
  return Status::Ok();
}

}  // namespace modelgrid::bench
