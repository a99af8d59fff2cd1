// Tool search: the tools relevant to a task, so that a server with hundreds of tools does not
// flood the prompt (what users of MCP clients ask for in the spec's issue #1978). Any list of
// tools works, MCP's or the registry's.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace wand::tools {

// Okapi BM25 (Robertson & Zaragoza 2009; k1 = 1.2, b = 0.75) of `query` against each document
// (a tool's name, title and description). Words are lower-cased letter/digit runs; names split
// at '_', '-', '.' and camelCase ("readFile" -> read, file), and a word also matches its
// singular ("files" ~ "file"). Returns the indices of at most k documents with a positive score,
// best first (ties keep the documents' order); an empty query or k = 0 gives none.
std::vector<std::size_t> rank_documents(const std::vector<std::string>& documents, std::string_view query, std::size_t k);

// The words rank_documents indexes, in order (exposed for tests).
std::vector<std::string> search_words(std::string_view text);

}  // namespace wand::tools
