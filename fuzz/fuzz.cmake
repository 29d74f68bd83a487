# libFuzzer targets, built only with -DBAREOSDIR_FUZZ=ON and clang
# (fuzz/run.sh does both).  Each target compiles its sources itself so they
# carry the fuzzer's coverage instrumentation, and records its binary and
# seed corpus in <build>/fuzz-targets/<name> for run.sh.  To add a target:
#   bd_add_fuzzer(fuzz_x ${PROJECT_SOURCE_DIR}/fuzz/corpus/x fuzz/fuzz_x.c ...)
if(NOT BAREOSDIR_FUZZ)
  return()
endif()
if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "BAREOSDIR_FUZZ needs clang (configure with CC=clang); "
                      "the compiler is ${CMAKE_C_COMPILER_ID}")
endif()

set(BD_FUZZ_FLAGS -fsanitize=fuzzer,address,undefined
                  -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g)
add_custom_target(fuzzers)

function(bd_add_fuzzer name corpus)
  add_executable(${name} ${ARGN})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/csrc)
  target_compile_options(${name} PRIVATE ${BD_FUZZ_FLAGS})
  target_link_options(${name} PRIVATE ${BD_FUZZ_FLAGS})
  target_link_libraries(${name} PRIVATE Threads::Threads)
  add_dependencies(fuzzers ${name})
  file(GENERATE OUTPUT ${CMAKE_BINARY_DIR}/fuzz-targets/${name}
       CONTENT "$<TARGET_FILE:${name}>\n${corpus}\n")
endfunction()

bd_add_fuzzer(fuzz_options ${PROJECT_SOURCE_DIR}/fuzz/corpus/options
              ${PROJECT_SOURCE_DIR}/fuzz/fuzz_options.c
              ${PROJECT_SOURCE_DIR}/csrc/options.c)

# The configuration reader's fuzzer, once it and its reader exist.
if(EXISTS ${PROJECT_SOURCE_DIR}/sim/config.c
   AND EXISTS ${PROJECT_SOURCE_DIR}/fuzz/fuzz_config.c)
  bd_add_fuzzer(fuzz_config ${PROJECT_SOURCE_DIR}/fuzz/corpus/config
                ${PROJECT_SOURCE_DIR}/fuzz/fuzz_config.c
                ${PROJECT_SOURCE_DIR}/sim/config.c)
  target_include_directories(fuzz_config PRIVATE ${PROJECT_SOURCE_DIR}/sim)
endif()
