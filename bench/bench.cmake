add_executable(bareosdir-bench bench/bench.c)
target_link_libraries(bareosdir-bench PRIVATE bd_core Python3::Python ${CMAKE_DL_LIBS})
