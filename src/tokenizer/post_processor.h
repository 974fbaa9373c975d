// Post-processors (tokenizer.json "post_processor"): add the special tokens
// around an encoded sequence and set its type ids; the byte-level ones trim
// the offsets of tokens that begin or end with spaces. Supported types:
// TemplateProcessing, BertProcessing, RobertaProcessing, ByteLevel, Sequence.
// Implementations are immutable and thread-safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "modelgrid/status.h"
#include "modelgrid/tokenizer/tokenizer.h"
#include "tokenizer/json_node.h"

namespace modelgrid::tokenizer {

// A token a post-processor inserts.
struct SpecialPiece {
  std::string token;
  int64_t id = 0;
  int64_t type_id = 0;
};

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  // Rewrites `e` (the model's tokens, type ids 0, no special tokens) of the
  // text `input`; special tokens only when `add_special_tokens`.
  virtual void Process(std::string_view input, bool add_special_tokens, Encoding* e) const = 0;
  // How many special tokens Process adds to one sequence.
  virtual size_t AddedTokens() const = 0;
};

// Builds the post-processor `node` describes; nullptr for a JSON null.
// Errors: kUnsupported for an unknown "type", kCorruption for a bad field
// (e.g. a template naming a special token missing from "special_tokens").
Result<std::unique_ptr<PostProcessor>> MakePostProcessor(const JsonNode& node);

// A TemplateProcessing for one sequence: `before` $A `after` (transformers'
// LlamaTokenizerFast builds one from add_bos_token / add_eos_token).
std::unique_ptr<PostProcessor> MakeSimpleTemplate(std::vector<SpecialPiece> before,
                                                  std::vector<SpecialPiece> after);

// Appends one special token to `e`: offsets (0, 0), special mask 1.
void AppendSpecial(const SpecialPiece& p, Encoding* e);

}  // namespace modelgrid::tokenizer
