# cmake -P script: configure, build and run tests/package/subproject, which takes ctformer in with
# add_subdirectory (-DVIA=add_subdirectory) or FetchContent (-DVIA=FetchContent).
#
# FetchContent uses GIT_REPOSITORY with a file:// URL (no network needed), as users fetch from a
# hosted repository, so that a file the build needs but git would not carry (one matched by
# .gitignore) fails here, not in users' builds. The repository is a one-commit snapshot of the
# source tree as it is now (what `git add --all` takes, uncommitted edits included), made in
# WORK_DIR: fetching the checkout's own history would test its last commit instead of the tree under
# test, and the checkout is left untouched. Without git, or in a source tree that is not a git
# checkout (an archive), it falls back to FetchContent's SOURCE_DIR.
foreach(var SOURCE_DIR WORK_DIR MODEL_DIR GENERATOR VIA CUDA)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "check_subproject.cmake needs -D${var}=...")
  endif()
endforeach()
file(REMOVE_RECURSE ${WORK_DIR})
include(${CMAKE_CURRENT_LIST_DIR}/consumer_steps.cmake)

set(how -DCTFORMER_VIA=${VIA})
find_program(GIT_EXECUTABLE git)
if(VIA STREQUAL "FetchContent" AND GIT_EXECUTABLE AND EXISTS ${SOURCE_DIR}/.git)
  set(snapshot ${WORK_DIR}/ctformer.git)
  run_step(${GIT_EXECUTABLE} init --quiet --bare ${snapshot})
  set(git ${GIT_EXECUTABLE} -C ${SOURCE_DIR} --git-dir=${snapshot} --work-tree=${SOURCE_DIR}
          -c user.name=ctformer-test -c user.email=ctformer-test@localhost -c commit.gpgsign=false)
  run_step(${git} add --all)
  run_step(${git} commit --quiet --no-verify -m "snapshot of ${SOURCE_DIR}")
  run_step(${git} rev-parse HEAD)
  string(STRIP "${step_output}" commit)
  list(APPEND how -DCTFORMER_GIT_REPOSITORY=file://${snapshot} -DCTFORMER_GIT_TAG=${commit})
  message(STATUS "FetchContent from git: file://${snapshot} at ${commit}")
else()
  list(APPEND how -DCTFORMER_SOURCE=${SOURCE_DIR})
  if(VIA STREQUAL "FetchContent")
    message(STATUS "FetchContent with SOURCE_DIR ${SOURCE_DIR} (no git, or not a git checkout)")
  endif()
endif()

# CTFORMER_CUDA as the outer build has it: with it OFF, the subproject must not look for nvcc.
run_step(${CMAKE_COMMAND} -S ${CMAKE_CURRENT_LIST_DIR}/subproject -B ${WORK_DIR}/build
         -G ${GENERATOR} -DCMAKE_BUILD_TYPE=Release -DCTFORMER_CUDA=${CUDA} ${how})
message(STATUS "${step_output}")
run_step(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run_consumer(${WORK_DIR}/build/consumer)
