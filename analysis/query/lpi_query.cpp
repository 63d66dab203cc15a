// lpi-query: reads a sweep store (serial HDF5, read-only) for people and
// other tools; a table on stdout, or the same rows as CSV with --csv.
//   lpi-query list   --store olmoe.h5
//   lpi-query top    --store olmoe.h5 --step 10000 --family ffn --k 20 [--relation capital_of]
//   lpi-query neuron --store olmoe.h5 --family attn --layer 3 --head 5 --dim 17
// Exit 0 on success, 2 on bad input (usage, a file that is not a store, a
// value it does not have), 1 when reading the store fails.
#include <boost/program_options.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>

#include "analysis/query/query.hpp"
#include "lpi/lpi_config.hpp"

namespace po = boost::program_options;
namespace q = lpi::query;

namespace {

constexpr const char* kUsage =
    "usage: lpi-query list   --store FILE.h5 [--csv FILE|-]\n"
    "       lpi-query top    --store FILE.h5 (--step N | --checkpoint INDEX) --family ffn|attn\n"
    "                        [--k 20] [--relation ID] [--csv FILE|-]\n"
    "       lpi-query heads  --store FILE.h5 (--step N | --checkpoint INDEX) [--k 10]\n"
    "                        [--relation ID] [--csv FILE|-]\n"
    "       lpi-query neuron --store FILE.h5 --family ffn|attn --layer L\n"
    "                        (--head H --dim D | [--expert E] --neuron I) [--relation ID]\n"
    "                        [--csv FILE|-]\n"
    "  list    the model, the checkpoints (done or not) and the relations\n"
    "  top     the k neurons of largest |mean importance| at one checkpoint: over all\n"
    "          prompts (the store's aggregates) or over one relation's prompts\n"
    "  heads   the k attention heads of largest score (the sum of |mean importance|\n"
    "          over the head's neurons: the ranking the heads:N masks use)\n"
    "  neuron  one neuron's mean importance at every checkpoint\n"
    "  attn neurons are (layer, head, dim); FFN neurons (layer, neuron), for a\n"
    "  mixture of experts (layer, expert, neuron) with unchosen experts counting 0.\n"
    "  --csv writes the same rows as CSV with a header line instead of the table.\n";

struct Cli {
  std::string command, store, csv, family, relation;
  std::optional<int64_t> step, checkpoint, layer, head, dim, expert, neuron;
  int64_t k = 20;
  bool help = false;
};

template <class T>
void optional_value(po::options_description& o, const char* name, std::optional<T>& out,
                    const char* text) {
  o.add_options()(name, po::value<T>()->notifier([&out](const T& v) { out = v; }), text);
}

po::options_description options(Cli& c, const std::string& command) {
  po::options_description o("lpi-query " + command);
  // clang-format off
  o.add_options()
      ("help,h", po::bool_switch(&c.help), "show this help")
      ("store", po::value(&c.store), "the sweep store (HDF5) to read")
      ("csv", po::value(&c.csv), "write the rows as CSV to FILE ('-': stdout) instead of the table");
  // clang-format on
  if (command == "top" || command == "neuron") {
    o.add_options()("family", po::value(&c.family), "ffn or attn")(
        "relation", po::value(&c.relation),
        "mean over this relation's prompts (per-prompt tensors) instead of all prompts");
  }
  if (command == "heads") {
    o.add_options()(
        "relation", po::value(&c.relation),
        "mean over this relation's prompts (per-prompt tensors) instead of all prompts");
  }
  if (command == "top" || command == "heads") {
    optional_value(o, "step", c.step, "the checkpoint of this step");
    optional_value(o, "checkpoint", c.checkpoint, "the checkpoint of this index (0-based)");
    o.add_options()("k", po::value(&c.k)->default_value(command == "top" ? 20 : 10),
                    command == "top" ? "how many neurons" : "how many heads");
  }
  if (command == "neuron") {
    optional_value(o, "layer", c.layer, "layer (0-based)");
    optional_value(o, "head", c.head, "attention head (attn)");
    optional_value(o, "dim", c.dim, "dimension within the head (attn)");
    optional_value(o, "expert", c.expert, "expert (ffn of a mixture of experts)");
    optional_value(o, "neuron", c.neuron, "FFN neuron (within the expert for MoE)");
  }
  return o;
}

Cli parse(int argc, char** argv) {
  Cli c;
  if (argc < 2) throw po::error("a command is required: list, top, heads or neuron");
  c.command = argv[1];
  if (c.command == "--help" || c.command == "-h" || c.command == "help") {
    c.help = true;
    c.command.clear();
    return c;
  }
  if (c.command != "list" && c.command != "top" && c.command != "heads" && c.command != "neuron")
    throw po::error("unknown command '" + c.command + "': expected list, top, heads or neuron");
  const auto o = options(c, c.command);
  po::variables_map vm;
  po::store(po::command_line_parser(argc - 1, argv + 1).options(o).run(), vm);
  po::notify(vm);
  if (c.help) return c;
  if (c.store.empty()) throw po::error("--store is required");
  if ((c.command == "top" || c.command == "neuron") && c.family.empty())
    throw po::error("--family ffn|attn is required");
  if ((c.command == "top" || c.command == "heads") &&
      c.step.has_value() == c.checkpoint.has_value())
    throw po::error(c.command + " takes one of --step N or --checkpoint INDEX");
  if ((c.command == "top" || c.command == "heads") && c.k < 1)
    throw po::error("--k must be at least 1, not " + std::to_string(c.k));
  return c;
}

// The rows of one answer, printed as an aligned table or as CSV.
struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
};

