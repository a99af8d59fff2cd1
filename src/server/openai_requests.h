// The OpenAI-compatible request bodies of `wand serve` (POST /v1/completions and
// /v1/chat/completions) as generation requests, apart from any HTTP: the server's routes and the
// fuzz target (tests/fuzz/openai_fuzz.cpp) share this. Fields follow OpenAI's published API
// reference; every malformed field is an HttpError (400, or 404 for another model) naming it.
#pragma once
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "common/json.h"
#include "llm/llm.h"
#include "server/server.h"

namespace wand::server {

// An error in OpenAI's shape: {"error": {"message", "type", "param", "code"}} with an HTTP status.
struct HttpError {
  int status;
  std::string message, type, param, code;
};
Json error_body(const HttpError& e);

// One prompt of /v1/completions: text, or token ids of the model's vocabulary.
using Prompt = std::variant<std::string, std::vector<int32_t>>;

// A parsed generation request.
struct Request {
  bool chat = false, stream = false, include_usage = false;
  std::vector<Prompt> prompts;  // completions: one choice group per prompt
  std::vector<llm::Message> messages;
  llm::GenerateOptions gen;
};

// The body of /v1/completions (chat false) or /v1/chat/completions (chat true), checked against
// the server's limits (opt.max_tokens_limit, opt.max_n) and model name. Without a "seed" the
// request gets llm::random_seed().
std::variant<Request, HttpError> parse_request(const std::string& body, bool chat, const Options& opt);

}  // namespace wand::server
