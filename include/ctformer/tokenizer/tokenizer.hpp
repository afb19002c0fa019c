// The GPT-2 tokenizer: Gpt2Tokenizer (encode/decode), Utf8StreamDecoder (streamed text) and the
// UTF-8 helpers. See docs/tokenizer.md.
#pragma once

#include "ctformer/tokenizer/gpt2_tokenizer.hpp"
#include "ctformer/tokenizer/streaming_decoder.hpp"
#include "ctformer/tokenizer/utf8.hpp"
