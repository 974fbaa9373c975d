// Internal to the worker client: starting a child process that must not
// outlive the frontend.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "modelgrid/status.h"

namespace modelgrid::worker_internal {

// Starts `executable` with `args` (argv[1..]; argv[0] is the executable) and
// `socket_fd` (borrowed; the caller closes its copy after the call) as the
// child's descriptor `child_fd`. In the child, before exec: the parent-death
// signal is SIGKILL (prctl PR_SET_PDEATHSIG), the signal mask is cleared,
// every descriptor other than 0, 1, 2 and `child_fd` is closed on exec.
//
// Linux sends the parent-death signal when the *thread* that forked exits,
// not the process; so the fork happens on a helper thread that lives as long
// as the process (started on first use), never on the caller's thread, which
// may be a short-lived one (a watchdog restarting a worker).
//
// Returns the child's pid once exec has succeeded (a close-on-exec pipe
// tells exec failure from success). Errors: kNotFound when the executable
// does not exist or is not executable (checked before forking, and exec's
// ENOENT/EACCES); kInternal for fork/pipe failures or another exec errno.
Result<pid_t> SpawnChild(const std::string& executable, const std::vector<std::string>& args,
                         int socket_fd, int child_fd);

}  // namespace modelgrid::worker_internal
