// http_post_json for the `wand` binary: loads the libcurl POST from wand_feedback_http.so on
// first use instead of linking it (common/module.h). The binary links this object, whose
// definition takes the place of http_post.cpp's (that archive member is then never pulled).
#include <fmt/core.h>

#include "common/module.h"
#include "feedback/remote.h"

namespace wand::feedback {

Result<HttpReply> http_post_json(const std::string& url, const std::string& body, const std::string& token,
                                 double timeout_s) {
  using Post = void (*)(const std::string&, const std::string&, const std::string&, double, Result<HttpReply>&);
  auto entry = module_symbol("wand_feedback_http.so", "wand_feedback_http_post");
  if (!entry) return Error{fmt::format("--remote: {}", entry.error().message)};
  Result<HttpReply> out = Error{"not posted"};
  reinterpret_cast<Post>(*entry)(url, body, token, timeout_s, out);
  return out;
}

}  // namespace wand::feedback
