// TorchScriptGraphWalker: the abstract interpretation of a TorchScript
// method (overview in modelgrid/torch/graph_walk.h).

#include "modelgrid/torch/graph_walk.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <torch/csrc/jit/passes/canonicalize_graph_fuser_ops.h>
#include <torch/csrc/jit/passes/common_subexpression_elimination.h>
#include <torch/csrc/jit/passes/constant_pooling.h>
#include <torch/csrc/jit/passes/constant_propagation.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/decompose_ops.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/csrc/jit/passes/lower_grad_of.h>
#include <torch/csrc/jit/passes/lower_tuples.h>
#include <torch/csrc/jit/passes/peephole.h>
#include <torch/csrc/jit/passes/remove_expands.h>
#include <caffe2/serialize/inline_container.h>
#include <torch/script.h>

#include <cstdio>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "dtype_map.h"
#include "memory_sim.h"
#include "shape_rules.h"

namespace modelgrid {

namespace fs = std::filesystem;
using torch::jit::Block;
using torch::jit::Node;
using torch::jit::Value;

namespace {

KernelFacts DetectKernelFacts(int threads) {
  KernelFacts f;
  f.threads = threads > 0 ? threads : at::get_num_threads();
  f.mkldnn = at::hasMKLDNN() && at::globalContext().userEnabledMkldnn();
  __builtin_cpu_init();
  f.mkldnn_block = __builtin_cpu_supports("avx512f") ? 16 : 8;
  return f;
}

// The passes LibTorch 1.13's profiling graph executor runs before the first
// execution (runProfilingInsensitiveOptimizations), so that the walk sees
// the ops that will run.
void PrepareGraph(std::shared_ptr<torch::jit::Graph>& g) {
  torch::jit::Inline(*g);
  torch::jit::LowerGradOf(*g);
  torch::jit::RemoveExpands(g);
  torch::jit::CanonicalizeOps(g);
  torch::jit::EliminateDeadCode(g);
  torch::jit::DecomposeOps(g);
  torch::jit::ConstantPropagation(g);
  torch::jit::EliminateDeadCode(g);
  torch::jit::EliminateCommonSubexpression(g);
  torch::jit::ConstantPooling(g);
  torch::jit::PeepholeOptimize(g);
  torch::jit::EliminateDeadCode(g);
  torch::jit::LowerSimpleTuples(g);
}

// Bytes of the archive records LibTorch keeps after loading besides the
// tensors: the debug_pkl source-range records of the code files that define
// functions (measured: those stay allocated for the life of the module; the
// code/*.py records themselves, and the debug records of classes without
// methods, are freed or never read).
uint64_t RetainedRecordBytes(const std::string& path) {
  caffe2::serialize::PyTorchStreamReader reader(path);
  const std::string suffix = ".debug_pkl";
  uint64_t bytes = 0;
  for (const std::string& record : reader.getAllRecords()) {
    if (record.size() < suffix.size() || record.compare(record.size() - suffix.size(), suffix.size(), suffix) != 0) {
      continue;
    }
    const std::string source = record.substr(0, record.size() - suffix.size());
    if (reader.hasRecord(source)) {
      auto [code, code_size] = reader.getRecord(source);
      const std::string_view text(static_cast<const char*>(code.get()), code_size);
      if (text.find("def ") == std::string_view::npos) continue;
    }
    auto [data, size] = reader.getRecord(record);
    bytes += (size + 63) / 64 * 64;
  }
  return bytes;
}

class GraphInterpreter final : public OpContext {
 public:
  GraphInterpreter(DeviceKind device, KernelFacts facts, std::FILE* trace)
      : device_(device), facts_(facts), sim_(device), trace_(trace) {
    if (trace_) sim_.EnableLog();
  }

