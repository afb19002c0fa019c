// The exceptions ctformer throws. Every message names the file, tensor, key or value at fault, what
// was expected, and, where there is one, what to do about it.
#pragma once

#include <stdexcept>
#include <string>

namespace ctformer {

// Base of every ctformer exception: catch this to handle them all.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A file that is missing or cannot be read or mapped.
class FileError : public Error {
 public:
  using Error::Error;
};

// A file whose contents are malformed: a truncated safetensors file, invalid JSON, bad offsets.
class FormatError : public Error {
 public:
  using Error::Error;
};

// A model configuration that is incomplete, inconsistent, or asks for something not supported.
class ConfigError : public Error {
 public:
  using Error::Error;
};

// Caller-supplied data that cannot be processed: a token id out of range, a sequence longer than
// the context, text that is not valid UTF-8.
class InputError : public Error {
 public:
  using Error::Error;
};

}  // namespace ctformer
