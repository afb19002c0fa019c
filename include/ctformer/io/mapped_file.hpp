// A read-only memory map of a whole file (POSIX).
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <utility>

#include "ctformer/core/error.hpp"

namespace ctformer {

class MappedFile {
 public:
  MappedFile() = default;

  explicit MappedFile(const std::filesystem::path& path) : path_(path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw FileError(describe_errno("cannot open", path));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      const std::string message = describe_errno("cannot stat", path);
      ::close(fd);
      throw FileError(message);
    }
    if (!S_ISREG(st.st_mode)) {
      ::close(fd);
      // std::string first: GCC 12 warns falsely (-Wrestrict, bug 105651) on "..." + string&&.
      throw FileError(std::string("'") + path.string() + "' is not a regular file");
    }
    size_ = static_cast<std::size_t>(st.st_size);
    if (size_ > 0) {  // mmap refuses a length of 0; an empty file maps to an empty span.
      void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        const std::string message = describe_errno("cannot memory-map", path);
        ::close(fd);
        throw FileError(message);
      }
      data_ = static_cast<const std::byte*>(p);
    }
    ::close(fd);  // the mapping stays valid without the descriptor
  }

  MappedFile(MappedFile&& other) noexcept
      : path_(std::move(other.path_)),
        data_(std::exchange(other.data_, nullptr)),
        size_(std::exchange(other.size_, 0)) {}
  MappedFile& operator=(MappedFile&& other) noexcept {
    if (this != &other) {
      unmap();
      path_ = std::move(other.path_);
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile() { unmap(); }

  std::span<const std::byte> bytes() const { return {data_, size_}; }
  std::size_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  static std::string describe_errno(const char* what, const std::filesystem::path& path) {
    const int err = errno;
    std::string message = std::string(what) + " '" + path.string() + "': " + std::strerror(err);
    if (err == ENOENT) message += " (check the path; a model directory needs this file)";
    return message;
  }
  void unmap() {
    if (data_) ::munmap(const_cast<std::byte*>(data_), size_);
    data_ = nullptr;
  }

  std::filesystem::path path_;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace ctformer
