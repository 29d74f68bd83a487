# bareosdir-sim, the Director simulator, and bareosdir-config-dump, the test
# driver of its configuration reader (for tests/test_sim_config.py; not
# installed).  Included by the top-level CMakeLists.txt.
add_library(bd_simconfig STATIC ${CMAKE_CURRENT_LIST_DIR}/config.c)
target_include_directories(bd_simconfig PUBLIC ${CMAKE_CURRENT_LIST_DIR}
                           ${CMAKE_CURRENT_LIST_DIR}/../csrc)

# libpq for --catalog (Debian: libpq-dev): pkg-config first, else CMake's
# own finder.
find_package(PkgConfig QUIET)
if(PKG_CONFIG_FOUND)
  pkg_check_modules(BD_LIBPQ IMPORTED_TARGET libpq)
endif()
if(BD_LIBPQ_FOUND)
  set(BD_LIBPQ_TARGET PkgConfig::BD_LIBPQ)
else()
  find_package(PostgreSQL REQUIRED)
  set(BD_LIBPQ_TARGET PostgreSQL::PostgreSQL)
endif()

add_executable(bareosdir-sim ${CMAKE_CURRENT_LIST_DIR}/bareosdir-sim.c
               ${CMAKE_CURRENT_LIST_DIR}/catalog.c)
target_link_libraries(bareosdir-sim PRIVATE bd_simconfig bd_core
                      ${BD_LIBPQ_TARGET} Threads::Threads ${CMAKE_DL_LIBS})
install(TARGETS bareosdir-sim RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

add_executable(bareosdir-config-dump ${CMAKE_CURRENT_LIST_DIR}/test_config_main.c)
target_link_libraries(bareosdir-config-dump PRIVATE bd_simconfig)
