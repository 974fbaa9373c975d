// Calibration: the probe child process, the input shapes of a model, the
// cache of measured peaks (modelgrid/torch/calibration.h).

#include "modelgrid/torch/calibration.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>

#include "modelgrid/torch/torch_info.h"

extern char** environ;

namespace modelgrid {

namespace fs = std::filesystem;

// ------------------------------------------------------------ the probe process

namespace {

std::string ShapeSpec(const std::vector<int64_t>& shape, DataType type) {
  std::string s;
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + ":" + std::string(DataTypeName(type));
}

std::string LastLines(const std::string& text, int lines) {
  size_t pos = text.size();
  while (pos > 0 && (text[pos - 1] == '\n' || text[pos - 1] == ' ')) --pos;
  const size_t end = pos;
  for (int n = 0; n < lines && pos > 0; ++n) {
    pos = text.rfind('\n', pos - 1);
    if (pos == std::string::npos) {
      pos = 0;
      break;
    }
  }
  std::string out = text.substr(pos, end - pos);
  while (!out.empty() && out.front() == '\n') out.erase(out.begin());
  return out.empty() ? "(no output)" : out;
}

struct ChildResult {
  std::string out, err;
  int status = 0;
  bool timed_out = false;
};

// Runs argv with stdout and stderr captured, killing it past the deadline.
Result<ChildResult> RunChild(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) return Status::Internal(std::string("pipe: ") + std::strerror(errno));
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    close(out_pipe[0]);
    close(out_pipe[1]);
    return Status::Internal(std::string("pipe: ") + std::strerror(errno));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], STDERR_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (rc != 0) {
    close(out_pipe[0]);
    close(err_pipe[0]);
    return Status::Internal("cannot start " + argv[0] + ": " + std::strerror(rc));
  }
  ChildResult result;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open_fds = 2;
  char buf[65536];
  while (open_fds > 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      result.timed_out = true;
      break;
    }
    const int ready = poll(fds, 2, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
    if (ready < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t n = read(fds[i].fd, buf, sizeof(buf));
      if (n > 0) {
        (i == 0 ? result.out : result.err).append(buf, static_cast<size_t>(n));
        if (result.err.size() > (1 << 20)) result.err.erase(0, result.err.size() - (1 << 19));
      } else if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  if (result.timed_out) kill(pid, SIGKILL);
  for (auto& fd : fds) {
    if (fd.fd >= 0) close(fd.fd);
  }
  // The pipes are closed: wait for the exit, bounded in case the child
  // closed its output and lingers.
  int status = 0;
  while (true) {
    const pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) break;
    if (std::chrono::steady_clock::now() > deadline) {
      result.timed_out = true;
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      break;
    }
    usleep(10'000);
  }
  result.status = status;
  return result;
}

}  // namespace

Result<ProbeMeasurement> RunProbeProcess(const ProbeRequest& request) {
  const std::string model = request.model_name.empty() ? request.model_pt.string() : request.model_name;
  std::error_code ec;
  if (!fs::is_regular_file(request.probe, ec)) {
    return Status::NotFound(model + ": probe executable " + request.probe.string() + " not found");
  }
  if (request.shapes.size() != request.types.size() || request.shapes.empty()) {
    return Status::InvalidArgument(model + ": the probe needs one type per input shape, and at least one input");
  }
  std::vector<std::string> argv = {request.probe.string(), request.model_pt.string(), "--json", "--method",
                                   request.method};
  for (size_t i = 0; i < request.shapes.size(); ++i) {
    argv.push_back("--shape");
    argv.push_back(ShapeSpec(request.shapes[i], request.types[i]));
  }
  if (request.threads > 0) {
    argv.push_back("--threads");
    argv.push_back(std::to_string(request.threads));
  }
  if (request.device != "cpu") {
    argv.push_back("--device");
    argv.push_back(request.device);
  }
  MG_ASSIGN_OR_RETURN(ChildResult child, RunChild(argv, request.timeout));
  if (child.timed_out) {
    return Status::Unavailable(model + ": the probe did not finish within " +
                               std::to_string(request.timeout.count()) + " ms and was killed");
  }
  if (WIFSIGNALED(child.status)) {
    return Status::Unavailable(model + ": the probe crashed (signal " + std::to_string(WTERMSIG(child.status)) +
                               "): " + LastLines(child.err, 3));
  }
  if (!WIFEXITED(child.status) || WEXITSTATUS(child.status) != 0) {
    return Status::Unavailable(model + ": the probe failed (exit " +
                               std::to_string(WIFEXITED(child.status) ? WEXITSTATUS(child.status) : -1) +
                               "): " + LastLines(child.err, 3));
  }
  try {
    const std::string line = LastLines(child.out, 1);
    const auto j = nlohmann::json::parse(line);
    ProbeMeasurement m;
    m.weights_bytes = j.at("weights_bytes").get<uint64_t>();
    m.peak_bytes = j.at("peak_bytes").get<uint64_t>();
    m.peak_forward_bytes = j.at("peak_forward_bytes").get<uint64_t>();
    m.torch_version = j.at("torch_version").get<std::string>();
    if (j.contains("forward_ms")) m.forward_ms = j["forward_ms"].get<double>();
    m.device = j.value("device", std::string("cpu"));
    m.peak_reserved_bytes = j.value("peak_reserved_bytes", uint64_t{0});
    m.nvml_process_bytes = j.value("nvml_process_bytes", uint64_t{0});
    return m;
  } catch (const std::exception& e) {
    return Status::Internal(model + ": the probe's output is not the expected JSON (" + e.what() +
                            "): " + LastLines(child.out, 2));
  }
}

// ------------------------------------------------------------ inputs

Result<ModelInputs> InputsFor(const ModelEntry& model, int64_t batch, int64_t sequence_length) {
  if (batch < 1) return Status::InvalidArgument(model.name + ": batch must be at least 1");
  const ModelConfig& c = model.config;
  const int64_t seq = sequence_length > 0 ? sequence_length : c.sequence_length;
  ModelInputs inputs;
  if (c.inputs.empty()) {
    if (model.format == ModelFormat::kHuggingFace || c.platform == "huggingface") {
      if (seq < 1) return Status::InvalidArgument(model.name + ": sequence_length must be at least 1");
      inputs.shapes.push_back({batch, seq});
      inputs.types.push_back(DataType::kInt64);
      return inputs;
    }
    return Status::InvalidArgument(model.name + ": config.yaml declares no inputs; their shapes are needed");
  }
  for (const TensorSpec& spec : c.inputs) {
    std::vector<int64_t> shape;
    if (c.max_batch_size > 0) shape.push_back(batch);
    for (int64_t d : spec.dims) {
      if (d >= 0) {
        shape.push_back(d);
      } else if (seq >= 1) {
        shape.push_back(seq);
      } else {
        return Status::InvalidArgument(model.name + ": input '" + spec.name +
                                       "' has a variable dimension and no sequence_length");
      }
    }
    inputs.shapes.push_back(std::move(shape));
    inputs.types.push_back(spec.datatype);
  }
  return inputs;
}

// ------------------------------------------------------------ the cache

Result<std::string> HashFile(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return Status::NotFound(file.string() + ": cannot open");
  XXH3_state_t* state = XXH3_createState();
  if (state == nullptr) return Status::Internal("XXH3_createState failed");
  XXH3_128bits_reset(state);
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (in.gcount() > 0) XXH3_128bits_update(state, buf.data(), static_cast<size_t>(in.gcount()));
  }
  const bool failed = in.bad();
  const XXH128_hash_t h = XXH3_128bits_digest(state);
  XXH3_freeState(state);
  if (failed) return Status::Internal(file.string() + ": read error");
  char hex[33];
  std::snprintf(hex, sizeof(hex), "%016llx%016llx", static_cast<unsigned long long>(h.high64),
                static_cast<unsigned long long>(h.low64));
  return std::string(hex);
}

