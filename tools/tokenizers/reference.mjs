#!/usr/bin/env node
// Encodes and decodes with Hugging Face's JS tokenizer (@huggingface/tokenizers,
// pinned in package.json): the reference that src/tokenizer's tests compare
// the C++ Tokenizer against.
//
//   node tools/tokenizers/reference.mjs [REQUEST.json]      (stdin without a file)
//
// A request is one JSON object, or an array of them (one answer each, in order):
//   {
//     "tokenizer_dir": "build/tokenizers/gpt2",   // tokenizer.json (+ tokenizer_config.json)
//     "texts": ["Hello world", ...],               // to encode
//     "add_special_tokens": true,                  // default true
//     "ids_to_decode": [[15496, 995], ...],        // to decode
//     "skip_special_tokens": false,                // default false
//     "clean_up_tokenization_spaces": null         // null: tokenizer_config.json's (default true)
//   }
// The answer (stdout), one object per request:
//   { "encodings": [{"ids": [...], "tokens": [...]}, ...], "decoded": ["...", ...] }
// An empty id list decodes to "" (the JS library refuses one). Errors go to
// stderr with exit status 1.
import fs from "node:fs";
import path from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";

const loaded = new Map();

function load(dir) {
  if (!loaded.has(dir)) {
    const tokenizer = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8"));
    const configPath = path.join(dir, "tokenizer_config.json");
    const config = fs.existsSync(configPath) ? JSON.parse(fs.readFileSync(configPath, "utf8")) : {};
    loaded.set(dir, new Tokenizer(tokenizer, config));
  }
  return loaded.get(dir);
}

function answer(request) {
  if (typeof request.tokenizer_dir !== "string") throw new Error("request needs tokenizer_dir");
  const tok = load(request.tokenizer_dir);
  const add_special_tokens = request.add_special_tokens ?? true;
  const encodings = (request.texts ?? []).map((text) => {
    const e = tok.encode(text, { add_special_tokens });
    return { ids: e.ids, tokens: e.tokens };
  });
  const options = { skip_special_tokens: request.skip_special_tokens ?? false };
  if (request.clean_up_tokenization_spaces != null) {
    options.clean_up_tokenization_spaces = request.clean_up_tokenization_spaces;
  }
  const decoded = (request.ids_to_decode ?? []).map((ids) =>
    ids.length === 0 ? "" : tok.decode(ids, options));
  return { encodings, decoded };
}

function main() {
  const file = process.argv[2];
  const text = fs.readFileSync(file && file !== "-" ? file : 0, "utf8");
  const request = JSON.parse(text);
  const result = Array.isArray(request) ? request.map(answer) : answer(request);
  process.stdout.write(JSON.stringify(result) + "\n");
}

try {
  main();
} catch (error) {
  console.error(`reference.mjs: ${error.message}`);
  process.exit(1);
}