  // Registers every tensor reachable from the module (parameters, buffers,
  // tensor attributes) as weights.
  void RegisterWeights(const c10::IValue& v, std::unordered_set<const void*>* seen_objects) {
    if (v.isTensor()) {
      WeightStorage(v.toTensor());
    } else if (v.isObject()) {
      auto obj = v.toObject();
      if (!seen_objects->insert(obj.get()).second) return;
      for (const c10::IValue& slot : obj->slots()) RegisterWeights(slot, seen_objects);
    } else if (v.isTuple()) {
      for (const auto& e : v.toTupleRef().elements()) RegisterWeights(e, seen_objects);
    } else if (v.isList()) {
      for (const auto& e : v.toListRef()) RegisterWeights(e, seen_objects);
    } else if (v.isGenericDict()) {
      for (const auto& kv : v.toGenericDict()) RegisterWeights(kv.value(), seen_objects);
    }
  }
  // The archive records LibTorch keeps after loading (RetainedRecordBytes).
  void RegisterRetained(uint64_t bytes) {
    if (bytes > 0) sim_.NewStorage(bytes, MemorySim::Kind::kWeight, "debug records");
  }
  // The tensor constants of a loaded graph (constants.pkl) are weights too.
  void RegisterGraphConstants(Block* block) {
    for (Node* n : block->nodes()) {
      if (n->kind() == c10::prim::Constant && n->output()->type()->kind() == c10::TypeKind::TensorType) {
        if (auto iv = torch::jit::toIValue(n->output()); iv && iv->isTensor()) WeightStorage(iv->toTensor());
      }
      for (Block* b : n->blocks()) RegisterGraphConstants(b);
    }
  }

  Status Run(torch::jit::Graph& graph, const c10::IValue& self, const std::vector<std::vector<int64_t>>& shapes,
             const std::vector<DataType>& types) {
    std::vector<AbsValue> params;
    size_t next = 0;
    for (size_t i = 0; i < graph.inputs().size(); ++i) {
      const Value* in = graph.inputs()[i];
      if (i == 0 && in->type()->kind() == c10::TypeKind::ClassType) {
        params.push_back(AbsValue::Const(self));
        continue;
      }
      if (next >= shapes.size()) {
        return Status::InvalidArgument("the method takes more inputs than the " + std::to_string(shapes.size()) +
                                       " given");
      }
      TensorMeta t;
      t.sizes = shapes[next];
      t.strides = ContiguousStrides(t.sizes);
      auto dtype = ToScalarType(types[next]);
      if (!dtype.ok()) return dtype.status().WithPrefix("input " + std::to_string(next));
      t.dtype = *dtype;
      t.storage = sim_.NewStorage(t.nbytes(), MemorySim::Kind::kInput, "input " + std::to_string(next));
      params.push_back(AbsValue::Tensor(std::move(t)));
      ++next;
    }
    if (next != shapes.size()) {
      return Status::InvalidArgument("the method takes " + std::to_string(next) + " inputs, " +
                                     std::to_string(shapes.size()) + " shapes were given");
    }
    std::vector<AbsValue> results;
    return WalkBlock(graph.block(), params, &results);  // results stay referenced: the caller holds them
  }

  const MemorySim& sim() const { return sim_; }
  std::string notes() const {
    std::string s;
    for (const std::string& n : notes_) s += (s.empty() ? "" : "; ") + n;
    return s;
  }

  // ---- OpContext
  TensorMeta NewTensor(std::vector<int64_t> sizes, c10::ScalarType dtype) override {
    auto strides = ContiguousStrides(sizes);
    return NewStridedTensor(std::move(sizes), std::move(strides), dtype);
  }
  TensorMeta NewStridedTensor(std::vector<int64_t> sizes, std::vector<int64_t> strides,
                              c10::ScalarType dtype) override {
    TensorMeta t;
    t.sizes = std::move(sizes);
    t.strides = std::move(strides);
    t.dtype = dtype;
    t.storage = sim_.NewStorage(t.nbytes(), MemorySim::Kind::kActivation, current_op_);
    return t;
  }
  int Temp(uint64_t bytes, const char* what) override { return sim_.AllocTemp(bytes, what); }
  void FreeTemp(int id) override { sim_.FreeTemp(id); }
  void Note(const std::string& note) override {
    if (notes_.size() < 20) notes_.insert(note);
  }
  DeviceKind device() const override { return device_; }
  const KernelFacts& facts() const override { return facts_; }

 private:
  int WeightStorage(const at::Tensor& t) {
    if (!t.defined() || !t.has_storage()) return -1;
    const void* key = t.storage().unsafeGetStorageImpl();
    if (auto it = weights_.find(key); it != weights_.end()) return it->second;
    const int id = sim_.NewStorage(t.storage().nbytes(), MemorySim::Kind::kWeight, "weight");
    weights_[key] = id;
    return id;
  }

