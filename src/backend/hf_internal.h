// Private to src/backend/: the loaded state behind HuggingFaceBackend, shared
// by hf_backend.cc (load, infer / embed / classify, swap) and hf_generate.cc
// (generate and its sessions). Includes LibTorch.
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string>
#include <vector>

#include "hf/generation.h"
#include "hf/native_model.h"
#include "modelgrid/backend/hf_backend.h"
#include "modelgrid/tokenizer/incremental_decoder.h"
#include "modelgrid/tokenizer/tokenizer.h"

namespace modelgrid::hf_internal {

// The token rows of one request, and the same right-padded as tensors.
struct Batch {
  std::vector<std::vector<int64_t>> rows;  // real tokens only, per row
  torch::Tensor ids;                       // INT64 [B,S], padded with the pad id
  torch::Tensor mask;                      // INT64 [B,S], 1 = real token
};

// A BYTES tensor [N] of `values`, and an INT64 tensor of `shape` holding
// `values` (row-major): the outputs the tasks build (hf_backend.cc).
InferTensor Bytes(const std::string& name, const std::vector<std::string>& values);
InferTensor Int64(const std::string& name, std::vector<int64_t> shape,
                  const std::vector<int64_t>& values);

// One generation kept between calls (params session / continue).
struct Session {
  std::unique_ptr<hf::Generation> generation;
  std::vector<std::unique_ptr<tokenizer::IncrementalDecoder>> decoders;  // per row; empty without a tokenizer
  std::vector<std::string> text;       // per row: the text so far (stop strings cut)
  std::vector<size_t> emitted;         // per row: bytes of `text` given out so far
  std::vector<std::string> stops;      // stop strings
  std::vector<int64_t> prompt_tokens;  // per row
  std::chrono::steady_clock::time_point last_used;
  bool busy = false;  // a call is running it
};

// The most sessions open at once, and how long an unused one lives.
inline constexpr size_t kMaxSessions = 64;
inline constexpr std::chrono::seconds kSessionIdle{60};

struct Impl {
  ModelEntry entry;
  std::string name;
  std::string dir;
  std::string device;
  hf::Head head = hf::Head::kBase;
  std::shared_ptr<hf::NativeModel> model;  // null while swapped out
  std::unique_ptr<tokenizer::Tokenizer> tokenizer;  // null without tokenizer.json or .model
  // Held shared by Run, exclusively by SwapOut / SwapIn.
  mutable std::shared_mutex mu;

  std::mutex sessions_mu;
  std::map<std::string, std::shared_ptr<Session>> sessions;

  // "model 'M': task 'T': ".
  std::string Prefix(const std::string& task) const;
  // Reads the model (and the tokenizer, once) from the folder.
  Status LoadFiles();
  // The request's token rows from `text` or `input_ids` (+ attention_mask).
  Result<Batch> ReadInputs(const std::string& task, std::span<const InferTensorView> inputs,
                           const nlohmann::json& params) const;
  // The generate task (hf_generate.cc).
  Result<std::vector<InferTensor>> Generate(std::span<const InferTensorView> inputs,
                                            const nlohmann::json& params,
                                            const StreamCallback& stream);
  // Ends every open session (swap-out).
  void DropSessions();
};

}  // namespace modelgrid::hf_internal
