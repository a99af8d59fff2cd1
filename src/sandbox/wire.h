// ExecRequest and ExecResult on the way to and from a remote `wand serve --exec` (POST /v1/exec,
// the JSON-lines schema; feedback/remote.h): the inverses of request_from_json and to_json
// (sandbox.h). request_from_json(request_to_json(r)) gives r again, except that of
// compile_limits only the timeout travels and a Service does not travel at all.
#pragma once
#include "common/json.h"
#include "common/status.h"
#include "sandbox/sandbox.h"

namespace wand::sandbox {

Json request_to_json(const ExecRequest& r);
// to_json's output read back; errors name the field (a status that is none, a wrong type).
Result<ExecResult> result_from_json(const Json& j);

}  // namespace wand::sandbox
