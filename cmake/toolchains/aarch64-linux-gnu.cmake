# Cross-builds ctformer for 64-bit ARM Linux with Debian's cross compiler, and runs what it builds
# (CTest's tests, too) under qemu-user: tools/arm64-check.sh.
#   apt-get install g++-aarch64-linux-gnu qemu-user; dpkg --add-architecture arm64;
#   apt-get install libboost-test-dev:arm64
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
# Header-only dependencies (Eigen, nlohmann_json) are the host's; libraries are arm64 multiarch ones.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
# One OpenMP thread: under qemu-user, threads that wait at OpenMP's barriers made a 7 s test run
# for minutes.
set(CMAKE_CROSSCOMPILING_EMULATOR env OMP_NUM_THREADS=1 qemu-aarch64 -L /usr/aarch64-linux-gnu)
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig)
