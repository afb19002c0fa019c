// One libFuzzer program per target of fuzz_targets.hpp: CTFORMER_FUZZ_TARGET names the function.
#include <cstddef>
#include <cstdint>
#include <span>

#include "fuzz_targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ctformer::fuzz::CTFORMER_FUZZ_TARGET(std::span<const std::uint8_t>(data, size));
  return 0;
}
