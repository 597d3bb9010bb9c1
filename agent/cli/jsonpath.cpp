#include "agent/cli/jsonpath.hpp"

#include <algorithm>
#include <optional>

#include "common/error.hpp"

namespace lca::cli::jsonpath {

struct Segment {
  enum class Kind { kField, kWildcard, kIndex, kSlice, kRecursive, kFilter };
  Kind kind = Kind::kField;
  std::string field;               // kField; kRecursive ("*" for every value)
  long index = 0;                  // kIndex
  std::optional<long> start, end;  // kSlice
  bool lhs_from_root = false;      // kFilter: "$..." instead of "@..."
  std::vector<Segment> lhs;        // kFilter: the path tested on each element
  std::string op;                  // kFilter: "" (present), ==, !=, <, <=, >, >=
  Json rhs;                        // kFilter: the literal compared with
};

struct Node {
  enum class Kind { kText, kPath, kRange };
  Kind kind = Kind::kText;
  std::string text;                             // kText
  bool from_root = false;                       // kPath/kRange: starts at "$" even inside a range
  std::vector<Segment> path;                    // kPath, kRange
  std::vector<std::unique_ptr<Node>> children;  // kRange
};

namespace {

using Values = std::vector<const Json*>;

[[noreturn]] void Fail(size_t offset, const std::string& what) {
  throw Error(Errc::kInvalid, "jsonpath: " + what + " at offset " + std::to_string(offset));
}

// One {...} expression (or a filter's path), read left to right.
class PathParser {
 public:
  PathParser(std::string_view text, size_t base) : s_(text), base_(base) {}

  bool AtEnd() {
    SkipSpace();
    return pos_ >= s_.size();
  }
  size_t Offset() const { return base_ + pos_; }

  // {"text"}: the quoted string alone.
  std::string Text() {
    std::string text = Quoted().get<std::string>();
    if (!AtEnd()) Fail(Offset(), "unexpected text after the string");
    return text;
  }

  // "$" / "@" then segments; stops before whitespace, ')' or a comparison operator.
  std::vector<Segment> Path(bool* from_root) {
    SkipSpace();
    if (Peek('$')) {
      ++pos_;
      if (from_root) *from_root = true;
    } else if (Peek('@')) {
      ++pos_;
    }
    std::vector<Segment> out;
    while (pos_ < s_.size()) {
      if (Peek('.')) {
        out.push_back(Dot());
      } else if (Peek('[')) {
        out.push_back(Bracket());
      } else if (Stop(s_[pos_])) {
        break;
      } else if (out.empty()) {
        out.push_back(Field(Ident()));  // kubectl accepts "{metadata.name}" without the dot
      } else {
        Fail(Offset(), std::string("unexpected '") + s_[pos_] + "'");
      }
    }
    return out;
  }

 private:
  static bool Stop(char c) {
    return c == ' ' || c == '\t' || c == ')' || c == '=' || c == '!' || c == '<' || c == '>';
  }
  bool Peek(char c) const { return pos_ < s_.size() && s_[pos_] == c; }
  void SkipSpace() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t')) ++pos_;
  }
  void Expect(char c) {
    SkipSpace();
    if (!Peek(c)) Fail(Offset(), std::string("expected '") + c + "'");
    ++pos_;
  }
  static Segment Field(std::string name) {
    Segment seg;
    seg.field = std::move(name);
    return seg;
  }
  std::string Ident() {
    const size_t begin = pos_;
    while (pos_ < s_.size() && !Stop(s_[pos_]) && s_[pos_] != '.' && s_[pos_] != '[' &&
           s_[pos_] != ']')
      ++pos_;
    if (pos_ == begin) Fail(Offset(), "expected a field name");
    return std::string(s_.substr(begin, pos_ - begin));
  }

  Segment Dot() {
    ++pos_;  // '.'
    if (Peek('.')) {
      ++pos_;
      Segment seg;
      seg.kind = Segment::Kind::kRecursive;
      seg.field = Peek('*') ? (++pos_, std::string("*")) : Ident();
      return seg;
    }
    if (Peek('*')) {
      ++pos_;
      Segment seg;
      seg.kind = Segment::Kind::kWildcard;
      return seg;
    }
    return Field(Ident());
  }

  Segment Bracket() {
    ++pos_;  // '['
    SkipSpace();
    Segment seg;
    if (Peek('\'') || Peek('"')) {
      seg = Field(Quoted().get<std::string>());
    } else if (Peek('*')) {
      ++pos_;
      seg.kind = Segment::Kind::kWildcard;
    } else if (Peek('?')) {
      seg = Filter();
    } else {
      seg = IndexOrSlice();
    }
    Expect(']');
    return seg;
  }

  std::optional<long> Number() {
    SkipSpace();
    const size_t begin = pos_;
    if (Peek('-')) ++pos_;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
    if (pos_ == begin) return std::nullopt;
    const std::string digits(s_.substr(begin, pos_ - begin));
    if (digits == "-") Fail(base_ + begin, "expected a number");
    try {
      return std::stol(digits);
    } catch (const std::exception&) {
      Fail(base_ + begin, "number out of range");
    }
  }

