// `wand eval --html`: an evaluation as one self-contained HTML page (common/html.h helpers).
#pragma once
#include <string>
#include <vector>

#include "feedback/evaluate.h"

namespace wand::feedback {

// The page: outcome bars, pass@k (and why a k was not computed), the 10 slowest samples and up
// to 200 failing samples with their feedback. Every text from the dataset or the samples (task
// ids, feedback quoting a completion) is escaped.
std::string report_html(const EvalReport& report, const std::vector<Task>& tasks);

}  // namespace wand::feedback
