#include "tokenizer/bpe.h"

#include <queue>

#include "tokenizer/unicode.h"

namespace modelgrid::tokenizer {

namespace {

constexpr size_t kMaxCachedWordBytes = 256;
constexpr size_t kCacheEntries = 10000;

uint64_t PairKey(int64_t left, int64_t right) {
  return (static_cast<uint64_t>(left) << 32) | static_cast<uint32_t>(right);
}

}  // namespace

Result<std::unique_ptr<BpeModel>> BpeModel::Create(
    Vocab vocab, const std::vector<std::pair<std::string, std::string>>& merges,
    BpeOptions options) {
  std::unique_ptr<BpeModel> m(new BpeModel());
  int64_t max_id = -1;
  for (const auto& [token, id] : vocab) {
    if (id < 0 || id > INT32_MAX) {
      return Status::Corruption("vocab: id " + std::to_string(id) + " of \"" + token +
                                "\" is out of range");
    }
    max_id = std::max(max_id, id);
  }
  m->id_to_token_.resize(max_id + 1);
  for (const auto& [token, id] : vocab) m->id_to_token_[id] = token;
  const std::string& prefix = options.continuing_subword_prefix;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [a, b] = merges[rank];
    std::string merged = a;
    merged +=
        (!prefix.empty() && b.compare(0, prefix.size(), prefix) == 0) ? b.substr(prefix.size()) : b;
    for (const std::string* t : std::initializer_list<const std::string*>{&a, &b, &merged}) {
      if (!vocab.count(*t)) {
        return Status::Corruption("merges/" + std::to_string(rank) + " (\"" + a + " " + b +
                                  "\"): token \"" + *t + "\" is not in the vocabulary");
      }
    }
    // The first (highest priority) occurrence of a pair wins.
    m->merges_.emplace(PairKey(vocab[a], vocab[b]),
                       Merge{static_cast<int32_t>(rank), vocab[merged]});
  }
  m->byte_ids_.fill(-1);
  static const char* kHex = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b) {
    std::string name = std::string("<0x") + kHex[b >> 4] + kHex[b & 15] + ">";
    auto it = vocab.find(name);
    if (it != vocab.end()) m->byte_ids_[b] = it->second;
  }
  if (options.unk_token) {
    auto it = vocab.find(*options.unk_token);
    if (it == vocab.end()) {
      return Status::Corruption("unk_token \"" + *options.unk_token +
                                "\" is not in the vocabulary");
    }
    m->unk_id_ = it->second;
  }
  m->vocab_ = std::move(vocab);
  m->options_ = std::move(options);
  return m;
}

std::vector<BpeModel::Piece> BpeModel::InitialSymbols(const std::string& word) const {
  std::vector<Piece> symbols;
  std::string ch;
  for (size_t i = 0; i < word.size();) {
    size_t at = i;
    NextCodePoint(word, &i);
    ch.clear();
    if (at > 0) ch = options_.continuing_subword_prefix;
    ch.append(word, at, i - at);
    if (i == word.size()) ch += options_.end_of_word_suffix;
    auto it = vocab_.find(ch);
    Piece p{0, static_cast<uint32_t>(at), static_cast<uint32_t>(i)};
    if (it != vocab_.end()) {
      p.id = it->second;
      symbols.push_back(p);
      continue;
    }
    if (options_.byte_fallback) {
      bool all = true;
      for (size_t k = at; k < i; ++k)
        all = all && byte_ids_[static_cast<unsigned char>(word[k])] >= 0;
      if (all) {
        for (size_t k = at; k < i; ++k) {
          symbols.push_back({byte_ids_[static_cast<unsigned char>(word[k])], p.begin, p.end});
        }
        continue;
      }
    }
    if (unk_id_ < 0) continue;  // no unknown token: the character is dropped
    if (options_.fuse_unk && !symbols.empty() && symbols.back().id == unk_id_) {
      symbols.back().end = p.end;
      continue;
    }
    p.id = unk_id_;
    symbols.push_back(p);
  }
  return symbols;
}

void BpeModel::MergeAll(std::vector<Piece>* symbols) const {
  std::vector<Piece>& s = *symbols;
  const int n = static_cast<int>(s.size());
  if (n < 2) return;
  std::vector<int> prev(n), next(n);
  std::vector<bool> alive(n, true);
  for (int i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  struct Candidate {
    int32_t rank;
    int pos;
    int64_t new_id;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue;
  auto consider = [&](int left) {
    int right = next[left];
    if (right < 0) return;
    auto it = merges_.find(PairKey(s[left].id, s[right].id));
    if (it != merges_.end()) queue.push({it->second.rank, left, it->second.new_id});
  };
  for (int i = 0; i + 1 < n; ++i) consider(i);
  while (!queue.empty()) {
    Candidate top = queue.top();
    queue.pop();
    int left = top.pos;
    if (!alive[left] || next[left] < 0) continue;
    int right = next[left];
    auto it = merges_.find(PairKey(s[left].id, s[right].id));
    if (it == merges_.end() || it->second.rank != top.rank) continue;  // stale entry
    s[left].id = top.new_id;
    s[left].end = s[right].end;
    alive[right] = false;
    next[left] = next[right];
    if (next[right] >= 0) prev[next[right]] = left;
    if (prev[left] >= 0) consider(prev[left]);
    consider(left);
  }
  std::vector<Piece> merged;
  for (int i = 0; i >= 0; i = next[i]) merged.push_back(s[i]);
  s = std::move(merged);
}

std::vector<BpeModel::Piece> BpeModel::Encode(const std::string& word) const {
  bool cacheable = word.size() < kMaxCachedWordBytes;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    auto it = cache_.find(word);
    if (it != cache_.end()) return it->second;
  }
  std::vector<Piece> symbols = InitialSymbols(word);
  MergeAll(&symbols);
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    if (cache_.size() >= kCacheEntries) cache_.clear();
    cache_.emplace(word, symbols);
  }
  return symbols;
}

Status BpeModel::Tokenize(const NormalizedString& piece, std::vector<Token>* out) const {
  const std::string& word = piece.text();
  if (word.empty()) return Status::Ok();
  if (options_.ignore_merges) {
    auto it = vocab_.find(word);
    if (it != vocab_.end()) {
      out->push_back({it->second, word, piece.SpanOf(0, word.size())});
      return Status::Ok();
    }
  }
  for (const Piece& p : Encode(word)) {
    out->push_back({p.id, id_to_token_[p.id], piece.SpanOf(p.begin, p.end)});
  }
  return Status::Ok();
}

}  // namespace modelgrid::tokenizer
