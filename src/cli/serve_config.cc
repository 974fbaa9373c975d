// modelgrid.yaml for `modelgrid serve` (serve_config.h).
#include "cli/serve_config.h"

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include "modelgrid/bytes.h"
#include "modelgrid/repository.h"
#include "modelgrid/placement.h"

namespace modelgrid::cli {

namespace {

// The smallest worker arena accepted (a request's inputs and outputs must fit).
constexpr uint64_t kMinArenaBytes = uint64_t{1} << 20;

// "0.5" or "86400": a bound in messages.
std::string FormatSeconds(double s) {
  std::ostringstream out;
  out << s;
  return out.str();
}

// Errors of one field carry "FILE: field 'NAME': ...".
class FieldReader {
 public:
  FieldReader(const std::string& file, const std::string& name, const YAML::Node& node)
      : file_(file), name_(name), node_(node) {}

  Status Error(const std::string& what) const {
    return Status::InvalidArgument(file_ + ": field '" + name_ + "': " + what);
  }
  Result<std::string> Scalar() const {
    if (!node_.IsScalar()) return Error("expected a single value");
    return node_.Scalar();
  }
  Result<int64_t> Integer(int64_t min, int64_t max) const {
    MG_ASSIGN_OR_RETURN(std::string text, Scalar());
    int64_t v = 0;
    try {
      v = node_.as<int64_t>();
    } catch (const YAML::Exception&) {
      return Error("expected an integer, got '" + text + "'");
    }
    if (v < min || v > max) {
      return Error(std::to_string(v) + " is not in " + std::to_string(min) + ".." +
                   std::to_string(max));
    }
    return v;
  }
  // A number of seconds in [min, max] (fractions allowed).
  Result<double> Seconds(double min, double max) const {
    MG_ASSIGN_OR_RETURN(std::string text, Scalar());
    double v = 0;
    try {
      v = node_.as<double>();
    } catch (const YAML::Exception&) {
      return Error("expected a number of seconds, got '" + text + "'");
    }
    if (!(v >= min && v <= max)) {
      return Error(text + " seconds is not in " + FormatSeconds(min) + ".." + FormatSeconds(max));
    }
    return v;
  }
  Result<uint64_t> Bytes() const {
    MG_ASSIGN_OR_RETURN(std::string text, Scalar());
    auto bytes = ParseBytes(text);
    if (!bytes.ok()) return Error(bytes.status().message());
    return *bytes;
  }
  Result<std::vector<std::string>> StringList() const {
    if (node_.IsScalar()) return std::vector<std::string>{node_.Scalar()};
    if (!node_.IsSequence()) return Error("expected a list of device specs");
    std::vector<std::string> list;
    for (const YAML::Node& item : node_) {
      if (!item.IsScalar()) return Error("expected a list of device specs");
      list.push_back(item.Scalar());
    }
    return list;
  }