  Segment IndexOrSlice() {
    Segment seg;
    const size_t at = Offset();
    const auto first = Number();
    SkipSpace();
    if (!Peek(':')) {
      if (!first) Fail(at, "expected an index, a slice, '*' or a filter");
      seg.kind = Segment::Kind::kIndex;
      seg.index = *first;
      return seg;
    }
    ++pos_;
    seg.kind = Segment::Kind::kSlice;
    seg.start = first;
    seg.end = Number();
    return seg;
  }

  // A quoted string with kubectl's (Go's) escapes \n \t \\ \" \'.
  Json Quoted() {
    const char quote = s_[pos_++];
    std::string out;
    while (pos_ < s_.size() && s_[pos_] != quote) {
      char c = s_[pos_++];
      if (c == '\\' && pos_ < s_.size()) {
        c = s_[pos_++];
        c = c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c;
      }
      out += c;
    }
    if (!Peek(quote)) Fail(Offset(), "unterminated string");
    ++pos_;
    return out;
  }

  Json Literal() {
    SkipSpace();
    if (Peek('\'') || Peek('"')) return Quoted();
    const size_t begin = pos_;
    while (pos_ < s_.size() && s_[pos_] != ')' && s_[pos_] != ' ') ++pos_;
    const std::string word(s_.substr(begin, pos_ - begin));
    try {
      return Json::parse(word);  // a number, true, false or null
    } catch (const std::exception&) {
      Fail(base_ + begin, "expected a quoted string, a number, true, false or null");
    }
  }

  Segment Filter() {
    ++pos_;  // '?'
    Expect('(');
    Segment seg;
    seg.kind = Segment::Kind::kFilter;
    seg.lhs = Path(&seg.lhs_from_root);
    SkipSpace();
    for (const char* op : {"==", "!=", "<=", ">=", "<", ">"}) {
      if (s_.substr(pos_).starts_with(op)) {
        seg.op = op;
        pos_ += seg.op.size();
        seg.rhs = Literal();
        break;
      }
    }
    Expect(')');
    return seg;
  }

