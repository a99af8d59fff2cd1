# wand_module(TARGET [OUTPUT NAME] SOURCES src... LIBS lib... [LOADER TARGET SOURCE])
#
# A part of wand that maps heavy libraries (libcurl, cpp-httplib, libpq) built as a module that the
# `wand` binary loads on first use (common/module.h), so that commands which never use it start
# light: beside the binary (WAND_MODULE_DIR), without the "lib" prefix, exporting only what
# module.h looks up, and resolving wand's own functions (JSON, logging) from the binary. OUTPUT
# names the file (default: TARGET); LOADER adds the object library the binary links in its place.
function(wand_module target)
  cmake_parse_arguments(M "" "OUTPUT" "SOURCES;LIBS;LOADER" ${ARGN})
  if(NOT M_OUTPUT)
    set(M_OUTPUT ${target})
  endif()
  add_library(${target} MODULE ${M_SOURCES})
  target_include_directories(${target} PRIVATE ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(${target} PRIVATE ${M_LIBS} fmt::fmt nlohmann_json::nlohmann_json)
  set_target_properties(${target} PROPERTIES OUTPUT_NAME ${M_OUTPUT} PREFIX "" CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON LIBRARY_OUTPUT_DIRECTORY ${WAND_MODULE_DIR})
  install(TARGETS ${target} LIBRARY DESTINATION ${CMAKE_INSTALL_BINDIR})  # beside the installed binary too
  if(M_LOADER)
    list(GET M_LOADER 0 loader)
    list(GET M_LOADER 1 loader_source)
    add_library(${loader} OBJECT ${loader_source})
    target_link_libraries(${loader} PUBLIC wand_common)
  endif()
endfunction()
