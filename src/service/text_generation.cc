// Triton's text-generation conventions -> GenerateRequest (text_generation.h).
#include "service/text_generation.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <set>

namespace modelgrid::service {

namespace {

using nlohmann::json;

constexpr const char* kKnownFields =
    "stream, triton_enable_empty_final_response, sampling_parameters, max_tokens, max_new_tokens, "
    "temperature, do_sample, top_k, top_p, seed, stop, ignore_eos, exclude_input_in_output, "
    "priority, task";

// Generate task parameters passed on as given: the backend checks them and
// its messages name them.
bool PassedThrough(const std::string& name) {
  static const std::set<std::string> kNames = {"do_sample", "top_k",      "top_p",      "seed",
                                               "stop",      "ignore_eos", "temperature"};
  return kNames.contains(name);
}

std::string Shown(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

Status WrongType(const std::string& name, const char* expected, const json& value) {
  return Status::InvalidArgument("'" + name + "' must be " + expected + ", got " + Shown(value));
}

// Applies fields one by one to a TextGeneration.
class FieldReader {
 public:
  explicit FieldReader(TextGeneration* out) : out_(out) {}

  // One field `name` = `value`. `nested`: read from sampling_parameters,
  // where only generation parameters may appear.
  Status Read(const std::string& name, const json& value, bool nested = false) {
    json& params = out_->request.params;
    if (PassedThrough(name)) {
      params[name] = value;
      return Status::Ok();
    }
    if (name == "max_tokens" || name == "max_new_tokens") {
      if (!max_name_.empty() && max_name_ != name) {
        return Status::InvalidArgument("give 'max_tokens' or 'max_new_tokens', not both");
      }
      max_name_ = name;
      params["max_new_tokens"] = value;
      return Status::Ok();
    }
    if (nested) {
      return Status::InvalidArgument("'sampling_parameters' holds generation parameters only; '" +
                                     name + "' is not one");
    }
    if (name == "stream" || name == "triton_enable_empty_final_response" ||
        name == "exclude_input_in_output") {
      if (!value.is_boolean()) return WrongType(name, "a bool", value);
      if (name == "stream") out_->stream = value.get<bool>();
      if (name == "triton_enable_empty_final_response") {
        out_->empty_final_response = value.get<bool>();
      }
      if (name == "exclude_input_in_output" && !value.get<bool>()) {
        return Status::InvalidArgument(
            "'exclude_input_in_output' false is not supported: text_output holds the generated "
            "text only");
      }
      return Status::Ok();
    }
    if (name == "sampling_parameters") return ReadSampling(value);
    if (name == "priority") {
      if (!value.is_number_integer() || value.get<int64_t>() < INT_MIN ||
          (value.is_number_unsigned() ? value.get<uint64_t>() > INT_MAX
                                      : value.get<int64_t>() > INT_MAX)) {
        return WrongType(name, "an integer", value);
      }
      out_->request.priority = static_cast<int>(value.get<int64_t>());
      return Status::Ok();
    }
    if (name == "task") {
      if (value != json("generate")) return WrongType(name, "\"generate\" (or absent)", value);
      return Status::Ok();
    }
    if (name == "binary_data_output") return Status::Ok();  // the HTTP codec's option
    return Status::InvalidArgument("unknown text generation parameter '" + name +
                                   "' (known: " + kKnownFields + ")");
  }

  // After every field: temperature 0 means greedy (vLLM's, OpenAI's), any
  // other temperature sampling, unless do_sample was given.
  void Finish() {
    json& params = out_->request.params;
    auto t = params.find("temperature");
    if (t == params.end() || !t->is_number()) return;
    const double temperature = t->get<double>();
    if (!params.contains("do_sample")) params["do_sample"] = temperature > 0;
    if (temperature == 0 && params["do_sample"] == json(false)) params.erase("temperature");
  }

 private:
  Status ReadSampling(const json& value) {
    json parsed = value;
    if (value.is_string()) {
      parsed = json::parse(value.get<std::string>(), nullptr, /*allow_exceptions=*/false);
    }
    if (!parsed.is_object()) {
      return WrongType("sampling_parameters", "a JSON object or a string holding one", value);
    }
    for (auto it = parsed.begin(); it != parsed.end(); ++it) {
      MG_RETURN_IF_ERROR(Read(it.key(), it.value(), /*nested=*/true));
    }
    return Status::Ok();
  }

  TextGeneration* out_;
  std::string max_name_;
};

bool IsPromptName(const std::string& name) {
  return name == "text_input" || name == "text" || name == "input_ids" || name == "attention_mask";
}

// Exactly one prompt (text_input, text or input_ids); attention_mask only
// beside input_ids.
Status CheckPrompt(const std::vector<InferTensor>& inputs) {
  int prompts = 0;
  bool ids = false, mask = false;
  for (const InferTensor& t : inputs) {
    if (t.name == "text_input" || t.name == "text" || t.name == "input_ids") ++prompts;
    ids = ids || t.name == "input_ids";
    mask = mask || t.name == "attention_mask";
  }
  if (prompts == 0) {
    return Status::InvalidArgument(
        "text generation needs a prompt: 'text_input' (text) or 'input_ids' (token ids)");
  }
  if (prompts > 1) {
    return Status::InvalidArgument(
        "text generation takes one prompt: 'text_input', 'text' or 'input_ids', not several");
  }
  if (mask && !ids) return Status::InvalidArgument("'attention_mask' goes with 'input_ids' only");
  return Status::Ok();
}

// A prompt input as the generate task reads it: text_input renamed text.
Status AddPromptInput(InferTensor tensor, std::vector<InferTensor>* inputs) {
  const std::string who = "input '" + tensor.name + "'";
  if (tensor.parameters.contains("shared_memory_region")) {
    return Status::InvalidArgument(who + ": shared memory is not supported for text generation");
  }
  const bool text = tensor.name == "text_input" || tensor.name == "text";
  const DataType want = text ? DataType::kBytes : DataType::kInt64;
  if (tensor.datatype != want) {
    return Status::InvalidArgument(who + " must be " + std::string(DataTypeName(want)) + ", got " +
                                   std::string(DataTypeName(tensor.datatype)));
  }
  if (tensor.name == "text_input") tensor.name = "text";
  inputs->push_back(std::move(tensor));
  return Status::Ok();
}

// A one-value input as a JSON value (BYTES: a string, or an array of
// strings when it holds several).
Result<json> FieldValue(const InferTensor& t) {
  const std::string who = "input '" + t.name + "'";
  if (t.parameters.contains("shared_memory_region")) {
    return Status::InvalidArgument(who + ": shared memory is not supported for text generation");
  }
  if (t.datatype == DataType::kBytes) {
    MG_ASSIGN_OR_RETURN(auto elements, SplitBytesElements(t.data));
    if (elements.size() == 1) return json(std::string(elements[0]));
    json all = json::array();
    for (std::string_view e : elements) all.push_back(std::string(e));
    return all;
  }
  MG_ASSIGN_OR_RETURN(const uint64_t count, ElementCount(t.shape));
  const uint64_t size = DataTypeSize(t.datatype);
  if (count != 1 || t.data.size() != size) {
    return Status::InvalidArgument(who + " must hold one value, got shape " + FormatShape(t.shape));
  }
  auto read = [&](auto zero) {
    decltype(zero) v;
    std::memcpy(&v, t.data.data(), sizeof(v));
    return v;
  };
  switch (t.datatype) {
    case DataType::kBool:
      return json(t.data[0] != 0);
    case DataType::kInt8:
      return json(static_cast<int64_t>(read(int8_t{})));
    case DataType::kInt16:
      return json(static_cast<int64_t>(read(int16_t{})));
    case DataType::kInt32:
      return json(static_cast<int64_t>(read(int32_t{})));
    case DataType::kInt64:
      return json(read(int64_t{}));
    case DataType::kUInt8:
      return json(static_cast<uint64_t>(read(uint8_t{})));
    case DataType::kUInt16:
      return json(static_cast<uint64_t>(read(uint16_t{})));
    case DataType::kUInt32:
      return json(static_cast<uint64_t>(read(uint32_t{})));
    case DataType::kUInt64:
      return json(read(uint64_t{}));
    case DataType::kFP32:
      return json(static_cast<double>(read(float{})));
    case DataType::kFP64:
      return json(read(double{}));
    default:
      return Status::InvalidArgument(who + ": " + std::string(DataTypeName(t.datatype)) +
                                     " is not read here; send FP32");
  }
}

// A JSON prompt field as an input tensor: text_input / text a string or
// an array of strings; input_ids / attention_mask an array of token ids
// or an array of equally long arrays of them.
Result<InferTensor> PromptFromJson(const std::string& name, const json& v) {
  if (name == "text_input" || name == "text") {
    InferTensor t{name, DataType::kBytes, {}, {}};
    if (v.is_string()) {
      AppendBytesElement(&t.data, v.get<std::string>());
      t.shape = {1};
      return t;
    }
    if (!v.is_array() || v.empty()) return WrongType(name, "a string or an array of strings", v);
    for (const json& e : v) {
      if (!e.is_string()) return WrongType(name, "a string or an array of strings", v);
      AppendBytesElement(&t.data, e.get<std::string>());
    }
    t.shape = {static_cast<int64_t>(v.size())};
    return t;
  }
  const char* expected = "an array of token ids or an array of equally long arrays of them";
  if (!v.is_array() || v.empty()) return WrongType(name, expected, v);
  const json rows = v.front().is_array() ? v : json::array({v});
  InferTensor t{name, DataType::kInt64, {}, {}};
  const size_t width = rows.front().size();
  for (const json& row : rows) {
    if (!row.is_array() || row.size() != width || width == 0) return WrongType(name, expected, v);
    for (const json& e : row) {
      if (!e.is_number_integer()) return WrongType(name, expected, v);
      const int64_t id = e.get<int64_t>();
      t.data.append(reinterpret_cast<const char*>(&id), sizeof(id));
    }
  }
  t.shape = {static_cast<int64_t>(rows.size()), static_cast<int64_t>(width)};
  return t;
}

TextGeneration Begin(const std::string& model, const std::string& version) {
  TextGeneration g;
  g.request.model = model;
  g.request.version = version;
  return g;
}

}  // namespace

bool IsTextGenerationRequest(const InferRequest& request) {
  if (request.parameters.is_object() && request.parameters.contains("stream")) return true;
  return std::any_of(request.inputs.begin(), request.inputs.end(),
                     [](const InferTensor& t) { return t.name == "stream"; });
}

Result<TextGeneration> TextGenerationFromInfer(const std::string& model, const std::string& version,
                                               InferRequest request) {
  TextGeneration g = Begin(model, version);
  g.request.id = request.id;
  MG_RETURN_IF_ERROR(CheckPrompt(request.inputs));
  FieldReader reader(&g);
  for (InferTensor& t : request.inputs) {
    if (IsPromptName(t.name)) {
      MG_RETURN_IF_ERROR(AddPromptInput(std::move(t), &g.request.inputs));
      continue;
    }
    MG_ASSIGN_OR_RETURN(json value, FieldValue(t));
    MG_RETURN_IF_ERROR(reader.Read(t.name, value));
  }
  if (request.parameters.is_object()) {
    for (auto it = request.parameters.begin(); it != request.parameters.end(); ++it) {
      MG_RETURN_IF_ERROR(reader.Read(it.key(), it.value()));
    }
  }
  reader.Finish();
  return g;
}

Result<TextGeneration> TextGenerationFromJson(const std::string& model, const std::string& version,
                                              const nlohmann::json& body) {
  if (!body.is_object()) return Status::InvalidArgument("request body must be a JSON object");
  TextGeneration g = Begin(model, version);
  FieldReader reader(&g);
  for (auto it = body.begin(); it != body.end(); ++it) {
    const std::string& key = it.key();
    const json& value = it.value();
    if (key == "id") {
      if (!value.is_string()) return WrongType(key, "a string", value);
      g.request.id = value.get<std::string>();
    } else if (key == "parameters") {
      if (!value.is_object()) return WrongType(key, "a JSON object", value);
      for (auto p = value.begin(); p != value.end(); ++p) {
        MG_RETURN_IF_ERROR(reader.Read(p.key(), p.value()));
      }
    } else if (IsPromptName(key)) {
      MG_ASSIGN_OR_RETURN(InferTensor t, PromptFromJson(key, value));
      MG_RETURN_IF_ERROR(AddPromptInput(std::move(t), &g.request.inputs));
    } else {
      // Triton reads other fields as one-element input tensors; a client
      // may send them as a JSON scalar or as a one-element array.
      const json& one = value.is_array() && value.size() == 1 ? value.front() : value;
      MG_RETURN_IF_ERROR(reader.Read(key, one));
    }
  }
  MG_RETURN_IF_ERROR(CheckPrompt(g.request.inputs));
  reader.Finish();
  return g;
}

Result<ModelStatus> FindGeneratingModel(const InferenceService& service, const std::string& model,
                                        const std::string& version) {
  MG_ASSIGN_OR_RETURN(ModelStatus status, service.FindModel(model, version));
  const auto& tasks = status.tasks;
  if (!tasks.empty() && std::find(tasks.begin(), tasks.end(), "generate") == tasks.end()) {
    std::string list;
    for (const std::string& t : tasks) list += (list.empty() ? "" : ", ") + t;
    return Status::InvalidArgument("model '" + model + "' does not generate text (tasks: " + list +
                                   ")");
  }
  return status;
}

}  // namespace modelgrid::service