  // A tensor seen in the graph (attribute or constant): weights when loaded
  // with the module, else a constant made by the executor's constant
  // propagation at the first run (allocated then, kept).
  AbsValue TensorValue(const at::Tensor& t) {
    if (!t.defined()) return AbsValue::Const(c10::IValue());
    TensorMeta m;
    m.sizes = t.sizes().vec();
    m.strides = t.strides().vec();
    m.dtype = t.scalar_type();
    const void* key = t.has_storage() ? t.storage().unsafeGetStorageImpl() : nullptr;
    if (auto it = weights_.find(key); it != weights_.end()) {
      m.storage = it->second;
    } else if (key != nullptr) {
      auto c = constants_.find(key);
      if (c == constants_.end()) {
        const int id = sim_.NewStorage(t.storage().nbytes(), MemorySim::Kind::kInput, "folded constant");
        c = constants_.emplace(key, id).first;
      }
      m.storage = c->second;
    }
    if (t.numel() == 1 && (t.is_floating_point() || c10::isIntegralType(t.scalar_type(), true))) {
      m.value = t.item<double>();
    }
    return AbsValue::Tensor(std::move(m));
  }

  AbsValue ConstantValue(const Node* n) {
    auto iv = torch::jit::toIValue(n->output());
    if (!iv) return AbsValue::Unknown();
    if (iv->isTensor()) return TensorValue(iv->toTensor());
    return AbsValue::Const(*iv);
  }

  Status GetAttr(const Node* n, const AbsValue& obj, AbsValue* out) {
    if (obj.kind != AbsValue::Kind::kConst || !obj.c.isObject()) {
      return Status::Unsupported("prim::GetAttr on something that is not a module");
    }
    const std::string& name = n->s(c10::attr::name);
    auto object = obj.c.toObject();
    if (!object->type()->hasAttribute(name)) return Status::Unsupported("prim::GetAttr: no attribute " + name);
    c10::IValue v = object->getAttr(name);
    if (v.isTensor()) {
      *out = TensorValue(v.toTensor());
    } else if (v.isTensorList()) {
      std::vector<AbsValue> elems;
      for (const at::Tensor& t : v.toTensorVector()) elems.push_back(TensorValue(t));
      *out = AbsValue::List(std::move(elems));
    } else {
      *out = AbsValue::Const(v);
    }
    return Status::Ok();
  }

  void Hold(const AbsValue& v) {
    std::vector<int> ids;
    v.CollectStorages(&ids);
    for (int id : ids) sim_.Ref(id);
  }
  void Drop(const AbsValue& v) {
    std::vector<int> ids;
    v.CollectStorages(&ids);
    for (int id : ids) sim_.Unref(id);
  }

  // Last node of `block` that uses each value defined in it (uses inside
  // nested blocks count at the nesting node; the block's return does not).
  static std::unordered_map<const Value*, const Node*> LastUses(Block* block) {
    std::unordered_map<const Value*, const Node*> last;
    std::function<void(Node*, const Node*)> visit = [&](Node* n, const Node* top) {
      for (const Value* in : n->inputs()) last[in] = top;
      for (Block* b : n->blocks()) {
        for (Node* inner : b->nodes()) visit(inner, top);
        for (const Value* out : b->outputs()) last[out] = top;
      }
    };
    for (Node* n : block->nodes()) visit(n, n);
    return last;
  }

