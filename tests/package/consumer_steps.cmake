# Shared by the cmake -P scripts of tests/package: run a step or fail with its output, and check
# what examples/consumer/main.cpp printed.

# run_step(<command> <args>...): sets step_output to the command's stdout and stderr.
function(run_step)
  execute_process(COMMAND ${ARGV} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGV}\n${out}")
  endif()
  set(step_output "${out}" PARENT_SCOPE)
endfunction()

# run_consumer(<program>): runs it on MODEL_DIR and checks that it generated its tokens.
function(run_consumer program)
  run_step(${program} ${MODEL_DIR})
  if(NOT step_output MATCHES "generated 8 tokens")
    message(FATAL_ERROR "the consumer ran but printed:\n${step_output}")
  endif()
  message(STATUS "consumer output: ${step_output}")
endfunction()
