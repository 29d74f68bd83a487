# The C tests of the parts without Python: the options parser, the
# director model and the bounded formatter.  Included by the top-level
# CMakeLists.txt; each prints
# "N passed, N failed" and exits non-zero on a failure.
foreach(t test_options test_director_model test_textfmt)
  add_executable(${t} ${CMAKE_CURRENT_LIST_DIR}/${t}.c)
  target_link_libraries(${t} PRIVATE bd_core Threads::Threads)
  add_test(NAME c_${t} COMMAND ${t})
  set_tests_properties(c_${t} PROPERTIES LABELS "c" TIMEOUT 120)
endforeach()

# Driven by tests/test_shim_lifecycle.py (it needs a plugin directory).
add_executable(shim_unload_race ${CMAKE_CURRENT_LIST_DIR}/shim_unload_race.c)
target_link_libraries(shim_unload_race PRIVATE bd_core Threads::Threads ${CMAKE_DL_LIBS})
