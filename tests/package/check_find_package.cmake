# cmake -P script: install ctformer to a prefix, build examples/consumer against it, run it.
# -DCXX_COMPILER=... builds the consumer with that compiler.
foreach(var SOURCE_DIR WORK_DIR MODEL_DIR GENERATOR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "check_find_package.cmake needs -D${var}=...")
  endif()
endforeach()
file(REMOVE_RECURSE ${WORK_DIR})
include(${CMAKE_CURRENT_LIST_DIR}/consumer_steps.cmake)

run_step(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/ctformer-build -G ${GENERATOR}
         -DCTFORMER_BUILD_TESTS=OFF -DCTFORMER_BUILD_TOOLS=OFF -DCTFORMER_BUILD_BENCH=OFF
         -DCMAKE_INSTALL_PREFIX=${WORK_DIR}/prefix)
run_step(${CMAKE_COMMAND} --install ${WORK_DIR}/ctformer-build)
set(compiler)
if(CXX_COMPILER)
  set(compiler -DCMAKE_CXX_COMPILER=${CXX_COMPILER})
endif()
run_step(${CMAKE_COMMAND} -S ${SOURCE_DIR}/examples/consumer -B ${WORK_DIR}/consumer-build
         -G ${GENERATOR} -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix -DCMAKE_BUILD_TYPE=Release
         ${compiler})
run_step(${CMAKE_COMMAND} --build ${WORK_DIR}/consumer-build)
run_consumer(${WORK_DIR}/consumer-build/consumer)