void print_table(std::ostream& out, const Table& t) {
  std::vector<std::size_t> width(t.header.size(), 0);
  for (std::size_t i = 0; i < t.header.size(); ++i) width[i] = t.header[i].size();
  for (const auto& r : t.rows)
    for (std::size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  // Names to the left, numbers to the right.
  auto line = [&](const std::vector<std::string>& cells) {
    std::string s = " ";
    for (std::size_t i = 0; i < cells.size(); ++i) {
      const std::string pad(width[i] - cells[i].size(), ' ');
      const bool left = t.header[i] == "name" || t.header[i] == "id";
      s += " " + (left ? cells[i] + pad : pad + cells[i]);
    }
    while (!s.empty() && s.back() == ' ') s.pop_back();
    out << s << "\n";
  };
  line(t.header);
  for (const auto& r : t.rows) line(r);
}

std::string csv_cell(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string quoted = "\"";
  for (char ch : s) quoted += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return quoted + "\"";
}

void print_csv(std::ostream& out, const Table& t) {
  auto line = [&](const std::vector<std::string>& cells) {
    for (std::size_t i = 0; i < cells.size(); ++i) out << (i ? "," : "") << csv_cell(cells[i]);
    out << "\n";
  };
  line(t.header);
  for (const auto& r : t.rows) line(r);
}

void write_csv(const std::string& target, const Table& t) {
  if (target == "-") {
    print_csv(std::cout, t);
    return;
  }
  std::ofstream out(target);
  if (!out) throw q::QueryError("cannot write --csv " + target);
  print_csv(out, t);
  out.flush();
  if (!out) throw q::QueryError("writing --csv " + target + " failed");
}

std::string number(double v, bool csv) {
  char buf[40];
  std::snprintf(buf, sizeof buf, csv ? "%.9g" : "%.6g", v);
  return buf;
}

int list(const Cli& cli) {
  const q::StoreReader store(cli.store);
  const auto& d = store.info().description;
  const auto& s = d.shape;
  const auto& cps = d.grid.checkpoints;
  const bool csv = !cli.csv.empty();
  Table checkpoints{{"index", "name", "step", "tokens", "done"}, {}};
  int done = 0;
  for (int32_t c = 0; c < store.checkpoint_count(); ++c) {
    done += store.done(c);
    checkpoints.rows.push_back(
        {std::to_string(c), cps[c].name, std::to_string(cps[c].step), std::to_string(cps[c].tokens),
         csv ? std::to_string(int{store.done(c)}) : std::string(store.done(c) ? "yes" : "no")});
  }
  Table relations{{"index", "id", "prompts"}, {}};
  for (std::size_t r = 0; r < d.relation_ids.size(); ++r) {
    relations.rows.push_back({std::to_string(r), d.relation_ids[r],
                              std::to_string(store.prompt_count(static_cast<int32_t>(r)))});
  }
  std::vector<std::pair<std::string, std::string>> model = {{"model_name", d.model_name},
                                                            {"architecture", s.architecture}};
  for (const auto& [name, field] : lpi::store::kShapeAttributes)
    model.emplace_back(name, std::to_string(s.*field));
  model.emplace_back("per_prompt_attn", std::to_string(int{d.per_prompt_attn}));
  model.emplace_back("per_prompt_ffn", std::to_string(int{d.per_prompt_ffn}));
  if (csv) {
    // One table: the model as key/value rows, then checkpoints, then relations.
    Table all{{"kind", "index", "name", "value", "step", "tokens", "done", "prompts"}, {}};
    for (const auto& [k, v] : model) all.rows.push_back({"model", "", k, v, "", "", "", ""});
    for (const auto& r : checkpoints.rows)
      all.rows.push_back({"checkpoint", r[0], r[1], "", r[2], r[3], r[4], ""});
    for (const auto& r : relations.rows)
      all.rows.push_back({"relation", r[0], r[1], "", "", "", "", r[2]});
    write_csv(cli.csv, all);
    return 0;
  }
  std::cout << "store " << store.path() << "\n"
            << "model " << d.model_name << ": " << s.describe() << "\n"
            << "job " << d.job_name << ", lens " << d.lens << ", target " << d.target
            << ", per-prompt tensors:" << (d.per_prompt_attn ? " attn" : "")
            << (d.per_prompt_ffn ? " ffn" : "")
            << (d.per_prompt_attn || d.per_prompt_ffn ? "" : " none") << "\n\n"
            << "checkpoints: " << cps.size() << ", " << done << " done\n";
  print_table(std::cout, checkpoints);
  std::cout << "\nrelations: " << d.relation_ids.size() << ", " << d.prompt_relation.size()
            << " prompts\n";
  print_table(std::cout, relations);
  return 0;
}

std::string scope_text(const q::StoreReader& store, std::optional<int32_t> relation) {
  const auto& d = store.info().description;
  if (!relation) return "over all " + std::to_string(d.prompt_relation.size()) + " prompts";
  return "over the " + std::to_string(store.prompt_count(*relation)) + " prompts of relation '" +
         d.relation_ids[*relation] + "'";
}

// The columns that name a neuron of the family, and their values for one.
std::vector<std::string> neuron_columns(const q::StoreReader& store, q::Family f) {
  if (f == q::Family::attn) return {"layer", "head", "dim"};
  if (store.shape().is_moe()) return {"layer", "expert", "neuron"};
  return {"layer", "neuron"};
}

std::vector<std::string> neuron_cells(const q::NeuronRef& r) {
  std::vector<std::string> out;
  for (const auto& x : {r.layer, r.head, r.dim, r.expert, r.neuron})
    if (x) out.push_back(std::to_string(*x));
  return out;
}

std::string neuron_text(const q::NeuronRef& r) {
  std::string s;
  const std::pair<const char*, std::optional<int64_t>> parts[] = {{"layer", r.layer},
                                                                  {"head", r.head},
                                                                  {"dim", r.dim},
                                                                  {"expert", r.expert},
                                                                  {"neuron", r.neuron}};
  for (const auto& [name, v] : parts)
    if (v) s += std::string(s.empty() ? "" : " ") + name + " " + std::to_string(*v);
  return s;
}

int top(const Cli& cli) {
  const q::StoreReader store(cli.store);
  const auto family = q::parse_family(cli.family);
  const int32_t c =
      cli.step ? store.checkpoint_at_step(*cli.step) : store.checkpoint_at_index(*cli.checkpoint);
  std::optional<int32_t> relation;
  if (!cli.relation.empty()) relation = store.relation(cli.relation);
  const auto ranked = q::top_k(store, family, store.means(c, family, relation), cli.k);
  const bool csv = !cli.csv.empty();
  Table t{{"rank"}, {}};
  for (const auto& col : neuron_columns(store, family)) t.header.push_back(col);
  t.header.push_back("value");
  for (const auto& n : ranked) {
    std::vector<std::string> row{std::to_string(n.rank)};
    for (const auto& cell : neuron_cells(n.ref)) row.push_back(cell);
    row.push_back(number(n.value, csv));
    t.rows.push_back(row);
  }
  if (csv) {
    write_csv(cli.csv, t);
    return 0;
  }
  const auto& ref = store.info().description.grid.checkpoints[c];
  std::cout << "store " << store.path() << ": top " << ranked.size() << " " << cli.family
            << " neurons by |mean importance| at checkpoint " << c << " (" << ref.name << ", step "
            << ref.step << "), " << scope_text(store, relation) << "\n";
  print_table(std::cout, t);
  return 0;
}

int heads(const Cli& cli) {
  const q::StoreReader store(cli.store);
  const int32_t c =
      cli.step ? store.checkpoint_at_step(*cli.step) : store.checkpoint_at_index(*cli.checkpoint);
  std::optional<int32_t> relation;
  if (!cli.relation.empty()) relation = store.relation(cli.relation);
  const auto ranked = q::top_heads(store, store.means(c, q::Family::attn, relation), cli.k);
  const bool csv = !cli.csv.empty();
  Table t{{"rank", "layer", "head", "score"}, {}};
  for (const auto& h : ranked)
    t.rows.push_back({std::to_string(h.rank), std::to_string(h.layer), std::to_string(h.head),
                      number(h.score, csv)});
  if (csv) {
    write_csv(cli.csv, t);
    return 0;
  }
  const auto& ref = store.info().description.grid.checkpoints[c];
  std::cout << "store " << store.path() << ": top " << ranked.size()
            << " heads by the sum of |mean importance| over their neurons (the heads:N masks' "
               "ranking) at checkpoint "
            << c << " (" << ref.name << ", step " << ref.step << "), "
            << scope_text(store, relation) << "\n";
  print_table(std::cout, t);
  return 0;
}

int neuron(const Cli& cli) {
  const q::StoreReader store(cli.store);
  const auto family = q::parse_family(cli.family);
  std::optional<int32_t> relation;
  if (!cli.relation.empty()) relation = store.relation(cli.relation);
  const q::NeuronRef ref{cli.layer, cli.head, cli.dim, cli.expert, cli.neuron};
  const int64_t flat = store.flat_index(family, ref);
  const bool csv = !cli.csv.empty();
  Table t{{"checkpoint", "name", "step", "tokens", "done", "value"}, {}};
  const auto& cps = store.info().description.grid.checkpoints;
  for (const auto& p : store.trajectory(family, flat, relation)) {
    const auto& cp = cps[p.checkpoint];
    t.rows.push_back({std::to_string(p.checkpoint), cp.name, std::to_string(cp.step),
                      std::to_string(cp.tokens),
                      csv ? std::to_string(int{p.done}) : std::string(p.done ? "yes" : "no"),
                      p.done ? number(p.value, csv) : std::string(csv ? "" : "(not done)")});
  }
  if (csv) {
    write_csv(cli.csv, t);
    return 0;
  }
  std::cout << "store " << store.path() << ": " << cli.family << " " << neuron_text(ref)
            << ", mean importance " << scope_text(store, relation) << ", per checkpoint\n";
  print_table(std::cout, t);
  return 0;
}

// Messages go on one line: HDF5's error stack arrives as indented lines.
std::string one_line(std::string s) {
  for (std::size_t at; (at = s.find("\n  ")) != std::string::npos;) s.replace(at, 3, "; ");
  for (auto& ch : s)
    if (ch == '\n') ch = ' ';
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  Cli cli;
  try {
    cli = parse(argc, argv);
    if (cli.help) {
      std::cout << "lpi-query " << LPI_VERSION << ": reads a sweep store\n" << kUsage;
      if (!cli.command.empty()) std::cout << "\n" << options(cli, cli.command) << "\n";
      return 0;
    }
    if (cli.command == "list") return list(cli);
    if (cli.command == "top") return top(cli);
    if (cli.command == "heads") return heads(cli);
    return neuron(cli);
  } catch (const po::error& e) {
    std::cerr << "lpi-query: " << one_line(e.what()) << " (see lpi-query --help)\n";
    return 2;
  } catch (const q::QueryError& e) {
    std::cerr << "lpi-query: " << one_line(e.what()) << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "lpi-query: " << (cli.store.empty() ? "" : "store " + cli.store + ": ")
              << one_line(e.what()) << "\n";
    return 1;
  }
}
