// The skill library (Voyager, Wang et al. 2023; CREATOR, Qian et al. 2023; CRAFT, Yuan et al.
// 2024): functions an agent wrote during a successful run, kept with their tests and reused by
// later runs. Retrieval is full-text search (SQLite FTS5, ranked by BM25) over names and
// descriptions; a skill whose tests fail when it is loaded is demoted (no longer retrieved until
// its tests pass again: `wand skills test`); duplicates are merged (CRAFT's de-duplication).
//
// Skills live in the run store's SQLite file (store::default_store_path()), in tables of their
// own with their own schema version (src/agent/schema/agent.sql), so the run store's schema and
// backends stay independent of them. Safe under several processes (WAL, busy timeout,
// BEGIN IMMEDIATE), like the run store.
#pragma once
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/status.h"

namespace wand::sandbox {
class Sandbox;
}

namespace wand::agent {

struct Skill {
  std::string name;         // a Python identifier; unique in the library
  std::string description;  // the function's docstring (what retrieval searches, with the name)
  std::string signature;    // "heat_milk(mug: str) -> None"
  std::string code;         // the whole `def`, as the agent wrote it
  std::string tests;        // assert lines that call it ("" when the run had none)
  int uses = 0;             // runs whose code called it
  int successes = 0;        // of those, runs that succeeded
  int version = 1;          // +1 each time a run saves new code under the same name
  bool demoted = false;     // its tests failed when last run
  std::string demoted_why;  // the failure, when demoted
  std::string created_at, updated_at;  // ISO 8601 UTC
};
Json to_json(const Skill& s);
// From to_json's shape (`wand skills import`): name and code are required, the name must be an
// identifier that is not private (no leading '_': the session's own helpers are _wand_*); errors
// name the field. What the code may hold is checked by skill_load_problems.
Result<Skill> skill_from_json(const Json& j);
// Why each code could not be loaded into an agent's session, in order: "" where it may, else
// session.py's reason (only function definitions and imports at the top level, replacing
// nothing the session has: "line 3: only function definitions and imports may be at a skill's
// top level"). The code is parsed (Python's ast) in a program of `sb`'s, never run. What the
// loop checks when it loads, `wand skills import` checks before it saves. Errors: the sandbox's.
Result<std::vector<std::string>> skill_load_problems(sandbox::Sandbox& sb, const std::vector<std::string>& codes);
// Why `name` may not be a skill's, whatever tools a run grants: "is private (...)" for a leading
// '_' (the session's own helpers are _wand_*), "is a Python keyword or built-in, ..." for one it
// would hide; "" when it may. The import refuses such names and the loop neither saves nor loads them.
std::string reserved_skill_name(std::string_view name);

// What save() did with a skill.
enum class SaveOutcome { added, new_version, merged };
const char* to_string(SaveOutcome o);

class SkillLibrary {
 public:
  // Opens (creating when `create`) the skills' tables in the SQLite file at `path`, applying
  // their migration. Errors name the path.
  static Result<std::unique_ptr<SkillLibrary>> open(const std::string& path, bool create = true);
  ~SkillLibrary();
  SkillLibrary(const SkillLibrary&) = delete;
  SkillLibrary& operator=(const SkillLibrary&) = delete;

  // Adds a skill, merging duplicates: code that is the same once normalised (comments, blank
  // lines and runs of spaces dropped) as a skill's already there merges into it (its counts
  // are added; the longer description is kept); a name already there with other code becomes
  // its next version (new code, signature, description and tests; counts kept; not demoted).
  Result<SaveOutcome> save(const Skill& skill);
  // The best `k` skills for `query` by BM25 over names (weighted 2) and descriptions, demoted
  // ones left out; ties go to the skill with more successes. An empty or word-less query finds
  // nothing.
  Result<std::vector<Skill>> search(const std::string& query, int k) const;
  Result<std::vector<Skill>> list() const;  // by name
  Result<Skill> get(const std::string& name) const;  // an unknown name is an error naming it
  VoidResult remove(const std::string& name);
  // A run called it (uses + 1), and succeeded or not (successes + 1).
  VoidResult record_use(const std::string& name, bool success);
  // Its tests failed (`why`) or passed again (empty `why`: restored).
  VoidResult set_demoted(const std::string& name, const std::string& why);
  // JSON lines, one skill each (to_json), by name.
  VoidResult export_jsonl(std::ostream& out) const;

 private:
  struct Impl;
  explicit SkillLibrary(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The code of a skill with comments, blank lines and runs of whitespace removed: what duplicates
// are compared by.
std::string normalise_code(const std::string& code);

// The skills as the prompt shows them: each signature with its description as a docstring.
std::string render_skills(const std::vector<Skill>& skills);

}  // namespace wand::agent