std::string CalibrationKey::Id() const {
  return file_hash + "|" + device_type + "|" + torch_version + "|" + std::to_string(batch) + "|" +
         std::to_string(sequence_length);
}

fs::path CalibrationCache::DefaultPath() {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  if (xdg != nullptr && *xdg == '/') return fs::path(xdg) / "modelgrid" / "calibration.json";
  const char* home = std::getenv("HOME");
  return fs::path(home != nullptr && *home != '\0' ? home : "/tmp") / ".cache" / "modelgrid" / "calibration.json";
}

// Reads the file into `text` when it is a well-formed cache; on a problem
// returns a warning and leaves `text` empty.
std::string CalibrationCache::ReadEntries(std::string* text) {
  text->clear();
  std::error_code ec;
  if (!fs::exists(file_, ec)) return "";
  std::ifstream in(file_, std::ios::binary);
  if (!in) return file_.string() + ": cannot read the calibration cache; treated as empty";
  std::ostringstream ss;
  ss << in.rdbuf();
  try {
    const auto j = nlohmann::json::parse(ss.str());
    if (!j.is_object() || !j.contains("entries") || !j["entries"].is_object()) {
      return file_.string() + ": not a calibration cache (no 'entries' object); treated as empty";
    }
  } catch (const std::exception& e) {
    return file_.string() + ": corrupt calibration cache (" + e.what() + "); treated as empty";
  }
  *text = ss.str();
  return "";
}