  Status WalkBlock(Block* block, const std::vector<AbsValue>& params, std::vector<AbsValue>* results) {
    if (++depth_ > 64) return Status::Unsupported("blocks nested too deeply");
    const auto last = LastUses(block);
    std::unordered_set<const Value*> returned(block->outputs().begin(), block->outputs().end());
    std::vector<const Value*> local;  // values of this block still held
    auto define = [&](const Value* v, AbsValue a) {
      Hold(a);
      values_[v] = std::move(a);
      local.push_back(v);
    };
    auto release_after = [&](const Node* n) {
      for (auto it = local.begin(); it != local.end();) {
        const Value* v = *it;
        auto lu = last.find(v);
        const bool dead = !returned.count(v) && (lu == last.end() || lu->second == n);
        if (dead) {
          Drop(values_[v]);
          values_.erase(v);
          it = local.erase(it);
        } else {
          ++it;
        }
      }
    };
    if (params.size() != block->inputs().size()) return Status::Internal("block parameters do not match");
    for (size_t i = 0; i < params.size(); ++i) define(block->inputs()[i], params[i]);
    release_after(nullptr);  // unused parameters

    for (Node* n : block->nodes()) {
      std::vector<AbsValue> outs;
      MG_RETURN_IF_ERROR(WalkNode(n, &outs));
      for (size_t i = 0; i < n->outputs().size(); ++i) define(n->outputs()[i], std::move(outs[i]));
      for (const AbsValue& v : handover_) Drop(v);
      handover_.clear();
      sim_.Sweep();
      release_after(n);
      if (trace_) TraceNode(n);
    }
    results->clear();
    for (const Value* v : block->outputs()) {
      auto it = values_.find(v);
      if (it == values_.end()) return Status::Internal("a block output has no value");
      results->push_back(it->second);
      Hold(it->second);  // the caller's reference
    }
    for (const Value* v : local) {
      Drop(values_[v]);
      values_.erase(v);
    }
    --depth_;
    return Status::Ok();
  }

  Status WalkNode(Node* n, std::vector<AbsValue>* outs) {
    const std::string op = n->kind().toQualString();
    current_op_ = op;
    std::vector<AbsValue> in;
    for (const Value* v : n->inputs()) {
      auto it = values_.find(v);
      in.push_back(it == values_.end() ? AbsValue::Unknown() : it->second);
    }
    if (n->kind() == c10::prim::Constant) {
      outs->push_back(ConstantValue(n));
      return Status::Ok();
    }
    if (n->kind() == c10::prim::GetAttr) {
      AbsValue v;
      MG_RETURN_IF_ERROR(GetAttr(n, in[0], &v));
      outs->push_back(std::move(v));
      return Status::Ok();
    }
    if (n->kind() == c10::prim::If) return WalkIf(n, in, outs);
    if (n->kind() == c10::prim::Loop) return WalkLoop(n, in, outs);
    if (n->kind() == c10::prim::Uninitialized || n->kind() == c10::prim::RaiseException) {
      for (size_t i = 0; i < n->outputs().size(); ++i) outs->push_back(AbsValue::Unknown());
      return Status::Ok();
    }
    if (n->kind() == c10::prim::CallMethod || n->kind() == c10::prim::CallFunction) {
      return Status::Unsupported(op + " left after inlining");
    }
    if ((n->kind() == c10::aten::__is__ || n->kind() == c10::aten::__isnot__) && in.size() == 2) {
      // Object identity, as scripted code tests it: against None, or two
      // tensors (`query is key`): the same value, or the same layout of the
      // same storage, is the same object.
      const bool is = n->kind() == c10::aten::__is__;
      std::optional<bool> same;
      if (n->input(0) == n->input(1)) {
        same = true;
      } else if (in[0].is_none() || in[1].is_none()) {
        if ((in[0].is_none() && in[1].is_none()) || in[0].is_tensor() || in[1].is_tensor()) {
          same = in[0].is_none() && in[1].is_none();
        }
      } else if (in[0].is_tensor() && in[1].is_tensor()) {
        same = in[0].t.storage == in[1].t.storage && in[0].t.sizes == in[1].t.sizes &&
               in[0].t.strides == in[1].t.strides && in[0].t.dtype == in[1].t.dtype;
      }
      if (same) {
        outs->push_back(AbsValue::Const(is == *same));
        return Status::Ok();
      }
    }
    if (n->kind() == c10::aten::append && in.size() == 2 && in[0].kind == AbsValue::Kind::kList) {
      // The one list mutation scripted code uses: the list value grows (and
      // keeps the new element alive); the op returns the list.
      auto it = values_.find(n->input(0));
      if (it != values_.end() && it->second.kind == AbsValue::Kind::kList) {
        it->second.elems.push_back(in[1]);
        Hold(in[1]);
        outs->push_back(it->second);
        return Status::Ok();
      }
    }
    RuleArgs args(n, in);
    Status s = ApplyRule(args, *this, outs);
    if (!s.ok()) return s;
    if (outs->size() != n->outputs().size()) return Status::Internal(op + ": rule gave the wrong number of outputs");
    return Status::Ok();
  }

