// modelgrid.yaml parsing for `modelgrid serve`.
#include "cli/serve_config.h"

#include <gtest/gtest.h>

namespace modelgrid::cli {
namespace {

TEST(ServeConfigTest, EveryFieldApplies) {
  ServeConfig c;
  const std::string yaml = R"(
repository: models
devices: [cpu, "sim:a100=80GiB"]
strategy: balance
isolation: device
host: 0.0.0.0
http_port: 0
max_body_bytes: 1MiB
worker_threads: 3
spin_us: 0
buffer: 2GiB
arena: 1GiB
max_cpu_models: 4
swap_dir: swap
swap_space: 8GiB
load: on_demand
min_residency_ms: 250
strict_readiness: false
grpc_port: -1
admin_token: s3cret
shm_key_prefix: /team_a_
log_file: logs/serve.log
log_format: json
log_max_file_bytes: 1MiB
log_max_files: 3
access_log: true
)";
  ASSERT_TRUE(ApplyServeConfigYaml(yaml, "modelgrid.yaml", "/etc/mg", &c).ok());
  EXPECT_EQ(c.repository, "/etc/mg/models");  // relative to the file's folder
  EXPECT_EQ(c.devices, (std::vector<std::string>{"cpu", "sim:a100=80GiB"}));
  EXPECT_EQ(c.strategy, "balance");
  EXPECT_EQ(c.isolation, "device");
  EXPECT_EQ(c.host, "0.0.0.0");
  EXPECT_EQ(c.http_port, 0);
  EXPECT_EQ(c.max_body_bytes, 1024u * 1024u);
  EXPECT_EQ(c.worker_threads, 3);
  EXPECT_EQ(c.spin_us, 0);
  EXPECT_EQ(c.buffer_bytes, 2ULL << 30);
  EXPECT_EQ(c.arena_bytes, 1ULL << 30);
  EXPECT_EQ(c.max_cpu_models, 4);
  EXPECT_EQ(c.swap_dir, "/etc/mg/swap");  // relative to the file's folder
  EXPECT_EQ(c.swap_space_bytes, 8ULL << 30);
  EXPECT_EQ(c.load, "on_demand");
  EXPECT_EQ(c.min_residency_ms, 250);
  EXPECT_FALSE(c.strict_readiness);
  EXPECT_EQ(c.grpc_port, -1);
  EXPECT_EQ(c.admin_token, "s3cret");
  EXPECT_EQ(c.shm_key_prefix, "/team_a_");
  EXPECT_EQ(c.log_file, "/etc/mg/logs/serve.log");  // relative to the file's folder
  EXPECT_EQ(c.log_format, "json");
  EXPECT_EQ(c.log_max_file_bytes, 1024u * 1024u);
  EXPECT_EQ(c.log_max_files, 3);
  EXPECT_TRUE(c.access_log);
  ServeConfig bad;
  EXPECT_FALSE(ApplyServeConfigYaml("log_format: xml\n", "f.yaml", "/x", &bad).ok());
  EXPECT_FALSE(ApplyServeConfigYaml("grpc_port: 70000\n", "f.yaml", "/x", &bad).ok());
  EXPECT_FALSE(ApplyServeConfigYaml("log_max_files: 0\n", "f.yaml", "/x", &bad).ok());
}

TEST(ServeConfigTest, AbsentFieldsKeepTheirValues) {
  ServeConfig c;
  c.http_port = 9000;
  ASSERT_TRUE(
      ApplyServeConfigYaml("repository: /srv/models\nmax_body_bytes: 4096\n", "f.yaml", "/x", &c)
          .ok());
  EXPECT_EQ(c.repository, "/srv/models");
  EXPECT_EQ(c.max_body_bytes, 4096u);
  EXPECT_EQ(c.http_port, 9000);
  EXPECT_EQ(c.strategy, "memory-optimized");
  ASSERT_TRUE(ApplyServeConfigYaml("", "f.yaml", "/x", &c).ok());
}

TEST(ServeConfigTest, ErrorsNameTheFieldAndTheFile) {
  struct Case {
    std::string yaml;
    std::string expected;
  };
  const Case cases[] = {
      {"http_prot: 80\n", "server.yaml: unknown field 'http_prot'"},
      {"http_port: 70000\n", "server.yaml: field 'http_port': 70000 is not in 0..65535"},
      {"http_port: eighty\n", "field 'http_port': expected an integer, got 'eighty'"},
      {"worker_threads: -1\n", "field 'worker_threads'"},
      {"spin_us: -5\n", "field 'spin_us'"},
      {"max_cpu_models: -2\n", "field 'max_cpu_models'"},
      {"buffer: lots\n", "field 'buffer'"},
      {"arena: 4KiB\n", "field 'arena': must be at least 1MiB"},
      {"max_body_bytes: 0\n", "field 'max_body_bytes': must be at least 1 byte"},
      {"strategy: fastest\n", "field 'strategy'"},
      {"isolation: container\n", "field 'isolation'"},
      {"swap_space: -1GiB\n", "field 'swap_space'"},
      {"swap_space: 12 parsecs\n", "field 'swap_space'"},
      {"load: lazily\n", "field 'load': expected eager or on_demand, got 'lazily'"},
      {"load: default\n", "field 'load'"},
      {"min_residency_ms: -1\n", "field 'min_residency_ms'"},
      {"strict_readiness: maybe\n",
       "field 'strict_readiness': expected true or false, got 'maybe'"},
      {"swap_dir: ''\n", "field 'swap_dir': must not be empty"},
      {"devices: {a: b}\n", "field 'devices'"},
      {"host: [a, b]\n", "field 'host': expected a single value"},
      {"- a\n- b\n", "server.yaml: expected a mapping of fields"},
      {"repository: [\n", "server.yaml: YAML error at line"},
  };
  for (const Case& c : cases) {
    ServeConfig config;
    const ServeConfig before = config;
    Status s = ApplyServeConfigYaml(c.yaml, "server.yaml", "/x", &config);
    ASSERT_FALSE(s.ok()) << c.yaml;
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(s.message().find(c.expected), std::string::npos)
        << s.message() << " / " << c.expected;
    EXPECT_EQ(config.http_port, before.http_port);  // nothing applied on error
  }
}

TEST(ServeConfigTest, MissingFileIsNotFound) {
  ServeConfig c;
  Status s = ApplyServeConfigFile("/nonexistent/modelgrid.yaml", &c);
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_NE(s.message().find("/nonexistent/modelgrid.yaml"), std::string::npos);
}

}  // namespace
}  // namespace modelgrid::cli
