// Quoting untrusted text (names read from a file, values given on a command line) in error
// messages, so a corrupt input cannot put kilobytes of binary into a message or a terminal.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace wand {

// `s` with every byte outside printable ASCII (controls, DEL, bytes >= 0x80) and the backslash
// written as \xNN, clipped to at most `max_bytes` bytes of the input with "…" (and the number of
// bytes left out) when longer. Pure: the same input always gives the same text.
std::string printable(std::string_view s, std::size_t max_bytes = 200);

// The lines of `s` split at '\n' (views into `s`; no final empty line after a trailing newline;
// "" gives none). A '\r' before the '\n' stays in the line.
std::vector<std::string_view> split_lines(std::string_view s);

// Blanks are the four bytes " \t\r\n" (not isspace's locale-dependent set).
// Whether `s` holds nothing but blanks ("" is blank): an empty question, task or option value.
bool is_blank(std::string_view s);

// `s` without its leading and trailing blanks (a copy; "" when `s` is blank).
std::string trim(std::string_view s);

// Whether `s` is a Python identifier of ASCII letters, digits and '_' not starting with a digit
// (the names wand gives tools, skills and entry points; Python's non-ASCII identifiers are not
// taken). Keywords are not excluded here.
bool is_python_identifier(std::string_view s);

}  // namespace wand