  Status WalkIf(Node* n, const std::vector<AbsValue>& in, std::vector<AbsValue>* outs) {
    auto cond = in.empty() ? std::nullopt : AsBool(in[0]);
    Block* chosen = n->blocks()[0];
    if (cond) {
      chosen = *cond ? n->blocks()[0] : n->blocks()[1];
    } else {
      const Node* producer = n->input(0)->node();
      Note(std::string("prim::If on a condition unknown before running (from ") + producer->kind().toQualString() +
           "): walked its first branch");
    }
    MG_RETURN_IF_ERROR(WalkBlock(chosen, {}, outs));
    handover_ = *outs;  // the block's references, dropped once the outputs are defined
    return Status::Ok();
  }

  Status WalkLoop(Node* n, const std::vector<AbsValue>& in, std::vector<AbsValue>* outs) {
    // prim::Loop(max_trip_count, initial_condition, carried...) with a body
    // block (iteration, carried...) -> (condition, carried...).
    auto trips = in.size() > 0 ? AsInt(in[0]) : std::nullopt;
    auto cond = in.size() > 1 ? AsBool(in[1]) : std::nullopt;
    std::vector<AbsValue> carried(in.begin() + 2, in.end());
    constexpr int64_t kMaxIterations = 4096;
    int64_t limit = trips.value_or(1);
    if (!trips || !cond) Note("prim::Loop with a trip count unknown before running: walked one iteration");
    if (limit > kMaxIterations) {
      Note("prim::Loop of " + std::to_string(limit) + " iterations: walked " + std::to_string(kMaxIterations));
      limit = kMaxIterations;
    }
    for (const AbsValue& v : carried) Hold(v);  // the loop's own references
    bool go = cond.value_or(true);
    for (int64_t i = 0; i < limit && go; ++i) {
      std::vector<AbsValue> params = {AbsValue::Const(i)};
      params.insert(params.end(), carried.begin(), carried.end());
      std::vector<AbsValue> results;
      MG_RETURN_IF_ERROR(WalkBlock(n->blocks()[0], params, &results));
      for (const AbsValue& v : carried) Drop(v);
      go = cond ? AsBool(results[0]).value_or(false) : false;
      Drop(results[0]);
      carried.assign(results.begin() + 1, results.end());  // references handed over by WalkBlock
    }
    *outs = carried;
    handover_ = carried;  // the loop's references, dropped once the outputs are defined
    return Status::Ok();
  }

  void TraceNode(const Node* n) {
    std::string line = std::string(n->kind().toQualString()) + " ->";
    for (const Value* v : n->outputs()) {
      auto it = values_.find(v);
      line += " " + (it == values_.end() ? std::string("(dead)") : it->second.Describe());
    }
    for (const std::string& l : sim_.log()) std::fprintf(trace_, "    %s\n", l.c_str());
    sim_.ClearLog();
    std::fprintf(trace_, "%s  live=%llu\n", line.c_str(), static_cast<unsigned long long>(sim_.current_bytes()));
  }

