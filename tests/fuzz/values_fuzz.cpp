// User values (prism/serialization.hpp): the shapes a task's arguments and
// results take, decoded through CheckedBinaryIArchive. Part of
// prism_decoders_fuzz (decoders_fuzz.cpp).
#include <array>
#include <boost/serialization/deque.hpp>
#include <boost/serialization/list.hpp>
#include <cstring>
#include <deque>
#include <list>
#include <map>
#include <prism/serialization.hpp>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "fuzz_targets.hpp"

namespace prism::fuzz {
namespace {

struct Page {  // large in memory, small on the wire
  std::array<char, 4096> buffer{};
  int used = 0;
  template <class A>
  void serialize(A& a, unsigned) {
    a& used;
  }
};

class Account {
 public:
  template <class A>
  void serialize(A& a, unsigned) {
    a& owner_& cents_& history_;
  }

 private:
  std::string owner_;
  long cents_ = 0;
  std::vector<std::pair<int, double>> history_;
};

struct Everything {
  std::vector<std::vector<std::string>> rows;
  std::unordered_map<std::string, std::set<int>> index;
  std::unordered_set<long> ids;
  std::map<int, Account> accounts;
  std::vector<Page> pages;
  std::vector<Unit> marks;
  std::vector<bool> flags;
  std::vector<std::vector<double>> matrix;
  std::list<std::string> queue;
  std::deque<int> window;
  std::pair<std::string, std::multimap<int, std::string>> tagged;
  template <class A>
  void serialize(A& a, unsigned) {
    a& rows& index& ids& accounts& pages& marks& flags& matrix& queue& window& tagged;
  }
};

template <class T>
void decode_value(std::span<const std::byte> payload) {
  // The fuzzer cannot guess a 64-bit type fingerprint: the header is given,
  // the payload is the input.
  Bytes b(detail::kValueHeaderSize + payload.size());
  const uint64_t fp = detail::type_fingerprint<T>();
  std::memcpy(b.data(), &fp, sizeof fp);
  if (!payload.empty())
    std::memcpy(b.data() + detail::kValueHeaderSize, payload.data(), payload.size());
  try {
    (void)detail::decode<T>(b);
  } catch (const SerializationError&) {
  }
}

}  // namespace

void fuzz_value(uint8_t which, std::span<const std::byte> b) {
  switch (which % 8) {
    case 0:
      return decode_value<Everything>(b);
    case 1:
      return decode_value<std::vector<std::string>>(b);
    case 2:
      return decode_value<std::map<std::string, std::vector<int>>>(b);
    case 3:
      return decode_value<std::unordered_map<int, std::string>>(b);
    case 4:
      return decode_value<std::vector<Page>>(b);
    case 5:
      return decode_value<std::vector<double>>(b);  // raw bytes
    case 6:
      return decode_value<std::string>(b);  // raw bytes
    case 7:
      return decode_value<std::pair<int, Account>>(b);
  }
}

namespace {
template <class T>
Bytes value_seed(uint8_t index, const T& v) {
  const Bytes e = detail::encode(v);
  return with_selector(2, index, std::span<const std::byte>(e).subspan(detail::kValueHeaderSize));
}

}  // namespace

void add_value_seeds(std::vector<Bytes>& out) {
  Everything all;
  all.rows = {{"a", "bc"}, {}};
  all.index = {{"x", {1, 2}}};
  all.ids = {7, 8};
  all.accounts[1] = Account{};
  all.pages.resize(2);
  all.marks.resize(3);
  all.flags = {true, false};
  all.matrix = {{1.5, 2.5}};
  all.queue = {"q"};
  all.window = {4, 5};
  all.tagged = {"t", {{1, "one"}}};
  out.push_back(value_seed(0, all));
  out.push_back(value_seed(1, std::vector<std::string>{"alpha", "beta"}));
  out.push_back(value_seed(2, std::map<std::string, std::vector<int>>{{"k", {1, 2, 3}}}));
  out.push_back(value_seed(3, std::unordered_map<int, std::string>{{1, "x"}}));
  out.push_back(value_seed(4, std::vector<Page>(2)));
  out.push_back(value_seed(5, std::vector<double>{1, 2}));
  out.push_back(value_seed(6, std::string("prism")));
  out.push_back(value_seed(7, std::pair<int, Account>{}));
}

}  // namespace prism::fuzz
