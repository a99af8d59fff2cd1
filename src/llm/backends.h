// The two Backend implementations behind open_backend (internal to llm; tests use it too).
#pragma once
#include <memory>
#include <string>

#include "llm/llm.h"

namespace wand::llm {

Result<std::unique_ptr<Backend>> open_local_backend(const std::string& path, const BackendOptions& opt);

// "openai:http://host:8000/v1/org/model" → base "http://host:8000/v1", model "org/model".
struct OpenAIEndpoint {
  std::string base;   // up to and including /v1 (or the URL's path without the model)
  std::string model;  // may be empty: the server's first listed model is used
};
Result<OpenAIEndpoint> parse_openai_spec(const std::string& spec);
Result<std::unique_ptr<Backend>> open_openai_backend(const std::string& spec, const BackendOptions& opt);

}  // namespace wand::llm
