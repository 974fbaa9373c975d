// Rebuilds a SentencePiece model file (tokenizer.model, a serialised
// sentencepiece.ModelProto) from a LLaMA-style tokenizer.json: the inverse of
// transformers' LlamaConverter (convert_slow_tokenizer.py), which turns a
// SentencePiece BPE model into a tokenizer.json.
//
// The mapping (sentencepiece_model.proto, field numbers in brackets):
//   pieces [1]     every vocabulary entry in id order: piece [1], score [2], type [3]
//                  (omitted for NORMAL, the default).
//                  type: the unk_token UNKNOWN (2), the other added special tokens
//                  CONTROL (3), <0x00>..<0xFF> BYTE (6), the rest NORMAL (1).
//                  score: SentencePiece's BPE merges the adjacent pair whose
//                  concatenation has the highest score, so a piece that a
//                  tokenizer.json merge forms scores -(rank of its first such
//                  merge); pieces no merge forms (single characters) score
//                  below all of them, in id order; UNKNOWN/CONTROL/BYTE score 0.
//   trainer_spec [2]     model_type [3] = BPE (2), vocab_size [4], byte_fallback [35],
//                        unk_id [40], bos_id [41], eos_id [42], pad_id [43] = -1,
//                        unk_piece [45], bos_piece [46], eos_piece [47].
//   normalizer_spec [3]  name [1] "identity", add_dummy_prefix [3] true,
//                        remove_extra_whitespaces [4] false, escape_whitespaces [5] true.
// Fields that only steer training (split_digits, character_coverage, ...) are
// not written. Only the wire format is needed, so no protobuf library is used.

// A protocol-buffers writer for the field types ModelProto uses.
class ProtoWriter {
  constructor() {
    this.parts = [];
  }

  varint(value) {
    let v = BigInt.asUintN(64, BigInt(value));  // negative int32: ten bytes, as protobuf
    const bytes = [];
    do {
      let byte = Number(v & 0x7fn);
      v >>= 7n;
      if (v !== 0n) byte |= 0x80;
      bytes.push(byte);
    } while (v !== 0n);
    this.parts.push(Buffer.from(bytes));
  }

  tag(field, wireType) {
    this.varint((field << 3) | wireType);
  }

  int(field, value) {       // int32, enum and bool: wire type 0
    this.tag(field, 0);
    this.varint(typeof value === "boolean" ? (value ? 1 : 0) : value);
  }

  float(field, value) {     // wire type 5, little-endian IEEE 754 single
    this.tag(field, 5);
    const b = Buffer.alloc(4);
    b.writeFloatLE(value);
    this.parts.push(b);
  }

  bytes(field, buffer) {    // string and embedded message: wire type 2
    this.tag(field, 2);
    this.varint(buffer.length);
    this.parts.push(buffer);
  }

  string(field, text) {
    this.bytes(field, Buffer.from(text, "utf8"));
  }

  message(field, build) {
    const inner = new ProtoWriter();
    build(inner);
    this.bytes(field, inner.finish());
  }

  finish() {
    return Buffer.concat(this.parts);
  }
}

const NORMAL = 1, UNKNOWN = 2, CONTROL = 3, BYTE = 6;
const BPE = 2;

function fail(message) {
  throw new Error(`sentencepiece_model: ${message}`);
}

function mergePair(merge) {
  return Array.isArray(merge) ? merge : merge.split(" ");
}

// The pieces of `tokenizer` (a parsed tokenizer.json) as [{piece, score, type}]
// in id order; throws unless it is a LLaMA-style byte-fallback BPE.
function pieces(tokenizer) {
  const model = tokenizer.model;
  if (model?.type !== "BPE" || model.byte_fallback !== true) {
    fail("expected a BPE model with byte_fallback (a LLaMA-style tokenizer.json)");
  }
  const normalizers = tokenizer.normalizer?.normalizers ?? [];
  if (tokenizer.pre_tokenizer !== null || normalizers[0]?.type !== "Prepend" ||
      normalizers[0].prepend !== "\u2581" || normalizers[1]?.type !== "Replace") {
    fail("expected LlamaConverter's legacy normalizer (Prepend \u2581, Replace \" \") and no pre-tokenizer");
  }
  const byId = [];
  for (const [piece, id] of Object.entries(model.vocab)) {
    if (byId[id] !== undefined) fail(`id ${id} is both ${byId[id]} and ${piece}`);
    byId[id] = piece;
  }
  for (let id = 0; id < byId.length; ++id) {
    if (byId[id] === undefined) fail(`id ${id} has no piece: SentencePiece ids are contiguous`);
  }
  const special = new Map();
  for (const t of tokenizer.added_tokens) {
    if (byId[t.id] !== t.content) fail(`added token ${t.content} (${t.id}) is not that vocabulary entry`);
    if (t.special) special.set(t.id, t.content === model.unk_token ? UNKNOWN : CONTROL);
  }
  const firstMerge = new Map();
  model.merges.forEach((merge, rank) => {
    const [left, right] = mergePair(merge);
    const id = model.vocab[left + right];
    if (id === undefined) fail(`merge ${left} ${right} forms no vocabulary entry`);
    if (!firstMerge.has(id)) firstMerge.set(id, rank);
  });
  let bytes = 0;
  const out = byId.map((piece, id) => {
    if (special.has(id)) return { piece, score: 0, type: special.get(id) };
    if (/^<0x[0-9A-F]{2}>$/.test(piece)) {
      ++bytes;
      return { piece, score: 0, type: BYTE };
    }
    const rank = firstMerge.has(id) ? firstMerge.get(id) : model.merges.length + id;
    return { piece, score: -rank, type: NORMAL };
  });
  if (bytes !== 256) fail(`expected the 256 byte pieces <0x00>..<0xFF>, found ${bytes}`);
  return out;
}

// tokenizer.model's bytes for `tokenizer` (parsed tokenizer.json); `config`
// (parsed tokenizer_config.json) names bos / eos.
export function sentencePieceModel(tokenizer, config) {
  const list = pieces(tokenizer);
  const idOf = (name) => {
    const content = typeof name === "object" && name !== null ? name.content : name;
    const id = tokenizer.model.vocab[content];
    if (id === undefined) fail(`special token ${content} is not in the vocabulary`);
    return id;
  };
  const unk = tokenizer.model.unk_token;
  const w = new ProtoWriter();
  for (const p of list) {
    w.message(1, (m) => {
      m.string(1, p.piece);
      m.float(2, p.score);
      if (p.type !== NORMAL) m.int(3, p.type);  // NORMAL is the default
    });
  }
  w.message(2, (t) => {
    t.int(3, BPE);
    t.int(4, list.length);
    t.int(35, true);
    t.int(40, idOf(unk));
    t.int(41, idOf(config.bos_token));
    t.int(42, idOf(config.eos_token));
    t.int(43, -1);
    t.string(45, unk);
    t.string(46, typeof config.bos_token === "object" ? config.bos_token.content : config.bos_token);
    t.string(47, typeof config.eos_token === "object" ? config.eos_token.content : config.eos_token);
  });
  w.message(3, (n) => {
    n.string(1, "identity");
    n.int(3, true);
    n.int(4, false);
    n.int(5, true);
  });
  return w.finish();
}
