# wand_embed(TARGET NAME FILE) compiles FILE into TARGET as
#   extern const std::string_view wand_embedded_<NAME>;
# Files (prompts, the Python zygote, the fork-server library) stay data in the tree; the
# binary carries them. FILE may be a generator expression such as $<TARGET_FILE:lib>.
function(wand_embed target name file)
  set(out "${CMAKE_CURRENT_BINARY_DIR}/embedded_${name}.cpp")
  add_custom_command(
    OUTPUT "${out}"
    COMMAND ${CMAKE_COMMAND} -DIN=${file} -DOUT=${out} -DNAME=${name}
            -P "${PROJECT_SOURCE_DIR}/cmake/embed_file.cmake"
    DEPENDS "${file}" "${PROJECT_SOURCE_DIR}/cmake/embed_file.cmake" ${ARGN}
    COMMENT "Embedding ${name}")
  target_sources(${target} PRIVATE "${out}")
endfunction()
