// KServe datatypes ↔ LibTorch scalar types: the one mapping every
// LibTorch-facing file uses (graph walk, probe, backend).
#pragma once

#include <c10/core/ScalarType.h>

#include "modelgrid/datatype.h"
#include "modelgrid/status.h"

namespace modelgrid {

// BOOL, UINT8, INT8/16/32/64, FP16, BF16, FP32, FP64 map one to one.
// Errors: kUnsupported for UINT16/32/64 and BYTES (LibTorch 1.13 has no
// such tensor types).
Result<c10::ScalarType> ToScalarType(DataType type);

// The inverse. Errors: kUnsupported for LibTorch types without a KServe
// datatype (complex, quantized, ...), naming the type.
Result<DataType> FromScalarType(c10::ScalarType type);

}  // namespace modelgrid