std::optional<uint64_t> CalibrationCache::Lookup(const CalibrationKey& key) {
  std::string text;
  if (std::string warning = ReadEntries(&text); !warning.empty()) {
    spdlog::warn("{}", warning);
    warnings_.push_back(warning);
    return std::nullopt;
  }
  if (text.empty()) return std::nullopt;
  const auto j = nlohmann::json::parse(text);
  const auto& entries = j["entries"];
  auto it = entries.find(key.Id());
  if (it == entries.end() || !it->is_object() || !it->contains("peak_bytes") ||
      !(*it)["peak_bytes"].is_number_unsigned()) {
    return std::nullopt;
  }
  return (*it)["peak_bytes"].get<uint64_t>();
}

Status CalibrationCache::Store(const CalibrationKey& key, uint64_t peak_bytes, const std::string& model_name) {
  std::string text;
  if (std::string warning = ReadEntries(&text); !warning.empty()) {
    spdlog::warn("{}", warning);
    warnings_.push_back(warning);
  }
  nlohmann::json j = text.empty() ? nlohmann::json{{"version", 1}, {"entries", nlohmann::json::object()}}
                                  : nlohmann::json::parse(text);
  char when[32];
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
  j["entries"][key.Id()] = {{"peak_bytes", peak_bytes}, {"model", model_name}, {"measured_at", when}};
  std::error_code ec;
  fs::create_directories(file_.parent_path(), ec);
  if (ec) return Status::Internal(file_.parent_path().string() + ": cannot create: " + ec.message());
  const fs::path tmp = file_.string() + ".tmp." + std::to_string(getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return Status::Internal(tmp.string() + ": cannot write");
    out << j.dump(2) << "\n";
    if (!out) return Status::Internal(tmp.string() + ": write failed");
  }
  fs::rename(tmp, file_, ec);
  if (ec) {
    fs::remove(tmp, ec);
    return Status::Internal(file_.string() + ": cannot replace: " + ec.message());
  }
  return Status::Ok();
}

// ------------------------------------------------------------ calibrate

Result<Calibration> Calibrate(const ModelEntry& model, const CalibrateOptions& options, CalibrationCache* cache) {
  if (options.device != DeviceKind::kCpu) {
    return Status::Unsupported(model.name + ": calibration measures the CPU only in this build");
  }
  if (!model.torchscript) {
    return Status::InvalidArgument(model.name + ": calibration runs the TorchScript file, and there is none");
  }
  bool needs_seq = model.format == ModelFormat::kHuggingFace || model.config.inputs.empty();
  for (const TensorSpec& spec : model.config.inputs) {
    for (int64_t d : spec.dims) needs_seq |= d < 0;
  }
  const int64_t seq = !needs_seq ? 0 : options.sequence_length > 0 ? options.sequence_length
                                                                    : model.config.sequence_length;
  MG_ASSIGN_OR_RETURN(ModelInputs inputs, InputsFor(model, options.batch, seq));
  Calibration result;
  MG_ASSIGN_OR_RETURN(result.key.file_hash, HashFile(*model.torchscript));
  result.key.device_type = "cpu";
  result.key.torch_version = TorchVersion();
  result.key.batch = options.batch;
  result.key.sequence_length = seq;
  if (cache != nullptr && !options.refresh) {
    if (auto hit = cache->Lookup(result.key)) {
      result.peak_bytes = *hit;
      result.from_cache = true;
      return result;
    }
  }
  ProbeRequest request;
  request.probe = options.probe;
  request.model_pt = *model.torchscript;
  request.model_name = model.name;
  request.shapes = inputs.shapes;
  request.types = inputs.types;
  request.threads = options.threads;
  request.timeout = options.timeout;
  MG_ASSIGN_OR_RETURN(ProbeMeasurement m, RunProbeProcess(request));
  result.peak_bytes = m.peak_bytes;
  if (cache != nullptr) {
    if (Status s = cache->Store(result.key, m.peak_bytes, model.name); !s.ok()) {
      spdlog::warn("{}: measured {} bytes but could not cache them: {}", model.name, m.peak_bytes, s.message());
    }
  }
  return result;
}

}  // namespace modelgrid
