# Cross-builds ctformer for 64-bit ARM Linux with Debian's cross compiler, and runs what it builds
# (CTest's tests, too) under qemu-user: scripts/arm64-check.sh, whose `scripts/install-deps.sh
# --arm64` installs the compiler, qemu and the arm64 libraries.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
# Header-only dependencies (Eigen, nlohmann_json) are the host's; libraries are arm64 multiarch.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
# One OpenMP thread: under qemu-user 7.2 (Debian 12's) a 2-thread OpenMP loop does not finish (a
# 2,000-region reduction: 0.05 s with one thread, killed at 120 s with two), and the kernel test,
# 7 s with one, ran for minutes.
set(CMAKE_CROSSCOMPILING_EMULATOR env OMP_NUM_THREADS=1 qemu-aarch64 -L /usr/aarch64-linux-gnu)
# pkg-config (FindCURL) reads the arm64 libraries' .pc files, not the host's.
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig)