 private:
  DeviceKind device_;
  KernelFacts facts_;
  MemorySim sim_;
  std::FILE* trace_;
  std::unordered_map<const void*, int> weights_;
  std::unordered_map<const void*, int> constants_;
  std::unordered_map<const Value*, AbsValue> values_;
  std::set<std::string> notes_;
  std::string current_op_;
  std::vector<AbsValue> handover_;  // references an If/Loop passes to its outputs
  int depth_ = 0;
};

}  // namespace

Result<ModuleSummary> SummarizeModule(const fs::path& model_pt) {
  const std::string name = model_pt.string();
  std::error_code ec;
  if (!fs::is_regular_file(model_pt, ec)) return Status::NotFound(name + ": no such file");
  try {
    torch::jit::Module module = torch::jit::load(name, torch::kCPU);
    ModuleSummary s;
    std::unordered_set<const void*> seen;
    for (const at::Tensor& p : module.parameters(/*recurse=*/true)) {
      if (!seen.insert(p.unsafeGetTensorImpl()).second) continue;
      s.parameters += static_cast<uint64_t>(p.numel());
      s.parameter_bytes += p.nbytes();
    }
    for (const at::Tensor& b : module.buffers(/*recurse=*/true)) {
      if (seen.insert(b.unsafeGetTensorImpl()).second) s.buffer_bytes += b.nbytes();
    }
    GraphInterpreter walk(DeviceKind::kCpu, KernelFacts{}, nullptr);
    std::unordered_set<const void*> objects;
    walk.RegisterWeights(module._ivalue(), &objects);
    for (const torch::jit::Method& method : module.get_methods()) {
      auto inlined = method.graph()->copy();
      torch::jit::Inline(*inlined);
      walk.RegisterGraphConstants(inlined->block());
    }
    s.tensor_storage_bytes = walk.sim().weight_bytes();
    s.debug_record_bytes = RetainedRecordBytes(name);
    return s;
  } catch (const c10::Error& e) {
    return Status::Corruption(name + ": cannot load the TorchScript module: " + e.what_without_backtrace());
  } catch (const std::exception& e) {
    return Status::Corruption(name + ": cannot load the TorchScript module: " + e.what());
  }
}

Result<GraphWalker::Profile> TorchScriptGraphWalker::Walk(const fs::path& model_pt,
                                                          const std::vector<std::vector<int64_t>>& input_shapes,
                                                          const std::vector<DataType>& input_types,
                                                          DeviceKind device) {
  const std::string name = model_pt.string();
  std::error_code ec;
  if (!fs::is_regular_file(model_pt, ec)) return Status::NotFound(name + ": no such file");
  if (input_shapes.size() != input_types.size()) {
    return Status::InvalidArgument(name + ": " + std::to_string(input_shapes.size()) + " shapes but " +
                                   std::to_string(input_types.size()) + " types");
  }
  for (const auto& shape : input_shapes) {
    for (int64_t d : shape) {
      if (d < 0) return Status::InvalidArgument(name + ": input shapes must be fully known (no -1)");
    }
  }
  torch::jit::Module module;
  try {
    module = torch::jit::load(name, torch::kCPU);
    module.eval();
  } catch (const c10::Error& e) {
    return Status::Corruption(name + ": cannot load the TorchScript module: " + e.what_without_backtrace());
  } catch (const std::exception& e) {
    return Status::Corruption(name + ": cannot load the TorchScript module: " + e.what());
  }
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> trace(nullptr, &std::fclose);
  if (!options_.trace_file.empty()) {
    trace.reset(std::fopen(options_.trace_file.c_str(), "w"));
    if (!trace) return Status::InvalidArgument(options_.trace_file.string() + ": cannot write");
  }
  try {
    auto method = module.find_method(options_.method);
    if (!method) return Status::InvalidArgument(name + ": no method '" + options_.method + "'");
    std::shared_ptr<torch::jit::Graph> loaded = method->graph();
    GraphInterpreter walk(device, DetectKernelFacts(options_.threads), trace.get());
    std::unordered_set<const void*> seen;
    walk.RegisterWeights(module._ivalue(), &seen);
    walk.RegisterRetained(RetainedRecordBytes(name));
    {
      auto inlined = loaded->copy();
      torch::jit::Inline(*inlined);
      walk.RegisterGraphConstants(inlined->block());
    }
    // As the worker runs the model: grad mode queries in scripted code
    // (torch.is_grad_enabled()) answer as they will then.
    c10::InferenceMode inference;
    auto graph = loaded->copy();
    PrepareGraph(graph);
    if (trace) std::fprintf(trace.get(), "%s\n", graph->toString().c_str());
    Status s = walk.Run(*graph, module._ivalue(), input_shapes, input_types);
    if (!s.ok()) return s.WithPrefix(name);
    Profile p;
    p.weight_bytes = walk.sim().weight_bytes();
    p.peak_activation_bytes = walk.sim().peak_activation_bytes();
    p.peak_workspace_bytes = walk.sim().peak_workspace_bytes();
    p.notes = walk.notes();
    return p;
  } catch (const c10::Error& e) {
    return Status::Unsupported(name + ": the graph walk failed: " + e.what_without_backtrace());
  } catch (const std::exception& e) {
    return Status::Internal(name + ": the graph walk failed: " + e.what());
  }
}

}  // namespace modelgrid
