// Streaming SHA-256 and SHA-1 through OpenSSL's libcrypto (EVP), and the two content hashes the
// Hugging Face hub publishes as ETags: the SHA-256 of an LFS file, and the git blob id (SHA-1 of
// "blob <size>\0" + content) of a small file kept in git.
#pragma once

#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "ctformer/core/error.hpp"

namespace ctformer::cli {

enum class DigestAlgorithm { sha256, sha1 };

class Digest {
 public:
  explicit Digest(DigestAlgorithm algorithm) : algorithm_(algorithm), ctx_(EVP_MD_CTX_new()) {
    if (!ctx_) throw std::bad_alloc();
    reset();
  }

  void reset() {
    const EVP_MD* md = algorithm_ == DigestAlgorithm::sha256 ? EVP_sha256() : EVP_sha1();
    if (EVP_DigestInit_ex(ctx_.get(), md, nullptr) != 1)
      throw std::runtime_error("OpenSSL: EVP_DigestInit_ex failed");
  }

  void update(const void* data, std::size_t size) {
    if (size && EVP_DigestUpdate(ctx_.get(), data, size) != 1)
      throw std::runtime_error("OpenSSL: EVP_DigestUpdate failed");
  }
  void update(std::string_view text) { update(text.data(), text.size()); }

  // The digest as lowercase hex; the object must be reset() before it is used again.
  std::string hex() {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_DigestFinal_ex(ctx_.get(), out, &n) != 1)
      throw std::runtime_error("OpenSSL: EVP_DigestFinal_ex failed");
    static constexpr char kHex[] = "0123456789abcdef";
    std::string s;
    for (unsigned int i = 0; i < n; ++i) {
      s += kHex[out[i] >> 4];
      s += kHex[out[i] & 15];
    }
    return s;
  }

  DigestAlgorithm algorithm() const { return algorithm_; }

 private:
  struct Free {
    void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
  };
  DigestAlgorithm algorithm_;
  std::unique_ptr<EVP_MD_CTX, Free> ctx_;
};

inline std::string sha256_hex(std::string_view data) {
  Digest d(DigestAlgorithm::sha256);
  d.update(data);
  return d.hex();
}

// git's object id of a blob with this content (what `git hash-object` prints).
inline std::string git_blob_sha1_hex(std::string_view data) {
  Digest d(DigestAlgorithm::sha1);
  d.update("blob " + std::to_string(data.size()) + '\0');
  d.update(data);
  return d.hex();
}

// How a hub ETag can be checked against a file's bytes.
enum class EtagCheck {
  sha256,    // 64 hex digits: an LFS file's SHA-256
  git_blob,  // 40 hex digits: a git blob id
  none,      // anything else (a mirror's own ETag): cannot be checked
};

inline EtagCheck etag_check(std::string_view etag) {
  const bool hex = !etag.empty() && etag.find_first_not_of("0123456789abcdef") == etag.npos;
  if (hex && etag.size() == 64) return EtagCheck::sha256;
  if (hex && etag.size() == 40) return EtagCheck::git_blob;
  return EtagCheck::none;
}

// Hashes a file the way `check` says (for git_blob, the "blob <size>\0" prefix is included);
// empty for EtagCheck::none.
inline std::string hash_file(const std::filesystem::path& path, EtagCheck check) {
  if (check == EtagCheck::none) return {};
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) throw FileError("cannot open '" + path.string() + "' to verify its checksum");
  Digest d(check == EtagCheck::sha256 ? DigestAlgorithm::sha256 : DigestAlgorithm::sha1);
  if (check == EtagCheck::git_blob)
    d.update("blob " + std::to_string(std::filesystem::file_size(path)) + '\0');
  std::vector<char> buf(1 << 20);
  for (std::size_t n; (n = std::fread(buf.data(), 1, buf.size(), f.get())) > 0;)
    d.update(buf.data(), n);
  if (std::ferror(f.get())) throw FileError("cannot read '" + path.string() + "' to verify it");
  return d.hex();
}

}  // namespace ctformer::cli
