/* tests/compile_order.c - must NOT compile under -std=c99: <stdio.h> before
   the implementation hides POSIX, and rtws.h stops with an #error that says
   why and what to do (make compile-check looks for its text). */
#include <stdio.h>
#define RTWS_IMPLEMENTATION
#include "rtws.h"
int main(void) { return printf("%s\n", rtws_version()) > 0 ? 0 : 1; }
