// data: questions over a generated SQLite database, a CSV file and a folder of notes, answered
// with wand's built-in sql, fs and search tools granted to the instance's own folder.
#include <sqlite3.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <fmt/core.h>
#include <fmt/ranges.h>

#include "agent/python_text.h"
#include "agent/worlds.h"
#include "tools/builtins.h"

namespace wand::agent {
namespace {

const char* kPeople[] = {"Ava", "Ben", "Chloe", "Dan", "Ella", "Finn", "Grace", "Hugo", "Ivy", "Jack", "Kira", "Leo"};
const char* kCities[] = {"Paris", "Oslo", "Lima", "Cairo", "Tokyo", "Rome"};
const char* kProducts[] = {"lamp", "chair", "desk", "kettle", "radio", "clock", "vase", "rug"};
const char* kMonths[] = {"January", "February", "March", "April", "May", "June", "July", "August"};

struct Customer {
  std::string name, city;
  int age;
};
struct Order {
  int id;
  std::string customer, product;
  int quantity;
};

struct Data {
  std::vector<Customer> customers;
  std::map<std::string, int> prices;  // product -> price in dollars
  std::vector<Order> orders;
  std::map<std::string, std::string> codes;  // month -> discount code
};

std::string sql_text(const std::string& s) { return "'" + s + "'"; }

class DataEnv : public Environment {
 public:
  DataEnv(Task task, Data data, std::vector<PlannedStep> plan, Json answer)
      : task_(std::move(task)), data_(std::move(data)), plan_(std::move(plan)), answer_(std::move(answer)) {}
  ~DataEnv() override {
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  const Task& task() const override { return task_; }
  std::string describe() const override {
    return "Answer the question from the files: sql(query) runs one SQLite statement on store.db (tables orders(id, "
           "customer, product, quantity) and products(name, price), prices in dollars) and returns rows as dicts; "
           "fs.read(path) reads customers.csv (name,city,age); search(query, k) searches the notes. Call "
           "final_answer(value) with the number or text asked for.";
  }
  tools::Registry tools() override {
    if (auto made = materialize(); !made) return {};
    return registry_;
  }
  std::string observe() const override {
    return "Files: store.db (orders(id, customer, product, quantity), products(name, price)), customers.csv, notes/";
  }
  GoalCheck check(const Json& a) const override {
    if (a.is_null()) return {false, "no final answer"};
    if (answer_.is_number()) {
      double got;
      if (a.is_number()) got = a.get<double>();
      else if (a.is_string()) {
        char* end = nullptr;
        const std::string& s = a.get_ref<const std::string&>();
        got = std::strtod(s.c_str(), &end);
        if (s.empty() || *end) return {false, fmt::format("the answer {} is not a number", a.dump())};
      } else return {false, fmt::format("the answer {} is not a number", a.dump())};
      if (std::fabs(got - answer_.get<double>()) < 1e-6) return {true, ""};
      return {false, fmt::format("the answer {} is wrong", a.dump())};
    }
    std::string got = a.is_string() ? a.get<std::string>() : a.dump();
    auto norm = [](std::string s) {
      std::string out;
      for (char c : s) if (!std::isspace(static_cast<unsigned char>(c))) out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      return out;
    };
    if (norm(got) == norm(answer_.get<std::string>())) return {true, ""};
    return {false, fmt::format("the answer {} is wrong", a.dump())};
  }
  std::vector<std::string> expert_steps() const override { return plan_code(plan_, render_registry(), answer_); }
  std::vector<Json> expert_calls() const override { return plan_calls(plan_, answer_); }

 private:
  // Writes the instance's files into a folder of its own and opens the tools on them (once).
  VoidResult materialize() {
    if (!dir_.empty()) return ok_status();
    std::string tmpl = (std::filesystem::temp_directory_path() / "wand-data-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) return Error{"data environment: cannot make a temporary folder"};
    dir_ = tmpl;
    sqlite3* db = nullptr;
    if (sqlite3_open((dir_ / "store.db").c_str(), &db) != SQLITE_OK) {
      sqlite3_close(db);
      return Error{"data environment: cannot create store.db"};
    }
    std::string sql = "CREATE TABLE products(name TEXT PRIMARY KEY, price INTEGER);"
                      "CREATE TABLE orders(id INTEGER PRIMARY KEY, customer TEXT, product TEXT, quantity INTEGER);";
    for (auto& [p, price] : data_.prices) sql += fmt::format("INSERT INTO products VALUES('{}', {});", p, price);
    for (auto& o : data_.orders)
      sql += fmt::format("INSERT INTO orders VALUES({}, '{}', '{}', {});", o.id, o.customer, o.product, o.quantity);
    bool ok = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK;
    sqlite3_close(db);
    if (!ok) return Error{"data environment: cannot fill store.db"};
    std::ofstream csv(dir_ / "customers.csv");
    csv << "name,city,age\n";
    for (auto& c : data_.customers) csv << c.name << "," << c.city << "," << c.age << "\n";
    std::filesystem::create_directories(dir_ / "notes");
    for (auto& [m, code] : data_.codes) {
      std::string lower = m;
      lower[0] = static_cast<char>(std::tolower(lower[0]));
      std::ofstream(dir_ / "notes" / (lower + ".txt")) << fmt::format("Discount code for {}: {}. Valid on every order placed in {}.\n", m, code, m);
    }
    tools::BuiltinOptions opt;
    opt.db = (dir_ / "store.db").string();
    opt.workspace = dir_.string();
    opt.docs = (dir_ / "notes").string();
    auto reg = tools::builtin_tools({"sql", "fs.read", "fs.list", "search"}, opt);
    if (!reg) return reg.error();
    registry_ = std::move(reg.value());
    return ok_status();
  }
  // Only the tools' names and parameters matter for rendering calls; the real ones need files.
  tools::Registry render_registry() const { return const_cast<DataEnv*>(this)->tools(); }

  Task task_;
  Data data_;
  std::vector<PlannedStep> plan_;
  Json answer_;
  std::filesystem::path dir_;
  tools::Registry registry_;
};

Json call(const std::string& name, Json args) { return {{"name", name}, {"arguments", std::move(args)}}; }

}  // namespace

std::unique_ptr<Environment> make_data_env(const std::string& split, int index, std::mt19937_64& rng) {
  auto num = [&](int lo, int hi) { return lo + static_cast<int>(rng() % static_cast<uint64_t>(hi - lo + 1)); };
  const int kinds = 6;
  for (;;) {
    Data d;
    std::vector<std::string> people(std::begin(kPeople), std::end(kPeople));
    std::shuffle(people.begin(), people.end(), rng);
    people.resize(num(6, 8));
    for (auto& p : people) d.customers.push_back({p, kCities[num(0, 5)], num(18, 80)});
    std::vector<std::string> products(std::begin(kProducts), std::end(kProducts));
    std::shuffle(products.begin(), products.end(), rng);
    products.resize(5);
    std::set<int> used;
    for (auto& p : products) {
      int price;
      do price = num(5, 200); while (!used.insert(price).second);
      d.prices[p] = price;
    }
    int n = num(15, 25);
    for (int i = 1; i <= n; ++i) d.orders.push_back({i, people[num(0, static_cast<int>(people.size()) - 1)], products[num(0, 4)], num(1, 9)});
    std::vector<std::string> months(std::begin(kMonths), std::end(kMonths));
    std::shuffle(months.begin(), months.end(), rng);
    for (int i = 0; i < 4; ++i) {
      std::string code;
      for (int k = 0; k < 2; ++k) code += static_cast<char>('A' + num(0, 25));
      code += std::to_string(num(10, 99));
      d.codes[months[i]] = code;
    }

    int kind = split == "held-out" ? index % kinds : num(0, kinds - 1);
    std::vector<PlannedStep> plan;
    std::string question, key;
    std::vector<std::string> entities;  // what `key` was drawn from
    Json answer;
    auto sql_step = [&](std::string thought, std::string q) { plan.push_back({std::move(thought), {call("sql", {{"query", q}})}}); };
    switch (kind) {
      case 0: {
        const auto& c = people[num(0, static_cast<int>(people.size()) - 1)];
        question = fmt::format("How many orders did {} place?", c);
        key = c;
        entities.assign(std::begin(kPeople), std::end(kPeople));
        long cnt = 0;
        for (auto& o : d.orders) cnt += o.customer == c;
        answer = cnt;
        sql_step(fmt::format("Count {}'s orders.", c), fmt::format("SELECT COUNT(*) AS n FROM orders WHERE customer = {}", sql_text(c)));
        break;
      }
      case 1: {
        const auto& p = products[num(0, 4)];
        question = fmt::format("How many units of {} were ordered in total?", p);
        key = p;
        entities.assign(std::begin(kProducts), std::end(kProducts));
        long sum = 0;
        for (auto& o : d.orders) sum += o.product == p ? o.quantity : 0;
        answer = sum;
        sql_step(fmt::format("Add up the quantities of {}.", p),
                 fmt::format("SELECT SUM(quantity) AS n FROM orders WHERE product = {}", sql_text(p)));
        if (sum == 0) continue;  // SUM of no rows is NULL: not a fair question
        break;
      }
      case 2: {
        const auto& p = products[num(0, 4)];
        question = fmt::format("How many dollars did the orders of {} bring in?", p);
        key = p;
        entities.assign(std::begin(kProducts), std::end(kProducts));
        long sum = 0;
        for (auto& o : d.orders) sum += o.product == p ? o.quantity * d.prices[p] : 0;
        if (sum == 0) continue;
        answer = sum;
        sql_step(fmt::format("Multiply each {} order's quantity by the price and add up.", p),
                 fmt::format("SELECT SUM(o.quantity * p.price) AS n FROM orders o JOIN products p ON p.name = o.product "
                             "WHERE o.product = {}", sql_text(p)));
        break;
      }
      case 3: {
        const auto& c = d.customers[num(0, static_cast<int>(d.customers.size()) - 1)];
        question = fmt::format("How old is {}?", c.name);
        key = c.name;
        entities.assign(std::begin(kPeople), std::end(kPeople));
        answer = c.age;
        plan.push_back({"Read the customers file.", {call("fs.read", {{"path", "customers.csv"}})}});
        break;
      }
      case 4: {
        const auto& city = d.customers[num(0, static_cast<int>(d.customers.size()) - 1)].city;
        question = fmt::format("How many orders were placed by customers who live in {}?", city);
        key = city;
        entities.assign(std::begin(kCities), std::end(kCities));
        std::vector<std::string> names;
        for (auto& c : d.customers)
          if (c.city == city) names.push_back(sql_text(c.name));
        long cnt = 0;
        for (auto& o : d.orders)
          for (auto& c : d.customers) cnt += c.city == city && c.name == o.customer;
        answer = cnt;
        plan.push_back({"Find who lives in " + city + ".", {call("fs.read", {{"path", "customers.csv"}})}});
        sql_step("Count their orders.", fmt::format("SELECT COUNT(*) AS n FROM orders WHERE customer IN ({})", fmt::join(names, ", ")));
        break;
      }
      case 5: {
        const auto& m = months[num(0, 3)];
        question = fmt::format("What is the discount code for {}?", m);
        key = m;
        entities.assign(std::begin(kMonths), std::end(kMonths));
        answer = d.codes[m];
        plan.push_back({"Search the notes.", {call("search", {{"query", "discount code " + m}, {"k", 1}})}});
        break;
      }
    }
    if (held_out_member(fmt::format("data|{}", kind), key, entities) != (split == "held-out")) continue;
    plan.push_back({"The answer is in the result.", {}});
    Task t{"data", fmt::format("data/{}/{}", split, index), split, question, static_cast<int>(plan.size() - 1)};
    return std::make_unique<DataEnv>(t, std::move(d), std::move(plan), answer);
  }
}

}  // namespace wand::agent
