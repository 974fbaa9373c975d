// Internal to the ipc component: the checks of messages.cc that the
// protobuf codec of `infer` and `result` (request_codec.cc) shares, so that
// both encodings refuse the same payloads with the same messages.
#pragma once

#include <optional>
#include <string>

#include "modelgrid/ipc/messages.h"
#include "modelgrid/status.h"

namespace modelgrid::ipc::internal {

// The StatusCode whose StatusCodeName is `name`; nullopt for none.
std::optional<StatusCode> ParseStatusCode(const std::string& name);

// What a decoded tensor must satisfy: a name, a 64-byte aligned offset,
// dimensions >= 0, and for fixed-size datatypes size == product(shape) *
// element size. Errors: kCorruption "<context>: field '<f>': <what>".
Status CheckTensorRef(const TensorRef& tensor, const std::string& context);

}  // namespace modelgrid::ipc::internal
