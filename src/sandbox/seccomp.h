// The seccomp filter every run installs: refuses what untrusted code has no business doing.
#pragma once
#include <string>

#include "common/status.h"

namespace wand::sandbox {

// The filter as a classic BPF program (struct sock_filter[]), ready for
// prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER). Built once per process.
const Result<std::string>& seccomp_program();

}  // namespace wand::sandbox
