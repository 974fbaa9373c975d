#include "estimate/pickle_scanner.h"

#include <charconv>
#include <map>
#include <unordered_map>

namespace modelgrid::estimate {

namespace {

// Limits that keep garbage input from exhausting memory. Real data.pkl files
// stay far below them (a few objects per tensor).
constexpr size_t kMaxStack = size_t{1} << 21;
constexpr size_t kMaxMemo = size_t{1} << 21;
constexpr size_t kMaxKeptString = 4096;
constexpr size_t kMaxKeptTuple = 16;
constexpr size_t kMaxTuples = size_t{1} << 21;
// STACK_GLOBAL builds a new string from two on the stack without consuming
// input, so the bytes of kept strings are capped separately.
constexpr size_t kMaxStringBytes = size_t{64} << 20;

// A coarse pickle value: 16 bytes, cheap to copy. Strings and tuples live in
// pools owned by the Scanner and are referred to by index.
struct Value {
  enum class Kind : uint8_t { kOther, kString, kGlobal, kInt, kTuple };
  Kind kind = Kind::kOther;
  int64_t payload = 0;  // the int, or the index into strings_ / tuples_
};

class Scanner {
 public:
  explicit Scanner(std::string_view in) : in_(in) {}

  Result<std::vector<PickleStorageRef>> Run();