  std::string_view s_;
  size_t base_;
  size_t pos_ = 0;
};

// ---- evaluation ----

void Descend(const Json& j, const std::string& field, Values& out) {
  if (j.is_object()) {
    if (field == "*") {
      for (const auto& [k, v] : j.items()) out.push_back(&v);
    } else if (auto it = j.find(field); it != j.end()) {
      out.push_back(&*it);
    }
  } else if (j.is_array() && field == "*") {
    for (const auto& v : j) out.push_back(&v);
  }
  if (j.is_object() || j.is_array()) {
    for (const auto& v : j) Descend(v, field, out);
  }
}

Values Slice(const Json& a, const Segment& seg) {
  const long n = static_cast<long>(a.size());
  auto clamp = [n](long i) { return std::clamp(i < 0 ? i + n : i, 0L, n); };
  const long from = clamp(seg.start.value_or(0)), to = clamp(seg.end.value_or(n));
  Values out;
  for (long i = from; i < to; ++i) out.push_back(&a[static_cast<size_t>(i)]);
  return out;
}

Values Eval(const std::vector<Segment>& path, Values in, const Json& root);

bool Compare(const Json& l, const std::string& op, const Json& r) {
  if (op == "==") return l == r;
  if (op == "!=") return l != r;
  const bool comparable = (l.is_number() && r.is_number()) || (l.is_string() && r.is_string());
  if (!comparable) return false;
  if (op == "<") return l < r;
  if (op == "<=") return l <= r;
  if (op == ">") return l > r;
  return l >= r;  // ">="
}

bool Passes(const Segment& f, const Json& elem, const Json& root) {
  const Values got = Eval(f.lhs, {f.lhs_from_root ? &root : &elem}, root);
  if (f.op.empty()) {
    return !got.empty() && !got.front()->is_null() && *got.front() != Json(false);
  }
  // A missing field compares like kubectl: only != holds.
  if (got.empty()) return f.op == "!=";
  return Compare(*got.front(), f.op, f.rhs);
}

void Step(const Segment& seg, const Json& j, const Json& root, Values& out) {
  using K = Segment::Kind;
  switch (seg.kind) {
    case K::kField:
      if (j.is_object()) {
        if (auto it = j.find(seg.field); it != j.end()) out.push_back(&*it);
      }
      return;
    case K::kWildcard:
      if (j.is_object() || j.is_array()) {
        for (const auto& v : j) out.push_back(&v);
      }
      return;
    case K::kIndex: {
      if (!j.is_array()) return;
      const long n = static_cast<long>(j.size());
      const long i = seg.index < 0 ? seg.index + n : seg.index;
      if (i >= 0 && i < n) out.push_back(&j[static_cast<size_t>(i)]);
      return;
    }
    case K::kSlice:
      if (j.is_array()) {
        for (const Json* v : Slice(j, seg)) out.push_back(v);
      }
      return;
    case K::kRecursive:
      Descend(j, seg.field, out);
      return;
    case K::kFilter:
      if (j.is_array()) {
        for (const auto& v : j) {
          if (Passes(seg, v, root)) out.push_back(&v);
        }
      }
      return;
  }
}

Values Eval(const std::vector<Segment>& path, Values in, const Json& root) {
  for (const auto& seg : path) {
    Values next;
    for (const Json* j : in) Step(seg, *j, root, next);
    in = std::move(next);
  }
  return in;
}

std::string Print(const Json& j) { return j.is_string() ? j.get<std::string>() : j.dump(); }

void Run(const std::vector<std::unique_ptr<Node>>& nodes, const Json& current, const Json& root,
         std::string& out) {
  for (const auto& n : nodes) {
    if (n->kind == Node::Kind::kText) {
      out += n->text;
      continue;
    }
    const Values vals = Eval(n->path, {n->from_root ? &root : &current}, root);
    if (n->kind == Node::Kind::kRange) {
      for (const Json* v : vals) {
        // range over one array walks its elements, as kubectl does for {range .items}
        if (v->is_array() && n->path.size() > 0 && n->path.back().kind == Segment::Kind::kField) {
          for (const auto& e : *v) Run(n->children, e, root, out);
        } else {
          Run(n->children, *v, root, out);
        }
      }
      continue;
    }
    for (size_t i = 0; i < vals.size(); ++i) out += (i ? " " : "") + Print(*vals[i]);
  }
}

// The closing '}' of the expression opened at `open`, skipping quoted text.
size_t CloseBrace(std::string_view t, size_t open) {
  char quote = 0;
  for (size_t i = open + 1; i < t.size(); ++i) {
    const char c = t[i];
    if (quote) {
      if (c == '\\') {
        ++i;
      } else if (c == quote) {
        quote = 0;
      }
    } else if (c == '"' || c == '\'') {
      quote = c;
    } else if (c == '}') {
      return i;
    }
  }
  Fail(open, "unclosed '{'");
}

std::unique_ptr<Node> TextNode(std::string text) {
  auto n = std::make_unique<Node>();
  n->text = std::move(text);
  return n;
}

// Parses nodes from `pos` until the end, or until {end} when `in_range`.
std::vector<std::unique_ptr<Node>> ParseNodes(std::string_view t, size_t& pos, bool in_range) {
  std::vector<std::unique_ptr<Node>> nodes;
  while (pos < t.size()) {
    const size_t open = t.find('{', pos);
    if (open != pos) {
      const size_t stop = open == std::string_view::npos ? t.size() : open;
      nodes.push_back(TextNode(std::string(t.substr(pos, stop - pos))));
      pos = stop;
      continue;
    }
    const size_t close = CloseBrace(t, open);
    std::string_view inner = t.substr(open + 1, close - open - 1);
    const size_t lead = inner.find_first_not_of(" \t");
    const size_t base = open + 1 + (lead == std::string_view::npos ? inner.size() : lead);
    inner.remove_prefix(std::min(inner.size(), lead));
    while (!inner.empty() && (inner.back() == ' ' || inner.back() == '\t')) inner.remove_suffix(1);
    pos = close + 1;
    if (inner == "end") {
      if (!in_range) Fail(open, "{end} without {range}");
      return nodes;
    }
    auto node = std::make_unique<Node>();
    if (!inner.empty() && (inner.front() == '"' || inner.front() == '\'')) {
      PathParser p(inner, base);
      node->text = p.Text();
    } else if (inner.starts_with("range ") || inner.starts_with("range\t")) {
      node->kind = Node::Kind::kRange;
      PathParser p(inner.substr(6), base + 6);
      node->path = p.Path(&node->from_root);
      if (!p.AtEnd()) Fail(p.Offset(), "unexpected text after the path");
      node->children = ParseNodes(t, pos, true);
    } else {
      node->kind = Node::Kind::kPath;
      PathParser p(inner, base);
      node->path = p.Path(&node->from_root);
      if (!p.AtEnd()) Fail(p.Offset(), "unexpected text after the path");
    }
    nodes.push_back(std::move(node));
  }
  if (in_range) Fail(t.size(), "{range} without {end}");
  return nodes;
}

}  // namespace

Template::Template() = default;
Template::Template(Template&&) noexcept = default;
Template& Template::operator=(Template&&) noexcept = default;
Template::~Template() = default;

Template Template::Parse(std::string_view text) {
  Template t;
  size_t pos = 0;
  t.nodes_ = ParseNodes(text, pos, false);
  return t;
}

std::string Template::Execute(const Json& root) const {
  std::string out;
  Run(nodes_, root, root, out);
  return out;
}

}  // namespace lca::cli::jsonpath