 private:
  const std::string& file_;
  const std::string& name_;
  const YAML::Node& node_;
};

using FieldSetter = std::function<Status(const FieldReader&, ServeConfig*)>;

// Setters of the optional integer HTTP limits: `field` of ServeConfig in [min, max].
FieldSetter IntLimit(std::optional<int> ServeConfig::*field, int64_t min, int64_t max) {
  return [field, min, max](const FieldReader& r, ServeConfig* c) -> Status {
    MG_ASSIGN_OR_RETURN(int64_t v, r.Integer(min, max));
    c->*field = static_cast<int>(v);
    return Status::Ok();
  };
}

FieldSetter SecondsLimit(std::optional<double> ServeConfig::*field) {
  return [field](const FieldReader& r, ServeConfig* c) -> Status {
    MG_ASSIGN_OR_RETURN(c->*field, r.Seconds(0.001, 86'400));
    return Status::Ok();
  };
}

// One setter per field of the schema (serve_config.h).
std::map<std::string, FieldSetter> FieldSetters(const std::filesystem::path& base_dir) {
  std::map<std::string, FieldSetter> setters;
  setters["repository"] = [base_dir](const FieldReader& r, ServeConfig* c) -> Status {
    MG_ASSIGN_OR_RETURN(std::string path, r.Scalar());
    if (path.empty()) return r.Error("must not be empty");
    std::filesystem::path p(path);
    c->repository = (p.is_relative() ? base_dir / p : p).lexically_normal().string();
    return Status::Ok();
  };
  setters["devices"] = [](const FieldReader& r, ServeConfig* c) -> Status {
    MG_ASSIGN_OR_RETURN(c->devices, r.StringList());
    return Status::Ok();
  };
  setters["strategy"] = [](const FieldReader& r, ServeConfig* c) -> Status {
    MG_ASSIGN_OR_RETURN(c->strategy, r.Scalar());
    if (auto s = ParseStrategy(c->strategy); !s.ok()) return r.Error(s.status().message());
    return Status::Ok();
  };
  setters["isolation"] = [](const FieldReader& r, ServeConfig* c) -> Status {
    MG_ASSIGN_OR_RETURN(c->isolation, r.Scalar());
    if (auto i = ParseIsolation(c->isolation); !i.ok()) return r.Error(i.status().message());
    return Status::Ok();
  };
  setters["host"] = [](const FieldReader& r, ServeConfig* c) -> Status {
    MG_ASSIGN_OR_RETURN(c->host, r.Scalar());
    if (c->host.empty()) return r.Error("must not be empty");
    return Status::Ok();
  };
  setters["http_port"] = [](const FieldReader& r, ServeConfig* c) -> Status {
    MG_ASSIGN_OR_RETURN(int64_t v, r.Integer(0, 65535));
    c->http_port = static_cast<int>(v);
    return Status::Ok();
  };
  setters["grpc_port"] = [](const FieldReader& r, ServeConfig* c) -> Status {
    MG_ASSIGN_OR_RETURN(int64_t v, r.Integer(-1, 65535));
    c->grpc_port = static_cast<int>(v);
    return Status::Ok();
  };
  setters["admin_token"] = [](const FieldReader& r, ServeConfig* c) -> Status {
    MG_ASSIGN_OR_RETURN(c->admin_token, r.Scalar());
    return Status::Ok();
  };
  setters["log_file"] = [base_dir](const FieldReader& r, ServeConfig* c) -> Status {
    MG_ASSIGN_OR_RETURN(std::string path, r.Scalar());
    const std::filesystem::path p = path;
    c->log_file = path.empty() ? path : (p.is_relative() ? base_dir / p : p).lexically_normal().string();
    return Status::Ok();
  };
  setters["log_format"] = [](const FieldReader& r, ServeConfig* c) -> Status {
    MG_ASSIGN_OR_RETURN(c->log_format, r.Scalar());
    if (c->log_format != "text" && c->log_format != "json") return r.Error("expected text or json");
    return Status::Ok();
  };
  setters["log_max_file_bytes"] = [](const FieldReader& r, ServeConfig* c) -> Status {
    MG_ASSIGN_OR_RETURN(c->log_max_file_bytes, r.Bytes());
    if (c->log_max_file_bytes < 4096) return r.Error("must be at least 4096 bytes");
    return Status::Ok();
  };
  setters["log_max_files"] = [](const FieldReader& r, ServeConfig* c) -> Status {
    MG_ASSIGN_OR_RETURN(int64_t v, r.Integer(1, 1000));
    c->log_max_files = static_cast<int>(v);
    return Status::Ok();
  };
  setters["shm_key_prefix"] = [](const FieldReader& r, ServeConfig* c) -> Status {
    MG_ASSIGN_OR_RETURN(c->shm_key_prefix, r.Scalar());
    return Status::Ok();
  };
  setters["max_body_bytes"] = [](const FieldReader& r, ServeConfig* c) -> Status {
    MG_ASSIGN_OR_RETURN(c->max_body_bytes, r.Bytes());
    if (c->max_body_bytes == 0) return r.Error("must be at least 1 byte");
    return Status::Ok();
  };
  setters["worker_threads"] = [](const FieldReader& r, ServeConfig* c) -> Status {
    MG_ASSIGN_OR_RETURN(int64_t v, r.Integer(0, 4096));
    c->worker_threads = static_cast<int>(v);
    return Status::Ok();
  };
  setters["spin_us"] = [](const FieldReader& r, ServeConfig* c) -> Status {
    MG_ASSIGN_OR_RETURN(c->spin_us, r.Integer(0, 1'000'000));
    return Status::Ok();
  };
  setters["arena"] = [](const FieldReader& r, ServeConfig* c) -> Status {
    MG_ASSIGN_OR_RETURN(c->arena_bytes, r.Bytes());
    if (c->arena_bytes < kMinArenaBytes) return r.Error("must be at least 1MiB");
    return Status::Ok();
  };
  setters["buffer"] = [](const FieldReader& r, ServeConfig* c) -> Status {
    MG_ASSIGN_OR_RETURN(c->buffer_bytes, r.Bytes());
    return Status::Ok();
  };
  setters["swap_dir"] = [base_dir](const FieldReader& r, ServeConfig* c) -> Status {
    MG_ASSIGN_OR_RETURN(std::string v, r.Scalar());
    if (v.empty()) return r.Error("must not be empty");
    std::filesystem::path p = v;
    c->swap_dir = (p.is_relative() ? base_dir / p : p).lexically_normal().string();
    return Status::Ok();
  };
  setters["swap_space"] = [](const FieldReader& r, ServeConfig* c) -> Status {
    MG_ASSIGN_OR_RETURN(c->swap_space_bytes, r.Bytes());
    return Status::Ok();
  };
  setters["load"] = [](const FieldReader& r, ServeConfig* c) -> Status {
    MG_ASSIGN_OR_RETURN(std::string v, r.Scalar());
    auto policy = ParseLoadPolicy(v);
    if (!policy.ok() || *policy == LoadPolicy::kDefault) {
      return r.Error("expected eager or on_demand, got '" + v + "'");
    }
    c->load = v;
    return Status::Ok();
  };
  setters["min_residency_ms"] = [](const FieldReader& r, ServeConfig* c) -> Status {
    MG_ASSIGN_OR_RETURN(c->min_residency_ms, r.Integer(0, 86'400'000));
    return Status::Ok();
  };
  setters["access_log"] = [](const FieldReader& r, ServeConfig* c) -> Status {
    MG_ASSIGN_OR_RETURN(std::string v, r.Scalar());
    if (v != "true" && v != "false") return r.Error("expected true or false, got '" + v + "'");
    c->access_log = v == "true";
    return Status::Ok();
  };
  setters["strict_readiness"] = [](const FieldReader& r, ServeConfig* c) -> Status {
    MG_ASSIGN_OR_RETURN(std::string v, r.Scalar());
    if (v != "true" && v != "false") return r.Error("expected true or false, got '" + v + "'");
    c->strict_readiness = v == "true";
    return Status::Ok();
  };
  setters["max_cpu_models"] = [](const FieldReader& r, ServeConfig* c) -> Status {
    MG_ASSIGN_OR_RETURN(int64_t v, r.Integer(-1, 1 << 20));
    c->max_cpu_models = static_cast<int>(v);
    return Status::Ok();
  };
  setters["http_max_header_bytes"] = [](const FieldReader& r, ServeConfig* c) -> Status {
    MG_ASSIGN_OR_RETURN(uint64_t v, r.Bytes());
    if (v < 1024 || v > 65536) {
      return r.Error(std::to_string(v) + " bytes is not in 1KiB..64KiB (1024..65536)");
    }
    c->http_max_header_bytes = v;
    return Status::Ok();
  };
  setters["http_max_headers"] = IntLimit(&ServeConfig::http_max_headers, 1, 10'000);
  setters["http_header_timeout"] = SecondsLimit(&ServeConfig::http_header_timeout_s);
  setters["http_body_timeout"] = SecondsLimit(&ServeConfig::http_body_timeout_s);
  setters["http_idle_timeout"] = SecondsLimit(&ServeConfig::http_idle_timeout_s);
  setters["http_max_connections"] = IntLimit(&ServeConfig::http_max_connections, 1, 1'000'000);
  setters["http_max_connections_per_client"] =
      IntLimit(&ServeConfig::http_max_connections_per_client, 0, 1'000'000);
  setters["http_backlog"] = IntLimit(&ServeConfig::http_backlog, 1, 1'000'000);
  setters["http_threads"] = IntLimit(&ServeConfig::http_threads, 0, 4096);
  setters["http_io_threads"] = IntLimit(&ServeConfig::http_io_threads, 0, 64);
  return setters;
}

}  // namespace

Status ApplyServeConfigYaml(const std::string& yaml_text, const std::string& file,
                            const std::filesystem::path& base_dir, ServeConfig* config) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(file + ": YAML error at line " +
                                   std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  if (root.IsNull()) return Status::Ok();  // an empty file: every default
  if (!root.IsMap()) return Status::InvalidArgument(file + ": expected a mapping of fields");
  const auto setters = FieldSetters(base_dir);
  ServeConfig updated = *config;
  for (const auto& entry : root) {
    std::string name;
    try {
      name = entry.first.as<std::string>();
    } catch (const YAML::Exception&) {
      return Status::InvalidArgument(file + ": field names must be strings");
    }
    auto setter = setters.find(name);
    if (setter == setters.end()) {
      std::string known;
      for (const auto& [field, unused] : setters) known += (known.empty() ? "" : ", ") + field;
      return Status::InvalidArgument(file + ": unknown field '" + name + "' (known: " + known +
                                     ")");
    }
    MG_RETURN_IF_ERROR(setter->second(FieldReader(file, name, entry.second), &updated));
  }
  *config = std::move(updated);
  return Status::Ok();
}

Status ApplyServeConfigFile(const std::filesystem::path& file, ServeConfig* config) {
  std::ifstream in(file);
  if (!in) return Status::NotFound("cannot read server config " + file.string());
  std::ostringstream text;
  text << in.rdbuf();
  return ApplyServeConfigYaml(text.str(), file.string(), file.parent_path(), config);
}

}  // namespace modelgrid::cli
