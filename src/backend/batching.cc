// ConcatBatch / SplitBatch over InferTensor bytes (modelgrid/backend/batching.h).
#include "modelgrid/backend/batching.h"

#include <algorithm>
#include <limits>
#include <string>

namespace modelgrid {
namespace {

std::string Where(size_t request, const std::string& input) {
  return "request " + std::to_string(request) + ": input '" + input + "': ";
}

// Byte offset of each row boundary of `t` along dim 0 (rows + 1 entries).
Result<std::vector<size_t>> RowOffsets(const InferTensor& t) {
  const int64_t rows = t.shape[0];
  std::vector<size_t> offsets(static_cast<size_t>(rows) + 1, 0);
  std::span<const int64_t> inner(t.shape.begin() + 1, t.shape.end());
  MG_ASSIGN_OR_RETURN(uint64_t per_row, ElementCount(inner));
  if (t.datatype != DataType::kBytes) {
    const uint64_t row_bytes = per_row * DataTypeSize(t.datatype);
    for (int64_t r = 0; r <= rows; ++r) offsets[r] = static_cast<size_t>(row_bytes * r);
    return offsets;
  }
  MG_ASSIGN_OR_RETURN(auto elements, SplitBytesElements(t.data));
  for (int64_t r = 0; r < rows; ++r) {
    size_t end = offsets[r];
    for (uint64_t e = 0; e < per_row; ++e) end += 4 + elements[r * per_row + e].size();
    offsets[r + 1] = end;
  }
  return offsets;
}

}  // namespace

Result<ConcatenatedBatch> ConcatBatch(const std::vector<std::vector<InferTensor>>& requests) {
  if (requests.empty()) return Status::InvalidArgument("ConcatBatch: no requests");
  ConcatenatedBatch batch;
  const auto& first = requests[0];
  for (const auto& t : first) {
    if (std::count_if(first.begin(), first.end(),
                      [&](const InferTensor& o) { return o.name == t.name; }) > 1) {
      return Status::InvalidArgument(Where(0, t.name) + "given twice");
    }
    InferTensor joined;
    joined.name = t.name;
    joined.datatype = t.datatype;
    joined.shape = t.shape;
    if (!joined.shape.empty()) joined.shape[0] = 0;
    batch.inputs.push_back(std::move(joined));
  }
  for (size_t r = 0; r < requests.size(); ++r) {
    const auto& req = requests[r];
    if (req.size() != first.size()) {
      return Status::InvalidArgument("request " + std::to_string(r) + ": expected " +
                                     std::to_string(first.size()) + " inputs, got " +
                                     std::to_string(req.size()));
    }
    int64_t request_batch = -1;
    std::string batch_input;
    for (auto& joined : batch.inputs) {
      auto it = std::find_if(req.begin(), req.end(),
                             [&](const InferTensor& t) { return t.name == joined.name; });
      if (it == req.end()) return Status::InvalidArgument(Where(r, joined.name) + "missing");
      const InferTensor& t = *it;
      if (t.shape.empty())
        return Status::InvalidArgument(Where(r, t.name) + "a scalar has no batch dim");
      if (t.datatype != joined.datatype) {
        return Status::InvalidArgument(Where(r, t.name) + "expected datatype " +
                                       std::string(DataTypeName(joined.datatype)) + ", got " +
                                       std::string(DataTypeName(t.datatype)));
      }
      if (!std::equal(t.shape.begin() + 1, t.shape.end(), joined.shape.begin() + 1,
                      joined.shape.end())) {
        std::vector<int64_t> want = joined.shape;
        want[0] = -1;
        return Status::InvalidArgument(Where(r, t.name) + "expected shape " + FormatShape(want) +
                                       ", got " + FormatShape(t.shape));
      }
      MG_RETURN_IF_ERROR(ValidateTensorData(t).WithPrefix("request " + std::to_string(r)));
      if (request_batch != -1 && t.shape[0] != request_batch) {
        return Status::InvalidArgument(Where(r, t.name) + "batch size " +
                                       std::to_string(t.shape[0]) + " differs from input '" +
                                       batch_input + "' (" + std::to_string(request_batch) + ")");
      }
      request_batch = t.shape[0];
      batch_input = t.name;
      if (joined.shape[0] > std::numeric_limits<int64_t>::max() - t.shape[0]) {
        return Status::InvalidArgument(Where(r, t.name) + "total batch size overflows");
      }
      joined.shape[0] += t.shape[0];
      joined.data += t.data;
    }
    batch.batch_sizes.push_back(request_batch == -1 ? 0 : request_batch);
  }
  return batch;
}

Result<std::vector<std::vector<InferTensor>>> SplitBatch(const std::vector<InferTensor>& outputs,
                                                         std::span<const int64_t> batch_sizes) {
  int64_t total = 0;
  for (int64_t b : batch_sizes) {
    if (b < 0 || total > std::numeric_limits<int64_t>::max() - b) {
      return Status::InvalidArgument("SplitBatch: bad batch size " + std::to_string(b));
    }
    total += b;
  }
  std::vector<std::vector<InferTensor>> result(batch_sizes.size());
  for (const auto& out : outputs) {
    const std::string what = "output '" + out.name + "': ";
    if (out.shape.empty())
      return Status::InvalidArgument(what + "a scalar has no batch dim to split");
    if (out.shape[0] != total) {
      return Status::InvalidArgument(what + "batch dim is " + std::to_string(out.shape[0]) +
                                     ", expected the sum of the requests' batch sizes " +
                                     std::to_string(total));
    }
    MG_RETURN_IF_ERROR(ValidateTensorData(out, "output"));
    MG_ASSIGN_OR_RETURN(auto offsets, RowOffsets(out));
    int64_t row = 0;
    for (size_t r = 0; r < batch_sizes.size(); ++r) {
      InferTensor piece;
      piece.name = out.name;
      piece.datatype = out.datatype;
      piece.shape = out.shape;
      piece.shape[0] = batch_sizes[r];
      piece.parameters = out.parameters;
      const size_t begin = offsets[row];
      const size_t end = offsets[row + batch_sizes[r]];
      piece.data = out.data.substr(begin, end - begin);
      row += batch_sizes[r];
      result[r].push_back(std::move(piece));
    }
  }
  return result;
}

}  // namespace modelgrid