 private:
  Status Fail(const std::string& what) const {
    return Status::Corruption("pickle byte " + std::to_string(op_pos_) + ": " + what);
  }
  bool Take(size_t n, std::string_view* out) {
    if (in_.size() - pos_ < n) return false;
    *out = in_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  bool TakeUint(size_t n, uint64_t* out) {
    std::string_view b;
    if (!Take(n, &b)) return false;
    *out = 0;
    for (size_t i = n; i-- > 0;) *out = (*out << 8) | static_cast<unsigned char>(b[i]);
    return true;
  }
  bool TakeLine(std::string_view* out) {
    size_t nl = in_.find('\n', pos_);
    if (nl == std::string_view::npos) return false;
    *out = in_.substr(pos_, nl - pos_);
    pos_ = nl + 1;
    return true;
  }

  Status Push(Value v) {
    if (stack_.size() >= kMaxStack) return Fail("stack deeper than " + std::to_string(kMaxStack));
    stack_.push_back(v);
    return Status::Ok();
  }
  Status PushString(std::string_view s, Value::Kind kind = Value::Kind::kString) {
    if (s.size() > kMaxKeptString) return Push(Value{});
    if (string_bytes_ + s.size() > kMaxStringBytes) {
      return Fail("more than " + std::to_string(kMaxStringBytes) + " bytes of strings");
    }
    string_bytes_ += s.size();
    strings_.emplace_back(s);
    return Push(Value{kind, static_cast<int64_t>(strings_.size() - 1)});
  }
  size_t Available() const { return stack_.size() - (marks_.empty() ? 0 : marks_.back()); }
  Status Pop(size_t n, Value* last = nullptr) {
    if (Available() < n) return Fail("stack underflow");
    if (last && n > 0) *last = stack_.back();
    stack_.resize(stack_.size() - n);
    return Status::Ok();
  }
  Status PopN(size_t n, Value* items) {  // items[0] is the deepest
    if (Available() < n) return Fail("stack underflow");
    for (size_t i = 0; i < n; ++i) items[i] = stack_[stack_.size() - n + i];
    stack_.resize(stack_.size() - n);
    return Status::Ok();
  }
  // Pops everything above the last MARK and the mark itself.
  Status PopMark(std::vector<Value>* items) {
    if (marks_.empty()) return Fail("no MARK on the stack");
    const size_t m = marks_.back();
    marks_.pop_back();
    if (items) items->assign(stack_.begin() + static_cast<ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return Status::Ok();
  }
  Status MakeTuple(const std::vector<Value>& items) {
    if (items.size() > kMaxKeptTuple) return Push(Value{});
    if (tuples_.size() >= kMaxTuples)
      return Fail("more than " + std::to_string(kMaxTuples) + " tuples");
    tuples_.push_back(items);
    return Push(Value{Value::Kind::kTuple, static_cast<int64_t>(tuples_.size() - 1)});
  }
  Status Memo(uint64_t key) {
    if (stack_.empty() || Available() == 0) return Fail("memo store with an empty stack");
    if (memo_.size() >= kMaxMemo && !memo_.count(key)) {
      return Fail("more than " + std::to_string(kMaxMemo) + " memo entries");
    }
    memo_[key] = stack_.back();
    return Status::Ok();
  }
  Status Recall(uint64_t key) {
    auto it = memo_.find(key);
    if (it == memo_.end()) return Fail("memo key " + std::to_string(key) + " was never stored");
    return Push(it->second);
  }
  Status NeedTop() { return Available() == 0 ? Fail("stack underflow") : Status::Ok(); }

  Status Step(unsigned char op, bool* stop);
  Status StepText(unsigned char op, bool* handled);
  Status StepBinary(unsigned char op, bool* handled);
  Status PersistentId(const Value& pid);

  std::string_view in_;
  size_t pos_ = 0;
  size_t op_pos_ = 0;
  std::vector<Value> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Value> memo_;
  std::vector<std::string> strings_;
  size_t string_bytes_ = 0;
  std::vector<std::vector<Value>> tuples_;
  std::vector<PickleStorageRef> found_;
  std::map<std::string, size_t> by_key_;
};

Status Scanner::PersistentId(const Value& pid) {
  if (pid.kind != Value::Kind::kTuple) return Status::Ok();
  const std::vector<Value>& t = tuples_[static_cast<size_t>(pid.payload)];
  if (t.size() != 5) return Status::Ok();
  auto str = [&](const Value& v, Value::Kind k) -> const std::string* {
    return v.kind == k ? &strings_[static_cast<size_t>(v.payload)] : nullptr;
  };
  const std::string* tag = str(t[0], Value::Kind::kString);
  const std::string* type = str(t[1], Value::Kind::kGlobal);
  const std::string* key = str(t[2], Value::Kind::kString);
  const std::string* loc = str(t[3], Value::Kind::kString);
  if (!tag || *tag != "storage" || !type || !key || !loc || t[4].kind != Value::Kind::kInt ||
      t[4].payload < 0) {
    return Status::Ok();
  }
  PickleStorageRef ref{*type, *key, *loc, static_cast<uint64_t>(t[4].payload)};
  auto [it, inserted] = by_key_.emplace(ref.key, found_.size());
  if (inserted) {
    found_.push_back(std::move(ref));
    return Status::Ok();
  }
  const PickleStorageRef& prev = found_[it->second];
  if (prev.storage_type != ref.storage_type || prev.numel != ref.numel) {
    return Fail("storage '" + ref.key + "' is named twice with different types or sizes (" +
                prev.storage_type + " × " + std::to_string(prev.numel) + " vs " + ref.storage_type +
                " × " + std::to_string(ref.numel) + ")");
  }
  return Status::Ok();
}

// Opcodes whose argument is text ending in '\n' (protocol 0).
Status Scanner::StepText(unsigned char op, bool* handled) {
  *handled = true;
  std::string_view a, b;
  switch (op) {
    case 'c':  // GLOBAL module\nname\n
    case 'i':  // INST module\nname\n, pops to MARK
      if (!TakeLine(&a) || !TakeLine(&b)) return Fail("truncated GLOBAL/INST");
      if (op == 'i') MG_RETURN_IF_ERROR(PopMark(nullptr));
      if (op == 'c') return PushString(std::string(a) + "." + std::string(b), Value::Kind::kGlobal);
      return Push(Value{});
    case 'I': {  // INT
      if (!TakeLine(&a)) return Fail("truncated INT");
      int64_t v = 0;
      auto r = std::from_chars(a.data(), a.data() + a.size(), v);
      if (r.ec == std::errc() && r.ptr == a.data() + a.size()) {
        return Push(Value{Value::Kind::kInt, v});
      }
      return Push(Value{});
    }
    case 'F':
    case 'L':
    case 'S':
    case 'V':
    case 'P':  // FLOAT LONG STRING UNICODE PERSID
      if (!TakeLine(&a)) return Fail("truncated text argument");
      return Push(Value{});
    case 'g':
    case 'p': {  // GET / PUT with a decimal memo key
      if (!TakeLine(&a)) return Fail("truncated GET/PUT");
      uint64_t key = 0;
      auto r = std::from_chars(a.data(), a.data() + a.size(), key);
      if (r.ec != std::errc()) return Fail("bad memo key in GET/PUT");
      return op == 'g' ? Recall(key) : Memo(key);
    }
    default:
      *handled = false;
      return Status::Ok();
  }
}

// Opcodes with binary arguments or none (protocols 1–5).
Status Scanner::StepBinary(unsigned char op, bool* handled) {
  *handled = true;
  uint64_t n = 0;
  std::string_view s;
  Value v[3];
  switch (op) {
    case 'J':
      if (!TakeUint(4, &n)) return Fail("truncated BININT");
      return Push(Value{Value::Kind::kInt, static_cast<int32_t>(n)});
    case 'K':
      if (!TakeUint(1, &n)) return Fail("truncated BININT1");
      return Push(Value{Value::Kind::kInt, static_cast<int64_t>(n)});
    case 'M':
      if (!TakeUint(2, &n)) return Fail("truncated BININT2");
      return Push(Value{Value::Kind::kInt, static_cast<int64_t>(n)});
    case 0x8a:
    case 0x8b: {  // LONG1, LONG4: little-endian two's complement
      if (!TakeUint(op == 0x8a ? 1 : 4, &n)) return Fail("truncated LONG1/LONG4 length");
      if (op == 0x8b && n > 0x7fffffffu) return Fail("negative LONG4 length");
      if (!Take(n, &s)) return Fail("truncated LONG1/LONG4");
      if (n == 0) return Push(Value{Value::Kind::kInt, 0});
      if (n > 8) return Push(Value{});
      uint64_t u = 0;
      for (size_t i = n; i-- > 0;) u = (u << 8) | static_cast<unsigned char>(s[i]);
      if (n < 8 && (static_cast<unsigned char>(s[n - 1]) & 0x80)) u |= ~uint64_t{0} << (8 * n);
      return Push(Value{Value::Kind::kInt, static_cast<int64_t>(u)});
    }
    case 'G':
      if (!Take(8, &s)) return Fail("truncated BINFLOAT");
      return Push(Value{});
    case 'X':
    case 'T':
    case 'B':  // BINUNICODE, BINSTRING, BINBYTES: u32 length
      if (!TakeUint(4, &n) || (op == 'T' && n > 0x7fffffffu) || !Take(n, &s)) {
        return Fail("truncated string");
      }
      return op == 'B' ? Push(Value{}) : PushString(s);
    case 0x8c:
    case 'U':
    case 'C':  // SHORT_BINUNICODE, SHORT_BINSTRING, SHORT_BINBYTES
      if (!TakeUint(1, &n) || !Take(n, &s)) return Fail("truncated string");
      return op == 'C' ? Push(Value{}) : PushString(s);
    case 0x8d:
    case 0x8e:
    case 0x96:  // BINUNICODE8, BINBYTES8, BYTEARRAY8
      if (!TakeUint(8, &n) || !Take(n, &s)) return Fail("truncated string");
      return op == 0x8d ? PushString(s) : Push(Value{});
    case 'q':
      if (!TakeUint(1, &n)) return Fail("truncated BINPUT");
      return Memo(n);
    case 'r':
      if (!TakeUint(4, &n)) return Fail("truncated LONG_BINPUT");
      return Memo(n);
    case 0x94:
      return Memo(memo_.size());  // MEMOIZE
    case 'h':
      if (!TakeUint(1, &n)) return Fail("truncated BINGET");
      return Recall(n);
    case 'j':
      if (!TakeUint(4, &n)) return Fail("truncated LONG_BINGET");
      return Recall(n);
    case 0x80:
      if (!TakeUint(1, &n)) return Fail("truncated PROTO");  // PROTO
      return Status::Ok();
    case 0x95:
      if (!TakeUint(8, &n)) return Fail("truncated FRAME");  // FRAME
      return Status::Ok();
    case 0x82:
    case 0x83:
    case 0x84:  // EXT1, EXT2, EXT4
      if (!TakeUint(op == 0x82 ? 1 : op == 0x83 ? 2 : 4, &n)) return Fail("truncated EXT");
      return Push(Value{});
    case 'N':
    case 0x88:
    case 0x89:
    case '}':
    case ']':
    case 0x8f:
    case 0x97:
      return Push(Value{});  // NONE NEWTRUE NEWFALSE EMPTY_DICT EMPTY_LIST EMPTY_SET NEXT_BUFFER
    case ')':
      return MakeTuple({});  // EMPTY_TUPLE
    case 0x85:
    case 0x86:
    case 0x87: {  // TUPLE1..3
      const size_t k = op - 0x84;
      MG_RETURN_IF_ERROR(PopN(k, v));
      return MakeTuple(std::vector<Value>(v, v + k));
    }
    case 0x93:  // STACK_GLOBAL: module and name strings
      MG_RETURN_IF_ERROR(PopN(2, v));
      if (v[0].kind == Value::Kind::kString && v[1].kind == Value::Kind::kString) {
        return PushString(strings_[static_cast<size_t>(v[0].payload)] + "." +
                              strings_[static_cast<size_t>(v[1].payload)],
                          Value::Kind::kGlobal);
      }
      return Push(Value{});
    case 'Q':  // BINPERSID
      MG_RETURN_IF_ERROR(Pop(1, &v[0]));
      MG_RETURN_IF_ERROR(PersistentId(v[0]));
      return Push(Value{});
    default:
      *handled = false;
      return Status::Ok();
  }
}

Status Scanner::Step(unsigned char op, bool* stop) {
  bool handled = false;
  MG_RETURN_IF_ERROR(StepBinary(op, &handled));
  if (handled) return Status::Ok();
  MG_RETURN_IF_ERROR(StepText(op, &handled));
  if (handled) return Status::Ok();
  std::vector<Value> items;
  switch (op) {
    case '.':
      *stop = true;
      return Status::Ok();  // STOP
    case '(':               // MARK
      if (marks_.size() >= kMaxStack) return Fail("too many MARKs");
      marks_.push_back(stack_.size());
      return Status::Ok();
    case '0':  // POP (a MARK if nothing is above it)
      if (Available() == 0 && !marks_.empty()) return PopMark(nullptr);
      return Pop(1);
    case '1':
      return PopMark(nullptr);  // POP_MARK
    case '2':
      MG_RETURN_IF_ERROR(NeedTop());
      return Push(stack_.back());  // DUP
    case 't':
      MG_RETURN_IF_ERROR(PopMark(&items));
      return MakeTuple(items);  // TUPLE
    case 'l':
    case 'd':
    case 0x91:  // LIST, DICT, FROZENSET
      MG_RETURN_IF_ERROR(PopMark(nullptr));
      return Push(Value{});
    case 'o':  // OBJ: class and args above the MARK
      MG_RETURN_IF_ERROR(PopMark(&items));
      if (items.empty()) return Fail("OBJ without a class");
      return Push(Value{});
    case 'e':
    case 'u':
    case 0x90:  // APPENDS, SETITEMS, ADDITEMS: onto the object below MARK
      MG_RETURN_IF_ERROR(PopMark(nullptr));
      return NeedTop();
    case 'a':
    case 'b':  // APPEND, BUILD
      MG_RETURN_IF_ERROR(Pop(1));
      return NeedTop();
    case 's':  // SETITEM
      MG_RETURN_IF_ERROR(Pop(2));
      return NeedTop();
    case 'R':
    case 0x81:
      MG_RETURN_IF_ERROR(Pop(2));
      return Push(Value{});  // REDUCE, NEWOBJ
    case 0x92:
      MG_RETURN_IF_ERROR(Pop(3));
      return Push(Value{});  // NEWOBJ_EX
    case 0x98:
      return NeedTop();  // READONLY_BUFFER
    default: {
      static const char* kHex = "0123456789abcdef";
      return Fail(std::string("unknown opcode 0x") + kHex[op >> 4] + kHex[op & 15]);
    }
  }
}

Result<std::vector<PickleStorageRef>> Scanner::Run() {
  bool stop = false;
  while (!stop) {
    if (pos_ >= in_.size()) {
      op_pos_ = pos_;
      return Fail("no STOP opcode before the end of the data");
    }
    op_pos_ = pos_;
    const unsigned char op = static_cast<unsigned char>(in_[pos_++]);
    MG_RETURN_IF_ERROR(Step(op, &stop));
  }
  return std::move(found_);
}

}  // namespace

Result<std::vector<PickleStorageRef>> ScanPickleStorages(std::string_view pickle) {
  return Scanner(pickle).Run();
}

}  // namespace modelgrid::estimate
