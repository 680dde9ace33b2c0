# Writes the bash completion that the binary generates from its own CLI (CMakeLists.txt runs
# this after each build of medattn): cmake -DBIN=build/medattn -DOUT=build/medattn.bash -P ...
execute_process(COMMAND ${BIN} --completion bash OUTPUT_FILE ${OUT}.tmp RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${BIN} --completion bash failed (${rc})")
endif()
file(RENAME ${OUT}.tmp ${OUT})
