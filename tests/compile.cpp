// C++11 build of the whole header, implementation included.
#include "compile.c"
