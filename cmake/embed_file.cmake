# Writes OUT, a C++ file defining wand_embedded_<NAME> with the bytes of IN.
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" n)
math(EXPR bytes "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "'\\\\x\\1'," body "${hex}")
file(WRITE "${OUT}" "#include <string_view>\nstatic const char data_[] = {${body} 0};\nextern const std::string_view wand_embedded_${NAME}(data_, ${bytes});\n")
