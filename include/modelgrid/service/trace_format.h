// The layout of trace files (Triton's trace extension; src/service/tracer.h).
#pragma once

namespace modelgrid {

// How trace records (Triton's trace extension) are written to trace_file.
enum class TraceFormat {
  // One JSON object per line, appended to trace_file as log_frequency
  // allows (0: each at once): the file is valid JSON lines after every
  // write.
  kJsonLines,
  // Triton's layout (its docs, user_guide/trace.md, "JSON Trace Output"
  // and --trace-config log-frequency): a JSON array of the records. log_frequency N > 0: every N records go to a new file
  // trace_file.0, trace_file.1, ... (created or truncated); 0: every record
  // is kept in memory and trace_file is rewritten with all of them when
  // records are flushed (a settings change, the last of trace_count, the
  // server's stop), as Triton writes it when it shuts down. Memory then
  // grows with every record until the server stops (about 300 bytes a
  // record): give long runs a log_frequency.
  kTriton,
};

}  // namespace modelgrid
