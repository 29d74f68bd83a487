# python-dir.so, and its copy python3-dir.so (a regular file: the Director
# skips symlinks, and a hard link would give the same handle twice), plus the
# bareosdir package beside them so a Director needs no pip step.
add_library(python-dir MODULE shim/python-dir.c)
set_target_properties(python-dir PROPERTIES PREFIX "" C_VISIBILITY_PRESET hidden)
target_include_directories(python-dir PRIVATE csrc)
target_compile_definitions(python-dir PRIVATE
  BAREOSDIR_PYTHON_EXE="${BAREOSDIR_PYTHON}")
target_link_libraries(python-dir PRIVATE Python3::Python ${CMAKE_DL_LIBS})
add_custom_command(TARGET python-dir POST_BUILD
  COMMAND ${CMAKE_COMMAND} -E copy $<TARGET_FILE:python-dir>
          $<TARGET_FILE_DIR:python-dir>/python3-dir.so)

# The extension, built by setup.py with the same interpreter, into the build
# tree, so that the build directory itself works as a plugin directory.
set(BAREOSDIR_STAGE "${CMAKE_BINARY_DIR}/plugins")
file(GLOB BAREOSDIR_CSRC CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/csrc/*.c ${CMAKE_SOURCE_DIR}/csrc/*.h)
file(GLOB_RECURSE BAREOSDIR_PYSRC CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/bareosdir/*.py
     ${CMAKE_SOURCE_DIR}/bareosdir/*.pyi ${CMAKE_SOURCE_DIR}/bareosdir/plugins/*)
add_custom_command(
  OUTPUT ${BAREOSDIR_STAGE}/.stamp
  COMMAND ${CMAKE_COMMAND} -E env
          BAREOSDIR_WERROR=$<IF:$<BOOL:${BAREOSDIR_WERROR}>,1,0>
          BAREOSDIR_SANITIZE=$<IF:$<BOOL:${BAREOSDIR_SANITIZE}>,1,0>
          BAREOSDIR_TEST_LEAK=$<IF:$<BOOL:${BAREOSDIR_TEST_LEAK}>,1,0>
          ${BAREOSDIR_PYTHON} ${CMAKE_SOURCE_DIR}/tools/stage_package.py
          ${BAREOSDIR_STAGE} ${CMAKE_BINARY_DIR}/ext-tmp
  COMMAND ${CMAKE_COMMAND} -E touch ${BAREOSDIR_STAGE}/.stamp
  WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}
  DEPENDS ${BAREOSDIR_CSRC} ${BAREOSDIR_PYSRC} ${CMAKE_SOURCE_DIR}/setup.py
          ${CMAKE_SOURCE_DIR}/tools/stage_package.py
  COMMENT "Building the bareosdir extension with ${BAREOSDIR_PYTHON}")
add_custom_target(bareosdir-ext ALL DEPENDS ${BAREOSDIR_STAGE}/.stamp)
add_custom_command(TARGET python-dir POST_BUILD
  COMMAND ${CMAKE_COMMAND} -E make_directory ${BAREOSDIR_STAGE}
  COMMAND ${CMAKE_COMMAND} -E copy $<TARGET_FILE:python-dir>
          ${BAREOSDIR_STAGE}/python-dir.so
  COMMAND ${CMAKE_COMMAND} -E copy $<TARGET_FILE:python-dir>
          ${BAREOSDIR_STAGE}/python3-dir.so)

install(FILES $<TARGET_FILE:python-dir> DESTINATION ${BAREOSDIR_PLUGIN_DIR})
install(FILES $<TARGET_FILE:python-dir> DESTINATION ${BAREOSDIR_PLUGIN_DIR}
        RENAME python3-dir.so)
install(DIRECTORY ${BAREOSDIR_STAGE}/bareosdir DESTINATION ${BAREOSDIR_PLUGIN_DIR}
        PATTERN "__pycache__" EXCLUDE)
